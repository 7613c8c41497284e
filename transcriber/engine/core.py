"""The engine in plain Python: intake, job control, choosing work and the transcription loop.

Threads are someone else's business: ``engine.qt`` runs ``execute`` on a QThreadPool, and
tests call ``run_until_idle`` to do the same work synchronously. Listener callbacks are
made on whatever thread runs the job.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

from ..audio.decode import format_clock
from ..config import Settings
from ..errors import (
    AudioError,
    IntakeRefused,
    JobStateError,
    ModelUnavailable,
    SourceChanged,
    StoreError,
    TranscriberError,
)
from ..export import export_transcript
from ..jobs import Job, JobOptions, JobStatus, Part, Segment, Transcript
from ..store import JobStore
from . import estimates, intake, parts, scheduler
from .limits import Limits
from .models import ModelPool
from .whisper import DecodeRequest, StopDecoding, WhisperBackend

log = logging.getLogger(__name__)


def failure_cause(error: TranscriberError) -> str:
    """A short code for why a job failed (``source_changed``, ``audio``, ``model_unavailable``, ...), for analytics."""
    if isinstance(error, SourceChanged):
        return "source_changed"
    if isinstance(error, ModelUnavailable):
        return "model_unavailable"
    if isinstance(error, AudioError):
        return error.reason if error.reason and error.reason != "audio" else "audio"
    if isinstance(error, IntakeRefused):
        return error.reason
    return "other"


class EngineListener:
    """What the engine reports. Override what you need; calls come from worker threads."""

    def job_changed(self, job: Job) -> None:
        """A job's status, progress or estimate changed."""

    def segments_added(self, job: Job, segments: Sequence[Segment]) -> None:
        """Segments were committed for a running job."""

    def job_finished(self, job: Job) -> None:
        """A job completed, failed or was cancelled."""

    def engine_error(self, message: str) -> None:
        """The engine cannot make progress for a reason that is not one job's fault (a full disk, a locked database)."""


class Claim(NamedTuple):
    """Work handed to a worker: a job, the part of it to decode, and the run that records the attempt."""

    job: Job
    part: Part
    run_id: int


@dataclass(frozen=True)
class IntakeResult:
    path: str
    job: Job | None = None
    refusal: IntakeRefused | None = None

    @property
    def accepted(self) -> bool:
        return self.job is not None


