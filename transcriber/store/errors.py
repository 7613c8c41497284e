"""Turning SQLite failures into StoreError messages a person understands (shared by the store's classes)."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

import peewee

from ..errors import StoreError


def _describe(error: Exception, path: Path) -> str:
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


def _translating(method):
    """Turn SQLite failures into StoreError with a message a person understands."""

    @functools.wraps(method)
    def wrapper(self: "JobStore", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (peewee.OperationalError, peewee.DatabaseError, sqlite3.Error) as error:
            if isinstance(error, peewee.IntegrityError):
                raise
            raise StoreError(_describe(error, self.path)) from error

    return wrapper
