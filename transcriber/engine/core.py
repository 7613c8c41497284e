"""The engine in plain Python: intake, job control, choosing and claiming work, estimates.

Decoding one claimed part is ``execution.PartRun``; keeping decode streams busy is
``runner.EngineRunner``; tests call ``run_until_idle`` to do the same work on their own
thread. Listener callbacks come on whatever thread does the work (see engine/__init__.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Collection, Iterable, NamedTuple, Sequence

from ..audio import recorder
from ..audio.decode import format_clock
from ..config import Settings
from ..errors import (
    AudioError,
    ConfigError,
    IntakeRefused,
    JobStateError,
    ModelUnavailable,
    SourceChanged,
    StoreError,
    TranscriberError,
)
from ..export import export_file, export_transcript, written_file
from ..jobs import TASKS, TRANSLATE, Job, JobOptions, JobStatus, Part, RunOutcome, Transcript, WaitingFile, parse_speakers
from ..store import Store
from . import estimates, intake, routing, scheduler, speakers
from .execution import PartContext, PartRun
from ..languages import check_language, check_model_language, english_only
from ..limits import Limits, queue_refusal
from .listener import EngineListener
from .models import ModelPool
from .whisper import WhisperBackend

log = logging.getLogger(__name__)

# How long new work is held off after the store could not be written (a full disk, a lock).
STORE_TROUBLE_PAUSE_SECONDS = 15.0


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


class Claim(NamedTuple):
    """Work handed to a worker: a job, the part of it to decode, and the run that records the attempt."""

    job: Job
    part: Part
    run_id: int


@dataclass(frozen=True)
class IntakeResult:
    """What became of one file: a job (new, or ``continued``: the job it already had), a place in the backlog
    (``waiting``: the queue was full), or a refusal."""

    path: str
    job: Job | None = None
    refusal: IntakeRefused | None = None
    waiting: WaitingFile | None = None
    continued: bool = False

    @property
    def accepted(self) -> bool:
        return self.job is not None or self.waiting is not None


@dataclass
class _Claimed:
    """A part a worker of this engine holds: how to stop it, and the settings it was claimed under."""

    stop: threading.Event
    settings: Settings


class Engine:
    """Transcription jobs for one data folder.

    Args:
        store: the data folder's store.
        models: the shared model pool.
        default_export_dir: where automatic exports go when the ``export_dir`` setting is empty.
        listener: receives progress and outcomes.
        backend_factory: builds a decoder from a loaded model (tests pass a fake).
    """

    def __init__(
        self,
        store: Store,
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
        self._claimed: dict[tuple[int, int], _Claimed] = {}  # (job id, part index) -> held here
        self._claimed_changed = threading.Condition()
        self._claim_lock = threading.Lock()
        self._store_trouble_until = 0.0
        self._store_failing_since: float | None = None
        self.store_error: str | None = None  # the last store failure, for a client that gives up

    # ------------------------------------------------------------ settings

    def read_settings(self) -> Settings:
        """The settings as stored now (one read)."""
        return self.store.settings.read()

    def read_limits(self) -> Limits:
        return Limits.from_settings(self.read_settings())

    def default_options(
        self, *, model: str | None = None, language: str | None = None, task: str | None = None,
        settings: Settings | None = None, speakers: str | None = None, min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> JobOptions:
        """The options for new jobs: ``model``, ``language``, ``task`` and ``speakers`` where given, the settings for the rest.

        A job to translate with ``auto`` is decoded by ``base`` (routing.for_translation). A job
        that wants its speakers told apart records word timings, so a segment is split exactly
        where the speaker changes.

        Raises:
            ConfigError: an unknown language or task, a language the model cannot transcribe,
                translation asked of an English-only model, or a bad speakers request.
        """
        settings = settings or self.read_settings()
        task = (task or settings.task).strip().lower()
        if task not in TASKS:
            raise ConfigError(f"Unknown task {task!r}: choose {' or '.join(TASKS)}.")
        try:
            mode, low, high = parse_speakers(speakers if speakers is not None else settings.speakers, min_speakers, max_speakers)
        except ValueError as error:
            raise ConfigError(f"{error}.") from None
        options = JobOptions(
            model=model or settings.model,
            language=check_language(language if language is not None else settings.language),
            preset=settings.preset,
            word_timestamps=settings.word_timestamps or mode not in ("off", "channels"),
            task=task,
            speakers=mode,
            min_speakers=low,
            max_speakers=high,
        )
        check_model_language(options.model, options.language)
        if task == TRANSLATE and english_only(options.model):
            raise ConfigError(
                f"{options.model} is an English-only model, so it cannot translate. Use --model base "
                "(installed with transcriber), or --model auto, which translates with base."
            )
        return options

    def export_dir(self, settings: Settings | None = None) -> Path:
        configured = (settings or self.read_settings()).export_dir
        return Path(configured).expanduser() if configured else self.default_export_dir

    # --------------------------------------------------------------- intake

    def add(
        self,
        paths: Iterable[str],
        *,
        user: str,
        options: JobOptions | None = None,
        wait_for_room: bool = False,
        reuse_existing: bool = False,
    ) -> list[IntakeResult]:
        """Queue files and folders (searched recursively); one result per file considered.

        Args:
            wait_for_room: files past the user's queue limit wait in the backlog and are
                queued in order as room frees (a batch a person asked for), instead of being refused.
            reuse_existing: a file that already has a job of the same user, content and
                options is not queued again: an unfinished job continues (a paused one is
                resumed), a completed one is handed back as it is (``transcribe`` run twice).

        Estimates are refreshed once for the whole batch, not after every file: with
        hundreds of files, per-file refreshes made intake quadratic.
        """
        settings = self.read_settings()
        options = options or self.default_options(settings=settings)
        limits = Limits.from_settings(settings)
        results = []
        for path, refusal in intake.expand(paths):
            if refusal is not None:
                results.append(IntakeResult(path, refusal=refusal))
                continue
            try:
                result = self._take(path, user, options, limits, wait_for_room, reuse_existing)
            except IntakeRefused as error:
                result = IntakeResult(path, refusal=error)
            except StoreError as error:
                result = IntakeResult(path, refusal=IntakeRefused(path, "store", f"{Path(path).name}: {error}"))
            if result.job is not None:
                self.listener.job_changed(result.job)
            results.append(result)
        if any(result.job for result in results):
            try:
                self.refresh_estimates()
            except StoreError as error:
                log.warning("estimates not refreshed after intake: %s", error)
            results = [replace(r, job=self.store.jobs.get_job(r.job.id) or r.job) if r.job else r for r in results]
        return results

    def add_file(self, path: str, *, user: str, options: JobOptions | None = None) -> Job:
        """Check one file and queue it.

        Raises:
            IntakeRefused: the file or a limit says no; the message says which and why.
            StoreError: the database cannot be written.
        """
        settings = self.read_settings()
        job = self._queue_file(
            path, user=user, options=options or self.default_options(settings=settings), limits=Limits.from_settings(settings)
        )
        self.refresh_estimates()
        self.listener.job_changed(self.store.jobs.require_job(job.id))
        return job

    def _take(
        self, path: str, user: str, options: JobOptions, limits: Limits, wait_for_room: bool, reuse_existing: bool
    ) -> IntakeResult:
        if not (wait_for_room or reuse_existing):
            return IntakeResult(path, job=self._queue_file(path, user=user, options=options, limits=limits))
        facts = intake.inspect(path, limits)
        if reuse_existing:
            existing = self.store.jobs.find_reusable(user, facts.content_hash, options)
            if existing is not None:
                if existing.status is JobStatus.PAUSED:
                    existing = self.store.jobs.resume(existing.id)
                log.info("%s continues job %d", path, existing.id)
                return IntakeResult(path, job=existing, continued=True)
        try:
            return IntakeResult(path, job=self._insert(facts, user, options, limits))
        except IntakeRefused as refusal:
            if refusal.reason != "queue_limit" or not wait_for_room:
                raise
        waiting = self.store.backlog.add(
            user=user,
            source_path=facts.path,
            size_bytes=facts.size_bytes,
            mtime=facts.mtime,
            content_hash=facts.content_hash,
            duration_seconds=facts.media.duration_seconds,
            declared_seconds=facts.media.declared_seconds,
            warning=facts.warning,
            options=options,
        )
        log.info("%s waits for room in %s's queue", facts.path, user)
        return IntakeResult(path, waiting=waiting)

    def _queue_file(self, path: str, *, user: str, options: JobOptions, limits: Limits) -> Job:
        """add_file without refreshing estimates or telling the listener."""
        # Cheap refusal before reading the file; the store checks again atomically on insert.
        full = queue_refusal(
            file_name=Path(path).name, user=user, queued_for_user=self.store.jobs.count_queued(user),
            max_queued=limits.max_queued_per_user,
        )
        if full:
            raise IntakeRefused(path, "queue_limit", full)
        return self._insert(intake.inspect(path, limits), user, options, limits)

    def _insert(self, facts: intake.FileFacts, user: str, options: JobOptions, limits: Limits) -> Job:
        job = self.store.jobs.add_job(
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

    def promote_waiting(self) -> list[Job]:
        """Queue files from the backlog, oldest first, while their users have room; returns the new jobs.

        A file that changed or vanished while it waited is refused with the reason.
        """
        waiting = self.store.backlog.waiting()
        if not waiting:
            return []
        limits = self.read_limits()
        full: set[str] = set()
        promoted = []
        for entry in waiting:
            if entry.user in full:
                continue
            problem = intake.source_changed(entry.source_path, entry.size_bytes, entry.mtime, entry.content_hash)
            if problem:
                self.store.backlog.refuse(entry.id, problem)
                continue
            try:
                job = self.store.backlog.promote(entry.id, max_queued=limits.max_queued_per_user)
            except IntakeRefused:
                full.add(entry.user)
                continue
            if job is not None:
                log.info("queued job %d from the backlog: %s", job.id, job.source_path)
                promoted.append(job)
                self.listener.job_changed(job)
        if promoted:
            self.refresh_estimates()
        return promoted

    # ------------------------------------------------------------ recordings

    def begin_recording(self, path: str | Path, *, user: str, options: JobOptions | None = None) -> Job:
        """Make a recording that has just started a job (``recording``) that its live transcript is committed to.

        Its model and language are settled now where they are known (a given language, or a
        model other than ``auto``), so the live decoder and the engine, which finishes the
        job later, decode with the same ones.

        Raises:
            IntakeRefused: the user's queue is full.
        """
        settings = self.read_settings()
        options = options or self.default_options(settings=settings)
        job = self.store.jobs.add_recording_job(
            user=user, source_path=str(Path(path).absolute()), options=options,
            max_queued=Limits.from_settings(settings).max_queued_per_user,
        )
        if options.model == routing.AUTO and options.language:
            route = routing.for_given_language(options.language)
            self.store.jobs.set_route(job.id, route.model, route.language)
            job = self.store.jobs.require_job(job.id)
        log.info("recording job %d: %s (%s)", job.id, job.source_path, job.model)
        self.listener.job_changed(job)
        return job

    def end_recording(self, job_id: int) -> Job | None:
        """The recording of job ``job_id`` stopped: measure the file and queue the job to finish its tail.

        The job continues from its live cursor, with the live text as the decoder's context.
        A file the intake refuses (too large) fails the job with the reason, keeping the
        transcript so far; a recording that holds nothing removes its job (returns None).

        Raises:
            JobStateError: the job is no longer ``recording`` (removed meanwhile, or ended already).
        """
        job = self.store.jobs.require_job(job_id)
        if job.status is not JobStatus.RECORDING:
            raise JobStateError(f"Job {job_id} is {job.status.value}, not recording.")
        path = Path(job.source_path)
        if not path.exists():
            self.store.jobs.delete_job(job_id)
            log.info("recording job %d removed: nothing was recorded", job_id)
            return None
        try:
            facts = intake.inspect(str(path), self.read_limits())
        except IntakeRefused as refusal:
            finished = self.store.jobs.mark_failed(job_id, str(refusal), refusal.reason)
            self.listener.job_finished(finished)
            return self._changed(finished)
        finished = self.store.jobs.finish_recording(
            job_id, size_bytes=facts.size_bytes, mtime=facts.mtime, content_hash=facts.content_hash,
            duration_seconds=facts.media.duration_seconds, declared_seconds=facts.media.declared_seconds,
            warning=facts.warning,
        )
        recorder.forget(path)
        log.info("recording job %d queued at %s of %s", job_id, format_clock(finished.processed_seconds),
                 format_clock(finished.duration_seconds))
        return self._changed(finished)

    def recover_recordings(self) -> list[Job]:
        """Finish recording jobs whose recorder died (a crash, a kill): repair the file, queue the job.

        Each continues from its last committed live segment over the repaired file. Recordings
        still being written (their marker is locked, in this process or another) are left alone.
        """
        recovered = []
        for job in self.store.jobs.recording_jobs():
            if recorder.recording_is_live(Path(job.source_path)):
                continue
            try:
                seconds = recorder.repair_wav(Path(job.source_path)) if Path(job.source_path).exists() else 0.0
            except (OSError, TranscriberError) as error:
                log.warning("recording job %d cannot be repaired: %s", job.id, error)
                self._fail(job.id, f"The recording {job.file_name} cannot be repaired: {error}", "audio")
                continue
            log.info("recovered recording job %d (%s recorded, %s transcribed live)", job.id, format_clock(seconds),
                     format_clock(job.processed_seconds))
            try:
                finished = self.end_recording(job.id)
            except JobStateError:
                continue  # ended by another process meanwhile
            if finished is not None:
                recovered.append(finished)
        return recovered

    # -------------------------------------------------------------- control

    def pause(self, job_id: int) -> Job:
        job = self.store.jobs.pause(job_id)
        self._signal_stop(job_id)
        return self._changed(job)

    def resume(self, job_id: int) -> Job:
        return self._changed(self.store.jobs.resume(job_id))

    def cancel(self, job_id: int) -> Job:
        job = self.store.jobs.cancel(job_id)
        self._signal_stop(job_id)
        self.listener.job_finished(job)
        return self._changed(job)

    def retry(self, job_id: int) -> Job:
        return self._changed(self.store.jobs.retry(job_id))

    def move(self, job_id: int, steps: int) -> Job:
        return self._changed(self.store.jobs.move(job_id, steps))

    def remove(self, job_id: int) -> None:
        job = self.store.jobs.require_job(job_id)
        if job.status is JobStatus.RUNNING:
            self.cancel(job_id)
            self._wait_stopped(job_id, timeout=30.0)
        self.store.jobs.delete_job(job_id)
        self.refresh_estimates()

    def pause_all(self, user: str | None = None) -> list[Job]:
        paused = []
        for job in self.store.jobs.list_jobs(user=user, statuses=[JobStatus.QUEUED, JobStatus.RUNNING]):
            try:
                paused.append(self.pause(job.id))
            except JobStateError:
                pass  # finished meanwhile
        return paused

    def resume_all(self, user: str | None = None) -> list[Job]:
        resumed = []
        for job in self.store.jobs.list_jobs(user=user, statuses=[JobStatus.PAUSED]):
            try:
                resumed.append(self.resume(job.id))
            except JobStateError:
                pass
        return resumed

    def _changed(self, job: Job) -> Job:
        self.refresh_estimates()
        job = self.store.jobs.get_job(job.id) or job
        self.listener.job_changed(job)
        return job

    # ------------------------------------------------------------- recovery

    def recover(self, *, keep_remote: bool = False) -> list[Job]:
        """Requeue jobs a dead process left running or recording; the app calls it once at start-up, before any work.

        Args:
            keep_remote: leave parts that remote workers decode running (the coordinator adopts them).
        """
        recovered = self.store.jobs.recover_abandoned(keep_remote=keep_remote)
        # A process that died between a completion and its export held that job's webhooks.
        self.store.automation.release_held_deliveries()
        recovered += self.recover_recordings()
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
            recovered = self.store.jobs.recover_abandoned(running_elsewhere=self.running_here())
        except StoreError:
            return []
        for job in recovered:
            log.info("requeued job %d after a store failure", job.id)
        if recovered:
            self._store_works()
        return recovered

    # ------------------------------------------------------------- claiming

    def claim_next(self, *, streams: int | None = None) -> Claim | None:
        """Choose the next piece of work by the scheduler's rules and mark it running here.

        The settings are read once for the claim and the part runs under that snapshot.

        Args:
            streams: the decode streams work may occupy in all (default: the ``workers``
                setting); the scale-out coordinator passes the remote workers' capacity.

        Returns:
            The job, the part of it to decode and a run id, or None when nothing may start
            now (including while the store cannot be written: see ``engine_error``).
        """
        if time.monotonic() < self._store_trouble_until:
            return None
        with self._claim_lock:
            try:
                claimed = self._claim_next(streams)
            except StoreError as error:
                self._store_trouble(error)
                return None
        if claimed is not None:
            self._store_works()  # claiming wrote to it
        return claimed

    def _claim_next(self, streams: int | None) -> Claim | None:
        settings = self.read_settings()
        limits = Limits.from_settings(settings)
        self.models.workers = limits.workers
        self.models.device = settings.device
        self.models.idle_seconds = settings.model_idle_unload_seconds
        if streams is not None:
            limits = replace(limits, workers=streams)
        jobs = self.store.jobs
        for _ in range(5):  # another process may take the same work first; try the next choice
            job = scheduler.choose_work(
                jobs.queued_jobs(),
                self.store.work.jobs_with_pending_parts(),
                self.store.work.running_parts(),
                jobs.list_jobs(statuses=[JobStatus.RUNNING]),
                limits,
                jobs.last_started_by_user(),
            )
            if job is None:
                return None
            claimed = self.store.work.claim_work(job.id)
            if claimed is not None:
                job, part, run_id = claimed
                with self._claimed_changed:
                    self._claimed[(job.id, part.index)] = _Claimed(threading.Event(), settings)
                return Claim(job, part, run_id)
        return None

    def _store_trouble(self, error: StoreError) -> None:
        """Hold off new work for a while and tell the listener: the store cannot be written."""
        log.error("store error: %s", error)
        now = time.monotonic()
        self._store_trouble_until = now + STORE_TROUBLE_PAUSE_SECONDS
        self._store_failing_since = self._store_failing_since or now
        self.store_error = str(error)
        self.listener.engine_error(str(error))

    def _store_works(self) -> None:
        """A write went through: whatever failed before is over (reads alone prove nothing on a full disk)."""
        self._store_failing_since = None

    def store_failing_for(self) -> float:
        """Seconds the store has been failing without a success since (0 when it works)."""
        return time.monotonic() - self._store_failing_since if self._store_failing_since else 0.0

    def nothing_to_do(self) -> bool:
        """No job is queued or running (in the store, whichever process runs it) and no file waits for room."""
        jobs = self.store.jobs
        return (
            not jobs.queued_jobs()
            and not jobs.list_jobs(statuses=[JobStatus.RUNNING])
            and not self.store.backlog.count_waiting()
        )

    def stop_all(self) -> None:
        """Ask every job running here to stop at its next segment boundary and go back to the queue."""
        for job_id in self.running_here():
            self._signal_stop(job_id)

    def running_here(self) -> list[int]:
        """Ids of the jobs that workers of this engine are decoding."""
        with self._claimed_changed:
            return sorted({job_id for job_id, _ in self._claimed})

    def _signal_stop(self, job_id: int) -> None:
        with self._claimed_changed:
            events = [held.stop for (owner, _), held in self._claimed.items() if owner == job_id]
        for event in events:
            event.set()

    def _wait_stopped(self, job_id: int, timeout: float) -> None:
        with self._claimed_changed:
            self._claimed_changed.wait_for(lambda: all(owner != job_id for owner, _ in self._claimed), timeout)

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

    def execute(self, job: Job, part: Part, run_id: int, *, on_split: Callable[[], None] | None = None) -> Job:
        """Decode one claimed part of a job from its cursor; returns the job in its new state.

        Expected problems (source changed, bad audio, missing model) end the job as failed
        with a message; a store that cannot be written leaves the part to be picked up
        again later. Nothing propagates to the caller.

        Args:
            on_split: called when the job was cut into parts that other streams can take.
        """
        self.hold(job, part)
        context = self.part_context(job.id, part.index, on_split=on_split)
        outcome = RunOutcome.FAILED
        try:
            outcome = PartRun(context, job, part, run_id).run()
        except StoreError as error:
            # Not the job's fault, and its failure could not be recorded anyway: it stays
            # marked running and recover_orphans() puts it back once the store is writable.
            outcome = RunOutcome.STORE_ERROR
            self._store_trouble(error)
        except TranscriberError as error:
            log.warning("job %d failed: %s", job.id, error)
            self._fail(job.id, str(error), failure_cause(error))
        except Exception as error:  # a bug: keep the engine alive, tell the user where to look
            log.exception("job %d failed unexpectedly", job.id)
            self._fail(job.id, f"Unexpected error ({type(error).__name__}: {error}); see the log for details.", "unexpected")
        finally:
            final = self.end_claim(job, part, run_id, outcome)
            self.store.close()  # this thread's connection
        return final

    def hold(self, job: Job, part: Part) -> threading.Event:
        """Mark a part as held by this engine (a remote run adopted after a restart); returns its stop event."""
        with self._claimed_changed:
            held = self._claimed.setdefault((job.id, part.index), _Claimed(threading.Event(), self.read_settings()))
        return held.stop

    def claim_settings(self, job_id: int, part_index: int) -> Settings:
        """The settings a held part was claimed under."""
        with self._claimed_changed:
            held = self._claimed.get((job_id, part_index))
        return held.settings if held is not None else self.read_settings()

    def stop_requested(self, job_id: int, part_index: int) -> bool:
        """Whether a held part was asked to stop (pause, cancel, removal, shutdown)."""
        with self._claimed_changed:
            held = self._claimed.get((job_id, part_index))
        return held is not None and held.stop.is_set()

    def let_go(self, job_id: int, part_index: int) -> None:
        """Forget a held part without touching the store (the app quits while a remote worker decodes it)."""
        with self._claimed_changed:
            self._claimed.pop((job_id, part_index), None)
            self._claimed_changed.notify_all()

    def end_claim(self, job: Job, part: Part, run_id: int, outcome: RunOutcome) -> Job:
        """Close a run that ended with ``outcome``: free its part unless it was decoded, tell the listener.

        Returns:
            The job in its new state.
        """
        self.let_go(job.id, part.index)
        try:
            if outcome not in (RunOutcome.PART_DONE, RunOutcome.COMPLETED, RunOutcome.STORE_ERROR):
                self.store.work.release_part(job.id, part.index)
            self.store.work.end_run(run_id, outcome)
            if outcome is not RunOutcome.STORE_ERROR:
                self._store_works()
        except StoreError as error:
            log.warning("could not close run %d of job %d: %s", run_id, job.id, error)
        final = self._safe_get(job.id) or job
        try:
            self.refresh_estimates()
        except StoreError:
            pass
        if final.status.is_final and outcome in (RunOutcome.COMPLETED, RunOutcome.FAILED):
            self.listener.job_finished(final)
        self.listener.job_changed(final)
        return final

    def part_context(self, job_id: int, part_index: int, *, on_split: Callable[[], None] | None = None) -> PartContext:
        """What a run of a held part needs (for a local decode, or for ingesting a remote one)."""
        settings = self.claim_settings(job_id, part_index)
        with self._claimed_changed:
            held = self._claimed.get((job_id, part_index))
        return PartContext(
            store=self.store,
            models=self.models,
            backend_factory=self.backend_factory,
            listener=self.listener,
            settings=settings,
            export_dir=self.export_dir(settings),
            stop=held.stop if held is not None else threading.Event(),
            on_split=on_split or (lambda: None),
        )

    def fail(self, job_id: int, message: str, cause: str) -> None:
        """Fail a job with a message (a remote worker's report)."""
        self._fail(job_id, message, cause)

    def _safe_get(self, job_id: int) -> Job | None:
        try:
            return self.store.jobs.get_job(job_id)
        except StoreError:
            return None

    def _fail(self, job_id: int, message: str, cause: str) -> None:
        try:
            self.store.jobs.mark_failed(job_id, message, cause)
        except (StoreError, JobStateError) as error:
            log.error("could not mark job %d failed (%s): %s", job_id, error, message)

    # ------------------------------------------------------------- speakers

    def find_speakers(self, job_id: int, mode: str = "auto", min_speakers: int | None = None,
                      max_speakers: int | None = None, *, is_cancelled: Callable[[], bool] = lambda: False) -> Job:
        """Tell the speakers of a completed job apart now (on this thread), replacing any earlier labels.

        Raises:
            ConfigError: a bad request; JobStateError: the job is not completed;
            AudioError: the file cannot be read (or has one channel, for ``channels``).
        """
        try:
            mode, low, high = parse_speakers(mode, min_speakers, max_speakers)
        except ValueError as error:
            raise ConfigError(f"{error}.") from None
        job = self.store.jobs.require_job(job_id)
        if job.status is not JobStatus.COMPLETED:
            raise JobStateError(f"Job {job_id} is {job.status.value}; speakers are told apart once it completed.")
        if mode == "off":
            raise ConfigError("Choose auto, channels or a number of speakers.")
        problem = intake.source_changed(job.source_path, job.size_bytes, job.mtime, job.content_hash)
        if problem:
            raise SourceChanged(problem)
        request = speakers.request_for(job, mode, low, high)
        speakers.run_stage(self.store, job, self.listener, is_cancelled=is_cancelled, request=request)
        return self.store.jobs.require_job(job_id)

    # -------------------------------------------------------------- reading

    def transcript(self, job_id: int) -> Transcript:
        job = self.store.jobs.require_job(job_id)
        return Transcript(job=job, segments=tuple(self.store.transcripts.segments(job_id)))

    def export(
        self,
        job_id: int,
        formats: Sequence[str],
        destination: Path,
        *,
        overwrite: bool = False,
        named_after: str | None = None,
        keep: Collection[Path] = (),
    ) -> list[Path]:
        """Export a job's transcript (complete, or what exists of a failed or unfinished one) into a folder.

        A file there that transcriber did not write for this job (or that was changed since)
        is kept, and the export takes a numbered name, unless ``overwrite`` (see ``export.claim_target``).
        ``named_after``: the file to name the exports after (default: the job's source); ``keep``:
        files written for other files of the same batch, never replaced.

        Raises:
            ExportRefused: ``destination`` is not a folder.
            TranscriberError: the folder cannot be written.
        """
        transcript = self.transcript(job_id)
        written = export_transcript(
            transcript, formats, destination, overwrite=overwrite, previous=transcript.job.exports, named_after=named_after,
            keep=keep,
        )
        self.store.jobs.record_exports(job_id, [written_file(path) for path in written])
        return written

    def export_to_file(self, job_id: int, fmt: str, target: Path, *, overwrite: bool = False) -> Path:
        """Export one format to the file the user named.

        Raises:
            ExportRefused: ``target`` is a file transcriber may not replace (the message says why).
        """
        transcript = self.transcript(job_id)
        path = export_file(transcript, fmt, target, overwrite=overwrite, previous=transcript.job.exports)
        self.store.jobs.record_exports(job_id, [written_file(path)])
        return path

    def _fresh_estimates(self) -> dict[int, tuple[float, float]]:
        active = self.store.jobs.active_jobs()
        running = [job for job in active if job.status is JobStatus.RUNNING]
        queued = [job for job in active if job.status is JobStatus.QUEUED]
        limits = self.read_limits()
        order = running + scheduler.start_order(queued, running, limits, self.store.jobs.last_started_by_user())
        return estimates.estimate_queue(order, self.store.stats.model_speeds(), limits.workers, time.time())

    def refresh_estimates(self) -> dict[int, tuple[float, float]]:
        """Recompute and store the estimated completion of every running and queued job."""
        result = self._fresh_estimates()
        if result:
            self.store.jobs.update_estimates(result)
        return result

    def with_estimates(self, jobs: Sequence[Job]) -> list[Job]:
        """``jobs`` with fresh estimates for the running and queued ones (nothing is written)."""
        fresh = self._fresh_estimates()
        return [job.with_estimate(*fresh[job.id]) if job.id in fresh else job for job in jobs]
