"""Persistence: one SQLite file (WAL) per data folder, the only code that reads or writes SQL.

``Store`` is the facade; each of its parts owns a slice of the schema and hands out the
plain dataclasses of ``jobs`` and ``records``:

- ``store.jobs``: users and jobs, intake, status changes, start-up recovery;
- ``store.work``: parts, claiming them, committing segments with progress, runs;
- ``store.transcripts``: segments in time order, corrections;
- ``store.settings``: the settings (one ``Settings`` snapshot per read);
- ``store.stats``: figures over finished jobs;
- ``store.automation``: webhooks, the delivery outbox and log, watch folders.

Connections are per thread (peewee opens one on first use); a thread that is done with
the store calls ``close()`` for its own connection.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import peewee

from ..errors import StoreError
from .automation import AutomationPart
from .db import database, describe
from .jobs import JobsPart
from .migrations import migrate
from .schema import build_models
from .settings import SettingsPart
from .stats import StatsPart
from .transcripts import TranscriptsPart
from .work import WorkPart

__all__ = ["Store"]


class Store:
    """The data folder's database, in parts (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = 15.0):
        self.path = Path(path)
        self.db = database(self.path, timeout)
        self.m = models = build_models(self.db)  # the peewee models: for the parts (and tests that set up rows)
        self.automation = AutomationPart(self.db, models, self.path)
        self.jobs = JobsPart(self.db, models, self.path, outbox=self.automation)
        self.work = WorkPart(self.db, models, self.path, jobs=self.jobs, outbox=self.automation)
        self.transcripts = TranscriptsPart(self.db, models, self.path)
        self.settings = SettingsPart(self.db, models, self.path)
        self.stats = StatsPart(self.db, models, self.path)

    @classmethod
    def open(cls, path: str | os.PathLike, *, timeout: float = 15.0) -> "Store":
        """Open (creating if needed) and migrate the database at ``path``.

        Raises:
            StoreError: the file cannot be opened, is damaged, or comes from a newer version.
        """
        store = cls(path, timeout=timeout)
        try:
            store.path.parent.mkdir(parents=True, exist_ok=True)
            with store.db.connection_context():
                migrate(store.db)
        except RuntimeError as error:
            raise StoreError(str(error)) from error
        except (peewee.OperationalError, peewee.DatabaseError, sqlite3.Error, OSError) as error:
            raise StoreError(describe(error, store.path)) from error
        return store

    def close(self) -> None:
        """Close this thread's connection (each worker thread calls it when done)."""
        if not self.db.is_closed():
            self.db.close()
