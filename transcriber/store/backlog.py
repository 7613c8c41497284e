"""The backlog: files a person asked for beyond their queue limit, waiting (durably) for room.

The per-user queue limit keeps its meaning (at most N jobs queued per user), but a batch
that somebody asked for is not refused: the files past the limit wait here, in order,
with what intake learned of them, and become jobs as room frees (``promote``).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..jobs import Job, JobOptions, WaitingFile, WaitingState
from .db import StorePart, translating


class BacklogPart(StorePart):
    """Files waiting for room in their user's queue."""

    def __init__(self, db, models, path: Path, jobs):
        super().__init__(db, models, path)
        self._jobs = jobs  # users, and the insert that makes a waiting file a job

    def _to_waiting(self, row, user_name: str) -> WaitingFile:
        return WaitingFile(
            id=row.id,
            user=user_name,
            source_path=row.source_path,
            size_bytes=row.size_bytes,
            mtime=row.mtime,
            content_hash=row.content_hash,
            duration_seconds=row.duration_seconds,
            declared_seconds=row.declared_seconds,
            warning=row.warning,
            options=JobOptions.from_json(row.options),
            state=WaitingState(row.state),
            job_id=row.job_id,
            message=row.message,
            created_at=row.created_at,
        )

    def _select(self, where) -> list[WaitingFile]:
        Backlog, User = self.m.Backlog, self.m.User
        query = Backlog.select(Backlog, User.name).join(User, on=(Backlog.user == User.id)).where(where).order_by(Backlog.id)
        return [self._to_waiting(row, row.name) for row in query.objects()]

    @translating
    def add(
        self,
        *,
        user: str,
        source_path: str,
        size_bytes: int,
        mtime: float,
        content_hash: str,
        duration_seconds: float,
        declared_seconds: float | None,
        warning: str | None,
        options: JobOptions,
    ) -> WaitingFile:
        """Put a checked file at the end of the backlog; the same file (path and content) already waiting is not added twice."""
        Backlog = self.m.Backlog
        user_id = self._jobs.ensure_user(user)
        with self.db.atomic():
            for row in Backlog.select().where(
                (Backlog.user == user_id) & (Backlog.content_hash == content_hash)
                & (Backlog.source_path == source_path) & (Backlog.state == WaitingState.WAITING.value)
            ):
                if JobOptions.from_json(row.options) == options:
                    return self.get(row.id)
            now = time.time()
            row = Backlog.create(
                user=user_id, source_path=source_path, size_bytes=size_bytes, mtime=mtime, content_hash=content_hash,
                duration_seconds=duration_seconds, declared_seconds=declared_seconds, warning=warning,
                options=options.to_json(), state=WaitingState.WAITING.value, created_at=now, updated_at=now,
            )
        return self.get(row.id)

    @translating
    def get(self, waiting_id: int) -> WaitingFile | None:
        found = self._select(self.m.Backlog.id == waiting_id)
        return found[0] if found else None

    @translating
    def waiting(self, user: str | None = None) -> list[WaitingFile]:
        """Files still waiting for room, oldest first."""
        Backlog, User = self.m.Backlog, self.m.User
        condition = Backlog.state == WaitingState.WAITING.value
        if user is not None:
            condition &= User.name == user
        return self._select(condition)

    @translating
    def count_waiting(self, user: str | None = None) -> int:
        return len(self.waiting(user))

    @translating
    def promote(self, waiting_id: int, *, max_queued: int) -> Job | None:
        """Make a waiting file a job at the end of the queue, in one transaction.

        Returns:
            The job, or None if the file is no longer waiting.

        Raises:
            IntakeRefused: the user's queue is still full.
        """
        Backlog = self.m.Backlog
        with self.db.atomic():
            entry = self.get(waiting_id)
            if entry is None or entry.state is not WaitingState.WAITING:
                return None
            job = self._jobs.add_job(
                user=entry.user,
                source_path=entry.source_path,
                size_bytes=entry.size_bytes,
                mtime=entry.mtime,
                content_hash=entry.content_hash,
                duration_seconds=entry.duration_seconds,
                declared_seconds=entry.declared_seconds,
                options=entry.options,
                max_queued=max_queued,
                warning=entry.warning,
            )
            Backlog.update(state=WaitingState.QUEUED.value, job_id=job.id, updated_at=time.time()).where(
                Backlog.id == waiting_id
            ).execute()
        return job

    @translating
    def refuse(self, waiting_id: int, message: str) -> None:
        """The file changed or vanished while it waited: it will not become a job."""
        Backlog = self.m.Backlog
        Backlog.update(state=WaitingState.REFUSED.value, message=message, updated_at=time.time()).where(
            (Backlog.id == waiting_id) & (Backlog.state == WaitingState.WAITING.value)
        ).execute()

    @translating
    def cancel(self, waiting_ids) -> int:
        """Take files back out of the backlog; returns how many were still waiting."""
        Backlog = self.m.Backlog
        return Backlog.update(state=WaitingState.CANCELLED.value, updated_at=time.time()).where(
            Backlog.id.in_(list(waiting_ids)) & (Backlog.state == WaitingState.WAITING.value)
        ).execute()
