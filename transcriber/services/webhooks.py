"""Webhook deliveries: sign, POST and retry the events the store put in its outbox.

The engine never waits for a receiver: status changes only add rows to the outbox, and a
``WebhookDispatcher`` sends them from a thread of its own, with a timeout per request.
A delivery that meets a network error, a timeout, a 5xx (or 408/425/429) is tried again
with exponential back-off until ``RetryPolicy`` gives up; any other 4xx ends it at once.
Every attempt is logged in the store. Since the outbox is in the database, a delivery
left pending when the app stops is sent by the next process that serves the data folder.

Receivers verify ``X-Transcriber-Signature`` = ``sha256=`` + hex HMAC-SHA256, keyed with
the endpoint's secret, of ``X-Transcriber-Timestamp + "." + body``; refusing old
timestamps refuses replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import __version__
from ..background import BackgroundService
from ..errors import AutomationError, StoreError
from ..records import EVENTS, Delivery, DeliveryAttempt
from ..timefmt import iso_utc

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Transcriber-Signature"
TIMESTAMP_HEADER = "X-Transcriber-Timestamp"
EVENT_HEADER = "X-Transcriber-Event"
DELIVERY_HEADER = "X-Transcriber-Delivery"
INCLUDES = ("text", "files")
# Answers worth trying again: the receiver is overloaded or asks us to slow down.
RETRYABLE_4XX = (408, 425, 429)


def new_secret() -> str:
    """A random secret for an endpoint added without one."""
    return secrets.token_hex(20)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Transcriber-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``timestamp.body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None, tolerance: float = 300) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent (refuses replays)."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


def parse_events(text: str | None) -> tuple[str, ...]:
    """Validate a comma-separated list of events.

    Raises:
        AutomationError: an unknown event name, or none at all.
    """
    names = tuple(dict.fromkeys(name.strip() for name in (text or "").split(",") if name.strip()))
    unknown = [name for name in names if name not in EVENTS]
    if unknown or not names:
        raise AutomationError(f"Unknown event {', '.join(unknown) or repr(text)}; choose from {', '.join(EVENTS)}.")
    return names


def check_url(url: str) -> str:
    """Raises: AutomationError: not an http(s) URL."""
    from urllib.parse import urlparse

    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise AutomationError(f"{url!r} is not an http:// or https:// URL.")
    return url.strip()


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a failing delivery is tried again.

    The n-th retry waits ``min(first_delay * factor ** (n - 1), max_delay)`` seconds; a
    delivery is given up after ``max_attempts`` attempts or once ``give_up_after`` seconds
    have passed since its event, whichever comes first.
    """

    first_delay: float = 30.0
    factor: float = 2.0
    max_delay: float = 3600.0
    max_attempts: int = 12
    give_up_after: float = 24 * 3600.0

    def __post_init__(self):
        if self.first_delay < 0 or self.factor < 1 or self.max_delay < 0 or self.max_attempts < 1 or self.give_up_after < 0:
            raise ValueError(f"invalid retry policy: {self}")

    @classmethod
    def from_settings(cls, settings) -> "RetryPolicy":
        return cls(first_delay=float(settings.webhook_first_retry_seconds), give_up_after=settings.webhook_retry_hours * 3600.0)

    def next_attempt(self, attempts_made: int, created_at: float, now: float) -> float | None:
        """When to try again after ``attempts_made`` failed attempts, or None to give up."""
        if attempts_made >= self.max_attempts:
            return None
        delay = min(self.first_delay * self.factor ** (attempts_made - 1), self.max_delay)
        due = now + delay
        return due if due - created_at <= self.give_up_after else None


def build_body(delivery: Delivery, store) -> str:
    """The JSON body of a delivery: the job's snapshot, plus its transcript or links to its exports.

    Built at the first attempt (a completed job's exports exist by then) and frozen.
    """
    snapshot = json.loads(delivery.snapshot)
    body = {"event": delivery.event, "delivery_id": delivery.id, "occurred_at": iso_utc(delivery.created_at)}
    body.update({key: value for key, value in snapshot.items() if key not in ("created_at", "started_at", "finished_at")})
    for key in ("created_at", "started_at", "finished_at"):
        if key in snapshot:
            body[key] = iso_utc(snapshot[key])
    if delivery.event == "job.completed" and delivery.job_id is not None:
        job = store.jobs.get_job(delivery.job_id)
        if job is not None:
            body["processing_seconds"] = round(job.processing_seconds, 3)
            body["language"] = job.language
            if delivery.include == "files":
                body["files"] = [Path(path).resolve().as_uri() for path in job.exported_paths]
            else:
                body["transcript"] = " ".join(s.text.strip() for s in store.transcripts.segments(job.id) if s.text.strip())
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str | None
    duration_seconds: float


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    """POST once; a status code for any HTTP answer, an error text for anything else."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
            return PostResult(response.status, None, time.monotonic() - started)
    except urllib.error.HTTPError as error:
        return PostResult(error.code, None, time.monotonic() - started)
    except urllib.error.URLError as error:
        return PostResult(None, str(error.reason), time.monotonic() - started)
    except (OSError, ValueError) as error:  # timeouts, resets, malformed URLs
        return PostResult(None, str(error) or type(error).__name__, time.monotonic() - started)


def classify(result: PostResult) -> str:
    """``delivered``, ``retry`` or ``failed`` (a 4xx that waiting will not fix)."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return "delivered"
    if code is None or code >= 500 or code in RETRYABLE_4XX:
        return "retry"
    return "failed"


