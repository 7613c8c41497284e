"""What the commands share: exit codes, the owner of jobs, format lists, progress bars, and waiting for jobs."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

from ..app import App, login_user, serve
from ..audio.decode import format_clock
from ..display import shown
from ..errors import EngineBusy
from ..export import FORMATS, parse_formats
from ..jobs import Job, JobStatus, WaitingFile, WaitingState

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl+C


def user_of(args) -> str:
    """The owner of jobs: ``--user``, or the login name."""
    return getattr(args, "user", None) or login_user()


def format_list(text: str) -> list[str]:
    """An argparse type: ``txt,srt`` -> ``["txt", "srt"]``."""
    try:
        return parse_formats(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


FORMAT_HELP = f"comma-separated: {','.join(FORMATS)}"

# SQLite's integers are 64-bit: a larger id names no job (and would overflow).
MAX_ID = 2**63 - 1


def bounded_int(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``, refused with a message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range ({low} to {high})")
        return value

    return parse


job_id_argument = bounded_int(1, MAX_ID)


class Progress:
    """Progress bars for ``transcribe``: redrawn in place on a terminal, milestones otherwise."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self._drawn = 0
        self._milestones: dict[object, int] = {}

    def show(self, jobs: Sequence[Job], waiting: Sequence[WaitingFile] = ()) -> None:
        lines = [self._line(job) for job in jobs] + [self._waiting_line(entry) for entry in waiting]
        if self.tty:
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F")
            for line in lines:
                self.stream.write("\x1b[2K" + line + "\n")
            self._drawn = len(lines)
        else:
            for job in jobs:
                step = int(job.progress * 10) if job.status is JobStatus.RUNNING else (10 if job.status.is_final else -1)
                if step > self._milestones.get(job.id, -1):
                    self._milestones[job.id] = step
                    self.stream.write(self._line(job) + "\n")
            for entry in waiting:
                if ("waiting", entry.id) not in self._milestones:
                    self._milestones[("waiting", entry.id)] = 0
                    self.stream.write(self._waiting_line(entry) + "\n")
        self.stream.flush()

    @staticmethod
    def _waiting_line(entry: WaitingFile) -> str:
        detail = f"0:00/{format_clock(entry.duration_seconds)} waiting for room in the queue"
        return f"[{'-' * 24}]   0.0% {'waiting':<9} {detail:<28} {shown(entry.file_name)}"

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
        return f"[{bar}] {job.progress * 100:5.1f}% {job.status.value:<9} {detail:<28} {shown(job.file_name)}"


@contextmanager
def interruptible() -> Iterator[threading.Event]:
    """While inside, Ctrl+C and SIGTERM set the yielded event instead of raising (a clean stop)."""
    stop = threading.Event()
    handler = lambda *_: stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class Waited:
    """How waiting for jobs ended: their last states, the backlog files that never became jobs, and whether Ctrl+C stopped it."""

    jobs: list[Job]
    waiting: list[WaitingFile]
    stopped: bool
    served_here: bool  # this process ran the jobs (else another one did, and still does)

    @property
    def unfinished(self) -> list[Job]:
        return [job for job in self.jobs if not job.status.is_final]


def wait_for(
    app: App, job_ids: list[int], progress: Progress | None, stop: threading.Event, waiting_ids: Sequence[int] = ()
) -> Waited:
    """Serve the data folder (or, if another process serves it, watch) until every job is finished or ``stop`` is set.

    Files in the backlog (``waiting_ids``) are followed until they become jobs, then those jobs too.
    """
    tracked = list(job_ids)
    waiting = {waiting_id: None for waiting_id in waiting_ids}

    def current() -> tuple[list[Job], list[WaitingFile]]:
        for waiting_id in list(waiting):
            entry = app.store.backlog.get(waiting_id)
            if entry is not None and entry.job_id is not None and entry.job_id not in tracked:
                tracked.append(entry.job_id)
            waiting[waiting_id] = entry
        still = [entry for entry in waiting.values() if entry is not None and entry.state is WaitingState.WAITING]
        return [job for job in (app.store.jobs.get_job(job_id) for job_id in tracked) if job is not None], still

    def settled() -> bool:
        jobs, still = current()
        if progress:
            progress.show(jobs, still)
        return not still and all(job.status.is_final or job.status is JobStatus.PAUSED for job in jobs)

    served_here = True
    try:
        serve(app, until=settled, stop=stop)
    except EngineBusy:
        # The window (or `transcriber run`) owns the engine: it will process our jobs; we watch.
        served_here = False
        while not stop.is_set() and not settled():
            stop.wait(1.0)
    jobs, still = current()
    return Waited(jobs, still, stop.is_set(), served_here)


def report_stopped(waited: Waited) -> None:
    """Say, after Ctrl+C, what becomes of the work that was not finished."""
    unfinished, waiting = len(waited.unfinished), len(waited.waiting)
    parts = [f"{unfinished} job{'s' if unfinished != 1 else ''}"] if unfinished else []
    if waiting:
        parts.append(f"{waiting} file{'s' if waiting != 1 else ''} waiting for room")
    what = " and ".join(parts) or "nothing"
    if waited.served_here:
        print(f"stopped; {what} will continue where {'they' if unfinished + waiting != 1 else 'it'} stopped the next time "
              "transcriber runs (transcriber run, transcriber transcribe, or the window).", file=sys.stderr)
    else:
        print(f"stopped watching; {what} go{'es' if unfinished + waiting == 1 else ''} on in the transcriber that runs the jobs.",
              file=sys.stderr)
