"""Persistence: one SQLite file (WAL) per data folder, the only code that reads or writes SQL.

``Store`` is the facade; each of its parts owns a slice of the schema and hands out the
plain dataclasses of ``jobs`` and ``records``:

- ``store.jobs``: users and jobs, intake, status changes, start-up recovery;
- ``store.backlog``: files asked for beyond the queue limit, waiting for room;
- ``store.work``: parts, claiming them, committing segments with progress, runs;
- ``store.transcripts``: segments in time order, corrections;
- ``store.speakers``: who said what: speaker labels, names, merges, the diarization stage;
- ``store.settings``: the settings (one ``Settings`` snapshot per read);
- ``store.stats``: figures over finished jobs;
- ``store.search``: the full-text index of every transcript;
- ``store.automation``: webhooks, the delivery outbox and log, watch folders.

Connections are per thread (peewee opens one on first use); a thread that is done with
the store calls ``close()`` for its own connection.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import peewee

from ..errors import StoreError
from .automation import AutomationPart
from .backlog import BacklogPart
from .db import back_up, create_private, database, describe, integrity_problem
from .jobs import JobsPart
from .migrations import LATEST_VERSION, ProgressCallback, migrate, schema_version
from .schema import build_models
from .search import SearchPart
from .settings import SettingsPart
from .speakers import SpeakersPart
from .stats import StatsPart
from .transcripts import TranscriptsPart
from .work import WorkPart

__all__ = ["Store"]


class Store:
    """The data folder's database, in parts (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = 15.0, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self.db = database(self.path, timeout, read_only=read_only)
        self.m = models = build_models(self.db)  # the peewee models: for the parts (and tests that set up rows)
        self.automation = AutomationPart(self.db, models, self.path)
        self.jobs = JobsPart(self.db, models, self.path, outbox=self.automation)
        self.backlog = BacklogPart(self.db, models, self.path, jobs=self.jobs)
        self.work = WorkPart(self.db, models, self.path, jobs=self.jobs, outbox=self.automation)
        self.transcripts = TranscriptsPart(self.db, models, self.path)
        self.speakers = SpeakersPart(self.db, models, self.path)
        self.settings = SettingsPart(self.db, models, self.path)
        self.stats = StatsPart(self.db, models, self.path)
        self.search = SearchPart(self.db, models, self.path)

    @property
    def backup_path(self) -> Path:
        """Where the last good copy of the database is kept (see ``back_up``)."""
        return self.path.parent / "backups" / f"{self.path.name}.bak"

    @classmethod
    def open(cls, path: str | os.PathLike, *, timeout: float = 15.0, on_progress: ProgressCallback | None = None) -> "Store":
        """Open (creating if needed), check and migrate the database at ``path``.

        ``on_progress`` is told how a long upgrade step advances (building the search index
        over an existing library).

        A database in a folder that cannot be written opens read-only: reading works,
        writing fails with a message saying so.

        Raises:
            StoreError: the file cannot be opened, is damaged (the message says how to recover),
                or comes from a newer version.
        """
        path = Path(path)
        read_only = path.is_file() and not (os.access(path.parent, os.W_OK) and os.access(path, os.W_OK))
        store = cls(path, timeout=timeout, read_only=read_only)
        try:
            if not read_only:
                store.path.parent.mkdir(parents=True, exist_ok=True)
                create_private(store.path)
            with store.db.connection_context():
                problem = integrity_problem(store.db)
                if problem:
                    raise StoreError(store._damaged(problem))
                if read_only:
                    if schema_version(store.db) != LATEST_VERSION:
                        raise StoreError(
                            f"The data folder {store.path.parent} is read-only and its database needs an upgrade "
                            "that cannot be written there; open it once where it can be written."
                        )
                else:
                    migrate(store.db, on_progress=on_progress)
        except RuntimeError as error:
            raise StoreError(str(error)) from error
        except (peewee.OperationalError, peewee.DatabaseError, sqlite3.Error, OSError) as error:
            message = describe(error, store.path)
            if "damaged" in message:
                message = store._damaged(str(error))
            raise StoreError(message) from error
        return store

    def _damaged(self, finding: str) -> str:
        backup = self.backup_path
        if backup.is_file():
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(backup.stat().st_mtime))
            remedy = (
                f"A copy from {when} is at {backup}: quit transcriber, move {self.path} away, and copy that file "
                f"to {self.path} (what changed since then is not in it)."
            )
        else:
            remedy = f"There is no backup copy yet; move {self.path} away to start with an empty queue."
        return (
            f"The database {self.path} is damaged or is not a transcriber database (SQLite's check says: {finding}), "
            "so transcriber does not use it. "
            f"{remedy} The sqlite3 tool's .recover command may still get most of the damaged file back."
        )

    def back_up(self, max_age_seconds: float = 24 * 3600) -> Path | None:
        """Keep a copy of the (checked) database in ``backup_path``, if the last copy is older than ``max_age_seconds``.

        Returns:
            The copy's path when one was written.
        """
        target = self.backup_path
        if self.read_only or (target.is_file() and time.time() - target.stat().st_mtime < max_age_seconds):
            return None
        try:
            back_up(self.db, target)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"The database could not be backed up to {target}: {error}") from error
        return target

    def close(self) -> None:
        """Close this thread's connection (each worker thread calls it when done)."""
        if not self.db.is_closed():
            self.db.close()
