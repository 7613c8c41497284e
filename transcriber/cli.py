"""The command line: the same engine and store as the window, for terminals and scripts.

Command names, options and JSON fields are a contract others script against: add to
them, never rename them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Sequence

from . import __version__, cli_record
from .audio.decode import format_clock
from .automation import analytics
from .automation import commands as automation_commands
from .config import DECLARED, format_value
from .errors import EngineBusy, TranscriberError
from .export import FORMATS, output_name, write_atomic, render
from .jobs import Job, JobStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _iso_local(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def job_record(job: Job) -> dict:
    """The JSON form of a job in ``list --json`` (a contract: add fields, never rename them)."""
    return {
        "id": job.id,
        "user": job.user,
        "path": job.source_path,
        "status": job.status.value,
        "progress": round(job.progress, 4),
        "processed_seconds": round(job.processed_seconds, 3),
        "duration_seconds": round(job.duration_seconds, 3),
        "queue_position": job.queue_position,
        "eta_seconds": round(job.eta_seconds, 1) if job.eta_seconds is not None else None,
        "estimated_completion": _iso_local(job.estimated_completion),
        "error": job.error,
        "warning": job.warning,
        "model": job.model,
        "language": job.language,
        "speed": round(job.speed, 2) if job.speed else None,
        "attempts": job.attempts,
        "size_bytes": job.size_bytes,
        "processing_seconds": round(job.processing_seconds, 3),
        "created_at": _iso_local(job.created_at),
        "started_at": _iso_local(job.started_at),
        "finished_at": _iso_local(job.finished_at),
        "exported_paths": list(job.exported_paths),
    }


def _formats(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown format {', '.join(unknown) or text!r}; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transcriber",
        description="Transcribe audio and video files on this machine. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"transcriber {__version__}")
    parser.add_argument("--data-dir", metavar="DIR", help="data folder (default: $TRANSCRIBER_DATA_DIR or the user data folder)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr too")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def job_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--model", metavar="M", help="tiny.en (embedded), base, a model folder, or a faster-whisper name")
        command.add_argument("--language", metavar="L", help="language code, e.g. en, de (default: detect)")
        command.add_argument("--user", metavar="U", help="owner of the jobs (default: your login name)")

    transcribe = commands.add_parser("transcribe", help="transcribe files now, with progress, and export them")
    transcribe.add_argument("files", nargs="+", metavar="FILE")
    transcribe.add_argument("-o", "--output", metavar="DIR", default=".", help="folder for the transcripts (default: here)")
    transcribe.add_argument("--format", type=_formats, default=["txt"], metavar="FMT", help=f"comma-separated: {','.join(FORMATS)}")
    job_options(transcribe)

    add = commands.add_parser("add", help="queue files or folders without waiting")
    add.add_argument("paths", nargs="+", metavar="FILE|DIR")
    job_options(add)

    run = commands.add_parser("run", help="the headless engine: recover, then process the queue")
    run.add_argument(
        "--until-idle", action="store_true", help="return once the queue is empty and no webhook delivery is due within a minute"
    )

    listing = commands.add_parser("list", help="jobs and where they stand")
    listing.add_argument("--user", metavar="U")
    listing.add_argument("--status", metavar="S", help="only jobs in this status (comma-separated)")
    listing.add_argument("--json", action="store_true")

    export = commands.add_parser("export", help="write a job's transcript to a file")
    export.add_argument("job_id", type=int, metavar="JOB_ID")
    export.add_argument("--format", type=_formats, default=["txt"], metavar="FMT")
    export.add_argument("-o", "--output", metavar="PATH", help="file or folder (default: here); '-' prints it")

    for name, text in (
        ("cancel", "cancel a job"),
        ("pause", "pause a job (a running one stops at its next segment)"),
        ("resume", "resume a paused job"),
        ("retry", "queue a failed or cancelled job again"),
        ("remove", "delete a job and its transcript"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("job_id", type=int, metavar="JOB_ID")

    move = commands.add_parser("move", help="move a waiting job up or down its user's queue")
    move.add_argument("job_id", type=int, metavar="JOB_ID")
    direction = move.add_mutually_exclusive_group(required=True)
    direction.add_argument("--up", type=int, nargs="?", const=1, metavar="N")
    direction.add_argument("--down", type=int, nargs="?", const=1, metavar="N")

    config = commands.add_parser("config", help="read or change settings")
    config.add_argument("action", choices=["get", "set", "list", "reset"])
    config.add_argument("key", nargs="?", metavar="KEY", help=", ".join(DECLARED))
    config.add_argument("value", nargs="?", metavar="VALUE")

    automation_commands.add_parsers(commands)

    stats = commands.add_parser("stats", help="processing statistics: speed per model, time by file size")
    stats.add_argument("--csv", action="store_true", help="one table as CSV (see --table)")
    stats.add_argument("--table", choices=automation_commands.STATS_TABLES, default="daily",
                       help="for --csv: daily (per day and model, the default), failures, sizes or models")
    stats.add_argument("--json", action="store_true")

    cli_record.add_parser(commands)

    commands.add_parser(
        "self-test",
        help="transcribe the built-in sample with the default model and check the words (uses a temporary data folder)",
    )
    return parser


class _Progress:
    """Progress bars for ``transcribe``: redrawn in place on a terminal, milestones otherwise."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self._drawn = 0
        self._milestones: dict[int, int] = {}

    def show(self, jobs: Sequence[Job]) -> None:
        if self.tty:
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F")
            for job in jobs:
                self.stream.write("\x1b[2K" + self._line(job) + "\n")
            self._drawn = len(jobs)
        else:
            for job in jobs:
                step = int(job.progress * 10) if job.status is JobStatus.RUNNING else (10 if job.status.is_final else -1)
                if step > self._milestones.get(job.id, -1):
                    self._milestones[job.id] = step
                    self.stream.write(self._line(job) + "\n")
        self.stream.flush()

    @staticmethod
    def _line(job: Job) -> str:
        width = 24
        filled = int(round(job.progress * width))
        bar = "#" * filled + "-" * (width - filled)
        detail = f"{format_clock(job.processed_seconds)}/{format_clock(job.duration_seconds)}"
        if job.status is JobStatus.RUNNING and job.speed:
            detail += f" {job.speed:4.1f}x"
            if job.eta_seconds is not None:
                detail += f" ETA {format_clock(job.eta_seconds)}"
        return f"[{bar}] {job.progress * 100:5.1f}% {job.status.value:<9} {detail:<28} {job.file_name}"


