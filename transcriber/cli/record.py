"""``transcriber record``: record from a microphone into the data folder, then queue or transcribe it.

Option names are a contract like the rest of the command line.
"""

from __future__ import annotations

import queue
import sys
from pathlib import Path

from ..audio import recorder
from ..audio.decode import format_clock
from ..engine.live import LiveTranscriber
from ..errors import IntakeRefused, JobStateError
from ..export import render
from ..jobs import JobStatus
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Progress, interruptible, report_stopped, user_of, wait_for

# How long to wait for the device's first block before saying it is silent (it is not fatal:
# some devices start slowly, and the recording goes on).
FIRST_AUDIO_WAIT_SECONDS = 10.0
# A device that stops sending without an error (some drivers, a sound server moving streams).
STALL_WARNING_SECONDS = 5.0


def add_parsers(commands) -> None:
    record = commands.add_parser(
        "record",
        help="record from a microphone (Ctrl+C stops), then queue or transcribe the recording",
        description="Record from an input device into the data folder's recordings/ as WAV, written as it is "
        "captured; a crash keeps all but the last second. The recording then becomes a job.",
    )
    record.add_argument("--device", metavar="D", help="input device: its number or part of its name (see --list-devices)")
    record.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds of audio (default: Ctrl+C)")
    record.add_argument("--transcribe", action="store_true", help="transcribe the recording now and print the transcript")
    record.add_argument("--live", action="store_true",
                        help="print the transcript line by line while recording (the recording is a job from the start); "
                             "after Ctrl+C the rest is transcribed and printed")
    record.add_argument("--no-queue", action="store_true", help="only keep the file: do not make it a job")
    record.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    record.add_argument("--recover", action="store_true",
                        help="repair recordings a crash interrupted and, with any never queued, queue (or --transcribe) them")
    record.add_argument("--model", metavar="M", help="model for the job")
    record.add_argument("--language", metavar="L", help="language code for the job (default: detect)")
    record.add_argument("--user", metavar="U", help="owner of the job (default: your login name)")


def cmd_record(app, args) -> int:
    if args.list_devices:
        devices = recorder.list_input_devices()
        if not devices:
            print(recorder.NO_DEVICE, file=sys.stderr)
            return EXIT_FAILED
        for device in devices:
            print(f"{device.index}\t{device.name}\t{device.channels} ch\t{device.default_rate:g} Hz"
                  + ("\tdefault" if device.is_default else ""))
        return EXIT_OK
    if args.recover:
        finished = app.engine.recover_recordings()  # live recordings' jobs: continue from their live transcript
        for job in finished:
            print(f"recovered {job.source_path} ({format_clock(job.duration_seconds)}, "
                  f"{format_clock(job.processed_seconds)} transcribed live)", file=sys.stderr)
            print(f"{job.id}\tqueued\t{job.source_path}")
        found = recorder.recover(app.paths.recordings_dir)
        if not found and finished:
            return EXIT_OK
        if not found:
            print("no recordings waiting to be transcribed", file=sys.stderr)
            return EXIT_OK
        for recording in found:
            print(f"recovered {recording.path} ({format_clock(recording.seconds)})", file=sys.stderr)
        return _hand_over(app, args, [recording.path for recording in found])
    if args.seconds is not None and args.seconds <= 0:
        print("error: --seconds must be more than 0", file=sys.stderr)
        return EXIT_FAILED

    if args.live and args.no_queue:
        print("error: --live makes the recording a job from the start; it cannot go with --no-queue", file=sys.stderr)
        return EXIT_FAILED
    if (args.transcribe or args.live) and not args.no_queue:
        # An unavailable model fails now, not after an hour of talking.
        app.models.ensure_available(app.engine.default_options(model=args.model, language=args.language).model)
    rec = recorder.Recorder(app.paths.recordings_dir, device=args.device)
    path = rec.start()  # a RecordingError (no device, PortAudio missing, ...) is printed by main
    live = None
    if args.live:
        live = _start_live(app, args, rec, path)
        if live is None:
            return EXIT_FAILED
    with interruptible() as stop_asked:
        try:
            if not rec.wait_for_audio(FIRST_AUDIO_WAIT_SECONDS) and rec.active:
                print(f"warning: no sound has come from {rec.device.name!r} yet; still recording.", file=sys.stderr)
            # Scripts and tests wait for this line before making the sound they want recorded.
            print(f"recording to {path} from {rec.device.name!r} at {rec.rate} Hz; Ctrl+C stops", file=sys.stderr, flush=True)
            tty = sys.stderr.isatty()
            stalled = False
            while rec.active and not stop_asked.is_set():
                if args.seconds is not None and rec.seconds >= args.seconds:
                    break
                if (rec.seconds_without_audio() > STALL_WARNING_SECONDS) != stalled:
                    stalled = not stalled
                    print(f"\nwarning: no sound from {rec.device.name!r} for {STALL_WARNING_SECONDS:g} s; still recording."
                          if stalled else "\nsound is arriving again.", file=sys.stderr, flush=True)
                if live is not None:
                    live.show()
                if tty:
                    level = min(20, int(rec.take_level() * 20))
                    sys.stderr.write(f"\r{format_clock(rec.seconds)} [{'#' * level:<20}] ")
                    sys.stderr.flush()
                stop_asked.wait(0.1)
        finally:
            result = rec.stop()
            if live is not None:
                live.stop()
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if live is not None:
        return _finish_live(app, args, live, result)
    status = EXIT_OK
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        status = EXIT_FAILED
    if result.seconds <= 0:
        print("nothing was recorded", file=sys.stderr)
        return EXIT_FAILED
    print(f"recorded {format_clock(result.seconds)} to {result.path}", file=sys.stderr)
    handed = _hand_over(app, args, [result.path])
    return status or handed


