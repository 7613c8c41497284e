"""The work on jobs: parts, claiming them for a decode stream, committing segments, and the record of each run.

``commit_progress`` is the heart of durability: the segments a worker finished, its
part's cursor and the job's progress are written in one transaction, so after a crash a
part continues exactly after its last committed segment.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from peewee import fn

from ..jobs import Job, JobStatus, Part, PartStatus, RemoteRun, RunOutcome, RunRecord, Segment
from .db import StorePart, translating


class WorkPart(StorePart):
    """Parts of jobs and the runs that decode them."""

    def __init__(self, db, models, path: Path, jobs, outbox):
        super().__init__(db, models, path)
        self._jobs = jobs  # hands out the Job dataclasses
        self._outbox = outbox

    def _to_part(self, row) -> Part:
        return Part(
            job_id=row.job_id,
            index=row.idx,
            start=row.start_seconds,
            end=row.end_seconds,
            processed_seconds=row.processed_seconds,
            status=PartStatus(row.status),
        )

    @translating
    def parts(self, job_id: int) -> list[Part]:
        Part_ = self.m.Part
        return [self._to_part(row) for row in Part_.select().where(Part_.job == job_id).order_by(Part_.idx)]

    @translating
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

    @translating
    def jobs_with_pending_parts(self) -> list[Job]:
        """Running jobs that still have parts nobody is decoding, in the order they started."""
        Part_, Job_ = self.m.Part, self.m.Job
        pending = Part_.select(Part_.job).where(Part_.status == PartStatus.PENDING.value)
        return self._jobs.select_jobs(
            (Job_.status == JobStatus.RUNNING.value) & Job_.id.in_(pending), (Job_.started_at, Job_.id)
        )

    @translating
    def claim_work(self, job_id: int) -> tuple[Job, Part, int] | None:
        """Take the next pending part of a job to decode, starting the job if it is queued.

        A job starts as one part, the whole file; the engine may cut it into more once it
        runs (``split_fresh_job``).

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
                    self._outbox.queue_event("job.started", job_id)
            if not Part_.select().where(Part_.job == job_id).exists():
                Part_.create(job=job_id, idx=0, start_seconds=0.0, end_seconds=row.duration_seconds,
                             processed_seconds=0.0, status=PartStatus.PENDING.value)
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
                pid=os.getpid(),
                started_at=now,
                start_seconds=part.processed_seconds,
                end_seconds=part.processed_seconds,
            )
            part_row = Part_.get_by_id(part.id)
        return self._jobs.require_job(job_id), self._to_part(part_row), run.id

    @translating
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
        remote_seq: int | None = None,
    ) -> list[Segment] | None:
        """Store finished segments of one part and advance the part and its job, in one transaction.

        Args:
            segments: new segments (their ``index`` is assigned here).
            processed_seconds: the part's cursor after them.
            processing_seconds: decoding time this run has spent so far.
            speed: this part's live speed (audio s per s); the job's is the sum over its parts.
            tokens: the decoder's tokens, one list per segment, kept so the part can continue
                later with the same context.
            remote_seq: for a remote run, the event number of the first of ``segments`` (the
                others follow it in order): segments read again after a crash (numbers not above
                the run's last stored one) are not stored twice; news of a run that was given up
                returns None.

        Returns:
            The stored segments with their indexes, or None (and nothing stored) if the job or
            the part is no longer running here: it was paused, cancelled or removed elsewhere,
            and the worker should stop.
        """
        Job_, Part_, Run = self.m.Job, self.m.Part, self.m.Run
        now = time.time()
        with self.db.atomic():
            job_row = Job_.get_or_none((Job_.id == job_id) & (Job_.status == JobStatus.RUNNING.value))
            part_row = Part_.get_or_none(
                (Part_.job == job_id) & (Part_.idx == part_index) & (Part_.status == PartStatus.RUNNING.value)
            )
            if job_row is None or part_row is None:
                return None
            run = Run.get_by_id(run_id)
            if remote_seq is not None:
                if run.ended_at is not None:
                    return None
                seen = 0 if run.remote_seq is None else max(0, run.remote_seq - remote_seq + 1)
                if segments and seen >= len(segments):
                    return []
                if segments:
                    last_seq = remote_seq + len(segments) - 1
                    segments, tokens = segments[seen:], (tokens[seen:] if tokens else tokens)
                    Run.update(remote_seq=last_seq).where(Run.id == run_id).execute()
            Part_.update(
                processed_seconds=fn.MAX(Part_.processed_seconds, processed_seconds), speed=speed
            ).where(Part_.id == part_row.id).execute()
            Run.update(end_seconds=processed_seconds, processing_seconds=processing_seconds).where(
                Run.id == run_id
            ).execute()
            stored = self._insert_segments(job_id, part_index, segments, tokens)
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

    def _insert_segments(
        self, job_id: int, part_index: int, segments: Sequence[Segment], tokens: Sequence[Sequence[int]] | None
    ) -> list[Segment]:
        """Append segments to a job, numbered after its last one (call inside a transaction)."""
        Segment_ = self.m.Segment
        stored: list[Segment] = []
        if not segments:
            return stored
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
        return stored

    @translating
    def commit_live(
        self,
        job_id: int,
        segments: Sequence[Segment],
        *,
        processed_seconds: float,
        recorded_seconds: float,
        tokens: Sequence[Sequence[int]] | None = None,
    ) -> list[Segment] | None:
        """Store segments decoded live from a recording, with its cursor and length so far, in one transaction.

        The job stays ``recording``; its part 0 (the whole file) keeps the cursor, so the
        engine finishes the job from there once it is queued (at Stop, or after a crash).
        Live decoding time is not added to the job's processing time: it is paced by the
        speaker, and counting it would make the model's speed history (the estimates) wrong.

        Args:
            processed_seconds: the live cursor: everything before it is in the transcript.
            recorded_seconds: how much audio the file holds now (the job's length so far).

        Returns:
            The stored segments with their indexes, or None (nothing stored) when the job is
            no longer ``recording`` (removed, or the recording was stopped meanwhile).
        """
        Job_, Part_ = self.m.Job, self.m.Part
        with self.db.atomic():
            job_row = Job_.get_or_none((Job_.id == job_id) & (Job_.status == JobStatus.RECORDING.value))
            if job_row is None:
                return None
            processed = max(job_row.processed_seconds, min(processed_seconds, recorded_seconds))
            Part_.update(processed_seconds=processed, end_seconds=recorded_seconds).where(
                (Part_.job == job_id) & (Part_.idx == 0)
            ).execute()
            stored = self._insert_segments(job_id, 0, segments, tokens)
            Job_.update(
                processed_seconds=processed,
                duration_seconds=max(job_row.duration_seconds, recorded_seconds),
                updated_at=time.time(),
            ).where(Job_.id == job_id).execute()
        return stored

    @translating
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

    @translating
    def finish_part(self, job_id: int, part_index: int, *, hold_last: bool = False) -> bool:
        """Mark a part decoded to its end; returns True when every part of the job is.

        Args:
            hold_last: when every other part is done, leave this one running (and return
                True): the job has a stage after decoding (its speakers), and a crash during
                it must bring the part back with its cursor at the end, not lose the stage.
        """
        Part_ = self.m.Part
        with self.db.atomic():
            if hold_last and not Part_.select().where(
                (Part_.job == job_id) & (Part_.idx != part_index) & (Part_.status != PartStatus.DONE.value)
            ).exists():
                return True
            Part_.update(status=PartStatus.DONE.value, speed=None).where(
                (Part_.job == job_id) & (Part_.idx == part_index)
            ).execute()
            return not Part_.select().where(
                (Part_.job == job_id) & (Part_.status != PartStatus.DONE.value)
            ).exists()

    @translating
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

    @translating
    def end_run(self, run_id: int, outcome: RunOutcome) -> bool:
        """Close a run; returns False if it was closed already (its later news is ignored)."""
        Run = self.m.Run
        changed = (
            Run.update(ended_at=time.time(), outcome=RunOutcome(outcome).value)
            .where((Run.id == run_id) & Run.ended_at.is_null())
            .execute()
        )
        return bool(changed)

    @translating
    def mark_remote(self, run_id: int, queue: str) -> None:
        """The run was sent to a remote worker through ``queue``."""
        self.m.Run.update(queue=queue).where(self.m.Run.id == run_id).execute()

    @translating
    def set_run_worker(self, run_id: int, worker: str) -> None:
        """The remote worker that took the run."""
        self.m.Run.update(worker=worker).where(self.m.Run.id == run_id).execute()

    @translating
    def open_remote_runs(self) -> list[RemoteRun]:
        """Runs sent to remote workers that have not ended, oldest first."""
        Run = self.m.Run
        rows = Run.select().where(Run.ended_at.is_null() & Run.queue.is_null(False)).order_by(Run.id)
        return [RemoteRun(row.id, row.job_id, row.part, row.queue, row.worker, row.remote_seq) for row in rows]

    @translating
    def workers_of(self, job_ids: Sequence[int]) -> dict[int, str]:
        """For running jobs: the remote worker of each open run (``local`` for this machine), joined by ``, ``."""
        Run = self.m.Run
        found: dict[int, list[str]] = {}
        if not job_ids:
            return {}
        rows = Run.select(Run.job, Run.queue, Run.worker).where(Run.ended_at.is_null() & Run.job.in_(list(job_ids)))
        for row in rows.order_by(Run.part):
            name = "local" if row.queue is None else (row.worker or f"({row.queue})")
            found.setdefault(row.job_id, [])
            if name not in found[row.job_id]:
                found[row.job_id].append(name)
        return {job_id: ", ".join(names) for job_id, names in found.items()}

    @translating
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

    @translating
    def runs(self, job_id: int) -> list[RunRecord]:
        """Every attempt at the job's parts, oldest first."""
        Run = self.m.Run
        return [
            RunRecord(
                part=row.part,
                attempt=row.attempt,
                pid=row.pid,
                started_at=row.started_at,
                ended_at=row.ended_at,
                start_seconds=row.start_seconds,
                end_seconds=row.end_seconds,
                processing_seconds=row.processing_seconds,
                outcome=RunOutcome(row.outcome) if row.outcome else None,
                queue=row.queue,
                worker=row.worker,
            )
            for row in Run.select().where(Run.job == job_id).order_by(Run.id)
        ]