def _wait_for(app, job_ids: list[int], progress: _Progress | None) -> list[Job]:
    """Run (or, if another process runs the engine, watch) until every job is finished."""
    from PySide6.QtCore import QCoreApplication, QTimer

    from .engine.qt import EngineRunner

    def current() -> list[Job]:
        return [job for job in (app.store.get_job(job_id) for job_id in job_ids) if job is not None]

    try:
        app.lock.acquire()
    except EngineBusy:
        # The window (or `transcriber run`) owns the engine: it will process our jobs; we watch.
        while True:
            jobs = current()
            if progress:
                progress.show(jobs)
            if all(job.status.is_final or job.status is JobStatus.PAUSED for job in jobs):
                return jobs
            time.sleep(1.0)

    qt_app = QCoreApplication.instance() or QCoreApplication([])
    runner = EngineRunner(app.engine, poll_ms=500)

    def tick() -> None:
        jobs = current()
        if progress:
            progress.show(jobs)
        if all(job.status.is_final or job.status is JobStatus.PAUSED for job in jobs):
            qt_app.quit()

    timer = QTimer()
    timer.setInterval(500)
    timer.timeout.connect(tick)
    timer.start()
    runner.start()
    _run_interruptible(qt_app)
    timer.stop()
    runner.stop()
    app.lock.release()
    return current()


