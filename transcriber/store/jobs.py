"""The jobs: intake, reading, status changes and start-up recovery.

Every status change is a named method whose UPDATE is guarded by the statuses it may
leave, so two processes (the window and a command line) can act on one database safely:
a worker whose job was paused or cancelled elsewhere finds its next commit refused. A
change that has a webhook event records it in the outbox in the same transaction.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import peewee
from peewee import JOIN, fn

from ..errors import IntakeRefused, JobStateError
from ..jobs import ACTIVE_STATUSES, ExportedFile, Job, JobOptions, JobStatus, PartStatus, RunOutcome
from ..limits import queue_refusal
from .db import StorePart, translating


# A job that failed or was cancelled has no place in the queue, no estimate and no speed.
_NOT_WAITING = dict(queue_position=None, eta_seconds=None, estimated_completion=None, speed=None)


class JobsPart(StorePart):
    """Users and jobs: what is queued, running and finished, and every change of status."""

    def __init__(self, db, models, path: Path, outbox):
        super().__init__(db, models, path)
        self._outbox = outbox  # the automation part: queue_event() inside a status change's transaction
        self._user_ids: dict[str, int] = {}
        self._user_lock = threading.Lock()

    # ----------------------------------------------------------------- users

    @translating
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
        options = JobOptions.from_json(row.options)
        return Job(
            id=row.id,
            user=user_name,
            source_path=row.source_path,
            size_bytes=row.size_bytes,
            mtime=row.mtime,
            content_hash=row.content_hash,
            duration_seconds=row.duration_seconds,
            options=options,
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
            exports=tuple(ExportedFile(*item) for item in json.loads(row.exports)) if row.exports else (),
            routed_model=row.model if row.model != options.model else None,
            speakers_progress=row.speakers_progress,
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

    def select_jobs(self, where=None, order=None) -> list[Job]:
        Job_, User = self.m.Job, self.m.User
        query = Job_.select(Job_, User.name).join(User, JOIN.INNER, on=(Job_.user == User.id))
        if where is not None:
            query = query.where(where)
        query = query.order_by(*(order or (Job_.id,)))
        rows = list(query.objects())
        ranks = self._queue_ranks() if any(row.status == JobStatus.QUEUED.value for row in rows) else {}
        return [self._to_job(row, row.name, ranks.get(row.id)) for row in rows]

    # ------------------------------------------------------------- reading

    @translating
    def get_job(self, job_id: int) -> Job | None:
        jobs = self.select_jobs(self.m.Job.id == job_id)
        return jobs[0] if jobs else None

    def require_job(self, job_id: int) -> Job:
        job = self.get_job(job_id)
        if job is None:
            raise JobStateError(f"There is no job {job_id}.")
        return job

    @translating
    def list_jobs(self, user: str | None = None, statuses: Iterable[JobStatus] | None = None) -> list[Job]:
        Job_, User = self.m.Job, self.m.User
        conditions = []
        if user is not None:
            conditions.append(User.name == user)
        if statuses is not None:
            conditions.append(Job_.status.in_([JobStatus(s).value for s in statuses]))
        where = functools.reduce(lambda a, b: a & b, conditions) if conditions else None
        return self.select_jobs(where)

    @translating
    def queued_jobs(self) -> list[Job]:
        """Queued jobs in queue order."""
        Job_ = self.m.Job
        return self.select_jobs(Job_.status == JobStatus.QUEUED.value, (Job_.queue_position, Job_.id))

    @translating
    def active_jobs(self) -> list[Job]:
        """Running, queued and paused jobs; running first, then in queue order."""
        Job_ = self.m.Job
        jobs = self.select_jobs(Job_.status.in_([s.value for s in ACTIVE_STATUSES]), (Job_.queue_position, Job_.id))
        order = {JobStatus.RUNNING: 0, JobStatus.QUEUED: 1, JobStatus.PAUSED: 2}
        return sorted(jobs, key=lambda job: order[job.status])

    @translating
    def count_queued(self, user: str) -> int:
        Job_ = self.m.Job
        user_id = self.ensure_user(user)
        return Job_.select().where((Job_.user == user_id) & (Job_.status == JobStatus.QUEUED.value)).count()

    @translating
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

    @translating
    def find_duplicate(self, content_hash: str, options: JobOptions) -> Job | None:
        """A job of the same content with the same options that completed or is still to run, if any."""
        Job_ = self.m.Job
        statuses = [JobStatus.COMPLETED.value] + [status.value for status in ACTIVE_STATUSES]
        for job in self.select_jobs((Job_.content_hash == content_hash) & Job_.status.in_(statuses)):
            if job.options == options:
                return job
        return None

    @translating
    def find_reusable(self, user: str, content_hash: str, options: JobOptions) -> Job | None:
        """The user's job of the same content with the same options that is unfinished (first) or completed, if any."""
        Job_ = self.m.Job
        order = {JobStatus.RUNNING: 0, JobStatus.QUEUED: 0, JobStatus.PAUSED: 0, JobStatus.COMPLETED: 1}
        candidates = [
            job
            for job in self.select_jobs((Job_.content_hash == content_hash) & Job_.status.in_([s.value for s in order]))
            if job.user == user and job.options == options
        ]
        return min(candidates, key=lambda job: (order[job.status], -job.id), default=None)

    # -------------------------------------------------------------- intake

    def _next_id(self, name: str) -> int:
        """The next id of ``name`` rows, never one given before (call inside a transaction)."""
        Ids = self.m.IdSequence
        last = Ids.select(Ids.value).where(Ids.name == name).scalar() or 0
        highest = self.m.Job.select(fn.MAX(self.m.Job.id)).scalar() or 0  # rows written by an older version
        value = max(last, highest) + 1
        Ids.insert(name=name, value=value).on_conflict_replace().execute()
        return value

    @translating
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
            position = self._place_at_end(user, user_id, source_path, max_queued)
            row = Job_.create(
                id=self._next_id("job"),
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

    def _place_at_end(self, user: str, user_id: int, source_path: str, max_queued: int) -> int:
        """The queue position a new job of ``user`` takes (call inside the inserting transaction).

        Raises:
            IntakeRefused: the user already has ``max_queued`` queued jobs.
        """
        Job_ = self.m.Job
        queued = Job_.select().where((Job_.user == user_id) & (Job_.status == JobStatus.QUEUED.value)).count()
        full = queue_refusal(file_name=Path(source_path).name, user=user, queued_for_user=queued, max_queued=max_queued)
        if full:
            raise IntakeRefused(source_path, "queue_limit", full)
        return (Job_.select(fn.MAX(Job_.queue_position)).scalar() or 0) + 1

    @translating
    def add_recording_job(self, *, user: str, source_path: str, options: JobOptions, max_queued: int) -> Job:
        """A job for a recording that has just started (status ``recording``), with its one part at 0 s.

        The recording process decodes it live (``work.commit_live``); the runner never claims
        it until ``finish_recording`` queues it. The queue limit is checked now, as for a
        dropped file, so a recording that could not become a job is known before anyone talks.

        Raises:
            IntakeRefused: the user already has ``max_queued`` queued jobs.
        """
        Job_, Part_ = self.m.Job, self.m.Part
        user_id = self.ensure_user(user)
        now = time.time()
        with self.db.atomic():
            position = self._place_at_end(user, user_id, source_path, max_queued)
            row = Job_.create(
                id=self._next_id("job"),
                user=user_id,
                source_path=source_path,
                size_bytes=0,
                mtime=now,
                content_hash="",  # known at Stop, when the file stops changing
                duration_seconds=0.0,
                model=options.model,
                options=options.to_json(),
                status=JobStatus.RECORDING.value,
                queue_position=position,
                created_at=now,
                updated_at=now,  # started_at: when the engine first claims it, which sends job.started
            )
            Part_.create(job=row.id, idx=0, start_seconds=0.0, end_seconds=0.0, processed_seconds=0.0,
                         status=PartStatus.PENDING.value)
        return self.require_job(row.id)

    @translating
    def recording_jobs(self) -> list[Job]:
        """Jobs whose file is (or was, until a crash) being recorded."""
        return self.select_jobs(self.m.Job.status == JobStatus.RECORDING.value)

    @translating
    def finish_recording(
        self,
        job_id: int,
        *,
        size_bytes: int,
        mtime: float,
        content_hash: str,
        duration_seconds: float,
        declared_seconds: float | None,
        warning: str | None = None,
    ) -> Job:
        """The recording ended: record the file's final facts and queue the job, which continues from its live cursor.

        Raises:
            JobStateError: the job is no longer ``recording`` (removed meanwhile, or already queued).
        """
        Part_ = self.m.Part
        with self.db.atomic():
            job = self._transition(
                job_id, [JobStatus.RECORDING], "queued", status=JobStatus.QUEUED.value, size_bytes=size_bytes,
                mtime=mtime, content_hash=content_hash, duration_seconds=duration_seconds,
                declared_seconds=declared_seconds, warning=warning,
            )
            Part_.update(end_seconds=duration_seconds,
                         processed_seconds=fn.MIN(Part_.processed_seconds, duration_seconds)).where(
                (Part_.job == job_id) & (Part_.idx == 0)
            ).execute()
        return self.require_job(job.id)

    @translating
    def declared_seconds(self, job_id: int) -> float | None:
        Job_ = self.m.Job
        return Job_.select(Job_.declared_seconds).where(Job_.id == job_id).scalar()

    # --------------------------------------------------------- job facts

    @translating
    def set_detected_language(self, job_id: int, language: str) -> None:
        Job_ = self.m.Job
        Job_.update(detected_language=language).where(Job_.id == job_id).execute()

    @translating
    def set_route(self, job_id: int, model: str, language: str) -> None:
        """Settle an ``auto`` job's model and language (its speed history then counts for that model)."""
        Job_ = self.m.Job
        Job_.update(model=model, detected_language=language).where(Job_.id == job_id).execute()

    def _transition(
        self, job_id: int, allowed: Sequence[JobStatus], action: str, *, event: str | None = None, held: bool = False, **values
    ) -> Job:
        """Apply ``values`` if the job is in one of ``allowed``; otherwise explain why not.

        Args:
            event: a webhook event to put in the outbox in the same transaction (see ``AutomationPart.queue_event``).
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
                self._outbox.queue_event(event, job_id, held=held)
        if not changed:
            job = self.get_job(job_id)
            if job is None:
                raise JobStateError(f"There is no job {job_id}.")
            raise JobStateError(f"Job {job_id} is {job.status.value}; it cannot be {action}.")
        return self.require_job(job_id)

    @translating
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

    @translating
    def mark_failed(self, job_id: int, error: str, cause: str | None = None) -> Job:
        """Fail a job with a message for people and a short ``cause`` code for analytics."""
        return self._transition(
            job_id,
            [JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.RECORDING],
            "failed",
            event="job.failed",
            status=JobStatus.FAILED.value,
            error=error,
            failure_cause=cause or "other",
            finished_at=time.time(),
            **_NOT_WAITING,
        )

    @translating
    def set_warning(self, job_id: int, warning: str) -> None:
        Job_ = self.m.Job
        Job_.update(warning=warning, updated_at=time.time()).where(Job_.id == job_id).execute()

    @translating
    def record_exports(self, job_id: int, files: Sequence[ExportedFile], *, automatic: bool = False) -> None:
        """Remember files written for a job (an earlier record of the same path is replaced).

        Args:
            automatic: these are the automatic exports on completion (``exported_paths``).
        """
        Job_ = self.m.Job
        with self.db.atomic():
            row = Job_.get_or_none(Job_.id == job_id)
            if row is None:
                return
            known = {item[0]: item for item in json.loads(row.exports)} if row.exports else {}
            for written in files:
                known[written.path] = [written.path, written.size, written.mtime_ns]
            values = dict(exports=json.dumps(list(known.values())))
            if automatic:
                values["exported_paths"] = json.dumps([written.path for written in files])
            Job_.update(**values).where(Job_.id == job_id).execute()

    @translating
    def update_estimates(self, estimates: dict[int, tuple[float | None, float | None]]) -> None:
        """Record (eta_seconds, estimated_completion) for active jobs."""
        Job_ = self.m.Job
        with self.db.atomic():
            for job_id, (eta, completion) in estimates.items():
                Job_.update(eta_seconds=eta, estimated_completion=completion).where(
                    (Job_.id == job_id) & (Job_.status.in_([s.value for s in ACTIVE_STATUSES]))
                ).execute()

    # -------------------------------------------------------------- control

    @translating
    def pause(self, job_id: int) -> Job:
        # A paused job has no time left until it is resumed: its estimate goes with it.
        return self._transition(
            job_id, [JobStatus.QUEUED, JobStatus.RUNNING], "paused", status=JobStatus.PAUSED.value, speed=None,
            eta_seconds=None, estimated_completion=None,
        )

    @translating
    def resume(self, job_id: int) -> Job:
        return self._transition(job_id, [JobStatus.PAUSED], "resumed", status=JobStatus.QUEUED.value)

    @translating
    def cancel(self, job_id: int) -> Job:
        return self._transition(
            job_id,
            list(ACTIVE_STATUSES),
            "cancelled",
            status=JobStatus.CANCELLED.value,
            finished_at=time.time(),
            **_NOT_WAITING,
        )

    @translating
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

    @translating
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

    @translating
    def delete_job(self, job_id: int) -> None:
        Job_ = self.m.Job
        with self.db.atomic():
            row = Job_.get_or_none(Job_.id == job_id)
            if row is None:
                raise JobStateError(f"There is no job {job_id}.")
            if row.status == JobStatus.RUNNING.value:
                raise JobStateError(f"Job {job_id} is running; cancel it before removing it.")
            row.delete_instance(recursive=True)

    @translating
    def recover_abandoned(self, running_elsewhere: Iterable[int] = (), *, keep_remote: bool = False) -> list[Job]:
        """Put jobs left ``running`` by a process that died back in the queue, keeping their place.

        Called once at engine start-up, before any new work; their progress and segments stay,
        so each of their parts continues from its last committed segment. Open run records
        are closed as ``interrupted``.

        Args:
            running_elsewhere: ids of jobs a live worker is decoding; they are left alone.
            keep_remote: leave runs handed to remote workers open (with their parts and jobs
                running): the coordinator adopts them and ingests what they sent meanwhile.
        """
        Job_, Part_, Run = self.m.Job, self.m.Part, self.m.Run
        skip = list(running_elsewhere)
        now = time.time()
        with self.db.atomic():
            kept_parts: list[tuple[int, int]] = []
            if keep_remote:
                kept_parts = list(
                    Run.select(Run.job, Run.part).where(Run.ended_at.is_null() & Run.queue.is_null(False)).tuples()
                )
            kept_jobs = sorted({job_id for job_id, _ in kept_parts})
            condition = Job_.status == JobStatus.RUNNING.value
            if skip or kept_jobs:
                condition &= Job_.id.not_in(skip + kept_jobs)
            ids = [row.id for row in Job_.select(Job_.id).where(condition)]
            if ids:
                Job_.update(status=JobStatus.QUEUED.value, speed=None, updated_at=now).where(Job_.id.in_(ids)).execute()
            # Parts left running by a dead worker, whatever their job's status now (it may
            # have been paused or cancelled after the worker died).
            orphans = Part_.status == PartStatus.RUNNING.value
            if skip:
                orphans &= Part_.job.not_in(skip)
            for job_id, part in kept_parts:
                orphans &= ~((Part_.job == job_id) & (Part_.idx == part))
            Part_.update(status=PartStatus.PENDING.value, speed=None).where(orphans).execute()
            open_runs = Run.ended_at.is_null()
            if skip:
                open_runs &= Run.job.not_in(skip)
            if keep_remote:
                open_runs &= Run.queue.is_null()
            Run.update(ended_at=now, outcome=RunOutcome.INTERRUPTED.value).where(open_runs).execute()
        return [self.require_job(job_id) for job_id in ids]
