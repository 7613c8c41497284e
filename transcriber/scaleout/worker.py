"""A remote worker: decodes parts the app dispatched through RQ, and sends every segment back on the Stream.

``transcriber worker`` runs ``run_worker``: an RQ ``SimpleWorker`` (jobs run in this
process, so the model stays loaded between them) on the queues it was given, in order,
and a heartbeat thread that keeps the worker's registration alive (the app counts live
workers as its remote capacity, and gives the part of a worker that stops beating to
another). RQ runs ``decode_part`` for each part. It never touches the app's database:
each finished segment goes to the Stream in one MULTI with the run's position, and the
app commits it; a stop key the app sets ends the run at the next segment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from ..background import BackgroundService
from ..engine import routing
from ..engine.core import failure_cause
from ..engine.models import ModelPool
from ..engine.whisper import DecodeRequest, StopDecoding, WhisperBackend, first_window
from ..errors import AudioError, TranscriberError
from ..jobs import TRANSLATE, JobOptions
from . import protocol
from .protocol import Event, PartPayload

log = logging.getLogger(__name__)

# Media files kept in the worker's cache (the parts of one job share one download).
CACHED_MEDIA = 8
WORKER_SOCKET_TIMEOUT = 600


@dataclass
class _State:
    """What the worker process keeps between parts (RQ runs ``decode_part`` in this process)."""

    redis: object = None
    name: str = ""
    models: ModelPool | None = None
    media_map: tuple[tuple[str, str], ...] = ()
    media_cache: Path | None = None
    busy: str = ""


STATE = _State()


def parse_media_map(items) -> tuple[tuple[str, str], ...]:
    """``--media-map SRC=DST`` (several allowed) -> ((SRC, DST), ...), longest source first.

    Raises:
        ValueError: an item without ``=``.
    """
    pairs = []
    for item in items or ():
        source, separator, target = item.partition("=")
        if not separator or not source or not target:
            raise ValueError(f"--media-map takes SRC=DST (the app's folder = this machine's), not {item!r}")
        pairs.append((source.rstrip("/"), target.rstrip("/")))
    return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))


def mapped(path: str, media_map) -> str:
    """``path`` as this worker sees it (the first matching prefix replaced)."""
    for source, target in media_map:
        if path == source or path.startswith(source + "/"):
            return target + path[len(source):]
    return path


class _Heartbeat(BackgroundService):
    """Keeps the worker's registration alive; what the app counts as remote capacity."""

    name = "worker-heartbeat"
    interval = protocol.HEARTBEAT_SECONDS

    def __init__(self, details: dict[str, str]):
        super().__init__()
        self._details = details

    def step(self) -> bool:
        key = protocol.worker_key(STATE.name)
        try:
            pipe = STATE.redis.pipeline()
            pipe.hset(key, mapping={**self._details, "busy": STATE.busy, "seen": str(time.time())})
            pipe.expire(key, protocol.HEARTBEAT_TTL)
            pipe.execute()
        except Exception as error:  # Redis away for a moment: keep trying
            log.warning("heartbeat not sent: %s", error)
        return False


