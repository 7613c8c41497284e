"""peewee models mirroring the current schema; only the store package uses them.

The models are built per database by ``build_models`` rather than bound to one global
database, so two stores (two data folders, or a test's second connection) can live in one process.
"""

from __future__ import annotations

from types import SimpleNamespace

from peewee import AutoField, FloatField, ForeignKeyField, IntegerField, Model, SqliteDatabase, TextField


def build_models(db: SqliteDatabase) -> SimpleNamespace:
    """Model classes bound to ``db``: ``User``, ``Job``, ``Segment``, ``Part``, ``Run``, ``Setting``."""

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
        source_path = TextField()
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
        created_at = FloatField()
        started_at = FloatField(null=True)
        updated_at = FloatField()
        finished_at = FloatField(null=True)

        class Meta:
            table_name = "job"

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

        class Meta:
            table_name = "run"

    class Setting(BaseModel):
        key = TextField(primary_key=True)
        value = TextField()

        class Meta:
            table_name = "setting"

    return SimpleNamespace(User=User, Job=Job, Segment=Segment, Part=Part, Run=Run, Setting=Setting)
