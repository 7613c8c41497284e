"""peewee models mirroring the current schema; only the store package uses them.

The models are built per database by ``build_models`` rather than bound to one global
database, so two stores (two data folders, or a test's second connection) can live in one process.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from peewee import AutoField, FloatField, ForeignKeyField, IntegerField, Model, SqliteDatabase, TextField


class PathField(TextField):
    """A file name, stored losslessly: as text when it is UTF-8, else as the name's bytes (a BLOB).

    Python holds a name that is not UTF-8 with surrogate escapes, which SQLite cannot store
    as text; such a name goes in as its bytes and comes back as the same str.
    """

    def db_value(self, value):
        if value is None:
            return None
        text = os.fspath(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(text)
        return text

    def python_value(self, value):
        if isinstance(value, (bytes, memoryview)):
            return os.fsdecode(bytes(value))
        return value


def build_models(db: SqliteDatabase) -> SimpleNamespace:
    """Model classes bound to ``db``: jobs and their parts (v1), webhooks and watch folders (v2), the backlog (v3)."""

    class BaseModel(Model):
        class Meta:
            database = db

    class User(BaseModel):
        id = AutoField()
        name = TextField(unique=True)
        created_at = FloatField()

        class Meta:
            table_name = "user"

    class Job(BaseModel):
        id = AutoField()
        user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
        source_path = PathField()
        size_bytes = IntegerField()
        mtime = FloatField()
        content_hash = TextField()
        duration_seconds = FloatField()
        declared_seconds = FloatField(null=True)
        model = TextField()
        options = TextField()
        status = TextField()
        processed_seconds = FloatField(default=0.0)
        queue_position = IntegerField(null=True)
        estimated_completion = FloatField(null=True)
        eta_seconds = FloatField(null=True)
        speed = FloatField(null=True)
        attempts = IntegerField(default=0)
        error = TextField(null=True)
        warning = TextField(null=True)
        detected_language = TextField(null=True)
        processing_seconds = FloatField(default=0.0)
        exported_paths = TextField(null=True)
        exports = TextField(null=True)  # JSON: every file written for the job, with its size and mtime then
        failure_cause = TextField(null=True)
        created_at = FloatField()
        started_at = FloatField(null=True)
        updated_at = FloatField()
        finished_at = FloatField(null=True)
        speakers_progress = FloatField(null=True)

        class Meta:
            table_name = "job"

    class Speaker(BaseModel):
        """A speaker of a job's transcript: its label there and the name it is shown with."""

        id = AutoField()
        job = ForeignKeyField(Job, column_name="job_id", on_delete="CASCADE")
        label = IntegerField()
        name = TextField()

        class Meta:
            table_name = "speaker"

    class Segment(BaseModel):
        id = AutoField()
        job = ForeignKeyField(Job, column_name="job_id", on_delete="CASCADE")
        idx = IntegerField()
        start_seconds = FloatField()
        end_seconds = FloatField()
        text = TextField()
        words = TextField(null=True)
        tokens = TextField(null=True)  # the decoder's tokens: its context when a job continues
        part = IntegerField(default=0)
        speaker = IntegerField(null=True)  # the speaker's label within the job (table speaker); NULL: not diarized

        class Meta:
            table_name = "segment"

    class Part(BaseModel):
        """A stretch of a job's audio decoded as one stream; a long job has several, decoded in parallel."""

        id = AutoField()
        job = ForeignKeyField(Job, column_name="job_id", on_delete="CASCADE")
        idx = IntegerField()
        start_seconds = FloatField()
        end_seconds = FloatField()
        processed_seconds = FloatField()
        speed = FloatField(null=True)
        status = TextField()

        class Meta:
            table_name = "part"

    class Run(BaseModel):
        """One attempt at one part of a job: where it started and how far it got."""

        id = AutoField()
        job = ForeignKeyField(Job, column_name="job_id", on_delete="CASCADE")
        part = IntegerField(default=0)
        attempt = IntegerField()
        pid = IntegerField()
        started_at = FloatField()
        ended_at = FloatField(null=True)
        start_seconds = FloatField()
        end_seconds = FloatField()
        processing_seconds = FloatField(default=0.0)
        outcome = TextField(null=True)
        queue = TextField(null=True)
        worker = TextField(null=True)
        remote_seq = IntegerField(null=True)

        class Meta:
            table_name = "run"

    class Setting(BaseModel):
        key = TextField(primary_key=True)
        value = TextField()

        class Meta:
            table_name = "setting"

    class Backlog(BaseModel):
        """A file a person asked to transcribe while their queue was full: queued in order as room frees."""

        id = AutoField()
        user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
        source_path = PathField()
        size_bytes = IntegerField()
        mtime = FloatField()
        content_hash = TextField()
        duration_seconds = FloatField()
        declared_seconds = FloatField(null=True)
        warning = TextField(null=True)
        options = TextField()
        state = TextField()
        job_id = IntegerField(null=True)
        message = TextField(null=True)
        created_at = FloatField()
        updated_at = FloatField()

        class Meta:
            table_name = "backlog"

    class IdSequence(BaseModel):
        name = TextField(primary_key=True)
        value = IntegerField()

        class Meta:
            table_name = "id_sequence"

    class Webhook(BaseModel):
        id = AutoField()
        url = TextField()
        secret = TextField()
        events = TextField()  # comma-separated
        include = TextField(default="text")
        enabled = IntegerField(default=1)
        created_at = FloatField()

        class Meta:
            table_name = "webhook"

    class Delivery(BaseModel):
        """The outbox: one event for one endpoint, until delivered or given up."""

        id = AutoField()
        webhook = ForeignKeyField(Webhook, column_name="webhook_id", on_delete="CASCADE")
        event = TextField()
        job_id = IntegerField(null=True)
        snapshot = TextField()
        body = TextField(null=True)
        state = TextField()
        attempts = IntegerField(default=0)
        next_attempt_at = FloatField(null=True)
        created_at = FloatField()
        finished_at = FloatField(null=True)
        last_error = TextField(null=True)

        class Meta:
            table_name = "delivery"

    class DeliveryAttempt(BaseModel):
        id = AutoField()
        delivery = ForeignKeyField(Delivery, column_name="delivery_id", on_delete="CASCADE")
        attempt = IntegerField()
        attempted_at = FloatField()
        duration_seconds = FloatField()
        status_code = IntegerField(null=True)
        error = TextField(null=True)
        outcome = TextField()

        class Meta:
            table_name = "delivery_attempt"

    class WatchFolder(BaseModel):
        id = AutoField()
        path = PathField(unique=True)
        user = TextField()
        model = TextField(null=True)
        language = TextField(null=True)
        output_dir = PathField(null=True)
        formats = TextField(null=True)
        after = TextField(default="keep")
        move_to = PathField(null=True)
        created_at = FloatField()

        class Meta:
            table_name = "watch_folder"

    class WatchFile(BaseModel):
        id = AutoField()
        folder = ForeignKeyField(WatchFolder, column_name="folder_id", on_delete="CASCADE")
        path = PathField()
        size_bytes = IntegerField()
        mtime = FloatField()
        changed_at = FloatField()
        state = TextField()
        job_id = IntegerField(null=True)
        message = TextField(null=True)

        class Meta:
            table_name = "watch_file"

    return SimpleNamespace(
        User=User,
        Job=Job,
        Segment=Segment,
        Speaker=Speaker,
        Part=Part,
        Run=Run,
        Setting=Setting,
        Backlog=Backlog,
        IdSequence=IdSequence,
        Webhook=Webhook,
        Delivery=Delivery,
        DeliveryAttempt=DeliveryAttempt,
        WatchFolder=WatchFolder,
        WatchFile=WatchFile,
    )
