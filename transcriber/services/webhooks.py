"""Webhook deliveries: sign, POST and retry the events the store put in its outbox.

The engine never waits for a receiver: status changes only add rows to the outbox, and a
``WebhookDispatcher`` sends them from threads of their own: one sender per endpoint, so
a receiver that is slow (or never answers) delays only its own deliveries. Each request
is bounded as a whole (connecting, sending and every byte of the answer) by the timeout,
and redirects are never followed (a POST turned into a GET would be logged as delivered).
A delivery that meets a network error, a timeout, a 5xx (or 408/425/429) is tried again
with exponential back-off until ``RetryPolicy`` gives up; a 3xx or any other 4xx ends it
at once. Every attempt is logged in the store, credentials in URLs never. Since the outbox
is in the database, a delivery left pending when the app stops is sent by the next
process that serves the data folder.

Receivers verify ``X-Transcriber-Signature`` = ``sha256=`` + hex HMAC-SHA256, keyed with
the endpoint's secret, of ``X-Transcriber-Timestamp + "." + body``; refusing old
timestamps refuses replays. The Standard Webhooks headers (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``) are sent too, so receivers can verify with
that spec's libraries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import io
import json
import logging
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from .. import __version__
from ..background import BackgroundService
from ..display import redacted
from ..errors import AutomationError, StoreError
from ..export import render
from ..jobs import Transcript
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
STANDARD_SECRET_PREFIX = "whsec_"


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
    """The URL, checked the way the sender will parse it.

    Raises:
        AutomationError: not an http(s) URL with a host, a port that is not a number, or
            spaces or control characters (which no HTTP request line may hold).
    """
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AutomationError(f"{redacted(url)!r} is not an http:// or https:// URL with a host.")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise AutomationError(f"{redacted(url)!r} holds a space or a control character; encode it (%20) or remove it.")
    try:
        parts.port  # noqa: B018 (parsing it is the check)
    except ValueError:
        raise AutomationError(f"{redacted(url)!r} has a port that is not a number from 0 to 65535.") from None
    return url


def standard_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``.

    A secret in that spec's ``whsec_<base64>`` form is keyed with its decoded bytes, any
    other secret with its UTF-8 bytes.
    """
    key = secret.encode()
    if secret.startswith(STANDARD_SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(STANDARD_SECRET_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            pass  # not valid base64: the whole text is the key, like any other secret
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


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
                segments = store.transcripts.segments(job.id)
                if any(s.speaker for s in segments):  # who said what: "Name: ..." paragraphs, as the txt export
                    body["transcript"] = render("txt", Transcript(job=job, segments=tuple(segments))).strip()
                else:
                    body["transcript"] = " ".join(s.text.strip() for s in segments if s.text.strip())
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str | None
    duration_seconds: float


class _DeadlineReader(io.RawIOBase):
    """A socket's reader that never waits past one deadline, however slowly the bytes drip in."""

    def __init__(self, sock, raw: io.RawIOBase, deadline: float):
        super().__init__()
        self._sock = sock
        self._raw = raw  # the socket's own reader: it keeps the socket open while the answer is read
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the receiver did not answer in time")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _connection(parts, timeout: float, deadline: float) -> http.client.HTTPConnection:
    class Response(http.client.HTTPResponse):
        def __init__(self, sock, *args, **kwargs):
            super().__init__(sock, *args, **kwargs)
            self.fp = io.BufferedReader(_DeadlineReader(sock, self.fp.detach(), deadline))

    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    connection.response_class = Response
    return connection


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    """POST once, bounded as a whole by ``timeout``; never follows a redirect.

    Returns:
        The status code of any HTTP answer (a 3xx with its ``Location`` as the error), or
        an error text for anything else (refused, reset, timed out, malformed URL).
    """
    started = time.monotonic()
    deadline = started + timeout
    connection = None
    try:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = dict(headers)
        if parts.username is not None:  # user:pass@host: HTTP basic authentication, as curl sends it
            credentials = f"{parts.username}:{parts.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        connection = _connection(parts, timeout, deadline)
        connection.connect()
        connection.sock.settimeout(max(0.001, deadline - time.monotonic()))  # sending counts against the same deadline
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        while response.read(65536) and time.monotonic() < deadline:
            pass  # the answer's body is not used; reading it lets the connection end cleanly
        if 300 <= response.status < 400:
            location = response.getheader("Location") or "no Location"
            error = f"redirected ({response.status}) to {redacted(location)}; a POST is never re-sent elsewhere"
            return PostResult(response.status, error, time.monotonic() - started)
        return PostResult(response.status, None, time.monotonic() - started)
    except TimeoutError:
        return PostResult(None, f"timed out: no complete answer within {timeout:g} s", time.monotonic() - started)
    except (OSError, ValueError, http.client.HTTPException) as error:  # refused, reset, TLS, malformed URL
        return PostResult(None, str(error) or type(error).__name__, time.monotonic() - started)
    finally:
        if connection is not None:
            connection.close()


def classify(result: PostResult) -> str:
    """``delivered``, ``retry`` or ``failed`` (a 3xx or 4xx that waiting will not fix)."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return "delivered"
    if code is None or code >= 500 or code in RETRYABLE_4XX:
        return "retry"
    return "failed"


class WebhookDispatcher(BackgroundService):
    """Sends due deliveries from the store's outbox; ``start`` runs one sender thread per endpoint.

    Args:
        store: the data folder's Store.
        policy: retries and back-off (default: from the settings, read at each attempt).
        timeout: seconds allowed per request, as a whole (default: the ``webhook_timeout_seconds`` setting).
        poll_seconds: how often the threads look for due deliveries when idle.
        poster: sends one request (tests may pass their own; the default is ``post``).
    """

    name = "webhooks"

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
        self._senders: dict[int, _EndpointSender] = {}

    # --------------------------------------------------------- synchronous

    def deliver_due(self, now: float | None = None, stop: threading.Event | None = None, endpoint_id: int | None = None) -> int:
        """Attempt every delivery due at ``now`` once (until ``stop`` is set); returns how many were attempted.

        Args:
            endpoint_id: only that endpoint's deliveries (a sender thread's share).
        """
        due = self.store.automation.due_deliveries(now if now is not None else time.time(), endpoint_id=endpoint_id)
        for delivery in due:
            if stop is not None and stop.is_set():
                break
            self.attempt(delivery)
        return len(due)

    def attempt(self, delivery: Delivery, *, retry: bool = True) -> DeliveryAttempt:
        """POST one delivery and log the attempt; returns the logged attempt.

        Whatever goes wrong with this one delivery (its body, its URL, the receiver) is
        logged as its attempt's error; nothing reaches the other deliveries.
        """
        attempted_at = time.time()
        try:
            raw = self._body(delivery).encode("utf-8")
            timestamp = str(int(attempted_at))
            message_id = f"msg_{delivery.id}"
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": f"transcriber/{__version__}",
                EVENT_HEADER: delivery.event,
                DELIVERY_HEADER: str(delivery.id),
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(delivery.secret, timestamp, raw),
                "webhook-id": message_id,
                "webhook-timestamp": timestamp,
                "webhook-signature": standard_signature(delivery.secret, message_id, timestamp, raw),
            }
            settings = self.store.settings.read()
            policy = self.policy or RetryPolicy.from_settings(settings)
            result = self.poster(delivery.url, raw, headers, self.timeout or settings.webhook_timeout_seconds)
        except StoreError:
            raise
        except Exception as error:  # a body that cannot be built, a URL the sender cannot take
            log.exception("webhook delivery %d could not be sent", delivery.id)
            policy = self.policy or RetryPolicy()
            result = PostResult(None, f"could not be sent: {type(error).__name__}: {error}", 0.0)
        outcome = classify(result)
        next_at = None
        if outcome == "retry":
            next_at = policy.next_attempt(delivery.attempts + 1, delivery.created_at, time.time()) if retry else None
            if next_at is None:
                outcome = "failed"
        log.info(
            "webhook %s %s (delivery %d, attempt %d): %s",
            delivery.event,
            redacted(delivery.url),
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

    def _body(self, delivery: Delivery) -> str:
        """The delivery's body, built and frozen at its first attempt so every retry sends the same bytes."""
        if delivery.body is not None:
            return delivery.body
        body = build_body(delivery, self.store)
        self.store.automation.freeze_body(delivery.id, body)
        return self.store.automation.get_delivery(delivery.id).body or body

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

    # ------------------------------------------------------------- threads

    def step(self) -> bool:
        """Keep one sender per endpoint that has deliveries due, and wake them."""
        try:
            endpoints = self.store.automation.endpoints_with_due_deliveries(time.time())
        except StoreError as error:
            log.warning("webhook deliveries paused: %s", error)
            return False
        for endpoint_id in endpoints:
            sender = self._senders.get(endpoint_id)
            if sender is None:
                sender = self._senders[endpoint_id] = _EndpointSender(self, endpoint_id)
                sender.start()
            sender.wake()
        return False

    def stop(self, timeout: float | None = 2.0) -> bool:
        """Stop after the requests in flight, waiting for them at most ``timeout`` seconds.

        Quitting never waits for a slow receiver: an attempt still in flight then is not
        logged and is made again by the next process (delivery is at least once).
        """
        stopped = super().stop(timeout)
        for sender in list(self._senders.values()):
            sender.request_stop()
        for sender in list(self._senders.values()):
            stopped = sender.stop(timeout) and stopped
        self._senders.clear()
        return stopped

    def cleanup(self) -> None:
        self.store.close()  # this thread's connection


class _EndpointSender(BackgroundService):
    """Delivers one endpoint's due deliveries, in order, on a thread of its own."""

    def __init__(self, dispatcher: WebhookDispatcher, endpoint_id: int):
        super().__init__()
        self.name = f"webhooks-{endpoint_id}"
        self.interval = dispatcher.interval
        self._dispatcher = dispatcher
        self._endpoint_id = endpoint_id

    def step(self) -> bool:
        try:
            return self._dispatcher.deliver_due(stop=self._stop, endpoint_id=self._endpoint_id) > 0
        except StoreError as error:
            log.warning("webhook deliveries paused: %s", error)
            return False

    def cleanup(self) -> None:
        self._dispatcher.store.close()  # this thread's connection
