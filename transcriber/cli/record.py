"""``transcriber record``: record from a microphone into the data folder, then queue or transcribe it.

Option names are a contract like the rest of the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..audio import recorder
from ..audio.decode import format_clock
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
        found = recorder.recover(app.paths.recordings_dir)
        if not found:
            print("no recordings waiting to be transcribed", file=sys.stderr)
            return EXIT_OK
        for recording in found:
            print(f"recovered {recording.path} ({format_clock(recording.seconds)})", file=sys.stderr)
        return _hand_over(app, args, [recording.path for recording in found])
    if args.seconds is not None and args.seconds <= 0:
        print("error: --seconds must be more than 0", file=sys.stderr)
        return EXIT_FAILED

    if args.transcribe and not args.no_queue:
        # An unavailable model fails now, not after an hour of talking.
        app.models.ensure_available(app.engine.default_options(model=args.model, language=args.language).model)
    rec = recorder.Recorder(app.paths.recordings_dir, device=args.device)
    path = rec.start()  # a RecordingError (no device, PortAudio missing, ...) is printed by main
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
                if tty:
                    level = min(20, int(rec.take_level() * 20))
                    sys.stderr.write(f"\r{format_clock(rec.seconds)} [{'#' * level:<20}] ")
                    sys.stderr.flush()
                stop_asked.wait(0.1)
        finally:
            result = rec.stop()
    if sys.stderr.isatty():
        sys.stderr.write("\n")
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
