"""The job commands: transcribe, add, run, list, export, cancel/pause/resume/retry/remove, move, config, stats, self-test.

Command names, options and JSON fields are a contract others script against: add to
them, never rename them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from .. import __version__
from ..app import serve
from ..audio.decode import format_clock
from ..config import DECLARED, format_value
from ..display import redacted, shown
from ..errors import TranscriberError
from ..export import render
from ..jobs import ACTIVE_STATUSES, MAX_SPEAKERS, TASKS, Job, JobStatus, WaitingState
from ..reports.stats import STATS_TABLES, stats_csv, stats_document
from ..timefmt import iso_local
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    FORMAT_HELP,
    MAX_ID,
    Progress,
    bounded_int,
    format_list,
    interruptible,
    job_id_argument,
    report_stopped,
    user_of,
    wait_for,
)


def job_record(job: Job, worker: str | None = None) -> dict:
    """The JSON form of a job in ``list --json`` (a contract: add fields, never rename them).

    Args:
        worker: for a running job, who decodes it (``local``, or remote workers' names).
    """
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
        "estimated_completion": iso_local(job.estimated_completion),
        "error": job.error,
        "warning": job.warning,
        "model": job.model,
        "speakers": job.options.speakers,
        "speakers_progress": job.speakers_progress,
        "language": job.language,
        "speed": round(job.speed, 2) if job.speed else None,
        "attempts": job.attempts,
        "size_bytes": job.size_bytes,
        "processing_seconds": round(job.processing_seconds, 3),
        "created_at": iso_local(job.created_at),
        "started_at": iso_local(job.started_at),
        "finished_at": iso_local(job.finished_at),
        "exported_paths": list(job.exported_paths),
        "worker": worker,
    }


def speaker_options(command) -> None:
    command.add_argument("--speakers", metavar="auto|N|off|channels",
                         help="who said what: auto (estimate the count), a number, channels (one speaker per stereo "
                              "channel) or off (default: the setting 'speakers')")
    command.add_argument("--min-speakers", type=bounded_int(1, MAX_SPEAKERS), metavar="N", help="with --speakers auto: at least N")
    command.add_argument("--max-speakers", type=bounded_int(1, MAX_SPEAKERS), metavar="N", help="with --speakers auto: at most N")


def job_options_of(app, args):
    return app.engine.default_options(model=args.model, language=args.language, task=args.task, speakers=args.speakers,
                                      min_speakers=args.min_speakers, max_speakers=args.max_speakers)


def add_parsers(commands) -> None:
    def job_options(command) -> None:
        command.add_argument("--model", metavar="M", help="tiny.en (embedded), base, a model folder, or a faster-whisper name")
        command.add_argument("--language", metavar="L", help="language code, e.g. en, de (default: detect)")
        command.add_argument("--task", choices=TASKS, help="transcribe (the language spoken) or translate (to English); "
                             "default: the task setting. auto translates with base; tiny.en cannot translate")
        command.add_argument("--user", metavar="U", help="owner of the jobs (default: your login name)")
        speaker_options(command)

    transcribe = commands.add_parser("transcribe", help="transcribe files now, with progress, and export them")
    transcribe.add_argument("files", nargs="+", metavar="FILE")
    transcribe.add_argument("-o", "--output", metavar="DIR", default=".", help="folder for the transcripts (default: here)")
    transcribe.add_argument("--format", type=format_list, default=["txt"], metavar="FMT", help=FORMAT_HELP)
    transcribe.add_argument("--overwrite", action="store_true",
                            help="replace existing files of the same name (default: keep them; write 'name (2).txt')")
    job_options(transcribe)

    add = commands.add_parser("add", help="queue files or folders without waiting")
    add.add_argument("paths", nargs="+", metavar="FILE|DIR")
    add.add_argument("--wait-for-room", action="store_true",
                     help="files past your queue limit wait and are queued in order as room frees (default: refused)")
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
    export.add_argument("job_id", type=job_id_argument, metavar="JOB_ID")
    export.add_argument("--format", type=format_list, default=["txt"], metavar="FMT")
    export.add_argument("-o", "--output", metavar="PATH", help="file or folder (default: here); '-' prints it")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file (default: refuse, or a numbered name in a folder)")

    for name, text in (
        ("cancel", "cancel a job"),
        ("pause", "pause a job (a running one stops at its next segment)"),
        ("resume", "resume a paused job"),
        ("retry", "queue a failed or cancelled job again"),
        ("remove", "delete a job and its transcript"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("job_id", type=job_id_argument, metavar="JOB_ID")

    move = commands.add_parser("move", help="move a waiting job up or down its user's queue")
    move.add_argument("job_id", type=job_id_argument, metavar="JOB_ID")
    direction = move.add_mutually_exclusive_group(required=True)
    direction.add_argument("--up", type=bounded_int(1, MAX_ID), nargs="?", const=1, metavar="N")
    direction.add_argument("--down", type=bounded_int(1, MAX_ID), nargs="?", const=1, metavar="N")

    config = commands.add_parser("config", help="read or change settings")
    config.add_argument("action", choices=["get", "set", "list", "reset"])
    config.add_argument("key", nargs="?", metavar="KEY", help=", ".join(DECLARED))
    config.add_argument("value", nargs="?", metavar="VALUE")

    stats = commands.add_parser("stats", help="processing statistics: speed per model, time by file size")
    stats.add_argument("--csv", action="store_true", help="one table as CSV (see --table)")
    stats.add_argument("--table", choices=STATS_TABLES, default="daily",
                       help="for --csv: daily (per day and model, the default), failures, sizes or models")
    stats.add_argument("--json", action="store_true")

    commands.add_parser(
        "self-test",
        help="transcribe the built-in sample with the default model and check the words (uses a temporary data folder)",
    )


def cmd_transcribe(app, args) -> int:
    options = job_options_of(app, args)
    app.models.ensure_available(options.model)  # an unavailable model fails here, before anything is queued
    # A batch asked for by a person waits for room instead of being refused, and a file that
    # already has a job (an earlier run stopped by Ctrl+C, or finished) is not transcribed again.
    results = app.engine.add(args.files, user=user_of(args), options=options, wait_for_room=True, reuse_existing=True)
    status = EXIT_OK
    for result in results:
        if result.refusal:
            print(f"refused: {result.refusal}", file=sys.stderr)
            status = EXIT_FAILED
        elif result.waiting:
            print(f"waiting: {shown(result.waiting.file_name)}: the queue is full; it is queued as room frees", file=sys.stderr)
        elif result.continued:
            print(f"continuing job {result.job.id} ({result.job.status.value}): {shown(result.job.file_name)}", file=sys.stderr)
    job_ids = list(dict.fromkeys(result.job.id for result in results if result.job))
    waiting_ids = [result.waiting.id for result in results if result.waiting]
    if not job_ids and not waiting_ids:
        return EXIT_FAILED
    with interruptible() as stop:
        waited = wait_for(app, job_ids, Progress(), stop, waiting_ids)
    jobs = {job.id: job for job in waited.jobs}
    output = Path(args.output)
    # One transcript per file asked for, in the order given, named after that file (two
    # copies of one recording share a job, not a transcript name).
    written: list[Path] = []
    for result in results:
        if result.refusal:
            continue
        entry = app.store.backlog.get(result.waiting.id) if result.waiting else None
        if entry is not None and entry.state is WaitingState.REFUSED:
            print(f"failed: {shown(entry.file_name)}: {entry.message}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        job = jobs.get(result.job.id if result.job else entry.job_id if entry else None)
        if job is None:
            continue
        if job.status is JobStatus.COMPLETED:
            try:
                for path in app.engine.export(job.id, args.format, output, overwrite=args.overwrite,
                                              named_after=result.path, keep=written):
                    written.append(path)
                    print(shown(path))
            except TranscriberError as error:
                print(f"error: {error}", file=sys.stderr)
                status = EXIT_FAILED
        elif job.status.is_final:
            print(f"failed: {shown(job.file_name)}: {job.error or f'job {job.id} was {job.status.value}'}", file=sys.stderr)
            status = EXIT_FAILED
        elif not waited.stopped:
            print(f"not finished: {shown(job.file_name)}: job {job.id} is {job.status.value}", file=sys.stderr)
            status = EXIT_FAILED
    if waited.stopped:
        report_stopped(waited)
        return EXIT_INTERRUPTED
    return status


def cmd_add(app, args) -> int:
    options = job_options_of(app, args)
    status = EXIT_OK
    for result in app.engine.add(args.paths, user=user_of(args), options=options, wait_for_room=args.wait_for_room):
        if result.job:
            print(f"{result.job.id}\tqueued\t{shown(result.path)}")
        elif result.waiting:
            print(f"-\twaiting\t{shown(result.path)}\twaiting for room: queued as soon as your queue has room")
        else:
            print(f"-\trefused\t{shown(result.path)}\t{shown(str(result.refusal))}")
            status = EXIT_FAILED
    return status


def cmd_run(app, args) -> int:
    started = time.time()
    # Recording jobs too: one whose recorder died is finished here (recovery queues it).
    before = {job.id for job in app.store.jobs.list_jobs(statuses=[*ACTIVE_STATUSES, JobStatus.RECORDING])}

    def report(recovered: list[Job]) -> None:
        for job in recovered:
            print(f"recovered job {job.id} at {format_clock(job.processed_seconds)}: {shown(job.source_path)}", file=sys.stderr)

    with interruptible() as stop:
        # Idle: no job queued or running, no file waiting for room, no webhook delivery due
        # within the next minute, and no file in a watch folder settling or waiting.
        done = serve(app, until_idle=args.until_idle, stop=stop, on_started=report)
    if not args.until_idle:
        return EXIT_OK
    seen = [job for job in app.store.jobs.list_jobs() if job.id in before or job.created_at >= started]
    counts = Counter(job.status for job in seen)
    summary = ", ".join(f"{counts[status]} {status.value}" for status in JobStatus if counts[status]) or "no jobs"
    print(f"{summary} in {format_clock(time.time() - started)}")
    # A recording still being made (by another process) is not this run's to finish.
    unfinished = [job for job in seen if not job.status.is_final and job.status is not JobStatus.RECORDING]
    if not done:
        print(f"stopped before the queue was done; {len(unfinished)} unfinished jobs continue next time", file=sys.stderr)
        return EXIT_INTERRUPTED
    for job in unfinished:
        print(f"not finished: job {job.id} ({shown(job.file_name)}) is {job.status.value}", file=sys.stderr)
    return EXIT_FAILED if unfinished else EXIT_OK


def cmd_list(app, args) -> int:
    statuses = None
    if args.status:
        try:
            statuses = [JobStatus(value.strip()) for value in args.status.split(",")]
        except ValueError:
            print(f"error: unknown status in {args.status!r}; use {', '.join(s.value for s in JobStatus)}", file=sys.stderr)
            return EXIT_USAGE
    # In queue order: running jobs, queued ones in the order they will start, paused ones, then finished ones.
    queue_order = {job.id: rank for rank, job in enumerate(app.store.jobs.queued_jobs())}
    jobs = sorted(
        app.engine.with_estimates(app.store.jobs.list_jobs(user=args.user, statuses=statuses)),
        key=lambda job: (_place(job), queue_order.get(job.id, 0), job.id),
    )
    if args.json:
        workers = app.store.work.workers_of([job.id for job in jobs if job.status is JobStatus.RUNNING])
        print(json.dumps([job_record(job, workers.get(job.id)) for job in jobs], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not jobs and not app.store.backlog.count_waiting(args.user):
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
            f"{shown(job.user):<10} {shown(job.file_name)}{shown(note)}"
        )
    waiting = app.store.backlog.count_waiting(args.user)
    if waiting:
        print(f"waiting for room: {waiting} file{'s' if waiting != 1 else ''} (queued in order as the queue has room)")
    return EXIT_OK


def _place(job: Job) -> int:
    return {JobStatus.RECORDING: 0, JobStatus.RUNNING: 0, JobStatus.QUEUED: 1, JobStatus.PAUSED: 2}.get(job.status, 3)


def cmd_export(app, args) -> int:
    job = app.store.jobs.require_job(args.job_id)
    if args.output == "-":
        try:
            for fmt in args.format:
                sys.stdout.write(render(fmt, app.engine.transcript(job.id)))
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as error:  # standard output is a full disk, or gone
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            raise TranscriberError(f"The transcript could not be written to the output: {error.strerror or error}.") from None
        return EXIT_OK
    target = Path(args.output) if args.output else Path(".")
    # A folder: one that exists, a path ending in "/", or a new path for several formats.
    folder = target.is_dir() or str(args.output).endswith(os.sep) or (len(args.format) > 1 and not os.path.lexists(target))
    if args.output is None or folder:
        paths = app.engine.export(job.id, args.format, target, overwrite=args.overwrite)
    else:
        if len(args.format) > 1:
            print("error: several formats need a folder for -o", file=sys.stderr)
            return EXIT_USAGE
        paths = [app.engine.export_to_file(job.id, args.format[0], target, overwrite=args.overwrite)]
    for path in paths:
        print(shown(path))
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
    settings = app.store.settings.read().as_dict()
    if args.action == "list":
        for key, setting in DECLARED.items():
            print(f"{key} = {_shown_setting(key, settings[key])}\t# {setting.description}")
        return EXIT_OK
    if not args.key:
        print("error: config get/set/reset need a KEY", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "get":
        if args.key not in DECLARED:
            print(f"error: unknown setting {args.key!r}; known: {', '.join(DECLARED)}", file=sys.stderr)
            return EXIT_USAGE
        print(_shown_setting(args.key, settings[args.key]))
        return EXIT_OK
    if args.action == "reset":
        app.store.settings.reset(args.key)
        print(format_value(app.store.settings.read().as_dict()[args.key]))
        return EXIT_OK
    if args.value is None:
        print("error: config set needs a VALUE", file=sys.stderr)
        return EXIT_USAGE
    value = app.store.settings.set(args.key, args.value)
    print(_shown_setting(args.key, value))
    return EXIT_OK


def _shown_setting(key: str, value) -> str:
    """A setting's value as printed: an address never shows its password."""
    text = format_value(value)
    return redacted(text) if key == "redis_url" else text


def cmd_stats(app, args) -> int:
    if args.csv:
        sys.stdout.write(stats_csv(app.store.stats, args.table))
        return EXIT_OK
    document = stats_document(app.store.stats)
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
    from ..selftest import report, run_self_test

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
    "stats": cmd_stats,
    "self-test": cmd_self_test,
}