def _run_interruptible(qt_app) -> None:
    """Run the Qt event loop until it quits, or Ctrl+C or SIGTERM ask for a clean stop."""
    import signal

    from PySide6.QtCore import QTimer

    previous = signal.signal(signal.SIGINT, lambda *_: qt_app.quit())
    previous_term = signal.signal(signal.SIGTERM, lambda *_: qt_app.quit())
    waker = QTimer()
    waker.start(200)  # gives the Python interpreter a chance to run the signal handler
    waker.timeout.connect(lambda: None)
    try:
        qt_app.exec()
    finally:
        waker.stop()
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def _user(args) -> str:
    from .app import login_user

    return args.user or login_user()


def cmd_transcribe(app, args) -> int:
    options = app.engine.default_options(model=args.model, language=args.language)
    app.models.resolve(options.model)  # an unavailable model fails here, before anything is queued
    results = app.engine.add(args.files, user=_user(args), options=options)
    status = EXIT_OK
    for result in results:
        if result.refusal:
            print(f"refused: {result.refusal}", file=sys.stderr)
            status = EXIT_FAILED
    job_ids = [result.job.id for result in results if result.job]
    if not job_ids:
        return EXIT_FAILED
    jobs = _wait_for(app, job_ids, _Progress())
    output = Path(args.output)
    for job in jobs:
        if job.status is JobStatus.COMPLETED:
            try:
                for path in app.engine.export(job.id, args.format, output, overwrite=True):
                    print(path)
            except TranscriberError as error:
                print(f"error: {error}", file=sys.stderr)
                status = EXIT_FAILED
        else:
            reason = job.error or f"job {job.id} is {job.status.value}"
            print(f"failed: {job.file_name}: {reason}", file=sys.stderr)
            status = EXIT_FAILED
    return status


def cmd_add(app, args) -> int:
    options = app.engine.default_options(model=args.model, language=args.language)
    status = EXIT_OK
    for result in app.engine.add(args.paths, user=_user(args), options=options):
        if result.job:
            print(f"{result.job.id}\tqueued\t{result.path}")
        else:
            print(f"-\trefused\t{result.path}\t{result.refusal}")
            status = EXIT_FAILED
    return status


def cmd_run(app, args) -> int:
    from PySide6.QtCore import QCoreApplication

    from .engine.qt import EngineRunner

    app.lock.acquire()
    qt_app = QCoreApplication.instance() or QCoreApplication([])
    runner = EngineRunner(app.engine)
    if args.until_idle:

        def quit_when_idle() -> None:
            # Idle: no job to run, no webhook delivery due within the next minute, and no
            # file in a watch folder still settling, waiting for room or for its rule.
            if all(service.is_idle() for service in app.engine.services):
                qt_app.quit()

        runner.idle.connect(quit_when_idle)
    recovered = runner.start()
    for job in recovered:
        print(f"recovered job {job.id} at {format_clock(job.processed_seconds)}: {job.source_path}", file=sys.stderr)
    _run_interruptible(qt_app)
    runner.stop()
    app.lock.release()
    return EXIT_OK


