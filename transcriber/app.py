"""The composition root: paths, logging, the store, the model pool, the engine and its services, wired once.

``open_app`` builds an ``App`` for a data folder (nothing heavy: no model loads).
``Serving`` is the one way a data folder is served, by the window, ``transcriber run``
and ``transcriber transcribe`` alike: take the engine lock, run ``App.recover`` once,
then start the engine's runner and the background services; ``serve`` does the same
from a command line and blocks until told to stop.
"""

from __future__ import annotations

import getpass
import logging
import logging.handlers
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .background import BackgroundService
from .engine.core import Engine
from .engine.listener import EngineListener
from .engine.models import ModelPool
from .engine.runner import EngineRunner
from .errors import EngineBusy, StoreError, TranscriberError
from .filelock import try_lock
from .jobs import Job
from .paths import Paths, resolve_paths
from .scaleout.coordinator import Coordinator
from .scaleout.media import MediaError, transport_for
from .services.watch import WatchService
from .services.webhooks import WebhookDispatcher
from .store import Store
from .store.migrations import ProgressCallback

log = logging.getLogger("transcriber")

# How long ``serve`` waits for a store that cannot be written before it gives up.
STORE_GIVE_UP_SECONDS = 60.0


def login_user() -> str:
    """The OS login name: the owner of jobs unless ``--user`` says otherwise."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return os.environ.get("USER") or os.environ.get("USERNAME") or "user"


class _PrivateLogFile(logging.handlers.RotatingFileHandler):
    """The log, readable by its owner only (it names every file and job)."""

    def _open(self):
        descriptor = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(descriptor, self.mode, encoding=self.encoding, errors="backslashreplace")

    def handleError(self, record) -> None:  # noqa: N802 (logging's name)
        # A log that cannot be written (a full disk) must not print tracebacks over the
        # command's own output: the failure that matters is reported by the store.
        pass


def setup_logging(paths: Paths, *, verbose: bool = False) -> None:
    """Log to a rotating file in the data folder (and to stderr when verbose).

    A data folder that cannot be written (read-only) gets no log file; the commands that
    only read still work.
    """
    root = logging.getLogger()
    if any(getattr(handler, "_transcriber", False) for handler in root.handlers):
        return
    root.setLevel(logging.INFO)
    try:
        handler: logging.Handler = _PrivateLogFile(paths.log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"))
    handler._transcriber = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        console._transcriber = True  # type: ignore[attr-defined]
        root.addHandler(console)
    # faster-whisper logs every window at INFO; keep the file readable.
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)


class EngineLock:
    """An exclusive lock on the data folder: only one process runs jobs from it at a time.

    Other processes (``transcriber add``, ``list``, ...) still read and write the store.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._handle = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            EngineBusy: another process holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Never through a symbolic link: as root that would truncate whatever it points to.
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as error:
            if os.path.islink(self.path):
                raise TranscriberError(
                    f"{self.path} is a symbolic link; transcriber does not follow it. Remove it and start again."
                ) from None
            raise TranscriberError(f"The engine lock {self.path} cannot be opened: {error.strerror or error}.") from None
        handle = open(descriptor, "a+")
        if not try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise EngineBusy(f"Another transcriber ({holder}) is already processing jobs in {self.path.parent}.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None


@dataclass
class App:
    """Everything a client (command line or window) needs, wired together."""

    paths: Paths
    store: Store
    models: ModelPool
    engine: Engine
    services: list[BackgroundService]  # webhook deliveries, watch folders: run while the folder is served
    lock: EngineLock

    def recover(self, *, keep_remote: bool = False) -> list[Job]:
        """Reclassify what a dead process left behind; run once, by ``Serving.start``, before any work.

        Jobs left running go back to the queue at their place, their parts keep their
        cursors (each continues from its last committed segment) and open runs are closed
        as interrupted; webhooks a process held between a completion and its export are
        released. With ``keep_remote``, runs that remote workers decode stay open for the
        coordinator to adopt. Returns the jobs put back.
        """
        return self.engine.recover(keep_remote=keep_remote)

    def close(self) -> None:
        self.models.shutdown()
        self.lock.release()
        self.store.close()


def open_app(data_dir: str | os.PathLike | None = None, *, listener: EngineListener | None = None, verbose: bool = False,
             on_progress: ProgressCallback | None = None) -> App:
    """Open the data folder and build the engine and its services. Nothing heavy happens here: no model loads.

    ``on_progress`` is told how a long database upgrade advances (``migrations.ProgressCallback``).

    Raises:
        StoreError: the database cannot be opened.
    """
    paths = resolve_paths(data_dir).ensure()
    setup_logging(paths, verbose=verbose)
    store = Store.open(paths.database, on_progress=on_progress)
    settings = store.settings.read()
    models = ModelPool(paths.model_cache, workers=settings.workers, idle_seconds=settings.model_idle_unload_seconds,
                       device=settings.device)
    engine = Engine(store, models, default_export_dir=paths.default_export_dir, listener=listener)
    services: list[BackgroundService] = [WebhookDispatcher(store), WatchService(engine)]
    return App(paths=paths, store=store, models=models, engine=engine, services=services, lock=EngineLock(paths.engine_lock))


class Serving:
    """Serves an app's data folder: the engine lock, one recovery, the engine's runner and the services.

    Args:
        app: the opened data folder.
        poll_seconds: how often the runner looks for work added by other processes.
    """

    def __init__(self, app: App, *, poll_seconds: float = 1.0):
        self.app = app
        self.coordinator: Coordinator | None = None
        self.runner = EngineRunner(app.engine, poll_seconds=poll_seconds, remote_takes_work=self._remote_takes_work)
        self.remote_problem: str | None = None  # why the redis backend is chosen but not used
        self._started = False
        settings = app.store.settings.read()
        if settings.queue_backend == "redis":
            try:
                if not settings.redis_url:
                    raise MediaError("queue_backend is redis but redis_url is empty: transcriber config set redis_url redis://...")
                _require_scale_out_packages(settings.media_transport)
                self.coordinator = Coordinator(app.engine, settings.redis_url, media=transport_for(settings),
                                               run_locally=self.runner.run_here)
            except MediaError as error:
                self.remote_problem = f"Remote workers are not used: {error}"
                log.warning("%s", self.remote_problem)

    def _remote_takes_work(self) -> bool:
        return self.coordinator is not None and self.coordinator.takes_work()

    def remote_summary(self) -> str | None:
        """What the remote workers do (``2 remote workers: gpu-box, office-2``), or None with the local backend."""
        if self.remote_problem:
            return self.remote_problem
        return self.coordinator.summary() if self.coordinator is not None else None

    @property
    def running(self) -> bool:
        return self._started

    def start(self) -> list[Job]:
        """Take the lock, recover, start the workers and services; returns the jobs recovered.

        Raises:
            EngineBusy: another process serves this data folder.
            StoreError: the store cannot be written (recovery failed).
        """
        if self._started:
            return []
        self.app.lock.acquire()
        try:
            # Runs that remote workers decode stay theirs when Redis is there to ask;
            # otherwise they go back to the queue like any run of a dead process.
            adopt = self.coordinator is not None and self.coordinator.prepare()
            recovered = self.app.recover(keep_remote=adopt)
            if adopt:
                self.coordinator.adopt()
        except Exception:
            self.app.lock.release()
            raise
        try:
            self.app.store.back_up()  # the copy a damaged database's message points to
        except StoreError as error:
            log.warning("%s", error)
        if self.coordinator is not None:
            self.coordinator.start()
        self.runner.start()
        for service in self.app.services:
            service.start()
        self._started = True
        problem = self.remote_problem or (self.coordinator.notice if self.coordinator is not None else None)
        if problem:
            self.app.engine.listener.engine_notice(problem)
        return recovered

    def is_idle(self) -> bool:
        """No job to run here and every service idle (no delivery due soon, no watched file settling)."""
        return self.runner.is_idle() and all(service.is_idle() for service in self.app.services)

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the workers at a segment boundary (their jobs go back to the queue), the services, and the lock.

        Returns False if a worker was still busy at the timeout.
        """
        if not self._started:
            return True
        self._started = False
        if self.coordinator is not None:
            self.coordinator.stop(timeout)  # remote runs stay open: their workers go on
        stopped = self.runner.stop(timeout)
        for service in self.app.services:
            service.stop()
        self.app.lock.release()
        return stopped


def _require_scale_out_packages(media_transport: str) -> None:
    """Raises MediaError naming the extra to install when RQ, redis-py (or boto3 for S3) are missing."""
    import importlib.util

    needed = ["rq", "redis"] + (["boto3"] if media_transport == "s3" else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        extra = "worker,s3" if "boto3" in missing else "worker"
        raise MediaError(f"{', '.join(missing)} not installed: pip install 'transcriber[{extra}]'")


def serve(
    app: App,
    *,
    until_idle: bool = False,
    until: Callable[[], bool] | None = None,
    stop: threading.Event | None = None,
    on_started: Callable[[list[Job]], None] | None = None,
    on_tick: Callable[[], None] | None = None,
    tick_seconds: float = 0.5,
) -> bool:
    """Serve the data folder on this thread until idle (``until_idle``), ``until()`` is true, or ``stop`` is set.

    Returns:
        True when it ended because the work was done (idle, or ``until``), False when stopped.

    Raises:
        EngineBusy: another process serves this data folder.
        StoreError: the store could not be written for ``STORE_GIVE_UP_SECONDS`` (a full disk, a
            lock held elsewhere): a command line fails loudly instead of waiting forever.
    """
    serving = Serving(app, poll_seconds=tick_seconds)
    recovered = serving.start()
    stop = stop or threading.Event()
    if on_started is not None:
        on_started(recovered)
    done = False
    try:
        while not stop.is_set():
            if on_tick is not None:
                on_tick()
            if (until is not None and until()) or (until_idle and serving.is_idle()):
                done = True
                break
            if app.engine.store_failing_for() > STORE_GIVE_UP_SECONDS:
                raise StoreError(
                    f"{app.engine.store_error} This has lasted more than {STORE_GIVE_UP_SECONDS:.0f} s, so transcriber "
                    "stops here; unfinished jobs continue from their last segment the next time it runs."
                )
            stop.wait(tick_seconds)
    finally:
        serving.stop()
    return done
