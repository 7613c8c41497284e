"""The app's side of scale-out: dispatch parts to remote workers through RQ, and ingest what they send back.

SQLite stays the source of truth. The ``Coordinator`` (a ``BackgroundService``) claims
work with the engine's own scheduler (``Engine.claim_next``: fairness and per-user limits
as for local work) only while the live workers have room, so the backlog never lives in
Redis. Each claimed part becomes one RQ job (a JSON ``PartPayload``) on the queue of its
size pool. Workers write every segment to one Redis Stream; the coordinator reads it with
a consumer group, commits each segment through ``PartRun`` (the same commit as a local
decode, deduplicated by the run's event number) and acknowledges only after the commit,
so a crash of either side never loses or duplicates a segment.

A run is given up (its part goes back to the queue at its last committed segment, for
another worker or the local engine) when its worker's heartbeat lapses, when its media
URL expired, or when Redis cannot be reached (then the local engine decodes until Redis
is back, and the window says so). Pause, cancel and removal set the run's stop key. When
the app quits, open remote runs stay open: workers finish their parts and the next start
adopts the runs and ingests what arrived meanwhile.

Only this thread talks to Redis in the app; the engine's runner asks ``takes_work()``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..background import BackgroundService
from ..display import redacted
from ..engine import routing
from ..engine.core import Claim, Engine
from ..engine.execution import PartRun
from ..engine.whisper import DecodedSegment
from ..errors import StoreError, TranscriberError
from ..jobs import TRANSLATE, Job, Part, RunOutcome, Word
from . import protocol
from .media import MediaError, SharedFolder
from .protocol import Event, PartPayload

log = logging.getLogger(__name__)

# How long a part may take on a worker before RQ stops it: generous, parts are at most hours.
MIN_JOB_TIMEOUT_SECONDS = 3600
READ_BATCH = 1000
RECONNECT_SECONDS = 5.0
SWEEP_EVERY_SECONDS = 30.0
RQ_CHECK_EVERY_SECONDS = 10.0
# Heartbeats come every 2 s: looking at the workers more often than this only costs Redis calls.
WORKERS_EVERY_SECONDS = 0.5


@dataclass(frozen=True)
class WorkerInfo:
    """A live remote worker, as its heartbeat describes it."""

    name: str
    host: str
    queues: tuple[str, ...]
    capacity: int
    model: str
    busy: str
    seen: float  # its last heartbeat (POSIX seconds)


@dataclass
class _Remote:
    """A part being decoded remotely: the run that commits its segments, and where it was sent."""

    run: PartRun
    run_id: int
    queue: str
    worker: str | None = None

    @property
    def job(self) -> Job:
        return self.run.job

    @property
    def part(self) -> Part:
        return self.run.part


def connect(url: str):
    """A Redis client for ``url`` with short timeouts (an unreachable Redis must not hang the app)."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=15)