def cmd_list(app, args) -> int:
    statuses = None
    if args.status:
        try:
            statuses = [JobStatus(value.strip()) for value in args.status.split(",")]
        except ValueError:
            print(f"error: unknown status in {args.status!r}; use {', '.join(s.value for s in JobStatus)}", file=sys.stderr)
            return EXIT_USAGE
    jobs = app.engine.with_estimates(app.store.list_jobs(user=args.user, statuses=statuses))
    if args.json:
        print(json.dumps([job_record(job) for job in jobs], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not jobs:
        print("no jobs")
        return EXIT_OK
    print(f"{'id':>5}  {'status':<9} {'progress':>8}  {'audio':>15}  {'pos':>3}  {'eta':>8}  {'user':<10} file")
    for job in jobs:
        audio = f"{format_clock(job.processed_seconds)}/{format_clock(job.duration_seconds)}"
        eta = format_clock(job.eta_seconds) if job.eta_seconds is not None else "-"
        position = str(job.queue_position) if job.queue_position else "-"
        note = f"  ({job.error or job.warning})" if (job.error or job.warning) else ""
        print(
            f"{job.id:>5}  {job.status.value:<9} {job.progress * 100:7.1f}%  {audio:>15}  {position:>3}  {eta:>8}  "
            f"{job.user:<10} {job.file_name}{note}"
        )
    return EXIT_OK


def cmd_export(app, args) -> int:
    job = app.store.require_job(args.job_id)
    if args.output == "-":
        for fmt in args.format:
            sys.stdout.write(render(fmt, app.engine.transcript(job.id)))
        return EXIT_OK
    target = Path(args.output) if args.output else Path(".")
    if target.is_dir() or args.output is None or str(args.output).endswith(os.sep):
        paths = app.engine.export(job.id, args.format, target, overwrite=True)
    else:
        if len(args.format) > 1:
            print("error: several formats need a folder for -o", file=sys.stderr)
            return EXIT_USAGE
        write_atomic(target, render(args.format[0], app.engine.transcript(job.id)))
        paths = [target]
    for path in paths:
        print(path)
    if job.status is not JobStatus.COMPLETED:
        print(f"note: job {job.id} is {job.status.value}; the transcript is partial.", file=sys.stderr)
    return EXIT_OK


def cmd_control(app, args) -> int:
    action = {
        "cancel": app.engine.cancel,
        "pause": app.engine.pause,
        "resume": app.engine.resume,
        "retry": app.engine.retry,
    }.get(args.command)
    if args.command == "remove":
        app.engine.remove(args.job_id)
        print(f"{args.job_id}\tremoved")
        return EXIT_OK
    if args.command == "move":
        steps = -(args.up or 0) if args.up is not None else (args.down or 0)
        job = app.engine.move(args.job_id, steps)
    else:
        job = action(args.job_id)
    print(f"{job.id}\t{job.status.value}" + (f"\tposition {job.queue_position}" if job.queue_position else ""))
    return EXIT_OK


def cmd_config(app, args) -> int:
    settings = app.store.settings().as_dict()
    if args.action == "list":
        for key, setting in DECLARED.items():
            print(f"{key} = {format_value(settings[key])}\t# {setting.description}")
        return EXIT_OK
    if not args.key:
        print("error: config get/set/reset need a KEY", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "get":
        if args.key not in DECLARED:
            print(f"error: unknown setting {args.key!r}; known: {', '.join(DECLARED)}", file=sys.stderr)
            return EXIT_USAGE
        print(format_value(settings[args.key]))
        return EXIT_OK
    if args.action == "reset":
        app.store.reset_setting(args.key)
        print(format_value(app.store.settings().as_dict()[args.key]))
        return EXIT_OK
    if args.value is None:
        print("error: config set needs a VALUE", file=sys.stderr)
        return EXIT_USAGE
    value = app.store.set_setting(args.key, args.value)
    print(format_value(value))
    return EXIT_OK


def stats_document(app) -> dict:
    facts = app.store.job_facts()
    return {
        "models": [
            {
                "model": entry.model,
                "jobs_completed": entry.jobs_completed,
                "audio_hours": round(entry.audio_hours, 4),
                "mean_processing_minutes": round(entry.mean_processing_minutes, 3),
                "speed": round(entry.speed, 2),
            }
            for entry in app.store.model_stats()
        ],
        "by_file_size": [
            {
                "size_mb_from": bucket.low_mb,
                "size_mb_to": None if bucket.high_mb == float("inf") else bucket.high_mb,
                "jobs": bucket.jobs,
                "mean_processing_minutes": round(bucket.mean_processing_minutes, 3),
            }
            for bucket in app.store.size_bucket_stats()
        ],
        "daily": [
            {key: round(value, 6) if isinstance(value, float) else value for key, value in row.__dict__.items()}
            for row in analytics.daily_stats(facts)
        ],
        "failures": [row.__dict__ for row in analytics.failure_counts(facts)],
    }


def cmd_stats(app, args) -> int:
    if args.csv:
        return automation_commands.write_stats_csv(app.store, args.table)
    document = stats_document(app)
    if args.json:
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print(f"{'model':<16} {'jobs':>5} {'audio h':>8} {'mean min':>9} {'speed':>7}")
    for entry in document["models"]:
        print(
            f"{entry['model']:<16} {entry['jobs_completed']:>5} {entry['audio_hours']:>8.2f} "
            f"{entry['mean_processing_minutes']:>9.2f} {entry['speed']:>6.1f}x"
        )
    print()
    print(f"{'file size (MB)':<16} {'jobs':>5} {'mean processing min':>20}")
    for bucket in document["by_file_size"]:
        high = bucket["size_mb_to"]
        label = f"{bucket['size_mb_from']:g}-{high:g}" if high is not None else f">= {bucket['size_mb_from']:g}"
        print(f"{label:<16} {bucket['jobs']:>5} {bucket['mean_processing_minutes']:>20.2f}")
    if document["daily"]:
        print()
        print(f"{'day':<11} {'model':<16} {'done':>5} {'failed':>6} {'audio h':>8} {'speed':>7} {'wait min':>9}")
    for row in document["daily"]:
        speed = f"{row['mean_speed']:6.1f}x" if row["mean_speed"] is not None else "      -"
        wait = f"{row['mean_queue_wait_seconds'] / 60:9.1f}" if row["mean_queue_wait_seconds"] is not None else "        -"
        print(f"{row['day']:<11} {row['model']:<16} {row['jobs_completed']:>5} {row['jobs_failed']:>6} "
              f"{row['audio_hours']:>8.2f} {speed} {wait}")
    return EXIT_OK


def cmd_self_test(app, args) -> int:
    """Transcribe the built-in sample in a temporary data folder (``app`` is None: the user's is never opened)."""
    from .selftest import report, run_self_test

    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return report(run_self_test(), __version__)


COMMANDS = {
    "transcribe": cmd_transcribe,
    "add": cmd_add,
    "run": cmd_run,
    "list": cmd_list,
    "export": cmd_export,
    "cancel": cmd_control,
    "pause": cmd_control,
    "resume": cmd_control,
    "retry": cmd_control,
    "remove": cmd_control,
    "move": cmd_control,
    "config": cmd_config,
    "webhooks": automation_commands.cmd_webhooks,
    "watch": automation_commands.cmd_watch,
    "stats": cmd_stats,
    "self-test": cmd_self_test,
    "record": cli_record.cmd_record,
}

# Commands that run without opening the user's data folder (they get None for ``app``).
STANDALONE_COMMANDS = {"self-test"}


def window_request(argv: Sequence[str]) -> tuple[str | None, bool, list[str]] | None:
    """``(data_dir, verbose, files)`` when ``argv`` asks for the window, None when it names a command.

    Plain ``transcriber`` opens the window; so does ``transcriber FILE...`` (the first
    argument is not a command), with those files added. Global options may come first;
    any other option (``--help``, ``--version``, ...) is left to the command parser.
    """
    data_dir, verbose = None, False
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--data-dir":
            if index + 1 >= len(tokens):
                return None  # let argparse say what is missing
            data_dir = tokens[index + 1]
            index += 2
            continue
        if token.startswith("--data-dir="):
            data_dir = token.split("=", 1)[1]
        elif token in ("-v", "--verbose"):
            verbose = True
        elif token == "--":
            return data_dir, verbose, tokens[index + 1 :]
        elif token.startswith("-") or token in COMMANDS:
            return None
        else:
            return data_dir, verbose, tokens[index:]
        index += 1
    return data_dir, verbose, []


def has_display() -> bool:
    """Whether a window can be shown (on Linux, an X or Wayland display, or a platform chosen for Qt)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def main(argv: Sequence[str] | None = None) -> int:
    from .app import open_app

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    request = window_request(argv)
    if request is not None:
        data_dir, verbose, files = request
        if not has_display():
            # A terminal without a display (ssh, a server): the commands still work.
            parser.print_help()
            print("\nNo display found, so the window cannot open; use one of the commands above.", file=sys.stderr)
            return EXIT_USAGE if files else EXIT_OK
        from .gui.app import run_window

        return run_window(files, data_dir, verbose=verbose)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if args.command in STANDALONE_COMMANDS:
        return COMMANDS[args.command](None, args)
    try:
        app = open_app(args.data_dir, verbose=args.verbose)
    except TranscriberError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return COMMANDS[args.command](app, args)
    except TranscriberError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        app.close()