class _LiveLines:
    """``record --live`` on the terminal: the live transcript's segments as lines on stdout, its troubles on stderr.

    The decoder reports on its own thread into a queue; the command's loop prints (``show``).
    """

    def __init__(self, app, job):
        self.job = job
        self.printed: set[int] = set()
        self._updates: queue.Queue = queue.Queue()
        self._behind = False
        self.decoder = LiveTranscriber(app.engine, job, on_update=self._updates.put)

    def start(self) -> None:
        self.decoder.start()

    def stop(self) -> None:
        """Stop decoding at once (the engine finishes the tail) and print what was committed until then."""
        self.decoder.stop(timeout=None)
        self.show()

    def show(self) -> None:
        while True:
            try:
                update = self._updates.get_nowait()
            except queue.Empty:
                return
            self.print_segments(update.segments)
            if update.error:
                print(f"warning: the live transcript stopped: {update.error} Still recording; the recording is "
                      "transcribed after Ctrl+C.", file=sys.stderr, flush=True)
            if update.ended:
                print("warning: the recording's job was removed; the live transcript stopped. Still recording.",
                      file=sys.stderr, flush=True)
            if update.falling_behind != self._behind:
                self._behind = update.falling_behind
                print(f"\nwarning: the live transcript is {update.behind_seconds:.0f} s behind: this machine cannot keep "
                      "up. Nothing is lost; it catches up, or the rest follows after Ctrl+C."
                      if self._behind else "\nthe live transcript has caught up.", file=sys.stderr, flush=True)

    def print_segments(self, segments) -> None:
        for segment in segments:
            if segment.index in self.printed:
                continue
            self.printed.add(segment.index)
            text = segment.text.strip()
            if text:
                sys.stdout.write(f"{format_clock(segment.start)}\t{text}\n")
        sys.stdout.flush()


def _start_live(app, args, rec, path: Path) -> _LiveLines | None:
    """Make the recording just started a job, and start decoding it live; None (recording discarded) if refused."""
    try:
        job = app.engine.begin_recording(path, user=user_of(args),
                                         options=app.engine.default_options(model=args.model, language=args.language))
    except IntakeRefused as refusal:
        rec.stop()
        recorder.discard(path)
        print(f"error: {refusal}", file=sys.stderr)
        return None
    rec.attach_job(job.id)
    print(f"{job.id}\trecording\t{path}", flush=True)
    live = _LiveLines(app, job)
    live.start()
    return live


def _finish_live(app, args, live: _LiveLines, result) -> int:
    """After Stop: queue the recording's job, finish its tail (here, or in the process that runs the jobs), print it."""
    status = EXIT_OK
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        status = EXIT_FAILED
    print(f"recorded {format_clock(result.seconds)} to {result.path}", file=sys.stderr)
    try:
        job = app.engine.end_recording(live.job.id)
    except JobStateError:  # its job was removed meanwhile: the recording becomes a job like any other
        return _hand_over(app, args, [result.path]) or status
    if job is None:
        print("nothing was recorded", file=sys.stderr)
        return EXIT_FAILED
    with interruptible() as stop:
        waited = wait_for(app, [job.id], Progress(), stop)
    final = waited.jobs[0] if waited.jobs else job
    live.print_segments(app.engine.transcript(job.id).segments)
    if waited.stopped:
        report_stopped(waited)
        return EXIT_INTERRUPTED
    if final.status is not JobStatus.COMPLETED:
        print(f"failed: {final.file_name}: {final.error or final.status.value}", file=sys.stderr)
        return EXIT_FAILED
    return status


def _hand_over(app, args, paths: list[Path]) -> int:
    """Make recordings jobs (the user's, through the normal intake) or, with --no-queue, just name them."""
    if args.no_queue:
        for path in paths:
            recorder.forget(path)
            print(path)
        return EXIT_OK
    options = app.engine.default_options(model=args.model, language=args.language)
    if args.transcribe:
        app.models.ensure_available(options.model)
    results = app.engine.add([str(path) for path in paths], user=user_of(args), options=options)
    status = EXIT_OK
    for result in results:
        if result.job:
            recorder.forget(Path(result.path))
            print(f"{result.job.id}\tqueued\t{result.path}")
        else:
            # The file stays, and stays offered by --recover and the window, until it is taken.
            print(f"-\trefused\t{result.path}\t{result.refusal}")
            status = EXIT_FAILED
    job_ids = [result.job.id for result in results if result.job]
    if not args.transcribe or not job_ids:
        return status
    with interruptible() as stop:
        waited = wait_for(app, job_ids, Progress(), stop)
    for job in waited.jobs:
        if job.status is JobStatus.COMPLETED:
            sys.stdout.write(render("txt", app.engine.transcript(job.id)))
        elif job.status.is_final or not waited.stopped:
            print(f"failed: {job.file_name}: {job.error or job.status.value}", file=sys.stderr)
            status = EXIT_FAILED
    if waited.stopped:
        report_stopped(waited)
        return EXIT_INTERRUPTED
    return status


COMMANDS = {"record": cmd_record}
