"""Opening the SQLite database (pragmas, migrations) and turning its failures into messages a person understands.

Every part of the store derives from ``StorePart`` and wraps its public methods in
``translating``, so a locked, full or damaged database reaches callers as a
``StoreError`` with a message, never as a peewee or sqlite3 exception.
"""

from __future__ import annotations

import functools
import os
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
        return (
            f"The database {path} cannot be written (read-only): this command needs to change it. "
            "Commands that only read, such as list and export, still work."
        )
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


def database(path: Path, timeout: float, *, read_only: bool = False) -> SqliteDatabase:
    """A peewee database for ``path`` with the store's pragmas; each thread opens its own connection on use.

    ``read_only`` opens a database in a folder that cannot be written (nobody can write it
    there either, so SQLite may read it without locks): the reading commands still work and
    every write fails with "read-only".
    """
    if read_only:
        uri = f"{Path(path).absolute().as_uri()}?mode=ro&immutable=1"
        db = SqliteDatabase(None)
        db.init(uri, uri=True, pragmas={"foreign_keys": 1}, timeout=timeout)
        return db
    # IMMEDIATE: read-modify-write transactions take the write lock up front instead of
    # failing with "database is locked" when two writers upgrade at once.
    db = SqliteDatabase(None, lock_type="IMMEDIATE")
    db.init(str(path), pragmas=dict(PRAGMAS), timeout=timeout)
    return db


def create_private(path: Path) -> None:
    """Create the database file readable by its owner only (it holds every transcript and the webhook secrets).

    SQLite gives its -wal and -shm files the database's permissions.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def integrity_problem(db: SqliteDatabase) -> str | None:
    """What SQLite's quick check finds wrong in the database (its first finding), or None when it is sound."""
    rows = db.execute_sql("PRAGMA quick_check(1)").fetchall()
    answer = rows[0][0] if rows else "ok"
    return None if answer == "ok" else str(answer)


def back_up(db: SqliteDatabase, target: Path) -> None:
    """Copy the database, consistently while others may write, to ``target`` (replaced atomically)."""
    target.parent.mkdir(mode=0o700, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    create_private(partial)
    destination = sqlite3.connect(str(partial))
    try:
        db.connection().backup(destination)
    finally:
        destination.close()
    os.replace(partial, target)


class StorePart:
    """One part of the store: the shared database, its models and its path."""

    def __init__(self, db: SqliteDatabase, models: SimpleNamespace, path: Path):
        self.db = db
        self.m = models
        self.path = path