class WebhookDispatcher(BackgroundService):
    """Sends due deliveries from the store's outbox; ``start`` runs it on a thread of its own.

    Args:
        store: the JobStore of the data folder.
        policy: retries and back-off (default: from the settings, read at each attempt).
        timeout: seconds allowed per request (default: the ``webhook_timeout_seconds`` setting).
        poll_seconds: how often the thread looks for due deliveries when idle.
        poster: sends one request (tests may pass their own; the default is urllib).
    """

    def __init__(
        self,
        store,
        *,
        policy: RetryPolicy | None = None,
        timeout: float | None = None,
        poll_seconds: float = 1.0,
        poster: Callable[[str, bytes, dict, float], PostResult] = post,
    ):
        super().__init__()
        self.store = store
        self.policy = policy
        self.timeout = timeout
        self.interval = poll_seconds
        self.poster = poster

    # --------------------------------------------------------- synchronous

    def deliver_due(self, now: float | None = None, stop: threading.Event | None = None) -> int:
        """Attempt every delivery due at ``now`` once (until ``stop`` is set); returns how many were attempted."""
        due = self.store.automation.due_deliveries(now if now is not None else time.time())
        for delivery in due:
            if stop is not None and stop.is_set():
                break
            self.attempt(delivery)
        return len(due)

    def attempt(self, delivery: Delivery, *, retry: bool = True) -> DeliveryAttempt:
        """POST one delivery and log the attempt; returns the logged attempt."""
        body = delivery.body
        if body is None:
            body = build_body(delivery, self.store)
            self.store.automation.freeze_body(delivery.id, body)
            body = self.store.automation.get_delivery(delivery.id).body or body
        raw = body.encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"transcriber/{__version__}",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.id),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(delivery.secret, timestamp, raw),
        }
        settings = self.store.settings.read()
        policy = self.policy or RetryPolicy.from_settings(settings)
        attempted_at = time.time()
        result = self.poster(delivery.url, raw, headers, self.timeout or settings.webhook_timeout_seconds)
        outcome = classify(result)
        next_at = None
        if outcome == "retry":
            next_at = policy.next_attempt(delivery.attempts + 1, delivery.created_at, time.time()) if retry else None
            if next_at is None:
                outcome = "failed"
        log.info(
            "webhook %s %s (delivery %d, attempt %d): %s",
            delivery.event,
            delivery.url,
            delivery.id,
            delivery.attempts + 1,
            result.status_code or result.error,
        )
        number = self.store.automation.record_attempt(
            delivery.id,
            attempted_at=attempted_at,
            duration_seconds=result.duration_seconds,
            status_code=result.status_code,
            error=result.error,
            outcome=outcome,
            next_attempt_at=next_at,
        )
        return DeliveryAttempt(
            id=0,
            delivery_id=delivery.id,
            endpoint_id=delivery.endpoint_id,
            url=delivery.url,
            event=delivery.event,
            job_id=delivery.job_id,
            attempt=number or delivery.attempts + 1,
            attempted_at=attempted_at,
            duration_seconds=result.duration_seconds,
            status_code=result.status_code,
            error=result.error,
            outcome=outcome,
        )

    def send_test(self, webhook_id: int) -> DeliveryAttempt:
        """Send a ``webhook.test`` event to one endpoint now (once, no retries) and return the logged attempt."""
        now = time.time()
        snapshot = {
            "job_id": None,
            "user": None,
            "file_name": "test.wav",
            "path": None,
            "status": "test",
            "duration_seconds": 0.0,
            "processing_seconds": 0.0,
            "model": None,
            "language": None,
            "error": None,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
        }
        delivery = self.store.automation.queue_test_delivery(webhook_id, snapshot)
        return self.attempt(delivery, retry=False)

    def is_idle(self, within: float = 60.0) -> bool:
        """True when no delivery is due within ``within`` seconds (what ``run --until-idle`` waits for)."""
        due = self.store.automation.next_delivery_due()
        return due is None or due > time.time() + within

    # ------------------------------------------------------------- thread

    name = "webhooks"

    def step(self) -> bool:
        try:
            return self.deliver_due(stop=self._stop) > 0
        except StoreError as error:
            log.warning("webhook deliveries paused: %s", error)
            return False

    def stop(self, timeout: float | None = 2.0) -> bool:
        """Stop after the request in flight, waiting for it at most ``timeout`` seconds.

        Quitting never waits for a slow receiver: an attempt still in flight then is not
        logged and is made again by the next process (delivery is at least once).
        """
        return super().stop(timeout)

    def cleanup(self) -> None:
        self.store.close()  # this thread's connection
