"""Opening the SQLite database (pragmas, migrations) and turning its failures into messages a person understands.

Every part of the store derives from ``StorePart`` and wraps its public methods in
``translating``, so a locked, full or damaged database reaches callers as a
``StoreError`` with a message, never as a peewee or sqlite3 exception.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import peewee
from peewee import SqliteDatabase

from ..errors import StoreError

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    # FULL: a committed segment survives a power cut, not just a crash; one fsync per
    # segment is negligible next to decoding it.
    "synchronous": "full",
}


def describe(error: Exception, path: Path) -> str:
    """A sentence for the user about a database failure at ``path``."""
    # SQLite rolls a transaction back itself on some errors (a full disk); peewee's own
    # ROLLBACK then fails with "no transaction is active" and hides the real cause.
    chain, seen = [], error
    while seen is not None and len(chain) < 5:
        chain.append(str(seen).lower())
        seen = seen.__context__ or seen.__cause__
    text = next((item for item in chain if "no transaction is active" not in item), chain[0])
    if "locked" in text or "busy" in text:
        return "The database is locked by another program; try again in a moment."
    if "disk is full" in text or "full" in text and "disk" in text:
        return f"The disk holding the data folder ({path.parent}) is full; free some space and try again."
    if "not a database" in text or "malformed" in text:
        return f"The database {path} is damaged or is not a transcriber database."
    if "readonly" in text or "read-only" in text:
        return f"The database {path} cannot be written (read-only)."
    if "unable to open" in text:
        return f"The database {path} cannot be opened."
    return f"Database error: {error}"


def translating(method):
    """Turn SQLite failures inside a store method into StoreError with a message a person understands."""

    @functools.wraps(method)
    def wrapper(self: "StorePart", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (peewee.OperationalError, peewee.DatabaseError, sqlite3.Error) as error:
            if isinstance(error, peewee.IntegrityError):
                raise
            raise StoreError(describe(error, self.path)) from error

    return wrapper


def database(path: Path, timeout: float) -> SqliteDatabase:
    """A peewee database for ``path`` with the store's pragmas; each thread opens its own connection on use."""
    # IMMEDIATE: read-modify-write transactions take the write lock up front instead of
    # failing with "database is locked" when two writers upgrade at once.
    db = SqliteDatabase(None, lock_type="IMMEDIATE")
    db.init(str(path), pragmas=dict(PRAGMAS), timeout=timeout)
    return db


class StorePart:
    """One part of the store: the shared database, its models and its path."""

    def __init__(self, db: SqliteDatabase, models: SimpleNamespace, path: Path):
        self.db = db
        self.m = models
        self.path = path