def run_worker(redis_url: str, queues: list[str], *, name: str | None = None, model: str | None = None,
               media_map=(), cache_dir: Path, burst: bool = False, threads: int | None = None,
               device: str = "auto") -> None:
    """Serve the queues until stopped (SIGTERM/Ctrl+C: after the part in hand), or until they are empty with ``burst``."""
    import redis
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    # Longer than RQ's blocking dequeue (it waits up to worker_ttl on the queues); a hung server still ends.
    connection = redis.Redis.from_url(redis_url, socket_timeout=WORKER_SOCKET_TIMEOUT, socket_connect_timeout=5,
                                      health_check_interval=30)
    connection.ping()
    STATE.redis = connection
    STATE.name = name or f"{socket.gethostname()}-{os.getpid()}"
    STATE.models = ModelPool(cache_dir / "models", workers=1, idle_seconds=24 * 3600, cores=threads,
                             device=device)
    STATE.media_map = tuple(media_map)
    STATE.media_cache = cache_dir / "media"
    if model:
        STATE.models.ensure_available(model)
        for needed in (routing.ENGLISH_MODEL, routing.MULTILINGUAL_MODEL) if model == routing.AUTO else (model,):
            settings, _ = STATE.models.acquire(needed)  # loaded now, kept loaded
            STATE.models.release(settings)
    heartbeat = _Heartbeat({"host": socket.gethostname(), "pid": str(os.getpid()), "queues": ",".join(queues),
                            "capacity": "1", "model": model or "", "started": str(time.time())})
    heartbeat.step()
    heartbeat.start()
    try:
        worker = SimpleWorker([Queue(q, connection=connection, serializer=JSONSerializer) for q in queues],
                              connection=connection, serializer=JSONSerializer, name=STATE.name)
        worker.work(burst=burst, logging_level="WARNING")
    finally:
        heartbeat.stop()
        connection.delete(protocol.worker_key(STATE.name))
        STATE.models.shutdown()


# ---------------------------------------------------------------------- the task


def decode_part(payload_json: str) -> str:
    """RQ's task: decode one part and report on the Stream; returns how it ended (for RQ's record only)."""
    payload = PartPayload.from_json(payload_json)
    STATE.busy = f"job {payload.job_id} part {payload.part}"
    reporter = _Reporter(payload)
    try:
        if reporter.stop_asked():  # given up while it waited (or RQ retried a run the app ended)
            reporter.send("stopped")
            return "stopped"
        reporter.send("started", worker=STATE.name, host=socket.gethostname())
        path = _fetch(payload)
        if path is None:
            reporter.send("expired")
            return "expired"
        return _decode(payload, path, reporter)
    except TranscriberError as error:
        reporter.send("failed", error=str(error), cause=failure_cause(error))
        return "failed"
    except OSError as error:
        reporter.send("failed", error=f"The worker {STATE.name} could not read the audio: {error}", cause="audio")
        return "failed"
    except Exception as error:  # a bug: the app fails the job with a message, the worker goes on
        log.exception("part %d/%d failed", payload.job_id, payload.part)
        reporter.send("failed", error=f"Unexpected error on worker {STATE.name} ({type(error).__name__}: {error}).",
                      cause="unexpected")
        return "failed"
    finally:
        STATE.busy = ""


class _Reporter:
    """Writes a run's events to the Stream; each segment in one MULTI with the run's position."""

    def __init__(self, payload: PartPayload):
        self.payload = payload
        self.seq = payload.next_seq
        self.started = time.monotonic()

    def send(self, kind: str, **data) -> None:
        p = self.payload
        STATE.redis.xadd(protocol.STREAM, Event(kind, p.job_id, p.part, p.run_id, data).fields())

    def segment(self, piece, end_limit: float | None) -> None:
        p = self.payload
        end = min(piece.end, end_limit) if end_limit is not None else piece.end
        data = {
            "seq": self.seq, "start": min(piece.start, end), "end": end, "text": piece.text,
            "words": [[w.start, w.end, w.word, w.probability] for w in piece.words], "tokens": list(piece.tokens),
            "position": piece.end, "elapsed": time.monotonic() - self.started,
        }
        pipe = STATE.redis.pipeline(transaction=True)
        pipe.xadd(protocol.STREAM, Event("segment", p.job_id, p.part, p.run_id, data).fields())
        pipe.set(protocol.position_key(p.job_id, p.part, p.run_id), str(piece.end), ex=7 * 86400)
        pipe.execute()
        self.seq += 1

    def stop_asked(self) -> bool:
        p = self.payload
        return bool(STATE.redis.exists(protocol.stop_key(p.job_id, p.part, p.run_id)))


