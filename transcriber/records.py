"""The automation's records: webhook endpoints, deliveries and their attempts, watch folders, analytics facts.

Plain dataclasses and str Enums, like ``jobs``: the store hands them out, the services act
on them, and nothing here imports either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

EVENTS = ("job.started", "job.completed", "job.failed")
TEST_EVENT = "webhook.test"
DEFAULT_EVENTS = ("job.completed", "job.failed")


class DeliveryState(str, Enum):
    """Where a delivery in the outbox stands (stored as its value)."""

    PENDING = "pending"  # waiting for its next attempt (or held until its job's export is written)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # a 4xx answer, or retries ran out

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class WebhookEndpoint:
    """A receiver of job events. ``include`` is ``text`` (the transcript in the body) or ``files`` (links to exports)."""

    id: int
    url: str
    secret: str
    events: tuple[str, ...]
    include: str = "text"
    enabled: bool = True
    created_at: float = 0.0


@dataclass(frozen=True)
class Delivery:
    """One event to POST to one endpoint; ``body`` is frozen at the first attempt so retries send the same bytes."""

    id: int
    endpoint_id: int
    url: str
    secret: str
    include: str
    event: str
    job_id: int | None
    snapshot: str  # JSON of the job's fields when the event happened
    body: str | None
    state: DeliveryState
    attempts: int
    next_attempt_at: float | None  # None: held (not yet released)
    created_at: float
    finished_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of a delivery, as logged: a status code, or the error that stopped it."""

    id: int
    delivery_id: int
    endpoint_id: int
    url: str
    event: str
    job_id: int | None
    attempt: int
    attempted_at: float
    duration_seconds: float
    status_code: int | None
    error: str | None
    outcome: str  # delivered, retry, failed


@dataclass(frozen=True)
class WatchFolder:
    """A folder whose new media files are queued by a rule.

    ``after`` is ``keep`` or ``move``; with ``move`` the source goes to ``move_to`` once
    its job completed. Empty ``model``/``language``/``formats`` mean the settings' defaults.
    """

    id: int
    path: str
    user: str
    model: str | None = None
    language: str | None = None
    output_dir: str | None = None
    formats: tuple[str, ...] = ()
    after: str = "keep"
    move_to: str | None = None
    created_at: float = 0.0

    @property
    def after_text(self) -> str:
        return f"move:{self.move_to}" if self.after == "move" else "keep"


class WatchFileState(str, Enum):
    """What became of a file seen in a watch folder (stored as its value)."""

    SETTLING = "settling"  # seen, maybe still growing
    WAITING = "waiting"  # stable, but a limit said not now (retried at each scan)
    QUEUED = "queued"  # its job is in the queue
    DONE = "done"  # its job completed (exported, moved)
    FAILED = "failed"  # its job failed or was cancelled
    DUPLICATE = "duplicate"  # the same content was already transcribed with the same settings
    REFUSED = "refused"  # intake refused it (not media, too large, ...)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class WatchFile:
    """A file seen in a watch folder: its size and mtime when last looked at, and what became of it."""

    id: int
    folder_id: int
    path: str
    size_bytes: int
    mtime: float
    changed_at: float  # when size or mtime were last seen to change
    state: WatchFileState
    job_id: int | None = None
    message: str | None = None


@dataclass(frozen=True)
class JobFacts:
    """The figures of one finished (completed or failed) job that analytics aggregate."""

    job_id: int
    model: str
    status: str
    size_bytes: int
    duration_seconds: float
    processing_seconds: float
    created_at: float
    started_at: float | None
    finished_at: float
    failure_cause: str | None
