"""One run of one claimed part: decode from its cursor, commit every segment as it comes, then finish or stop.

``PartRun.run`` returns how the run ended (a ``RunOutcome``); expected problems with the
job (bad audio, a changed source, a missing model) raise ``TranscriberError`` and the
engine fails the job with the message; a ``StoreError`` means the store could not be
written and the part is retried later. Each commit is one store transaction holding
the segment, the part's cursor and the job's progress (``store.work.commit_progress``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from ..audio.decode import format_clock
from ..config import Settings
from ..errors import AudioError, ModelUnavailable, SourceChanged, StoreError, TranscriberError
from ..export import export_transcript, written_file
from ..jobs import TRANSLATE, Job, Part, RunOutcome, Segment, Transcript
from ..store import Store
from . import estimates, intake, parts, routing, speakers
from .listener import EngineListener
from .models import ModelPool, is_cuda_trouble
from .whisper import DecodedSegment, DecodeRequest, FirstWindow, StopDecoding, first_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartContext:
    """What a run needs from the engine: the store, the models, the settings it was claimed under."""

    store: Store
    models: ModelPool
    backend_factory: Callable[[object], object]
    listener: EngineListener
    settings: Settings
    export_dir: Path
    stop: threading.Event
    on_split: Callable[[], None]


# The decoder's context when a part continues: as many earlier tokens as the store hands back.
MAX_PROMPT_TOKENS = 223


class PartRun:
    """Decodes one claimed part of a job (see the module docstring)."""

    def __init__(self, context: PartContext, job: Job, part: Part, run_id: int):
        self.context = context
        self.store = context.store
        self.job = job
        self.part = part
        self.run_id = run_id

    def run(self) -> RunOutcome:
        job = self.job
        problem = intake.source_changed(job.source_path, job.size_bytes, job.mtime, job.content_hash)
        if problem:
            raise SourceChanged(problem)
        if self._wants_speakers() and self.part.processed_seconds >= self.part.end - 1e-6:
            # Decoded to the end before a crash or a stop during the speakers stage: only that stage is left.
            return self._after_decoding()
        if not job.routed:
            outcome = self._route()
            if outcome is not None:
                return outcome
        models = self.context.models
        load_settings, model = self._acquire(self.job.model)
        try:
            backend = self.context.backend_factory(model)
            if backend.is_multilingual is False and self.job.language not in (None, "en"):
                raise ModelUnavailable(
                    f"{self.job.model} transcribes English only, so it cannot transcribe {self.job.language!r}; "
                    "retry the file with the model base or auto."
                )
            if backend.is_multilingual is False and self.job.options.task == TRANSLATE:
                raise ModelUnavailable(
                    f"{self.job.model} is an English-only model, so it cannot translate; "
                    "retry the file with the model base or auto."
                )
            self._maybe_split(backend)
            return self._on_device(load_settings, lambda: self._decode(backend))
        finally:
            models.release(load_settings)

    # ----------------------------------------------------------- choosing

    def _route(self) -> RunOutcome | None:
        """Choose the model of an ``auto`` job (see engine/routing.py) and store the choice.

        Returns:
            How the run ended when the job went on with ``tiny.en`` here (its first window,
            decoded to choose, is kept), or None when it is to be decoded by another model.
        """
        job, models = self.job, self.context.models
        if job.options.task == TRANSLATE:  # only the multilingual model translates
            language = job.options.language or self._spoken_language()[0]
            self.settle(routing.for_translation(language))
            return None
        if job.options.language:
            self.settle(routing.for_given_language(job.options.language))
            return None
        load_settings, model = self._acquire(routing.ENGLISH_MODEL)
        try:
            backend = self.context.backend_factory(model)
            request = DecodeRequest(path=job.source_path, duration_seconds=job.duration_seconds, language="en",
                                    options=replace(job.options, model=routing.ENGLISH_MODEL))
            try:
                head = first_window(backend, request, self.context.stop.is_set)
            except OSError as error:
                raise AudioError(f"{job.file_name} could not be read while transcribing: {error.strerror or error}.") from error
            if head is None:
                return RunOutcome.STOPPED
            route = routing.choose(head.mean_logprob, self._spoken_language)
            self.settle(route)
            if route.model != routing.ENGLISH_MODEL:
                return None
            self._maybe_split(backend)
            return self._on_device(load_settings, lambda: self._decode(backend, head=head))
        finally:
            models.release(load_settings)

    def _on_device(self, load_settings, decode: Callable[[], RunOutcome]) -> RunOutcome:
        """Run ``decode``; when the GPU fails mid-way (out of memory), stop, so the part continues on the CPU.

        The part goes back to the queue at its last committed segment (RunOutcome.STOPPED),
        and the pool loads every model on the CPU from then on.
        """
        try:
            return decode()
        except RuntimeError as error:
            if load_settings.device != "cuda" or not is_cuda_trouble(error):
                raise
            log.warning("job %d: the GPU failed while decoding (%s); continuing on the CPU", self.job.id, error)
            self.context.models.give_up_cuda(str(error))
            return RunOutcome.STOPPED

    def _acquire(self, name: str):
        """Take model ``name`` from the pool; a model that runs on the CPU instead of the GPU leaves a warning on the job."""
        load_settings, model = self.context.models.acquire(name)
        note = self.context.models.device_note(load_settings)
        if note and note != self.job.warning:
            self.store.jobs.set_warning(self.job.id, note)
            self.job = replace(self.job, warning=note)
        return load_settings, model

    def _spoken_language(self) -> tuple[str, float]:
        load_settings, model = self._acquire(routing.MULTILINGUAL_MODEL)
        try:
            return self.context.backend_factory(model).spoken_language(self.job.source_path)
        finally:
            self.context.models.release(load_settings)

    def settle(self, route: routing.Route) -> None:
        """Store the model chosen for an ``auto`` job (here, or by a remote worker)."""
        self.store.jobs.set_route(self.job.id, route.model, route.language)
        self.job = replace(self.job, routed_model=route.model, detected_language=route.language)
        log.info("job %d: %s, decoded by %s", self.job.id, route.reason, route.model)

    # ------------------------------------------------------------- splitting

    def _maybe_split(self, backend) -> None:
        """Cut a fresh long job into parts for the other decode streams (see engine/parts.py)."""
        detect = None
        if backend.is_multilingual and not self.job.language:
            detect = lambda: backend.detect_language(self.job.source_path, self.job.duration_seconds)  # noqa: E731
        self.split(self.context.settings.workers, detect)

    def split(self, streams: int, detect_language: Callable[[], str] | None = None) -> bool:
        """Cut a fresh long job into parts for ``streams`` decode streams.

        Args:
            detect_language: for a job whose language is not known yet: every part must speak
                the same one, so it is decided once, from the start, before cutting.

        Returns:
            True when the job was cut (this run now decodes the first part).
        """
        job, part = self.job, self.part
        count = parts.part_count(job.duration_seconds, streams)
        if count < 2 or part.index != 0 or part.processed_seconds > part.start or part.end < job.duration_seconds:
            return False
        if detect_language is not None:
            language = detect_language()
            self.store.jobs.set_detected_language(job.id, language)
            self.job = job = replace(job, detected_language=language)
        first = self.store.work.split_fresh_job(job.id, parts.plan_parts(job.source_path, job.duration_seconds, count))
        if first is None:
            return False
        self.part = first
        self.context.on_split()
        return True

    # -------------------------------------------------------------- decoding

    def begin(self) -> tuple[float, tuple[int, ...]]:
        """Start committing from the part's cursor; returns where decoding starts and the decoder's context there."""
        job, part, store = self.job, self.part, self.store
        self._prior_speed = estimates.expected_speed(job.model, store.stats.model_speeds())
        self._start_seconds = part.processed_seconds
        self._started = time.monotonic()
        self._processed = part.processed_seconds
        self._language = job.language
        if part.processed_seconds > part.start:
            log.info("job %d part %d continues at %s", job.id, part.index, format_clock(part.processed_seconds))
            return part.processed_seconds, tuple(store.work.recent_tokens(job.id, part.index, MAX_PROMPT_TOKENS))
        return part.processed_seconds, ()

    def commit(self, segments: Sequence[Segment], processed: float, tokens=None, *, remote_seq: int | None = None,
               processing_seconds: float | None = None) -> list[Segment] | None:
        """Store segments and the part's new cursor (see ``store.work.commit_progress``); None: no longer running here."""
        part = self.part
        processed = min(max(self._processed, processed), part.end)
        spent = time.monotonic() - self._started if processing_seconds is None else processing_seconds
        stored = self.store.work.commit_progress(
            self.job.id,
            part.index,
            self.run_id,
            segments,
            processed_seconds=processed,
            processing_seconds=spent,
            speed=estimates.live_speed(processed - self._start_seconds, spent, self._prior_speed),
            detected_language=self._language,
            tokens=tokens,
            remote_seq=remote_seq,
        )
        if stored is not None:
            self._processed = processed
        return stored

    def keep(self, piece: DecodedSegment) -> bool:
        """Commit one decoded segment; False when the job is no longer running here."""
        return self.keep_all([piece])

    def keep_all(self, pieces: Sequence[DecodedSegment], *, remote_seq: int | None = None,
                 processing_seconds: float | None = None) -> bool:
        """Commit decoded segments in one transaction; False when the job is no longer running here.

        Args:
            remote_seq: for a remote run, the event number of the first piece (see
                ``store.work.commit_progress``).
            processing_seconds: for a remote run, the worker's decoding time so far.
        """
        part, job = self.part, self.job
        segments = []
        for piece in pieces:
            # A part's last window is cut at its end, but timestamps can overshoot it a little.
            end = min(piece.end, part.end)
            segments.append(Segment(index=-1, start=min(piece.start, end), end=end, text=piece.text, words=piece.words))
        stored = self.commit(segments, pieces[-1].end, [piece.tokens for piece in pieces], remote_seq=remote_seq,
                             processing_seconds=processing_seconds)
        if stored is None:
            return False  # paused, cancelled or removed from elsewhere
        if stored:
            self.context.listener.segments_added(self.store.jobs.get_job(job.id) or job, stored)
        return True

    @property
    def is_last(self) -> bool:
        return self.part.end >= self.job.duration_seconds - 1e-6

    def _decode(self, backend, head: FirstWindow | None = None) -> RunOutcome:
        """Decode the part from its cursor, committing each segment; ``head``: its first window, decoded already."""
        job, part, stop = self.job, self.part, self.context.stop
        start_seconds, prompt = self.begin()

        def on_window(window_start: float) -> None:
            if stop.is_set():
                raise StopDecoding()
            if window_start > self._processed + 0.01 and self.commit([], window_start) is None:
                raise StopDecoding()

        if head is not None:
            if not all(self.keep(piece) for piece in head.pieces):
                return RunOutcome.STOPPED
            if head.next_window is None:  # the first window was the whole file
                return self.finish(head.decoding.damaged_packets, head.decoding.missing_seconds)
            if self.commit([], head.next_window) is None:
                return RunOutcome.STOPPED
            start_seconds = self._processed
            prompt = tuple(token for piece in head.pieces for token in piece.tokens)[-MAX_PROMPT_TOKENS:]
        request = DecodeRequest(
            path=job.source_path,
            duration_seconds=job.duration_seconds,
            start_seconds=start_seconds,
            end_seconds=None if self.is_last else part.end,
            language=job.language,
            prompt=prompt,
            options=job.options,
        )
        decoding = backend.decode(request, on_window=on_window)
        self._language = decoding.language
        finished = False
        try:
            for piece in decoding:
                if not self.keep(piece) or stop.is_set():
                    break
            else:
                finished = True
        except StopDecoding:
            pass
        except OSError as error:
            raise AudioError(f"{job.file_name} could not be read while transcribing: {error.strerror or error}.") from error
        if not finished:
            return RunOutcome.STOPPED
        return self.finish(decoding.damaged_packets, decoding.missing_seconds)

    def finish(self, damaged_packets: int, missing_seconds: float, *, language: str | None = None) -> RunOutcome:
        """The part was decoded to its end: close it, and the job with its last part."""
        job, part, store = self.job, self.part, self.store
        if language:
            self._language = language
        if self.commit([], part.end) is None:
            return RunOutcome.STOPPED
        if damaged_packets:
            store.jobs.set_warning(
                job.id, f"{damaged_packets} damaged audio packets were skipped; a few words may be missing."
            )
        if self.is_last and missing_seconds > max(1.0, 0.01 * job.duration_seconds):
            self._fail_truncated(job.duration_seconds - missing_seconds)
            return RunOutcome.FAILED
        return self._after_decoding()

    def _wants_speakers(self) -> bool:
        return self.job.options.speakers != "off" and self.job.speakers_progress != 1.0

    def _after_decoding(self) -> RunOutcome:
        """Close the part; with the job's last part, tell its speakers apart (if asked) and complete it."""
        job, part, store = self.job, self.part, self.store
        wants = self._wants_speakers()
        if not store.work.finish_part(job.id, part.index, hold_last=wants):
            return RunOutcome.PART_DONE
        if wants:
            try:
                speakers.run_stage(store, job, self.context.listener, is_cancelled=self.context.stop.is_set)
            except speakers.StopDiarization:
                return RunOutcome.STOPPED
            if not store.work.finish_part(job.id, part.index):
                return RunOutcome.PART_DONE
            self.job = store.jobs.require_job(job.id)
        return self._complete()

    # ------------------------------------------------------------- finishing

    def _fail_truncated(self, delivered: float) -> None:
        job = self.job
        declared = self.store.jobs.declared_seconds(job.id) or job.duration_seconds
        self.store.jobs.mark_failed(
            job.id,
            f"{job.file_name} is truncated or damaged: it declares {format_clock(declared)} "
            f"of audio but only {format_clock(delivered)} could be decoded. "
            f"The transcript of that part is kept and can be exported.",
            "truncated",
        )

    def _complete(self) -> RunOutcome:
        job, store = self.job, self.store
        declared = store.jobs.declared_seconds(job.id)
        if declared and declared - job.duration_seconds > max(1.0, 0.01 * declared):
            self._fail_truncated(job.duration_seconds)
            return RunOutcome.FAILED
        completed = store.jobs.mark_completed(job.id)
        log.info("job %d completed: %s in %.1f s of decoding", job.id, job.file_name, completed.processing_seconds)
        if self.context.settings.auto_export:
            self._auto_export(completed)
        try:
            # The job.completed webhook was held until the exports it may link to exist.
            store.automation.release_deliveries(job.id)
        except StoreError as error:  # released at the next start-up instead (Engine.recover)
            log.warning("webhooks of job %d not released: %s", job.id, error)
        return RunOutcome.COMPLETED

    def _auto_export(self, job: Job) -> None:
        formats = self.context.settings.export_format_list
        if not formats:
            return
        try:
            transcript = Transcript(job=job, segments=tuple(self.store.transcripts.segments(job.id)))
            written = export_transcript(transcript, formats, self.context.export_dir, overwrite=False, previous=job.exports)
            self.store.jobs.record_exports(job.id, [written_file(path) for path in written], automatic=True)
        except TranscriberError as error:
            log.warning("automatic export of job %d failed: %s", job.id, error)
            self.store.jobs.set_warning(job.id, f"Automatic export failed: {error}")