def _fetch(payload: PartPayload) -> str | None:
    """The audio on this machine: the shared folder's path mapped, or the presigned URL downloaded (None: expired)."""
    media = payload.media
    if media.url is None:
        path = mapped(media.path or "", STATE.media_map)
        if not os.path.isfile(path):
            raise AudioError(f"The worker {STATE.name} cannot find {path}: is the shared folder mounted, and --media-map right?")
        return path
    if media.expires_at is not None and media.expires_at <= time.time():
        return None
    cache = STATE.media_cache
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{media.content_hash}.audio"
    if target.is_file() and target.stat().st_size == media.size_bytes:
        os.utime(target)
        return str(target)
    partial = target.with_suffix(".part")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(media.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, open(partial, "ab" if have and response.status == 206 else "wb") as out:
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                out.write(block)
    except urllib.error.HTTPError as error:
        if error.code in (400, 403):  # an expired or refused signature: the app signs a new one
            return None
        raise AudioError(f"The worker {STATE.name} could not download the audio: HTTP {error.code}.") from None
    digest = hashlib.sha256()
    with open(partial, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if media.content_hash and digest.hexdigest() != media.content_hash:
        partial.unlink(missing_ok=True)
        raise AudioError(f"The worker {STATE.name} downloaded the audio, but it is not the file that was queued.")
    os.replace(partial, target)
    for old in sorted(cache.glob("*.audio"), key=lambda item: item.stat().st_mtime)[:-CACHED_MEDIA]:
        old.unlink(missing_ok=True)
    return str(target)


def _decode(payload: PartPayload, path: str, reporter: _Reporter) -> str:
    options = JobOptions(**payload.options)
    model, language = payload.model, payload.language
    end_limit = payload.end
    request = DecodeRequest(path=path, duration_seconds=payload.duration_seconds, start_seconds=payload.start,
                            end_seconds=payload.end, language=language, prompt=payload.prompt, options=options)
    head = None
    if model == routing.AUTO and options.task == TRANSLATE:  # only the multilingual model translates
        route = routing.for_translation(language or _spoken_language(path)[0])
        reporter.send("route", model=route.model, language=route.language, reason=route.reason)
        model, language = route.model, route.language
        request = replace(request, language=language, options=replace(options, model=model))
    if model == routing.AUTO:
        settings, loaded = STATE.models.acquire(routing.ENGLISH_MODEL)
        try:
            english = WhisperBackend(loaded)
            probe = replace(request, language="en", options=replace(options, model=routing.ENGLISH_MODEL))
            head = first_window(english, probe, reporter.stop_asked)
        finally:
            STATE.models.release(settings)
        if head is None:
            reporter.send("stopped")
            return "stopped"
        route = routing.choose(head.mean_logprob, lambda: _spoken_language(path))
        reporter.send("route", model=route.model, language=route.language, reason=route.reason)
        model, language = route.model, route.language
        if model != routing.ENGLISH_MODEL:
            head = None
        request = replace(request, language=language, options=replace(options, model=model))
    settings, loaded = STATE.models.acquire(model)
    try:
        backend = WhisperBackend(loaded)
        decoding = None
        if head is not None:
            for piece in head.pieces:
                reporter.segment(piece, end_limit)
            if head.next_window is None:
                decoding = head.decoding
            else:
                prompt = tuple(token for piece in head.pieces for token in piece.tokens)[-223:]
                request = replace(request, start_seconds=head.next_window, prompt=prompt)
        if decoding is None:
            def on_window(_start: float) -> None:
                if reporter.stop_asked():
                    raise StopDecoding()

            decoding = backend.decode(request, on_window=on_window)
            try:
                for piece in decoding:
                    reporter.segment(piece, end_limit)
                    if reporter.stop_asked():
                        reporter.send("stopped")
                        return "stopped"
            except StopDecoding:
                reporter.send("stopped")
                return "stopped"
        reporter.send("done", position=payload.end if payload.end is not None else payload.duration_seconds,
                      missing_seconds=decoding.missing_seconds, damaged_packets=decoding.damaged_packets,
                      language=decoding.language)
        return "done"
    finally:
        STATE.models.release(settings)


def _spoken_language(path: str) -> tuple[str, float]:
    settings, loaded = STATE.models.acquire(routing.MULTILINGUAL_MODEL)
    try:
        return WhisperBackend(loaded).spoken_language(path)
    finally:
        STATE.models.release(settings)
