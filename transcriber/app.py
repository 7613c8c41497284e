"""Composition root: paths, logging, the store, the model pool and the engine, wired once."""

from __future__ import annotations

import getpass
import logging
import logging.handlers
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .automation.watch import WatchService
from .automation.webhooks import WebhookDispatcher
from .engine.core import Engine, EngineListener
from .engine.models import ModelPool
from .errors import EngineBusy
from .filelock import try_lock
from .paths import Paths, resolve_paths
from .store import JobStore

log = logging.getLogger("transcriber")


def login_user() -> str:
    """The OS login name: the owner of jobs unless ``--user`` says otherwise."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return os.environ.get("USER") or os.environ.get("USERNAME") or "user"


def setup_logging(paths: Paths, *, verbose: bool = False) -> None:
    """Log to a rotating file in the data folder (and to stderr when verbose)."""
    root = logging.getLogger()
    if any(getattr(handler, "_transcriber", False) for handler in root.handlers):
        return
    root.setLevel(logging.INFO)
    handler = logging.handlers.RotatingFileHandler(paths.log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
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
        handle = open(self.path, "a+")
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
    """Everything a client (CLI or window) needs, wired together."""

    paths: Paths
    store: JobStore
    models: ModelPool
    engine: Engine
    lock: EngineLock

    def close(self) -> None:
        self.models.shutdown()
        self.lock.release()
        self.store.close()


def open_app(data_dir: str | os.PathLike | None = None, *, listener: EngineListener | None = None, verbose: bool = False) -> App:
    """Open the data folder and build the engine. Nothing heavy happens here: no model loads.

    Raises:
        StoreError: the database cannot be opened.
    """
    paths = resolve_paths(data_dir).ensure()
    setup_logging(paths, verbose=verbose)
    store = JobStore.open(paths.database)
    settings = store.settings()
    models = ModelPool(paths.model_cache, workers=settings.workers, idle_seconds=settings.model_idle_unload_seconds)
    engine = Engine(store, models, default_export_dir=paths.default_export_dir, listener=listener)
    # Started and stopped by whichever runner serves the data folder (the window or `run`).
    engine.services = [WebhookDispatcher(store), WatchService(engine)]
    return App(paths=paths, store=store, models=models, engine=engine, lock=EngineLock(paths.engine_lock))
