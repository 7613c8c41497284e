"""Automation's storage: webhook endpoints, the delivery outbox and its log, watch folders and the files seen in them.

Events are put in the outbox by ``queue_event``, which the jobs and work parts call inside
the transaction that changes a job's status, so an event is recorded if and only if the
change is.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Sequence

import peewee
from peewee import fn

from ..errors import AutomationError
from ..jobs import JobOptions
from ..records import (
    TEST_EVENT,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    WatchFile,
    WatchFileState,
    WatchFolder,
    WebhookEndpoint,
)
from .db import StorePart, translating


class AutomationPart(StorePart):
    """Webhooks, deliveries and watch folders."""

    # ------------------------------------------------------------- webhooks

    def _to_endpoint(self, row) -> WebhookEndpoint:
        return WebhookEndpoint(
            id=row.id,
            url=row.url,
            secret=row.secret,
            events=tuple(name for name in row.events.split(",") if name),
            include=row.include,
            enabled=bool(row.enabled),
            created_at=row.created_at,
        )

    @translating
    def add_webhook(self, url: str, secret: str, events: Sequence[str], include: str = "text") -> WebhookEndpoint:
        row = self.m.Webhook.create(
            url=url, secret=secret, events=",".join(events), include=include, enabled=1, created_at=time.time()
        )
        return self._to_endpoint(row)

    @translating
    def webhooks(self) -> list[WebhookEndpoint]:
        return [self._to_endpoint(row) for row in self.m.Webhook.select().order_by(self.m.Webhook.id)]

    @translating
    def get_webhook(self, webhook_id: int) -> WebhookEndpoint:
        """Raises: AutomationError: there is no such endpoint."""
        row = self.m.Webhook.get_or_none(self.m.Webhook.id == webhook_id)
        if row is None:
            raise AutomationError(f"There is no webhook {webhook_id}.")
        return self._to_endpoint(row)

    @translating
    def remove_webhook(self, webhook_id: int) -> None:
        """Delete an endpoint with its outbox and log. Raises: AutomationError: no such endpoint."""
        with self.db.atomic():
            if not self.m.Webhook.delete().where(self.m.Webhook.id == webhook_id).execute():
                raise AutomationError(f"There is no webhook {webhook_id}.")

    # --------------------------------------------------------------- outbox

    def _job_snapshot(self, job_id: int) -> dict | None:
        """The job's fields a receiver gets, read inside the caller's transaction."""
        Job_, User = self.m.Job, self.m.User
        row = (
            Job_.select(Job_, User.name)
            .join(User, on=(Job_.user == User.id))
            .where(Job_.id == job_id)
            .objects()
            .first()
        )
        if row is None:
            return None
        options = JobOptions.from_json(row.options)
        return {
            "job_id": row.id,
            "user": row.name,
            "file_name": Path(row.source_path).name,
            "path": row.source_path,
            "status": row.status,
            "duration_seconds": round(row.duration_seconds, 3),
            "processing_seconds": round(row.processing_seconds, 3),
            "model": row.model,  # the model that decodes it (for "auto": the one chosen, once chosen)
            "language": options.language or row.detected_language,
            "error": row.error,
            "created_at": row.created_at,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
        }

    def queue_event(self, event: str, job_id: int, *, held: bool = False) -> int:
        """Put ``event`` in the outbox for every enabled endpoint that wants it (call inside a transaction).

        Args:
            held: not deliverable until ``release_deliveries`` (a completed job's exports
                are written after its status changes, and the payload may link to them).

        Returns:
            How many deliveries were queued.
        """
        Webhook, Delivery_ = self.m.Webhook, self.m.Delivery
        endpoints = [row for row in Webhook.select().where(Webhook.enabled == 1) if event in row.events.split(",")]
        if not endpoints:
            return 0
        snapshot = self._job_snapshot(job_id)
        if snapshot is None:
            return 0
        now = time.time()
        Delivery_.insert_many(
            [
                dict(
                    webhook=row.id,
                    event=event,
                    job_id=job_id,
                    snapshot=json.dumps(snapshot),
                    state=DeliveryState.PENDING.value,
                    next_attempt_at=None if held else now,
                    created_at=now,
                )
                for row in endpoints
            ]
        ).execute()
        return len(endpoints)

    @translating
    def release_deliveries(self, job_id: int) -> None:
        """Make a job's held deliveries due now (its exports are written)."""
        Delivery_ = self.m.Delivery
        Delivery_.update(next_attempt_at=time.time()).where(
            (Delivery_.job_id == job_id)
            & (Delivery_.state == DeliveryState.PENDING.value)
            & Delivery_.next_attempt_at.is_null()
            & (Delivery_.event != TEST_EVENT)
        ).execute()

    @translating
    def release_held_deliveries(self, except_jobs: Iterable[int] = ()) -> int:
        """Release deliveries a dead process held (it stopped between a completion and its export)."""
        Delivery_ = self.m.Delivery
        condition = (
            (Delivery_.state == DeliveryState.PENDING.value)
            & Delivery_.next_attempt_at.is_null()
            & (Delivery_.event != TEST_EVENT)
        )
        skip = list(except_jobs)
        if skip:
            condition &= Delivery_.job_id.not_in(skip)
        return Delivery_.update(next_attempt_at=time.time()).where(condition).execute()

    @translating
    def queue_test_delivery(self, webhook_id: int, snapshot: dict) -> Delivery:
        """A held ``webhook.test`` delivery for one endpoint; the caller sends it at once."""
        self.get_webhook(webhook_id)
        row = self.m.Delivery.create(
            webhook=webhook_id,
            event=TEST_EVENT,
            job_id=None,
            snapshot=json.dumps(snapshot),
            state=DeliveryState.PENDING.value,
            next_attempt_at=None,
            created_at=time.time(),
        )
        return self.get_delivery(row.id)

    def _deliveries(self, where, order=None, limit: int | None = None) -> list[Delivery]:
        Delivery_, Webhook = self.m.Delivery, self.m.Webhook
        query = (
            Delivery_.select(Delivery_, Webhook.url, Webhook.secret, Webhook.include)
            .join(Webhook, on=(Delivery_.webhook == Webhook.id))
            .where(where)
            .order_by(*(order or (Delivery_.id,)))
        )
        if limit:
            query = query.limit(limit)
        return [
            Delivery(
                id=row.id,
                endpoint_id=row.webhook_id,
                url=row.url,
                secret=row.secret,
                include=row.include,
                event=row.event,
                job_id=row.job_id,
                snapshot=row.snapshot,
                body=row.body,
                state=DeliveryState(row.state),
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at,
                created_at=row.created_at,
                finished_at=row.finished_at,
                last_error=row.last_error,
            )
            for row in query.objects()
        ]

    @translating
    def get_delivery(self, delivery_id: int) -> Delivery:
        found = self._deliveries(self.m.Delivery.id == delivery_id)
        if not found:
            raise AutomationError(f"There is no delivery {delivery_id}.")
        return found[0]

    @translating
    def deliveries(self, job_id: int | None = None) -> list[Delivery]:
        Delivery_ = self.m.Delivery
        return self._deliveries(Delivery_.job_id == job_id if job_id is not None else Delivery_.id > 0)

    def _due(self, now: float):
        Delivery_ = self.m.Delivery
        return (
            (Delivery_.state == DeliveryState.PENDING.value)
            & Delivery_.next_attempt_at.is_null(False)
            & (Delivery_.next_attempt_at <= now)
        )

    @translating
    def due_deliveries(self, now: float, limit: int = 20, endpoint_id: int | None = None) -> list[Delivery]:
        """Pending deliveries whose next attempt is due (of one endpoint, or all), oldest due first."""
        Delivery_ = self.m.Delivery
        condition = self._due(now)
        if endpoint_id is not None:
            condition &= Delivery_.webhook == endpoint_id
        return self._deliveries(condition, (Delivery_.next_attempt_at, Delivery_.id), limit)

    @translating
    def endpoints_with_due_deliveries(self, now: float) -> list[int]:
        """Ids of the endpoints that have a delivery due at ``now``."""
        Delivery_ = self.m.Delivery
        query = Delivery_.select(Delivery_.webhook).where(self._due(now)).distinct().tuples()
        return sorted(endpoint_id for (endpoint_id,) in query)

    @translating
    def next_delivery_due(self) -> float | None:
        """When the earliest pending (released) delivery is due, or None if none is."""
        Delivery_ = self.m.Delivery
        return (
            Delivery_.select(fn.MIN(Delivery_.next_attempt_at))
            .where((Delivery_.state == DeliveryState.PENDING.value) & Delivery_.next_attempt_at.is_null(False))
            .scalar()
        )

    @translating
    def freeze_body(self, delivery_id: int, body: str) -> None:
        """Keep the body sent at the first attempt, so every retry sends the same bytes."""
        Delivery_ = self.m.Delivery
        Delivery_.update(body=body).where((Delivery_.id == delivery_id) & Delivery_.body.is_null()).execute()

    @translating
    def record_attempt(
        self,
        delivery_id: int,
        *,
        attempted_at: float,
        duration_seconds: float,
        status_code: int | None,
        error: str | None,
        outcome: str,
        next_attempt_at: float | None = None,
    ) -> int | None:
        """Log one attempt and move the delivery on, in one transaction; returns the attempt's number.

        Args:
            outcome: ``delivered``, ``retry`` (due again at ``next_attempt_at``) or ``failed``.
        """
        Delivery_, Attempt = self.m.Delivery, self.m.DeliveryAttempt
        with self.db.atomic():
            row = Delivery_.get_or_none(Delivery_.id == delivery_id)
            if row is None:  # its endpoint was removed meanwhile
                return None
            number = row.attempts + 1
            Attempt.create(
                delivery=delivery_id,
                attempt=number,
                attempted_at=attempted_at,
                duration_seconds=duration_seconds,
                status_code=status_code,
                error=error,
                outcome=outcome,
            )
            state = {"delivered": DeliveryState.DELIVERED, "failed": DeliveryState.FAILED}.get(outcome, DeliveryState.PENDING)
            Delivery_.update(
                attempts=number,
                state=state.value,
                next_attempt_at=next_attempt_at if state == DeliveryState.PENDING else None,
                finished_at=None if state == DeliveryState.PENDING else time.time(),
                last_error=error or (f"HTTP {status_code}" if status_code and outcome != "delivered" else None),
            ).where(Delivery_.id == delivery_id).execute()
        return number

    @translating
    def delivery_log(self, limit: int | None = None, webhook_id: int | None = None) -> list[DeliveryAttempt]:
        """Every attempt, newest last (``limit``: only the newest that many)."""
        Delivery_, Attempt, Webhook = self.m.Delivery, self.m.DeliveryAttempt, self.m.Webhook
        query = (
            Attempt.select(Attempt, Delivery_.webhook, Delivery_.event, Delivery_.job_id, Webhook.url)
            .join(Delivery_, on=(Attempt.delivery == Delivery_.id))
            .join(Webhook, on=(Delivery_.webhook == Webhook.id))
            .order_by(Attempt.id.desc())
        )
        if webhook_id is not None:
            query = query.where(Delivery_.webhook == webhook_id)
        if limit:
            query = query.limit(limit)
        rows = list(query.objects())
        rows.reverse()
        return [
            DeliveryAttempt(
                id=row.id,
                delivery_id=row.delivery_id,
                endpoint_id=row.webhook,
                url=row.url,
                event=row.event,
                job_id=row.job_id,
                attempt=row.attempt,
                attempted_at=row.attempted_at,
                duration_seconds=row.duration_seconds,
                status_code=row.status_code,
                error=row.error,
                outcome=row.outcome,
            )
            for row in rows
        ]

    # -------------------------------------------------------- watch folders

    def _to_watch_folder(self, row) -> WatchFolder:
        return WatchFolder(
            id=row.id,
            path=row.path,
            user=row.user,
            model=row.model or None,
            language=row.language or None,
            output_dir=row.output_dir or None,
            formats=tuple(name for name in (row.formats or "").split(",") if name),
            after=row.after,
            move_to=row.move_to or None,
            created_at=row.created_at,
        )

    @translating
    def add_watch_folder(
        self,
        path: str,
        *,
        user: str,
        model: str | None = None,
        language: str | None = None,
        output_dir: str | None = None,
        formats: Sequence[str] = (),
        after: str = "keep",
        move_to: str | None = None,
    ) -> WatchFolder:
        """Raises: AutomationError: the folder is already watched."""
        try:
            row = self.m.WatchFolder.create(
                path=path,
                user=user,
                model=model,
                language=language,
                output_dir=output_dir,
                formats=",".join(formats),
                after=after,
                move_to=move_to,
                created_at=time.time(),
            )
        except peewee.IntegrityError:
            raise AutomationError(f"{path} is already a watch folder.") from None
        return self._to_watch_folder(row)

    @translating
    def watch_folders(self) -> list[WatchFolder]:
        return [self._to_watch_folder(row) for row in self.m.WatchFolder.select().order_by(self.m.WatchFolder.id)]

    @translating
    def remove_watch_folder(self, folder_id: int) -> None:
        """Stop watching a folder (its files and jobs stay). Raises: AutomationError: no such folder."""
        with self.db.atomic():
            if not self.m.WatchFolder.delete().where(self.m.WatchFolder.id == folder_id).execute():
                raise AutomationError(f"There is no watch folder {folder_id}.")

    def _to_watch_file(self, row) -> WatchFile:
        return WatchFile(
            id=row.id,
            folder_id=row.folder_id,
            path=row.path,
            size_bytes=row.size_bytes,
            mtime=row.mtime,
            changed_at=row.changed_at,
            state=WatchFileState(row.state),
            job_id=row.job_id,
            message=row.message,
        )

    @translating
    def watch_files(self, folder_id: int | None = None, states: Sequence[WatchFileState] | None = None) -> list[WatchFile]:
        File_ = self.m.WatchFile
        query = File_.select().order_by(File_.id)
        if folder_id is not None:
            query = query.where(File_.folder == folder_id)
        if states is not None:
            query = query.where(File_.state.in_([WatchFileState(state).value for state in states]))
        return [self._to_watch_file(row) for row in query]

    @translating
    def note_watch_file(
        self, folder_id: int, path: str, size_bytes: int, mtime: float, seen_at: float, state: WatchFileState
    ) -> WatchFile:
        """Record a file seen for the first time in a watch folder."""
        row = self.m.WatchFile.create(
            folder=folder_id, path=path, size_bytes=size_bytes, mtime=mtime, changed_at=seen_at, state=WatchFileState(state).value
        )
        return self._to_watch_file(row)

    @translating
    def update_watch_file(self, file_id: int, **values) -> None:
        """Change a seen file's size, mtime, changed_at, state, job_id or message."""
        File_ = self.m.WatchFile
        if "state" in values:
            values["state"] = WatchFileState(values["state"]).value
        File_.update(**values).where(File_.id == file_id).execute()

    @translating
    def forget_watch_file(self, file_id: int) -> None:
        self.m.WatchFile.delete().where(self.m.WatchFile.id == file_id).execute()