class Engine:
    """Transcription jobs for one data folder.

    Args:
        store: the job store.
        models: the shared model pool.
        default_export_dir: where automatic exports go when the ``export_dir`` setting is empty.
        listener: receives progress and outcomes.
        backend_factory: builds a decoder from a loaded model (tests pass a fake).
    """

    def __init__(
        self,
        store: JobStore,
        models: ModelPool,
        *,
        default_export_dir: Path,
        listener: EngineListener | None = None,
        backend_factory: Callable[[object], WhisperBackend] = WhisperBackend,
    ):
        self.store = store
        self.models = models
        self.default_export_dir = Path(default_export_dir)
        self.listener = listener or EngineListener()
        self.backend_factory = backend_factory
        self._stops: dict[tuple[int, int], threading.Event] = {}  # (job id, part index) -> stop request
        # Called (from a worker) when a job was cut into parts that other streams can take.
        self.work_available: list[Callable[[], None]] = []
        # Background services (webhook deliveries, watch folders: see automation/) that a
        # runner starts and stops with its workers; each has start() and stop().
        self.services: list = []
        self._stops_lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._store_trouble_until = 0.0

    # ------------------------------------------------------------ settings

    @property
    def settings(self) -> Settings:
        return self.store.settings()

    @property
    def limits(self) -> Limits:
        return Limits.from_settings(self.settings)

    def default_options(self, *, model: str | None = None, language: str | None = None) -> JobOptions:
        settings = self.settings
        return JobOptions(
            model=model or settings.model,
            language=(language if language is not None else settings.language) or None,
            preset=settings.preset,
            word_timestamps=settings.word_timestamps,
        )

    def export_dir(self) -> Path:
        configured = self.settings.export_dir
        return Path(configured).expanduser() if configured else self.default_export_dir

    # --------------------------------------------------------------- intake

    def add(self, paths: Iterable[str], *, user: str, options: JobOptions | None = None) -> list[IntakeResult]:
        """Queue files and folders (searched recursively); one result per file considered.

        Estimates are refreshed once for the whole batch, not after every file: with
        hundreds of files, per-file refreshes made intake quadratic.
        """
        options = options or self.default_options()
        results = []
        for path, refusal in intake.expand(paths):
            if refusal is not None:
                results.append(IntakeResult(path, refusal=refusal))
                continue
            try:
                job = self._queue_file(path, user=user, options=options)
                results.append(IntakeResult(path, job=job))
                self.listener.job_changed(job)
            except IntakeRefused as error:
                results.append(IntakeResult(path, refusal=error))
            except StoreError as error:
                results.append(IntakeResult(path, refusal=IntakeRefused(path, "store", f"{Path(path).name}: {error}")))
        if any(result.accepted for result in results):
            try:
                self.refresh_estimates()
            except StoreError as error:
                log.warning("estimates not refreshed after intake: %s", error)
            results = [replace(r, job=self.store.get_job(r.job.id) or r.job) if r.job else r for r in results]
        return results

    def add_file(self, path: str, *, user: str, options: JobOptions | None = None) -> Job:
        """Check one file and queue it.

        Raises:
            IntakeRefused: the file or a limit says no; the message says which and why.
            StoreError: the database cannot be written.
        """
        job = self._queue_file(path, user=user, options=options)
        self.refresh_estimates()
        self.listener.job_changed(self.store.require_job(job.id))
        return job

    def _queue_file(self, path: str, *, user: str, options: JobOptions | None = None) -> Job:
        """add_file without refreshing estimates or telling the listener."""
        options = options or self.default_options()
        limits = self.limits
        name = Path(path).name
        # Cheap refusal before reading the file; the store checks again atomically on insert.
        if self.store.count_queued(user) >= limits.max_queued_per_user:
            raise IntakeRefused(
                path,
                "queue_limit",
                f"{name}: refused, user {user!r} already has {limits.max_queued_per_user} queued jobs "
                f"(limit max_queued_per_user = {limits.max_queued_per_user}).",
            )
        facts = intake.inspect(path, limits.max_file_bytes)
        job = self.store.add_job(
            user=user,
            source_path=facts.path,
            size_bytes=facts.size_bytes,
            mtime=facts.mtime,
            content_hash=facts.content_hash,
            duration_seconds=facts.media.duration_seconds,
            declared_seconds=facts.media.declared_seconds,
            options=options,
            max_queued=limits.max_queued_per_user,
            warning=facts.warning,
        )
        log.info("queued job %d: %s (%s, %s)", job.id, facts.path, format_clock(job.duration_seconds), options.model)
        return job

    # -------------------------------------------------------------- control

    def pause(self, job_id: int) -> Job:
        job = self.store.pause(job_id)
        self._signal_stop(job_id)
        return self._changed(job)

    def resume(self, job_id: int) -> Job:
        return self._changed(self.store.resume(job_id))

    def cancel(self, job_id: int) -> Job:
        job = self.store.cancel(job_id)
        self._signal_stop(job_id)
        self.listener.job_finished(job)
        return self._changed(job)

    def retry(self, job_id: int) -> Job:
        return self._changed(self.store.retry(job_id))

    def move(self, job_id: int, steps: int) -> Job:
        return self._changed(self.store.move(job_id, steps))

    def remove(self, job_id: int) -> None:
        job = self.store.require_job(job_id)
        if job.status is JobStatus.RUNNING:
            self.cancel(job_id)
            self._wait_stopped(job_id, timeout=30.0)
        self.store.delete_job(job_id)
        self.refresh_estimates()

    def pause_all(self, user: str | None = None) -> list[Job]:
        paused = []
        for job in self.store.list_jobs(user=user, statuses=[JobStatus.QUEUED, JobStatus.RUNNING]):
            try:
                paused.append(self.pause(job.id))
            except JobStateError:
                pass  # finished meanwhile
        return paused

    def resume_all(self, user: str | None = None) -> list[Job]:
        resumed = []
        for job in self.store.list_jobs(user=user, statuses=[JobStatus.PAUSED]):
            try:
                resumed.append(self.resume(job.id))
            except JobStateError:
                pass
        return resumed

    def _changed(self, job: Job) -> Job:
        self.refresh_estimates()
        job = self.store.get_job(job.id) or job
        self.listener.job_changed(job)
        return job

    # ----------------------------------------------------------- scheduling

    def recover(self) -> list[Job]:
        """Requeue jobs a dead process left running; call once at start-up, before any work."""
        recovered = self.store.recover_abandoned()
        # A process that died between a completion and its export held that job's webhooks.
        self.store.release_held_deliveries()
        for job in recovered:
            log.info("recovered job %d at %s of %s", job.id, format_clock(job.processed_seconds), format_clock(job.duration_seconds))
        if recovered:
            self.refresh_estimates()
        return recovered

    def recover_orphans(self) -> list[Job]:
        """Requeue jobs marked running that no worker here is running (call only while holding the engine lock).

        A job is left like that when its worker could not write to the store (a full
        disk, a locked database): it continues from its last segment once the store is writable again.
        """
        try:
            recovered = self.store.recover_abandoned(running_elsewhere=self.running_here())
        except StoreError:
            return []
        for job in recovered:
            log.info("requeued job %d after a store failure", job.id)
        return recovered

    def claim_next(self) -> Claim | None:
        """Choose the next piece of work by the scheduler's rules and mark it running here.

        Returns:
            The job, the part of it to decode and a run id, or None when nothing may start
            now (including while the store cannot be written: see ``engine_error``).
        """
        if time.monotonic() < self._store_trouble_until:
            return None
        with self._claim_lock:
            try:
                return self._claim_next()
            except StoreError as error:
                self._store_trouble(error)
                return None

    def _claim_next(self) -> Claim | None:
        limits = self.limits
        self.models.workers = limits.workers
        self.models.idle_seconds = self.settings.model_idle_unload_seconds
        for _ in range(5):  # another process may take the same work first; try the next choice
            job = scheduler.choose_work(
                self.store.queued_jobs(),
                self.store.jobs_with_pending_parts(),
                self.store.running_parts(),
                self.store.list_jobs(statuses=[JobStatus.RUNNING]),
                limits,
                self.store.last_started_by_user(),
            )
            if job is None:
                return None
            claimed = self.store.claim_work(job.id)
            if claimed is not None:
                job, part, run_id = claimed
                with self._stops_lock:
                    self._stops[(job.id, part.index)] = threading.Event()
                return Claim(job, part, run_id)
        return None

    def _store_trouble(self, error: StoreError, pause_seconds: float = 15.0) -> None:
        """Hold off new work for a while and tell the listener: the store cannot be written."""
        log.error("store error: %s", error)
        self._store_trouble_until = time.monotonic() + pause_seconds
        self.listener.engine_error(str(error))

    def request_stop(self, job_id: int) -> None:
        """Ask every worker on ``job_id`` to stop at its next segment boundary."""
        self._signal_stop(job_id)

    def stop_all(self) -> None:
        """Ask every job running here to stop at its next segment boundary and go back to the queue."""
        for job_id in self.running_here():
            self._signal_stop(job_id)

    def running_here(self) -> list[int]:
        """Ids of the jobs that workers of this engine are decoding."""
        with self._stops_lock:
            return sorted({job_id for job_id, _ in self._stops})

    def _signal_stop(self, job_id: int) -> None:
        with self._stops_lock:
            events = [event for (owner, _), event in self._stops.items() if owner == job_id]
        for event in events:
            event.set()

    def _wait_stopped(self, job_id: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and job_id in self.running_here():
            time.sleep(0.05)

    def run_until_idle(self) -> list[Job]:
        """Run queued work on this thread until none is left (tests, scripts).

        Returns:
            Each job that ran, once, in its last state, in the order its last part ran.
        """
        ran: dict[int, Job] = {}
        while True:
            claimed = self.claim_next()
            if claimed is None:
                return list(ran.values())
            job = self.execute(*claimed)
            ran.pop(job.id, None)
            ran[job.id] = job

    # ------------------------------------------------------------ execution

    def execute(self, job: Job, part: Part, run_id: int) -> Job:
        """Decode one claimed part of a job from its cursor; returns the job in its new state.

        Expected problems (source changed, bad audio, missing model) end the job as failed
        with a message; a store that cannot be written leaves the part to be picked up
        again later. Nothing propagates to the caller.
        """
        key = (job.id, part.index)
        with self._stops_lock:
            stop_event = self._stops.setdefault(key, threading.Event())
        outcome = "failed"
        try:
            outcome = self._run_part(job, part, run_id, stop_event)
        except StoreError as error:
            # Not the job's fault, and its failure could not be recorded anyway: it stays
            # marked running and recover_orphans() puts it back once the store is writable.
            outcome = "store-error"
            self._store_trouble(error)
        except TranscriberError as error:
            log.warning("job %d failed: %s", job.id, error)
            self._fail(job.id, str(error), failure_cause(error))
        except Exception as error:  # a bug: keep the engine alive, tell the user where to look
            log.exception("job %d failed unexpectedly", job.id)
            self._fail(job.id, f"Unexpected error ({type(error).__name__}: {error}); see the log for details.", "unexpected")
        finally:
            with self._stops_lock:
                self._stops.pop(key, None)
            try:
                if outcome not in ("part-done", "completed", "store-error"):
                    self.store.release_part(job.id, part.index)
                self.store.end_run(run_id, outcome)
            except StoreError:
                log.exception("could not close run %d of job %d", run_id, job.id)
            final = self._safe_get(job.id) or job
            try:
                self.refresh_estimates()
            except StoreError:
                pass
            self.store.close()  # this thread's connection
        if final.status.is_final and outcome in ("completed", "failed"):
            self.listener.job_finished(final)
        self.listener.job_changed(final)
        return final

    def _safe_get(self, job_id: int) -> Job | None:
        try:
            return self.store.get_job(job_id)
        except StoreError:
            return None

    def _fail(self, job_id: int, message: str, cause: str) -> None:
        try:
            self.store.mark_failed(job_id, message, cause)
        except (StoreError, JobStateError) as error:
            log.error("could not mark job %d failed (%s): %s", job_id, error, message)

    def _run_part(self, job: Job, part: Part, run_id: int, stop_event: threading.Event) -> str:
        problem = intake.source_changed(job.source_path, job.size_bytes, job.mtime, job.content_hash)
        if problem:
            raise SourceChanged(problem)
        settings, model = self.models.acquire(job.options.model)
        try:
            backend = self.backend_factory(model)
            job, part = self._maybe_split(job, part, backend)
            return self._decode_part(job, part, run_id, backend, stop_event)
        finally:
            self.models.release(settings)

    def _maybe_split(self, job: Job, part: Part, backend) -> tuple[Job, Part]:
        """Cut a fresh long job into parts for the other decode streams (see engine/parts.py)."""
        count = parts.part_count(job.duration_seconds, self.limits.workers)
        if count < 2 or part.index != 0 or part.processed_seconds > part.start or part.end < job.duration_seconds:
            return job, part
        if backend.is_multilingual and not job.language:
            # Every part must speak the same language: decide it once, from the start.
            language = backend.detect_language(job.source_path, job.duration_seconds)
            self.store.set_detected_language(job.id, language)
            job = replace(job, detected_language=language)
        first = self.store.split_fresh_job(job.id, parts.plan_parts(job.source_path, job.duration_seconds, count))
        if first is None:
            return job, part
        for callback in self.work_available:
            callback()
        return job, first

    def _decode_part(self, job: Job, part: Part, run_id: int, backend, stop_event: threading.Event) -> str:
        prior_speed = estimates.expected_speed(job.model, self.store.model_speeds())
        start_seconds = part.processed_seconds
        is_last = part.end >= job.duration_seconds - 1e-6
        prompt = tuple(self.store.recent_tokens(job.id, part.index)) if start_seconds > part.start else ()
        if start_seconds > part.start:
            log.info("job %d part %d continues at %s", job.id, part.index, format_clock(start_seconds))
        started = time.monotonic()
        state = {"processed": start_seconds, "language": job.language}

        def commit(segments: Sequence[Segment], processed: float, tokens=None) -> list[Segment] | None:
            processed = min(max(state["processed"], processed), part.end)
            spent = time.monotonic() - started
            stored = self.store.commit_progress(
                job.id,
                part.index,
                run_id,
                segments,
                processed_seconds=processed,
                processing_seconds=spent,
                speed=estimates.live_speed(processed - start_seconds, spent, prior_speed),
                detected_language=state["language"],
                tokens=tokens,
            )
            if stored is not None:
                state["processed"] = processed
            return stored

        def on_window(window_start: float) -> None:
            if stop_event.is_set():
                raise StopDecoding()
            if window_start > state["processed"] + 0.01 and commit([], window_start) is None:
                raise StopDecoding()

        request = DecodeRequest(
            path=job.source_path,
            duration_seconds=job.duration_seconds,
            start_seconds=start_seconds,
            end_seconds=None if is_last else part.end,
            language=job.language,
            prompt=prompt,
            options=job.options,
        )
        decoding = backend.decode(request, on_window=on_window)
        state["language"] = decoding.language
        finished = False
        try:
            for piece in decoding:
                # A part's last window is cut at its end, but timestamps can overshoot it a little.
                end = min(piece.end, part.end)
                segment = Segment(index=-1, start=min(piece.start, end), end=end, text=piece.text, words=piece.words)
                stored = commit([segment], piece.end, [piece.tokens])
                if stored is None:
                    break  # paused, cancelled or removed from elsewhere
                self.listener.segments_added(self.store.get_job(job.id) or job, stored)
                if stop_event.is_set():
                    break
            else:
                finished = True
        except StopDecoding:
            pass
        except OSError as error:
            raise AudioError(f"{job.file_name} could not be read while transcribing: {error.strerror or error}.") from error
        if not finished:
            return "stopped"
        if commit([], part.end) is None:
            return "stopped"
        if decoding.damaged_packets:
            self.store.set_warning(
                job.id, f"{decoding.damaged_packets} damaged audio packets were skipped; a few words may be missing."
            )
        if is_last and decoding.missing_seconds > max(1.0, 0.01 * job.duration_seconds):
            self._fail_truncated(job, job.duration_seconds - decoding.missing_seconds)
            return "failed"
        if not self.store.finish_part(job.id, part.index):
            return "part-done"
        return self._complete(job)

    def _fail_truncated(self, job: Job, delivered: float) -> None:
        declared = self.store.declared_seconds(job.id) or job.duration_seconds
        self.store.mark_failed(
            job.id,
            f"{job.file_name} is truncated or damaged: it declares {format_clock(declared)} "
            f"of audio but only {format_clock(delivered)} could be decoded. "
            f"The transcript of that part is kept and can be exported.",
            "truncated",
        )

    def _complete(self, job: Job) -> str:
        declared = self.store.declared_seconds(job.id)
        if declared and declared - job.duration_seconds > max(1.0, 0.01 * declared):
            self._fail_truncated(job, job.duration_seconds)
            return "failed"
        completed = self.store.mark_completed(job.id)
        log.info("job %d completed: %s in %.1f s of decoding", job.id, job.file_name, completed.processing_seconds)
        if self.settings.auto_export:
            self._auto_export(completed)
        try:
            # The job.completed webhook was held until the exports it may link to exist.
            self.store.release_deliveries(job.id)
        except StoreError as error:  # released at the next start-up instead (Engine.recover)
            log.warning("webhooks of job %d not released: %s", job.id, error)
        return "completed"

    def _auto_export(self, job: Job) -> None:
        formats = self.settings.export_format_list
        if not formats:
            return
        try:
            written = export_transcript(self.transcript(job.id), formats, self.export_dir(), overwrite=False)
            self.store.set_exported(job.id, [str(path) for path in written])
        except TranscriberError as error:
            log.warning("automatic export of job %d failed: %s", job.id, error)
            self.store.set_warning(job.id, f"Automatic export failed: {error}")

    # -------------------------------------------------------------- reading

    def transcript(self, job_id: int) -> Transcript:
        job = self.store.require_job(job_id)
        return Transcript(job=job, segments=tuple(self.store.segments(job_id)))

    def export(self, job_id: int, formats: Sequence[str], destination: Path, *, overwrite: bool = True) -> list[Path]:
        """Export a job's transcript (complete, or what exists of a failed or unfinished one)."""
        return export_transcript(self.transcript(job_id), formats, destination, overwrite=overwrite)

    def _fresh_estimates(self) -> dict[int, tuple[float, float]]:
        active = self.store.active_jobs()
        running = [job for job in active if job.status is JobStatus.RUNNING]
        queued = [job for job in active if job.status is JobStatus.QUEUED]
        limits = self.limits
        order = running + scheduler.start_order(queued, running, limits, self.store.last_started_by_user())
        return estimates.estimate_queue(order, self.store.model_speeds(), limits.workers, time.time())

    def refresh_estimates(self) -> dict[int, tuple[float, float]]:
        """Recompute and store the estimated completion of every running and queued job."""
        result = self._fresh_estimates()
        if result:
            self.store.update_estimates(result)
        return result

    def with_estimates(self, jobs: Sequence[Job]) -> list[Job]:
        """``jobs`` with fresh estimates for the running and queued ones (nothing is written)."""
        fresh = self._fresh_estimates()
        return [job.with_estimate(*fresh[job.id]) if job.id in fresh else job for job in jobs]
