"""JobStore: the only code that reads or writes SQL. It hands out the dataclasses of ``jobs``.

Every status change is a named method whose UPDATE is guarded by the statuses it may
leave, so two processes (the window and a command line) can act on one database safely:
a worker whose job was paused or cancelled elsewhere finds its next commit refused.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import peewee
from peewee import JOIN, SqliteDatabase, fn

from ..config import DECLARED, Settings, format_value, parse_setting
from ..errors import IntakeRefused, JobStateError, StoreError
from ..jobs import (
    ACTIVE_STATUSES,
    Job,
    JobOptions,
    JobStatus,
    ModelStats,
    Part,
    PartStatus,
    Segment,
    SizeBucketStats,
    Word,
)
from .automation import AutomationStore
from .errors import _describe, _translating
from .migrations import migrate
from .schema import build_models

_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    # FULL: a committed segment survives a power cut, not just a crash; one fsync per
    # segment is negligible next to decoding it.
    "synchronous": "full",
}

SIZE_BUCKETS_MB = (0, 1, 5, 10, 50, 100, 250, 500, float("inf"))


class JobStore(AutomationStore):
    """Jobs, segments, runs, users and settings in one SQLite file (WAL); webhooks and watch folders (AutomationStore)."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = 15.0):
        self.path = Path(path)
        # IMMEDIATE: read-modify-write transactions take the write lock up front instead of
        # failing with "database is locked" when two writers upgrade at once.
        self.db = SqliteDatabase(None, lock_type="IMMEDIATE")
        self.db.init(str(self.path), pragmas=dict(_PRAGMAS), timeout=timeout)
        self.m = build_models(self.db)
        self._user_ids: dict[str, int] = {}
        self._user_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike, *, timeout: float = 15.0) -> "JobStore":
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
            raise StoreError(_describe(error, store.path)) from error
        return store

    def close(self) -> None:
        """Close this thread's connection (each worker thread calls it when done)."""
        if not self.db.is_closed():
            self.db.close()

    # ----------------------------------------------------------------- users

    @_translating
    def ensure_user(self, name: str) -> int:
        with self._user_lock:
            if name in self._user_ids:
                return self._user_ids[name]
        row = self.m.User.get_or_none(self.m.User.name == name)
        if row is None:
            try:
                row = self.m.User.create(name=name, created_at=time.time())
            except peewee.IntegrityError:  # created by another process meanwhile
                row = self.m.User.get(self.m.User.name == name)
        with self._user_lock:
            self._user_ids[name] = row.id
        return row.id

    # ------------------------------------------------------------ conversion

    def _to_job(self, row, user_name: str, rank: int | None) -> Job:
        status = JobStatus(row.status)
        return Job(
            id=row.id,
            user=user_name,
            source_path=row.source_path,
            size_bytes=row.size_bytes,
            mtime=row.mtime,
            content_hash=row.content_hash,
            duration_seconds=row.duration_seconds,
            options=JobOptions.from_json(row.options),
            status=status,
            processed_seconds=row.processed_seconds,
            queue_position=rank if status is JobStatus.QUEUED else None,
            estimated_completion=row.estimated_completion,
            eta_seconds=row.eta_seconds,
            speed=row.speed,
            attempts=row.attempts,
            error=row.error,
            warning=row.warning,
            detected_language=row.detected_language,
            processing_seconds=row.processing_seconds,
            created_at=row.created_at,
            started_at=row.started_at,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
            exported_paths=tuple(json.loads(row.exported_paths)) if row.exported_paths else (),
        )

    def _queue_ranks(self) -> dict[int, int]:
        """Rank (1 = next) of every queued job among its user's queued jobs."""
        Job_ = self.m.Job
        ranks: dict[int, int] = {}
        counters: dict[int, int] = defaultdict(int)
        query = (
            Job_.select(Job_.id, Job_.user)
            .where(Job_.status == JobStatus.QUEUED.value)
            .order_by(Job_.queue_position, Job_.id)
            .tuples()
        )
        for job_id, user_id in query:
            counters[user_id] += 1
            ranks[job_id] = counters[user_id]
        return ranks

    def _select_jobs(self, where=None, order=None) -> list[Job]:
        Job_, User = self.m.Job, self.m.User
        query = Job_.select(Job_, User.name).join(User, JOIN.INNER, on=(Job_.user == User.id))
        if where is not None:
            query = query.where(where)
        query = query.order_by(*(order or (Job_.id,)))
        rows = list(query.objects())
        ranks = self._queue_ranks() if any(row.status == JobStatus.QUEUED.value for row in rows) else {}
        return [self._to_job(row, row.name, ranks.get(row.id)) for row in rows]

    # ------------------------------------------------------------- reading

    @_translating
    def get_job(self, job_id: int) -> Job | None:
        jobs = self._select_jobs(self.m.Job.id == job_id)
        return jobs[0] if jobs else None

    def require_job(self, job_id: int) -> Job:
        job = self.get_job(job_id)
        if job is None:
            raise JobStateError(f"There is no job {job_id}.")
        return job

    @_translating
    def list_jobs(self, user: str | None = None, statuses: Iterable[JobStatus] | None = None) -> list[Job]:
        Job_, User = self.m.Job, self.m.User
        conditions = []
        if user is not None:
            conditions.append(User.name == user)
        if statuses is not None:
            conditions.append(Job_.status.in_([JobStatus(s).value for s in statuses]))
        where = functools.reduce(lambda a, b: a & b, conditions) if conditions else None
        return self._select_jobs(where)

    @_translating
    def queued_jobs(self) -> list[Job]:
        """Queued jobs in queue order."""
        Job_ = self.m.Job
        return self._select_jobs(Job_.status == JobStatus.QUEUED.value, (Job_.queue_position, Job_.id))

    @_translating
    def active_jobs(self) -> list[Job]:
        """Running, queued and paused jobs; running first, then in queue order."""
        Job_ = self.m.Job
        jobs = self._select_jobs(Job_.status.in_([s.value for s in ACTIVE_STATUSES]), (Job_.queue_position, Job_.id))
        order = {JobStatus.RUNNING: 0, JobStatus.QUEUED: 1, JobStatus.PAUSED: 2}
        return sorted(jobs, key=lambda job: order[job.status])

    @_translating
    def count_queued(self, user: str) -> int:
        Job_ = self.m.Job
        user_id = self.ensure_user(user)
        return Job_.select().where((Job_.user == user_id) & (Job_.status == JobStatus.QUEUED.value)).count()

    @_translating
    def last_started_by_user(self) -> dict[str, float]:
        Job_, User = self.m.Job, self.m.User
        query = (
            Job_.select(User.name, fn.MAX(Job_.started_at))
            .join(User, on=(Job_.user == User.id))
            .where(Job_.started_at.is_null(False))
            .group_by(User.name)
            .tuples()
        )
        return {name: started for name, started in query}

    @_translating
    def find_completed_duplicate(self, content_hash: str, options: JobOptions) -> Job | None:
        """A completed job of the same content with the same options, if any."""
        Job_ = self.m.Job
        for job in self._select_jobs((Job_.content_hash == content_hash) & (Job_.status == JobStatus.COMPLETED.value)):
            if job.options == options:
                return job
        return None

    # -------------------------------------------------------------- intake

    @_translating
    def add_job(
        self,
        *,
        user: str,
        source_path: str,
        size_bytes: int,
        mtime: float,
        content_hash: str,
        duration_seconds: float,
        declared_seconds: float | None,
        options: JobOptions,
        max_queued: int,
        warning: str | None = None,
    ) -> Job:
        """Queue a job at the end of the queue.

        Raises:
            IntakeRefused: the user already has ``max_queued`` queued jobs (checked in
                the same transaction as the insert, so parallel intakes cannot overshoot).
        """
        Job_ = self.m.Job
        user_id = self.ensure_user(user)
        now = time.time()
        with self.db.atomic():
            queued = Job_.select().where((Job_.user == user_id) & (Job_.status == JobStatus.QUEUED.value)).count()
            if queued >= max_queued:
                raise IntakeRefused(
                    source_path,
                    "queue_limit",
                    f"{Path(source_path).name}: refused, user {user!r} already has {queued} queued jobs "
                    f"(limit max_queued_per_user = {max_queued}).",
                )
            position = (Job_.select(fn.MAX(Job_.queue_position)).scalar() or 0) + 1
            row = Job_.create(
                user=user_id,
                source_path=source_path,
                size_bytes=size_bytes,
                mtime=mtime,
                content_hash=content_hash,
                duration_seconds=duration_seconds,
                declared_seconds=declared_seconds,
                model=options.model,
                options=options.to_json(),
                status=JobStatus.QUEUED.value,
                queue_position=position,
                warning=warning,
                created_at=now,
                updated_at=now,
            )
        return self.require_job(row.id)

    @_translating
    def declared_seconds(self, job_id: int) -> float | None:
        Job_ = self.m.Job
        return Job_.select(Job_.declared_seconds).where(Job_.id == job_id).scalar()

    # ------------------------------------------------------------ execution

    def _to_part(self, row) -> Part:
        return Part(
            job_id=row.job_id,
            index=row.idx,
            start=row.start_seconds,
            end=row.end_seconds,
            processed_seconds=row.processed_seconds,
            status=PartStatus(row.status),
        )

    @_translating
    def parts(self, job_id: int) -> list[Part]:
        Part_ = self.m.Part
        return [self._to_part(row) for row in Part_.select().where(Part_.job == job_id).order_by(Part_.idx)]

    @_translating
    def running_parts(self) -> list[tuple[str, int, int]]:
        """(user, job id, part index) of every part being decoded."""
        Part_, Job_, User = self.m.Part, self.m.Job, self.m.User
        query = (
            Part_.select(User.name, Part_.job, Part_.idx)
            .join(Job_, on=(Part_.job == Job_.id))
            .join(User, on=(Job_.user == User.id))
            .where(Part_.status == PartStatus.RUNNING.value)
            .tuples()
        )
        return [(name, job_id, idx) for name, job_id, idx in query]

    @_translating
    def jobs_with_pending_parts(self) -> list[Job]:
        """Running jobs that still have parts nobody is decoding, in the order they started."""
        Part_, Job_ = self.m.Part, self.m.Job
        pending = Part_.select(Part_.job).where(Part_.status == PartStatus.PENDING.value)
        return self._select_jobs(
            (Job_.status == JobStatus.RUNNING.value) & Job_.id.in_(pending), (Job_.started_at, Job_.id)
        )

    @_translating
    def claim_work(
        self, job_id: int, plan: Sequence[tuple[float, float]] | None = None, pid: int | None = None
    ) -> tuple[Job, Part, int] | None:
        """Take the next pending part of a job to decode, starting the job if it is queued.

        Args:
            plan: the (start, end) stretches to split the job into, used the first time the
                job starts (default: one part, the whole file).

        Returns:
            The job, the part (now running) and a run id; None if the job is neither queued
            nor running, or has no pending part left.
        """
        Job_, Part_, Run = self.m.Job, self.m.Part, self.m.Run
        now = time.time()
        with self.db.atomic():
            row = Job_.get_or_none(Job_.id == job_id)
            if row is None or row.status not in (JobStatus.QUEUED.value, JobStatus.RUNNING.value):
                return None
            if row.status == JobStatus.QUEUED.value:
                Job_.update(
                    status=JobStatus.RUNNING.value,
                    attempts=Job_.attempts + 1,
                    started_at=fn.COALESCE(Job_.started_at, now),
                    updated_at=now,
                    error=None,
                    failure_cause=None,
                    speed=None,
                ).where(Job_.id == job_id).execute()
                if row.started_at is None:  # the first start only, not a resume or a restart
                    self._queue_event("job.started", job_id)
            if not Part_.select().where(Part_.job == job_id).exists():
                stretches = list(plan or [(0.0, row.duration_seconds)])
                Part_.insert_many(
                    [
                        dict(job=job_id, idx=i, start_seconds=a, end_seconds=b, processed_seconds=a, status="pending")
                        for i, (a, b) in enumerate(stretches)
                    ]
                ).execute()
            part = (
                Part_.select()
                .where((Part_.job == job_id) & (Part_.status == PartStatus.PENDING.value))
                .order_by(Part_.idx)
                .first()
            )
            if part is None:
                return None
            Part_.update(status=PartStatus.RUNNING.value, speed=None).where(Part_.id == part.id).execute()
            attempt = Job_.get_by_id(job_id).attempts
            run = Run.create(
                job=job_id,
                part=part.idx,
                attempt=attempt,
                pid=pid if pid is not None else os.getpid(),
                started_at=now,
                start_seconds=part.processed_seconds,
                end_seconds=part.processed_seconds,
            )
            part_row = Part_.get_by_id(part.id)
        return self.require_job(job_id), self._to_part(part_row), run.id

    @_translating
    def commit_progress(
        self,
        job_id: int,
        part_index: int,
        run_id: int,
        segments: Sequence[Segment],
        *,
        processed_seconds: float,
        processing_seconds: float,
        speed: float | None,
        detected_language: str | None = None,
        tokens: Sequence[Sequence[int]] | None = None,
    ) -> list[Segment] | None:
        """Store finished segments of one part and advance the part and its job, in one transaction.

        Args:
            segments: new segments (their ``index`` is assigned here).
            processed_seconds: the part's cursor after them.
            processing_seconds: decoding time this run has spent so far.
            speed: this part's live speed (audio s per s); the job's is the sum over its parts.
            tokens: the decoder's tokens, one list per segment, kept so the part can continue
                later with the same context.

        Returns:
            The stored segments with their indexes, or None (and nothing stored) if the job or
            the part is no longer running here: it was paused, cancelled or removed elsewhere,
            and the worker should stop.
        """
        Job_, Segment_, Part_, Run = self.m.Job, self.m.Segment, self.m.Part, self.m.Run
        now = time.time()
        with self.db.atomic():
            job_row = Job_.get_or_none((Job_.id == job_id) & (Job_.status == JobStatus.RUNNING.value))
            part_row = Part_.get_or_none(
                (Part_.job == job_id) & (Part_.idx == part_index) & (Part_.status == PartStatus.RUNNING.value)
            )
            if job_row is None or part_row is None:
                return None
            run = Run.get_by_id(run_id)
            Part_.update(
                processed_seconds=fn.MAX(Part_.processed_seconds, processed_seconds), speed=speed
            ).where(Part_.id == part_row.id).execute()
            Run.update(end_seconds=processed_seconds, processing_seconds=processing_seconds).where(
                Run.id == run_id
            ).execute()
            stored: list[Segment] = []
            if segments:
                last = Segment_.select(fn.MAX(Segment_.idx)).where(Segment_.job == job_id).scalar()
                first = 0 if last is None else last + 1
                rows = []
                for offset, (segment, segment_tokens) in enumerate(zip(segments, tokens or [None] * len(segments))):
                    stored.append(replace(segment, index=first + offset))
                    rows.append(
                        dict(
                            job=job_id,
                            idx=first + offset,
                            part=part_index,
                            start_seconds=segment.start,
                            end_seconds=segment.end,
                            text=segment.text,
                            words=json.dumps([[w.start, w.end, w.word, w.probability] for w in segment.words])
                            if segment.words
                            else None,
                            tokens=json.dumps(list(segment_tokens)) if segment_tokens else None,
                        )
                    )
                Segment_.insert_many(rows).execute()
            done, total_speed = (
                Part_.select(fn.SUM(Part_.processed_seconds - Part_.start_seconds), fn.SUM(Part_.speed))
                .where(Part_.job == job_id)
                .tuples()
                .get()
            )
            remaining = max(0.0, job_row.duration_seconds - (done or 0.0))
            eta = remaining / total_speed if total_speed else None
            values = dict(
                processed_seconds=done or 0.0,
                # Compute time summed over the job's parts (stream-seconds): the per-stream
                # speed history the estimates plan with.
                processing_seconds=Job_.processing_seconds + (processing_seconds - run.processing_seconds),
                speed=total_speed,
                eta_seconds=eta,
                estimated_completion=(now + eta) if eta is not None else None,
                updated_at=now,
            )
            if detected_language:
                values["detected_language"] = detected_language
            Job_.update(**values).where(Job_.id == job_id).execute()
        return stored

    @_translating
    def split_fresh_job(self, job_id: int, stretches: Sequence[tuple[float, float]]) -> Part | None:
        """Cut a job that has one untouched part into ``stretches``; the running part 0 becomes the first.

        Returns:
            The new part 0, or None (nothing changed) if the job already has several parts
            or its part was already started on.
        """
        Part_ = self.m.Part
        with self.db.atomic():
            rows = list(Part_.select().where(Part_.job == job_id))
            if len(rows) != 1 or len(stretches) < 2:
                return None
            (first,) = rows
            if first.processed_seconds > first.start_seconds or first.start_seconds != stretches[0][0]:
                return None
            Part_.update(end_seconds=stretches[0][1]).where(Part_.id == first.id).execute()
            Part_.insert_many(
                [
                    dict(job=job_id, idx=i, start_seconds=a, end_seconds=b, processed_seconds=a, status="pending")
                    for i, (a, b) in enumerate(stretches)
                    if i > 0
                ]
            ).execute()
            return self._to_part(Part_.get_by_id(first.id))

    @_translating
    def set_detected_language(self, job_id: int, language: str) -> None:
        Job_ = self.m.Job
        Job_.update(detected_language=language).where(Job_.id == job_id).execute()

    @_translating
    def finish_part(self, job_id: int, part_index: int) -> bool:
        """Mark a part decoded to its end; returns True when every part of the job is."""
        Part_ = self.m.Part
        with self.db.atomic():
            Part_.update(status=PartStatus.DONE.value, speed=None).where(
                (Part_.job == job_id) & (Part_.idx == part_index)
            ).execute()
            return not Part_.select().where(
                (Part_.job == job_id) & (Part_.status != PartStatus.DONE.value)
            ).exists()

    @_translating
    def release_part(self, job_id: int, part_index: int) -> None:
        """A worker stopped before the end of its part: the part waits again, keeping its cursor.

        If that leaves a running job with no part being decoded (the engine is shutting
        down), the job goes back to the queue, keeping its place.
        """
        Job_, Part_ = self.m.Job, self.m.Part
        now = time.time()
        with self.db.atomic():
            Part_.update(status=PartStatus.PENDING.value, speed=None).where(
                (Part_.job == job_id) & (Part_.idx == part_index) & (Part_.status == PartStatus.RUNNING.value)
            ).execute()
            busy = Part_.select().where((Part_.job == job_id) & (Part_.status == PartStatus.RUNNING.value)).exists()
            if not busy:
                Job_.update(status=JobStatus.QUEUED.value, speed=None, updated_at=now).where(
                    (Job_.id == job_id) & (Job_.status == JobStatus.RUNNING.value)
                ).execute()

    @_translating
    def end_run(self, run_id: int, outcome: str) -> None:
        Run = self.m.Run
        Run.update(ended_at=time.time(), outcome=outcome).where(Run.id == run_id).execute()

    def _transition(
        self, job_id: int, allowed: Sequence[JobStatus], action: str, *, event: str | None = None, held: bool = False, **values
    ) -> Job:
        """Apply ``values`` if the job is in one of ``allowed``; otherwise explain why not.

        Args:
            event: a webhook event to put in the outbox in the same transaction (see ``_queue_event``).
        """
        Job_ = self.m.Job
        values.setdefault("updated_at", time.time())
        with self.db.atomic():
            changed = (
                Job_.update(**values)
                .where((Job_.id == job_id) & (Job_.status.in_([s.value for s in allowed])))
                .execute()
            )
            if changed and event:
                self._queue_event(event, job_id, held=held)
        if not changed:
            job = self.get_job(job_id)
            if job is None:
                raise JobStateError(f"There is no job {job_id}.")
            raise JobStateError(f"Job {job_id} is {job.status.value}; it cannot be {action}.")
        return self.require_job(job_id)

    @_translating
    def mark_completed(self, job_id: int, *, warning: str | None = None) -> Job:
        now = time.time()
        values = dict(
            status=JobStatus.COMPLETED.value,
            finished_at=now,
            queue_position=None,
            eta_seconds=0.0,
            estimated_completion=now,
            error=None,
        )
        if warning:
            values["warning"] = warning
        # Held: the payload may link to the exports, written next; Engine releases it after.
        return self._transition(job_id, [JobStatus.RUNNING], "completed", event="job.completed", held=True, **values)

    @_translating
    def mark_failed(self, job_id: int, error: str, cause: str | None = None) -> Job:
        """Fail a job with a message for people and a short ``cause`` code for analytics."""
        return self._transition(
            job_id,
            [JobStatus.RUNNING, JobStatus.QUEUED],
            "failed",
            event="job.failed",
            status=JobStatus.FAILED.value,
            error=error,
            failure_cause=cause or "other",
            finished_at=time.time(),
            queue_position=None,
            eta_seconds=None,
            estimated_completion=None,
            speed=None,
        )

    @_translating
    def set_warning(self, job_id: int, warning: str) -> None:
        Job_ = self.m.Job
        Job_.update(warning=warning, updated_at=time.time()).where(Job_.id == job_id).execute()

    @_translating
    def set_exported(self, job_id: int, paths: Sequence[str]) -> None:
        Job_ = self.m.Job
        Job_.update(exported_paths=json.dumps(list(paths))).where(Job_.id == job_id).execute()

    @_translating
    def update_estimates(self, estimates: dict[int, tuple[float | None, float | None]]) -> None:
        """Record (eta_seconds, estimated_completion) for active jobs."""
        Job_ = self.m.Job
        with self.db.atomic():
            for job_id, (eta, completion) in estimates.items():
                Job_.update(eta_seconds=eta, estimated_completion=completion).where(
                    (Job_.id == job_id) & (Job_.status.in_([s.value for s in ACTIVE_STATUSES]))
                ).execute()

    # -------------------------------------------------------------- control

    @_translating
    def pause(self, job_id: int) -> Job:
        return self._transition(
            job_id, [JobStatus.QUEUED, JobStatus.RUNNING], "paused", status=JobStatus.PAUSED.value, speed=None
        )

    @_translating
    def resume(self, job_id: int) -> Job:
        return self._transition(job_id, [JobStatus.PAUSED], "resumed", status=JobStatus.QUEUED.value)

    @_translating
    def cancel(self, job_id: int) -> Job:
        return self._transition(
            job_id,
            list(ACTIVE_STATUSES),
            "cancelled",
            status=JobStatus.CANCELLED.value,
            finished_at=time.time(),
            queue_position=None,
            eta_seconds=None,
            estimated_completion=None,
            speed=None,
        )

    @_translating
    def retry(self, job_id: int) -> Job:
        """Queue a failed or cancelled job again, at the end of the queue.

        What was already transcribed is kept: the job continues from its last segment,
        and the source is checked for changes before it runs.
        """
        Job_ = self.m.Job
        position = (Job_.select(fn.MAX(Job_.queue_position)).scalar() or 0) + 1
        return self._transition(
            job_id,
            [JobStatus.FAILED, JobStatus.CANCELLED],
            "retried",
            status=JobStatus.QUEUED.value,
            error=None,
            failure_cause=None,
            finished_at=None,
            queue_position=position,
        )

    @_translating
    def move(self, job_id: int, steps: int) -> Job:
        """Move a waiting job ``steps`` places earlier (negative) or later among its user's waiting jobs.

        Queued and paused jobs share one order, so a paused job keeps its place when resumed.
        """
        Job_ = self.m.Job
        waiting = [JobStatus.QUEUED.value, JobStatus.PAUSED.value]
        with self.db.atomic():
            row = Job_.get_or_none(Job_.id == job_id)
            if row is None:
                raise JobStateError(f"There is no job {job_id}.")
            if row.status not in waiting:
                raise JobStateError(f"Job {job_id} is {row.status}; only queued or paused jobs can be moved.")
            siblings = list(
                Job_.select(Job_.id, Job_.queue_position)
                .where((Job_.user == row.user_id) & (Job_.status.in_(waiting)))
                .order_by(Job_.queue_position, Job_.id)
            )
            order = [sibling.id for sibling in siblings]
            positions = [sibling.queue_position for sibling in siblings]
            current = order.index(job_id)
            target = max(0, min(len(order) - 1, current + steps))
            if target != current:
                order.insert(target, order.pop(current))
                for new_id, position in zip(order, positions):
                    Job_.update(queue_position=position).where(Job_.id == new_id).execute()
        return self.require_job(job_id)

    @_translating
    def delete_job(self, job_id: int) -> None:
        Job_ = self.m.Job
        with self.db.atomic():
            row = Job_.get_or_none(Job_.id == job_id)
            if row is None:
                raise JobStateError(f"There is no job {job_id}.")
            if row.status == JobStatus.RUNNING.value:
                raise JobStateError(f"Job {job_id} is running; cancel it before removing it.")
            row.delete_instance(recursive=True)

    @_translating
    def recover_abandoned(self, running_elsewhere: Iterable[int] = ()) -> list[Job]:
        """Put jobs left ``running`` by a process that died back in the queue, keeping their place.

        Called once at engine start-up, before any new work; their progress and segments stay,
        so each of their parts continues from its last committed segment. Open run records
        are closed as ``interrupted``.

        Args:
            running_elsewhere: ids of jobs a live worker is decoding; they are left alone.
        """
        Job_, Part_, Run = self.m.Job, self.m.Part, self.m.Run
        skip = list(running_elsewhere)
        now = time.time()
        with self.db.atomic():
            condition = Job_.status == JobStatus.RUNNING.value
            if skip:
                condition &= Job_.id.not_in(skip)
            ids = [row.id for row in Job_.select(Job_.id).where(condition)]
            if ids:
                Job_.update(status=JobStatus.QUEUED.value, speed=None, updated_at=now).where(Job_.id.in_(ids)).execute()
            # Parts left running by a dead worker, whatever their job's status now (it may
            # have been paused or cancelled after the worker died).
            orphans = Part_.status == PartStatus.RUNNING.value
            if skip:
                orphans &= Part_.job.not_in(skip)
            Part_.update(status=PartStatus.PENDING.value, speed=None).where(orphans).execute()
            open_runs = Run.ended_at.is_null()
            if skip:
                open_runs &= Run.job.not_in(skip)
            Run.update(ended_at=now, outcome="interrupted").where(open_runs).execute()
        return [self.require_job(job_id) for job_id in ids]

    # ------------------------------------------------------------ segments

    @_translating
    def segments(self, job_id: int) -> list[Segment]:
        Segment_ = self.m.Segment
        rows = Segment_.select().where(Segment_.job == job_id).order_by(Segment_.start_seconds, Segment_.idx)
        return [
            Segment(
                index=row.idx,
                start=row.start_seconds,
                end=row.end_seconds,
                text=row.text,
                words=tuple(Word(*item) for item in json.loads(row.words)) if row.words else (),
            )
            for row in rows
        ]

    @_translating
    def recent_tokens(self, job_id: int, part_index: int, max_tokens: int = 223) -> list[int]:
        """The decoder's last tokens in a part so far: its context when the part continues."""
        Segment_ = self.m.Segment
        collected: list[int] = []
        query = (
            Segment_.select(Segment_.tokens)
            .where((Segment_.job == job_id) & (Segment_.part == part_index) & Segment_.tokens.is_null(False))
            .order_by(Segment_.idx.desc())
            .tuples()
        )
        for (text,) in query:
            collected[:0] = json.loads(text)
            if len(collected) >= max_tokens:
                break
        return collected[-max_tokens:]

    @_translating
    def update_segment_text(self, job_id: int, index: int, text: str) -> None:
        Segment_ = self.m.Segment
        changed = (
            Segment_.update(text=text).where((Segment_.job == job_id) & (Segment_.idx == index)).execute()
        )
        if not changed:
            raise JobStateError(f"Job {job_id} has no segment {index}.")

    @_translating
    def runs(self, job_id: int) -> list[dict]:
        Run = self.m.Run
        return [
            dict(
                part=row.part,
                attempt=row.attempt,
                pid=row.pid,
                started_at=row.started_at,
                ended_at=row.ended_at,
                start_seconds=row.start_seconds,
                end_seconds=row.end_seconds,
                processing_seconds=row.processing_seconds,
                outcome=row.outcome,
            )
            for row in Run.select().where(Run.job == job_id).order_by(Run.id)
        ]

    # ------------------------------------------------------------ settings

    @_translating
    def settings(self) -> Settings:
        stored = {row.key: row.value for row in self.m.Setting.select()}
        return Settings.from_stored(stored)

    @_translating
    def set_setting(self, key: str, text: str) -> object:
        """Validate and store one setting; returns the parsed value.

        Raises:
            ConfigError: unknown key or invalid value.
        """
        value = parse_setting(key, text)
        self.m.Setting.insert(key=key, value=format_value(value)).on_conflict_replace().execute()
        return value

    @_translating
    def reset_setting(self, key: str) -> None:
        parse_setting(key, format_value(DECLARED[key].default()) if key in DECLARED else "")
        self.m.Setting.delete().where(self.m.Setting.key == key).execute()

    # ---------------------------------------------------------- statistics

    @_translating
    def model_speeds(self, recent: int = 20) -> dict[str, float]:
        """Measured speed (audio s per processing s) of each model over its recent completed jobs."""
        Job_ = self.m.Job
        rows = (
            Job_.select(Job_.model, Job_.duration_seconds, Job_.processing_seconds)
            .where((Job_.status == JobStatus.COMPLETED.value) & (Job_.processing_seconds > 0))
            .order_by(Job_.finished_at.desc())
            .tuples()
        )
        audio: dict[str, float] = defaultdict(float)
        spent: dict[str, float] = defaultdict(float)
        counted: dict[str, int] = defaultdict(int)
        for model, duration, processing in rows:
            if counted[model] >= recent:
                continue
            counted[model] += 1
            audio[model] += duration
            spent[model] += processing
        return {model: audio[model] / spent[model] for model in audio if spent[model] > 0}

    @_translating
    def model_stats(self) -> list[ModelStats]:
        Job_ = self.m.Job
        query = (
            Job_.select(
                Job_.model,
                fn.COUNT(Job_.id),
                fn.SUM(Job_.duration_seconds),
                fn.SUM(Job_.processing_seconds),
            )
            .where(Job_.status == JobStatus.COMPLETED.value)
            .group_by(Job_.model)
            .order_by(Job_.model)
            .tuples()
        )
        stats = []
        for model, count, audio, processing in query:
            audio = audio or 0.0
            processing = processing or 0.0
            stats.append(
                ModelStats(
                    model=model,
                    jobs_completed=count,
                    audio_hours=audio / 3600.0,
                    mean_processing_minutes=processing / count / 60.0 if count else 0.0,
                    speed=audio / processing if processing > 0 else 0.0,
                )
            )
        return stats

    @_translating
    def size_bucket_stats(self) -> list[SizeBucketStats]:
        """Mean processing minutes of completed jobs by file size (MB ranges of SIZE_BUCKETS_MB)."""
        Job_ = self.m.Job
        rows = (
            Job_.select(Job_.size_bytes, Job_.processing_seconds)
            .where(Job_.status == JobStatus.COMPLETED.value)
            .tuples()
        )
        sums: dict[int, list[float]] = defaultdict(list)
        for size, processing in rows:
            size_mb = size / 1_000_000
            for i in range(len(SIZE_BUCKETS_MB) - 1):
                if SIZE_BUCKETS_MB[i] <= size_mb < SIZE_BUCKETS_MB[i + 1]:
                    sums[i].append(processing)
                    break
        return [
            SizeBucketStats(
                low_mb=SIZE_BUCKETS_MB[i],
                high_mb=SIZE_BUCKETS_MB[i + 1],
                jobs=len(values),
                mean_processing_minutes=sum(values) / len(values) / 60.0,
            )
            for i, values in sorted(sums.items())
        ]
