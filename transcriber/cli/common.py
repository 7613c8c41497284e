"""What the commands share: exit codes, the owner of jobs, format lists, progress bars, and waiting for jobs."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Sequence

from ..app import App, login_user, serve
from ..audio.decode import format_clock
from ..errors import EngineBusy
from ..export import FORMATS, parse_formats
from ..jobs import Job, JobStatus

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


class Progress:
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


def wait_for(app: App, job_ids: list[int], progress: Progress | None, stop: threading.Event) -> list[Job]:
    """Serve the data folder (or, if another process serves it, watch) until every job is finished or ``stop`` is set."""

    def current() -> list[Job]:
        return [job for job in (app.store.jobs.get_job(job_id) for job_id in job_ids) if job is not None]

    def settled() -> bool:
        jobs = current()
        if progress:
            progress.show(jobs)
        return all(job.status.is_final or job.status is JobStatus.PAUSED for job in jobs)

    try:
        serve(app, until=settled, stop=stop)
    except EngineBusy:
        # The window (or `transcriber run`) owns the engine: it will process our jobs; we watch.
        while not stop.is_set() and not settled():
            stop.wait(1.0)
    return current()