def live_workers(connection) -> list[WorkerInfo]:
    """Every worker whose heartbeat has not lapsed, by name."""
    found = []
    for key in connection.scan_iter(match=protocol.worker_key("*"), count=200):
        data = {_text(k): _text(v) for k, v in connection.hgetall(key).items()}
        if not data:
            continue
        name = _text(key)[len(protocol.worker_key("")):]
        found.append(
            WorkerInfo(
                name=name,
                host=data.get("host", ""),
                queues=tuple(q for q in data.get("queues", "").split(",") if q),
                capacity=int(data.get("capacity") or 1),
                model=data.get("model", ""),
                busy=data.get("busy", ""),
                seen=float(data.get("seen") or 0),
            )
        )
    return sorted(found, key=lambda worker: worker.name)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Coordinator(BackgroundService):
    """Dispatches parts to remote workers and ingests their segments (see the module docstring).

    Args:
        engine: the served data folder's engine.
        redis_url: where the workers' Redis is.
        media: how workers get the audio (``media.SharedFolder`` or ``media.ObjectStore``).
        run_locally: hands a claimed part to the local engine (a part no live worker's queue takes).
    """

    name = "scale-out"
    interval = 0.05  # between reads; each read blocks up to BLOCK_MS for news anyway
    BLOCK_MS = 200

    def __init__(self, engine: Engine, redis_url: str, *, media=None, run_locally: Callable[[Claim], None] | None = None,
                 connection=None):
        super().__init__()
        self.engine = engine
        self.redis_url = redis_url
        self.media = media or SharedFolder()
        self.run_locally = run_locally
        self._connection = connection
        self._runs: dict[int, _Remote] = {}  # run id -> the remote part; only this thread touches it
        self._workers: list[WorkerInfo] = []
        self._healthy = False
        self._adopted = False
        self._retry_at = 0.0
        self._next_sweep = 0.0
        self._next_rq_check = 0.0
        self._next_workers_look = 0.0
        self._read_from = "0"  # first this consumer's unacknowledged entries (after a crash), then new ones
        self._lock = threading.Lock()  # guards what other threads read: workers, health, notice
        self.notice: str | None = None

    # ------------------------------------------------------------ for other threads

    def workers(self) -> list[WorkerInfo]:
        """The live workers at the last look (any thread; no Redis call)."""
        with self._lock:
            return list(self._workers)

    def takes_work(self) -> bool:
        """Whether remote workers take the queue now (Redis reachable, at least one worker alive)."""
        with self._lock:
            return self._healthy and bool(self._workers)

    def prepare(self) -> bool:
        """Connect and look at the workers once, before any thread starts; False when Redis cannot be reached.

        ``Serving.start`` calls it first, so recovery knows whether remote runs can be
        adopted and the local runner does not take work the workers are there for.
        """
        try:
            self._connect(adopt=False)
            self._look_at_workers()
            return True
        except Exception as error:
            self._lost_redis(error)
            return False

    def summary(self) -> str:
        """``2 remote workers: gpu-box, office-2``, or what keeps them from working."""
        if self.notice:
            return self.notice
        workers = self.workers()
        if not workers:
            return "no remote worker is running: decoding here"
        names = ", ".join(worker.name for worker in workers)
        return f"{len(workers)} remote worker{'s' if len(workers) != 1 else ''}: {names}"

    # ------------------------------------------------------------------ the loop

    def _redis(self):
        if self._connection is None:
            self._connection = connect(self.redis_url)
        return self._connection

    def step(self) -> bool:
        import redis

        if not self._healthy and time.monotonic() < self._retry_at:
            return False
        try:
            if not self._healthy:
                self._connect()
            if time.monotonic() >= self._next_workers_look:
                self._look_at_workers()
            more = self._ingest()
            self._watch_runs()
            self._dispatch()
            if time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
                self.media.forget(self._job_still_needs_media)
            return more
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            self._lost_redis(error)
            return False
        except redis.exceptions.ResponseError as error:  # wrong password, ACL: say so, keep trying
            self._lost_redis(error)
            return False
        except StoreError as error:  # the store cannot be written: the engine reports it; try again soon
            log.warning("scale-out paused: %s", error)
            return False

    def _connect(self, *, adopt: bool = True) -> None:
        import redis

        connection = self._redis()
        connection.ping()
        try:
            connection.xgroup_create(protocol.STREAM, protocol.GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        if adopt and not self._adopted:
            self.adopt()
        with self._lock:
            self._healthy = True
            if self.notice:
                log.info("Redis at %s is back: remote workers take the queue again", redacted(self.redis_url))
            self.notice = None
        self._read_from = "0"

    def adopt(self) -> None:
        """Take over the remote runs a previous app left open (its workers may still be decoding them).

        ``Serving.start`` calls it after recovery and before any thread starts, so the
        runner never mistakes those runs for orphans.
        """
        self._adopted = True
        store = self.engine.store
        for open_run in store.work.open_remote_runs():
            job = store.jobs.get_job(open_run.job_id)
            parts = {part.index: part for part in store.work.parts(open_run.job_id)} if job else {}
            part = parts.get(open_run.part)
            if job is None or part is None:
                store.work.end_run(open_run.run_id, RunOutcome.INTERRUPTED)
                continue
            self.engine.hold(job, part)
            run = PartRun(self.engine.part_context(job.id, part.index), job, part, open_run.run_id)
            run.begin()
            self._runs[open_run.run_id] = _Remote(run, open_run.run_id, open_run.queue, open_run.worker)
            log.info("job %d part %d: adopted its remote run %d", job.id, part.index, open_run.run_id)

    def _lost_redis(self, error: Exception) -> None:
        was_healthy = self._healthy
        with self._lock:
            self._healthy = False
            self._workers = []
            self.notice = (
                f"Redis at {redacted(self.redis_url)} cannot be reached ({error}): "
                "decoding here until it is back; nothing queued is lost."
            )
        self._retry_at = time.monotonic() + RECONNECT_SECONDS
        self._connection = None
        for remote in list(self._runs.values()):
            self._give_up(remote, RunOutcome.LOST, tell_worker=False)
        if was_healthy:
            log.warning("%s", self.notice)
            self.engine.listener.engine_notice(self.notice)

    def finish(self) -> None:
        """The app quits: leave remote runs open for the next start (workers finish their parts)."""
        for remote in self._runs.values():
            self.engine.let_go(remote.job.id, remote.part.index)
        self._runs.clear()

    def cleanup(self) -> None:
        self.engine.store.close()

    # --------------------------------------------------------------- workers

    def _look_at_workers(self) -> None:
        self._next_workers_look = time.monotonic() + WORKERS_EVERY_SECONDS
        workers = live_workers(self._redis())
        with self._lock:
            self._workers = workers

    def _pools_served(self) -> set[str]:
        return {queue for worker in self.workers() for queue in worker.queues}

    # -------------------------------------------------------------- dispatch

    def _dispatch(self) -> None:
        workers = self.workers()
        capacity = sum(worker.capacity for worker in workers)
        served = self._pools_served()
        while not self.stopping and len(self._runs) < capacity:
            claim = self.engine.claim_next(streams=capacity)
            if claim is None:
                return
            self.engine.listener.job_changed(claim.job)
            run = PartRun(self.engine.part_context(claim.job.id, claim.part.index), claim.job, claim.part, claim.run_id)
            settings = run.context.settings
            options = run.job.options
            if not run.job.routed and options.language:
                given = options.language
                run.settle(routing.for_translation(given) if options.task == TRANSLATE else routing.for_given_language(given))
            job = run.job
            if job.routed and (job.language or job.model.endswith(".en")):
                # The language is known, so every part speaks it: cut a long job for the workers.
                run.split(capacity)
                job = run.job
            part = run.part
            queue = protocol.pool_of(part.end - part.processed_seconds, settings.size_pool_threshold_minutes)
            if queue not in served:
                log.info("job %d part %d: no live worker takes %s; decoded here", job.id, part.index, queue)
                if self.run_locally is not None:
                    self.run_locally(Claim(run.job, part, claim.run_id))
                    continue
                self.engine.end_claim(run.job, part, claim.run_id, RunOutcome.STOPPED)
                return
            try:
                self._send(_Remote(run, claim.run_id, queue))
            except MediaError as error:
                self.engine.fail(job.id, str(error), "media")
                self.engine.end_claim(run.job, part, claim.run_id, RunOutcome.FAILED)

    def _send(self, remote: _Remote) -> None:
        from rq import Queue, Retry
        from rq.serializers import JSONSerializer

        run, job = remote.run, remote.job
        start, prompt = run.begin()
        part = run.part
        payload = PartPayload(
            job_id=job.id,
            part=part.index,
            run_id=remote.run_id,
            media=self.media.media_for(job),
            duration_seconds=job.duration_seconds,
            part_start=part.start,
            start=start,
            end=None if run.is_last else part.end,
            options={**job.options.__dict__},
            model=job.routed_model or job.model,
            language=job.language,
            prompt=prompt,
            next_seq=0,
        )
        self.engine.store.work.mark_remote(remote.run_id, remote.queue)
        self._runs[remote.run_id] = remote
        seconds = part.end - start
        Queue(remote.queue, connection=self._redis(), serializer=JSONSerializer).enqueue(
            protocol.TASK,
            payload.to_json(),
            job_id=protocol.rq_job_id(job.id, part.index, remote.run_id),
            job_timeout=max(MIN_JOB_TIMEOUT_SECONDS, int(seconds * 4)),
            result_ttl=3600,
            failure_ttl=7 * 86400,
            retry=Retry(max=3, interval=[5, 30, 120]),
        )
        log.info("job %d part %d (%s from %.1f s) sent to %s as run %d", job.id, part.index, job.file_name, start,
                 remote.queue, remote.run_id)

    # ---------------------------------------------------------------- ingest

    def _ingest(self) -> bool:
        """Read and commit a batch of events; True when the batch was full (more are waiting)."""
        connection = self._redis()
        block = None if self._read_from == "0" else self.BLOCK_MS
        reply = connection.xreadgroup(protocol.GROUP, protocol.CONSUMER, {protocol.STREAM: self._read_from},
                                      count=READ_BATCH, block=block)
        entries = reply[0][1] if reply else []
        if self._read_from == "0" and not entries:
            self._read_from = ">"
            return True
        handled = []
        segments: dict[int, list[Event]] = {}  # run id -> its segment events not committed yet
        for entry_id, fields in entries:
            handled.append(entry_id)
            if not fields:  # a pending entry already trimmed away has no fields
                continue
            event = Event.from_fields(fields)
            if event.kind == "segment" and event.run_id in self._runs:
                segments.setdefault(event.run_id, []).append(event)
                continue
            if event.run_id in segments:  # what the run sent before this news comes first
                self._keep(segments.pop(event.run_id))
            self._handle(event)
        for events in segments.values():  # one transaction per run for the whole batch
            self._keep(events)
        if handled:
            pipe = connection.pipeline(transaction=False)
            pipe.xack(protocol.STREAM, protocol.GROUP, *handled)
            pipe.xtrim(protocol.STREAM, minid=_text(handled[-1]), approximate=True)
            pipe.execute()
        return len(entries) >= READ_BATCH

    def _handle(self, event: Event) -> None:
        remote = self._runs.get(event.run_id)
        if remote is None:
            # News of a run given up (its part continues elsewhere) or of another app's: drop it,
            # and make sure that worker stops rather than decoding for nobody.
            if event.kind not in ("done", "stopped", "failed", "expired"):
                self._ask_stop(event.job_id, event.part, event.run_id)
            return
        data = event.data
        try:
            if event.kind == "started":
                remote.worker = data.get("worker") or remote.worker
                self.engine.store.work.set_run_worker(remote.run_id, remote.worker)
                self.engine.listener.job_changed(remote.job)
            elif event.kind == "route":
                remote.run.settle(routing.Route(data["model"], data.get("language"), data.get("reason", "")))
            elif event.kind == "done":
                outcome = remote.run.finish(int(data.get("damaged_packets") or 0), float(data.get("missing_seconds") or 0.0),
                                            language=data.get("language"))
                self._end(remote, outcome)
            elif event.kind == "failed":
                self.engine.fail(remote.job.id, data.get("error") or "a remote worker failed", data.get("cause") or "unexpected")
                self._end(remote, RunOutcome.FAILED)
            elif event.kind == "expired":
                log.info("job %d part %d: its media URL expired; sent again with a fresh one", remote.job.id, remote.part.index)
                self._end(remote, RunOutcome.EXPIRED)
            elif event.kind == "stopped":
                self._end(remote, RunOutcome.STOPPED)
        except TranscriberError as error:
            if isinstance(error, StoreError):
                raise
            self.engine.fail(remote.job.id, str(error), "unexpected")
            self._end(remote, RunOutcome.FAILED)

    def _keep(self, events: list[Event]) -> None:
        """Commit consecutive segment events of one run in one transaction."""
        remote = self._runs.get(events[0].run_id)
        if remote is None:
            return
        pieces = [
            DecodedSegment(
                start=data["start"], end=data["end"], text=data["text"],
                words=tuple(Word(*item) for item in data.get("words") or ()), tokens=tuple(data.get("tokens") or ()),
                avg_logprob=0.0,
            )
            for data in (event.data for event in events)
        ]
        if not remote.run.keep_all(pieces, remote_seq=events[0].data["seq"], processing_seconds=events[-1].data.get("elapsed")):
            self._give_up(remote, RunOutcome.STOPPED)  # paused, cancelled or removed meanwhile

    # ------------------------------------------------------------- watching

    def _watch_runs(self) -> None:
        live = {worker.name for worker in self.workers()}
        served = self._pools_served()
        for remote in list(self._runs.values()):
            job, part = remote.job, remote.part
            if self.engine.stop_requested(job.id, part.index):
                self._give_up(remote, RunOutcome.STOPPED)  # pause, cancel, removal
            elif remote.worker is not None and remote.worker not in live:
                log.warning("job %d part %d: worker %s stopped beating; the part continues elsewhere",
                            job.id, part.index, remote.worker)
                self._give_up(remote, RunOutcome.LOST)
            elif remote.worker is None and remote.queue not in served:
                log.warning("job %d part %d: no live worker takes %s any more", job.id, part.index, remote.queue)
                self._give_up(remote, RunOutcome.LOST)
        if self._runs and time.monotonic() >= self._next_rq_check:
            self._next_rq_check = time.monotonic() + RQ_CHECK_EVERY_SECONDS
            self._check_rq_jobs()

    def _check_rq_jobs(self) -> None:
        """Give up runs whose RQ job ended without a word from its worker (RQ's own timeout, a crash RQ saw)."""
        from rq.job import Job as RQJob
        from rq.job import JobStatus as RQStatus
        from rq.serializers import JSONSerializer

        remotes = list(self._runs.values())
        ids = [protocol.rq_job_id(r.job.id, r.part.index, r.run_id) for r in remotes]
        found = RQJob.fetch_many(ids, connection=self._redis(), serializer=JSONSerializer)
        for remote, rq_job in zip(remotes, found):
            status = rq_job.get_status(refresh=False) if rq_job is not None else None
            if rq_job is None or status in (RQStatus.FAILED, RQStatus.STOPPED, RQStatus.CANCELED):
                if remote.run_id not in self._runs:
                    continue
                why = "is gone" if rq_job is None else f"is {status.value}"
                log.warning("job %d part %d: its RQ job %s; the part continues elsewhere", remote.job.id,
                            remote.part.index, why)
                self._give_up(remote, RunOutcome.LOST)

    def _give_up(self, remote: _Remote, outcome: RunOutcome, *, tell_worker: bool = True) -> None:
        """End a run here (its part waits again at its last committed segment) and tell its worker to stop."""
        if tell_worker:
            self._ask_stop(remote.job.id, remote.part.index, remote.run_id)
        self._end(remote, outcome)

    def _ask_stop(self, job_id: int, part: int, run_id: int) -> None:
        connection = self._redis()
        connection.set(protocol.stop_key(job_id, part, run_id), "1", ex=7 * 86400)
        try:
            from rq.job import Job as RQJob
            from rq.serializers import JSONSerializer

            RQJob.fetch(protocol.rq_job_id(job_id, part, run_id), connection=connection,
                        serializer=JSONSerializer).cancel()
        except Exception:  # started, finished or gone already: the stop key does it
            pass

    def _end(self, remote: _Remote, outcome: RunOutcome) -> None:
        self._runs.pop(remote.run_id, None)
        final = self.engine.end_claim(remote.job, remote.part, remote.run_id, outcome)
        if final.status.is_final:
            self._next_sweep = 0.0  # remove its uploaded audio soon

    def _job_still_needs_media(self, job_id: int) -> bool:
        job = self.engine.store.jobs.get_job(job_id)
        return job is not None and not job.status.is_final
