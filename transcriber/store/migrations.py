"""Versioned schema migrations, applied in order at open; the version lives in PRAGMA user_version.

Each migration is frozen DDL: never edit one that has shipped, add the next instead.
"""

from __future__ import annotations

import inspect
import logging
from typing import Callable

from peewee import SqliteDatabase

log = logging.getLogger(__name__)


def _v1_initial(db: SqliteDatabase) -> None:
    statements = [
        """CREATE TABLE user (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL)""",
        """CREATE TABLE job (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
            source_path TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            mtime REAL NOT NULL,
            content_hash TEXT NOT NULL,
            duration_seconds REAL NOT NULL,
            declared_seconds REAL,
            model TEXT NOT NULL,
            options TEXT NOT NULL,
            status TEXT NOT NULL,
            processed_seconds REAL NOT NULL DEFAULT 0,
            queue_position INTEGER,
            estimated_completion REAL,
            eta_seconds REAL,
            speed REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            warning TEXT,
            detected_language TEXT,
            processing_seconds REAL NOT NULL DEFAULT 0,
            exported_paths TEXT,
            created_at REAL NOT NULL,
            started_at REAL,
            updated_at REAL NOT NULL,
            finished_at REAL)""",
        "CREATE INDEX job_user_status ON job(user_id, status)",
        "CREATE INDEX job_status_position ON job(status, queue_position)",
        "CREATE INDEX job_model_status ON job(model, status)",
        """CREATE TABLE segment (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            start_seconds REAL NOT NULL,
            end_seconds REAL NOT NULL,
            text TEXT NOT NULL,
            words TEXT,
            tokens TEXT,
            part INTEGER NOT NULL DEFAULT 0)""",
        "CREATE UNIQUE INDEX segment_job_idx ON segment(job_id, idx)",
        "CREATE INDEX segment_job_start ON segment(job_id, start_seconds)",
        """CREATE TABLE part (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            start_seconds REAL NOT NULL,
            end_seconds REAL NOT NULL,
            processed_seconds REAL NOT NULL,
            speed REAL,
            status TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX part_job_idx ON part(job_id, idx)",
        "CREATE INDEX part_status ON part(status)",
        """CREATE TABLE run (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
            part INTEGER NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL,
            pid INTEGER NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            start_seconds REAL NOT NULL,
            end_seconds REAL NOT NULL,
            processing_seconds REAL NOT NULL DEFAULT 0,
            outcome TEXT)""",
        "CREATE INDEX run_job ON run(job_id)",
        """CREATE TABLE setting (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL)""",
    ]
    for statement in statements:
        db.execute_sql(statement)


def _v2_automation(db: SqliteDatabase) -> None:
    """Webhook endpoints, the delivery outbox and its attempt log, watch folders and the files seen in them."""
    statements = [
        # Why a job failed, as a short code (audio, source_changed, truncated, ...), for analytics.
        "ALTER TABLE job ADD COLUMN failure_cause TEXT",
        """CREATE TABLE webhook (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,
            include TEXT NOT NULL DEFAULT 'text',
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL)""",
        # job_id is not a foreign key: the log outlives a removed job.
        """CREATE TABLE delivery (
            id INTEGER PRIMARY KEY,
            webhook_id INTEGER NOT NULL REFERENCES webhook(id) ON DELETE CASCADE,
            event TEXT NOT NULL,
            job_id INTEGER,
            snapshot TEXT NOT NULL,
            body TEXT,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            created_at REAL NOT NULL,
            finished_at REAL,
            last_error TEXT)""",
        "CREATE INDEX delivery_due ON delivery(state, next_attempt_at)",
        "CREATE INDEX delivery_job ON delivery(job_id)",
        """CREATE TABLE delivery_attempt (
            id INTEGER PRIMARY KEY,
            delivery_id INTEGER NOT NULL REFERENCES delivery(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            attempted_at REAL NOT NULL,
            duration_seconds REAL NOT NULL,
            status_code INTEGER,
            error TEXT,
            outcome TEXT NOT NULL)""",
        "CREATE INDEX delivery_attempt_delivery ON delivery_attempt(delivery_id)",
        """CREATE TABLE watch_folder (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            user TEXT NOT NULL,
            model TEXT,
            language TEXT,
            output_dir TEXT,
            formats TEXT,
            after TEXT NOT NULL DEFAULT 'keep',
            move_to TEXT,
            created_at REAL NOT NULL)""",
        """CREATE TABLE watch_file (
            id INTEGER PRIMARY KEY,
            folder_id INTEGER NOT NULL REFERENCES watch_folder(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            mtime REAL NOT NULL,
            changed_at REAL NOT NULL,
            state TEXT NOT NULL,
            job_id INTEGER,
            message TEXT)""",
        "CREATE UNIQUE INDEX watch_file_path ON watch_file(folder_id, path)",
        "CREATE INDEX watch_file_state ON watch_file(state)",
    ]
    for statement in statements:
        db.execute_sql(statement)


def _v3_trust(db: SqliteDatabase) -> None:
    """Files waiting for room in a user's queue, every file written for a job, job ids that are never reused."""
    statements = [
        # Every export written for the job, with its size and mtime then (JSON): a file
        # transcriber wrote and nobody changed may be replaced; any other never is.
        "ALTER TABLE job ADD COLUMN exports TEXT",
        # Files a person asked for beyond the per-user queue limit; queued in order as room frees.
        """CREATE TABLE backlog (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
            source_path TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            mtime REAL NOT NULL,
            content_hash TEXT NOT NULL,
            duration_seconds REAL NOT NULL,
            declared_seconds REAL,
            warning TEXT,
            options TEXT NOT NULL,
            state TEXT NOT NULL,
            job_id INTEGER,
            message TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        "CREATE INDEX backlog_state ON backlog(state, id)",
        # The last id given to each kind of row whose ids must never come back after a removal.
        """CREATE TABLE id_sequence (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL)""",
        "INSERT INTO id_sequence (name, value) SELECT 'job', COALESCE(MAX(id), 0) FROM job",
    ]
    for statement in statements:
        db.execute_sql(statement)


def _v4_scale_out(db: SqliteDatabase) -> None:
    """Runs decoded by remote workers: the queue a part was sent to, the worker that took it, what was ingested."""
    statements = [
        # The RQ queue a run was dispatched to (NULL: decoded by this machine's engine).
        "ALTER TABLE run ADD COLUMN queue TEXT",
        # The remote worker that took the run, once it said so.
        "ALTER TABLE run ADD COLUMN worker TEXT",
        # The last segment event of the run that is committed here: a re-read event is not stored twice.
        "ALTER TABLE run ADD COLUMN remote_seq INTEGER",
        "CREATE INDEX run_open ON run(ended_at)",
    ]
    for statement in statements:
        db.execute_sql(statement)


# Progress of a long step: (what is being done, units done, units in all).
ProgressCallback = Callable[[str, int, int], None]

SEARCH_INDEX_BATCH = 20_000  # segments indexed between two progress reports


def _v5_search(db: SqliteDatabase, on_progress: ProgressCallback | None = None) -> None:
    """A full-text index over every segment's text, kept in step by triggers, filled for the segments already there.

    The index (FTS5, accent- and case-insensitive) takes its content from the view
    ``segment_search`` (one row per segment: id, text, speaker), so it stores only the
    index, not a second copy of the text. Triggers on ``segment`` keep it in step with every
    writer: committed segments, edits, and removals (a job's removal deletes its segments,
    and SQLite fires the delete trigger for rows removed by ON DELETE CASCADE too).

    ``speaker`` stays '': speaker names live in ``speaker`` (``_v6_speakers``) and a search by
    speaker joins them, so renaming or merging speakers never has to rewrite the index.
    """
    statements = [
        "CREATE VIEW segment_search AS SELECT id, text, '' AS speaker FROM segment",
        """CREATE VIRTUAL TABLE segment_fts USING fts5(
            text, speaker,
            content='segment_search', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2')""",
        """CREATE TRIGGER segment_fts_insert AFTER INSERT ON segment BEGIN
            INSERT INTO segment_fts(rowid, text, speaker) VALUES (new.id, new.text, '');
        END""",
        """CREATE TRIGGER segment_fts_delete AFTER DELETE ON segment BEGIN
            INSERT INTO segment_fts(segment_fts, rowid, text, speaker) VALUES ('delete', old.id, old.text, '');
        END""",
        """CREATE TRIGGER segment_fts_update AFTER UPDATE OF text ON segment BEGIN
            INSERT INTO segment_fts(segment_fts, rowid, text, speaker) VALUES ('delete', old.id, old.text, '');
            INSERT INTO segment_fts(rowid, text, speaker) VALUES (new.id, new.text, '');
        END""",
    ]
    for statement in statements:
        db.execute_sql(statement)
    # The segments written before the upgrade, in batches so a large library reports progress.
    total = db.execute_sql("SELECT COUNT(*) FROM segment").fetchone()[0]
    done, last_id = 0, 0
    while done < total:
        cursor = db.execute_sql(
            "SELECT MAX(id), COUNT(*) FROM (SELECT id FROM segment WHERE id > ? ORDER BY id LIMIT ?)",
            (last_id, SEARCH_INDEX_BATCH),
        )
        batch_last, count = cursor.fetchone()
        if not count:
            break
        db.execute_sql(
            "INSERT INTO segment_fts(rowid, text, speaker) SELECT id, text, speaker FROM segment_search "
            "WHERE id > ? AND id <= ?",
            (last_id, batch_last),
        )
        done, last_id = done + count, batch_last
        if on_progress is not None:
            on_progress("Building the search index", done, total)


def _v6_speakers(db: SqliteDatabase) -> None:
    """Who said what: a speaker per segment, the names of each job's speakers, the diarization stage's progress.

    Speaker names are not put in the full-text index (``_v5_search``): search filters by
    speaker with a join, so a rename or a merge never has to touch the index.
    """
    statements = [
        "ALTER TABLE segment ADD COLUMN speaker INTEGER",  # the speaker's label within its job; NULL: not diarized
        # NULL: no speakers asked for or not yet looked at; 0..1 while running; 1 once assigned.
        "ALTER TABLE job ADD COLUMN speakers_progress REAL",
        """CREATE TABLE speaker (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
            label INTEGER NOT NULL,
            name TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX speaker_job_label ON speaker(job_id, label)",
    ]
    for statement in statements:
        db.execute_sql(statement)


MIGRATIONS: list[Callable[..., None]] = [
    _v1_initial, _v2_automation, _v3_trust, _v4_scale_out, _v5_search, _v6_speakers,
]
LATEST_VERSION = len(MIGRATIONS)
SEARCH_VERSION = MIGRATIONS.index(_v5_search) + 1  # the version that adds the full-text index (upgrade tests start below it)


def schema_version(db: SqliteDatabase) -> int:
    return db.execute_sql("PRAGMA user_version").fetchone()[0]


def migrate(db: SqliteDatabase, on_progress: ProgressCallback | None = None) -> int:
    """Bring the schema to the latest version, one transaction per step.

    Args:
        on_progress: told how a long step (building an index over existing rows) advances.

    Returns:
        The version the database is at afterwards.

    Raises:
        RuntimeError: the database was written by a newer transcriber.
    """
    current = schema_version(db)
    if current > LATEST_VERSION:
        raise RuntimeError(
            f"This data folder was written by a newer transcriber (schema {current}; this one knows {LATEST_VERSION})."
        )
    for version in range(current + 1, LATEST_VERSION + 1):
        with db.atomic():
            step = MIGRATIONS[version - 1]
            if "on_progress" in inspect.signature(step).parameters:
                step(db, on_progress=on_progress)
            else:
                step(db)
            db.execute_sql(f"PRAGMA user_version = {version}")
        log.info("database schema migrated to version %d", version)
    return LATEST_VERSION
