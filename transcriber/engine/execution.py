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
from ..jobs import Job, Part, RunOutcome, Segment, Transcript
from ..store import Store
from . import estimates, intake, parts, routing, speakers
from .listener import EngineListener
from .models import ModelPool
from .whisper import DecodedSegment, DecodeRequest, StopDecoding

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


@dataclass(frozen=True)
class _Head:
    """The first window of an ``auto`` job, decoded by tiny.en to choose its model."""

    pieces: tuple[DecodedSegment, ...]
    next_window: float | None  # where the second window starts; None: the first was the whole file
    decoding: object  # its Decoding: damaged packets and missing audio, when it was the whole file

    @property
    def mean_logprob(self) -> float | None:
        return sum(piece.avg_logprob for piece in self.pieces) / len(self.pieces) if self.pieces else None


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
        load_settings, model = models.acquire(self.job.model)
        try:
            backend = self.context.backend_factory(model)
            if backend.is_multilingual is False and self.job.language not in (None, "en"):
                raise ModelUnavailable(
                    f"{self.job.model} transcribes English only, so it cannot transcribe {self.job.language!r}; "
                    "retry the file with the model base or auto."
                )
            self._maybe_split(backend)
            return self._decode(backend)
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
        if job.options.language:
            self._settle(routing.for_given_language(job.options.language))
            return None
        load_settings, model = models.acquire(routing.ENGLISH_MODEL)
        try:
            backend = self.context.backend_factory(model)
            head = self._first_window(backend)
            if head is None:
                return RunOutcome.STOPPED
            logprob = head.mean_logprob
            if routing.sure_english(logprob):
                route = routing.Route(routing.ENGLISH_MODEL, "en", f"English (tiny.en sure: {logprob:.2f})")
            else:
                route = routing.after_detection(logprob, *self._spoken_language())
            self._settle(route)
            if route.model != routing.ENGLISH_MODEL:
                return None
            self._maybe_split(backend)
            return self._decode(backend, head=head)
        finally:
            models.release(load_settings)

    def _spoken_language(self) -> tuple[str, float]:
        load_settings, model = self.context.models.acquire(routing.MULTILINGUAL_MODEL)
        try:
            return self.context.backend_factory(model).spoken_language(self.job.source_path)
        finally:
            self.context.models.release(load_settings)

    def _settle(self, route: routing.Route) -> None:
        self.store.jobs.set_route(self.job.id, route.model, route.language)
        self.job = replace(self.job, routed_model=route.model, detected_language=route.language)
        log.info("job %d: %s, decoded by %s", self.job.id, route.reason, route.model)

    def _first_window(self, backend) -> _Head | None:
        """Decode the first window only (what the choice of model looks at); None if a stop was asked meanwhile."""
        stop, job = self.context.stop, self.job
        next_window: list[float] = []

        def on_window(window_start: float) -> None:
            if stop.is_set():
                raise StopDecoding()
            if window_start > 0.01:
                next_window.append(window_start)
                raise StopDecoding()

        request = DecodeRequest(path=job.source_path, duration_seconds=job.duration_seconds, language="en",
                                options=replace(job.options, model=routing.ENGLISH_MODEL))
        decoding = backend.decode(request, on_window=on_window)
        pieces = []
        try:
            pieces.extend(decoding)
        except StopDecoding:
            pass
        except OSError as error:
            raise AudioError(f"{job.file_name} could not be read while transcribing: {error.strerror or error}.") from error
        if stop.is_set():
            return None
        return _Head(tuple(pieces), next_window[0] if next_window else None, decoding)

    # ------------------------------------------------------------- splitting

    def _maybe_split(self, backend) -> None:
        """Cut a fresh long job into parts for the other decode streams (see engine/parts.py)."""
        job, part = self.job, self.part
        count = parts.part_count(job.duration_seconds, self.context.settings.workers)
        if count < 2 or part.index != 0 or part.processed_seconds > part.start or part.end < job.duration_seconds:
            return
        if backend.is_multilingual and not job.language:
            # Every part must speak the same language: decide it once, from the start.
            language = backend.detect_language(job.source_path, job.duration_seconds)
            self.store.jobs.set_detected_language(job.id, language)
            self.job = replace(job, detected_language=language)
        first = self.store.work.split_fresh_job(job.id, parts.plan_parts(job.source_path, job.duration_seconds, count))
        if first is not None:
            self.part = first
            self.context.on_split()

    # -------------------------------------------------------------- decoding

    def _decode(self, backend, head: _Head | None = None) -> RunOutcome:
        """Decode the part from its cursor, committing each segment; ``head``: its first window, decoded already."""
        job, part, store, stop = self.job, self.part, self.store, self.context.stop
        prior_speed = estimates.expected_speed(job.model, store.stats.model_speeds())
        start_seconds = part.processed_seconds
        is_last = part.end >= job.duration_seconds - 1e-6
        prompt = tuple(store.work.recent_tokens(job.id, part.index, MAX_PROMPT_TOKENS)) if start_seconds > part.start else ()
        if start_seconds > part.start:
            log.info("job %d part %d continues at %s", job.id, part.index, format_clock(start_seconds))
        started = time.monotonic()
        state = {"processed": start_seconds, "language": job.language}

        def commit(segments: Sequence[Segment], processed: float, tokens=None) -> list[Segment] | None:
            processed = min(max(state["processed"], processed), part.end)
            spent = time.monotonic() - started
            stored = store.work.commit_progress(
                job.id,
                part.index,
                self.run_id,
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

        def keep(piece: DecodedSegment) -> bool:
            """Commit one decoded segment; False when the job is no longer running here."""
            # A part's last window is cut at its end, but timestamps can overshoot it a little.
            end = min(piece.end, part.end)
            segment = Segment(index=-1, start=min(piece.start, end), end=end, text=piece.text, words=piece.words)
            stored = commit([segment], piece.end, [piece.tokens])
            if stored is None:
                return False  # paused, cancelled or removed from elsewhere
            self.context.listener.segments_added(store.jobs.get_job(job.id) or job, stored)
            return True

        def on_window(window_start: float) -> None:
            if stop.is_set():
                raise StopDecoding()
            if window_start > state["processed"] + 0.01 and commit([], window_start) is None:
                raise StopDecoding()

        if head is not None:
            if not all(keep(piece) for piece in head.pieces):
                return RunOutcome.STOPPED
            if head.next_window is None:  # the first window was the whole file
                return self._finish(head.decoding, commit, is_last)
            if commit([], head.next_window) is None:
                return RunOutcome.STOPPED
            start_seconds = state["processed"]
            prompt = tuple(token for piece in head.pieces for token in piece.tokens)[-MAX_PROMPT_TOKENS:]
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
                if not keep(piece) or stop.is_set():
                    break
            else:
                finished = True
        except StopDecoding:
            pass
        except OSError as error:
            raise AudioError(f"{job.file_name} could not be read while transcribing: {error.strerror or error}.") from error
        if not finished:
            return RunOutcome.STOPPED
        return self._finish(decoding, commit, is_last)

    def _finish(self, decoding, commit, is_last: bool) -> RunOutcome:
        """The part was decoded to its end: close it, and the job with its last part."""
        job, part, store = self.job, self.part, self.store
        if commit([], part.end) is None:
            return RunOutcome.STOPPED
        if decoding.damaged_packets:
            store.jobs.set_warning(
                job.id, f"{decoding.damaged_packets} damaged audio packets were skipped; a few words may be missing."
            )
        if is_last and decoding.missing_seconds > max(1.0, 0.01 * job.duration_seconds):
            self._fail_truncated(job.duration_seconds - decoding.missing_seconds)
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
