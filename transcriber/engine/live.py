"""The live transcript: decode a recording while it is being written, and commit its text to the job as it settles.

``LiveTranscriber`` is a background service (thread ``live-decoder``) that reads the
recording file, never the recorder: it decodes up to what the writer has synced to disk
(``recorder.written_seconds``), so the recorder never waits for it and no audio can be
lost when decoding is slow; it only falls behind, and says so. Every pass decodes from
the live cursor (everything before it is committed) to the end of what is on disk, with
the committed text as the decoder's context, using the job's model and settings.

A pass's segments are committed once they have settled (``settled_count``): a segment
followed by another one and ending ``HOLD_SECONDS`` before the end of the audio, or the
last one once ``SILENCE_SECONDS`` of audio followed it. The rest is shown as tentative
text and decoded again in the next pass, with more audio. Each commit is one store
transaction (``store.work.commit_live``): segments, cursor and the length so far, so a
crash mid-recording leaves the repaired audio and the transcript up to the last commit,
and the engine finishes the job from there (at Stop, or at the next start-up).

Pausing the recording pauses the transcript by itself: nothing is written, so there is
nothing new to decode. ``on_update`` is called on the decoder's thread; a window turns
it into a queued Qt signal, the command line into lines on the terminal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from ..audio.decode import read_seconds
from ..audio.recorder import written_seconds
from ..background import BackgroundService
from ..errors import StoreError, TranscriberError
from ..jobs import Job, Segment
from . import routing
from .execution import MAX_PROMPT_TOKENS
from .whisper import DecodedSegment, DecodeRequest, StopDecoding, speech_seconds

log = logging.getLogger(__name__)

HOLD_SECONDS = 1.0  # a segment followed by another settles once this much audio follows its end
SILENCE_SECONDS = 1.5  # the last segment of a pass settles after this much audio without more speech
STEP_SECONDS = 0.5  # decode again once this much new audio is on disk (the writer syncs every 0.5 s)
NOTHING_SAID_SECONDS = 3.0  # audio without any text this far before the end is passed over (silence)
MAX_PASS_SECONDS = 60.0  # one pass decodes at most this much, so a late decoder commits as it catches up
BEHIND_SECONDS = 10.0  # audio waiting to be decoded beyond this: the machine cannot keep up
ROUTE_SECONDS = 10.0
WINDOW_SECONDS = 30.0  # Whisper's window
QUIET_SPEECH_SECONDS = 0.2  # less speech than this after a segment: the speaker has stopped
QUIET_MARGIN_SECONDS = 0.2  # the cursor stops this far short of the checked silence's end  # ``auto``: ask ``base`` for the language if tiny.en is unsure after this much audio


@dataclass(frozen=True)
class LiveUpdate:
    """What the live transcript learnt in one pass.

    Attributes:
        job: the job as stored after the pass (None when it is no longer recording).
        segments: segments committed in this pass, in time order.
        tentative: text heard after the committed segments, not settled yet (may still change).
        recorded_seconds: audio on disk when the pass started.
        committed_seconds: the live cursor: everything before it is in the transcript.
        behind_seconds: audio on disk that no pass has looked at yet; large when the machine cannot keep up.
        ended: the job stopped being a recording (removed from the queue); the decoder has stopped.
        error: why the live transcript stopped (a model that cannot load); the recording goes on,
            and the engine transcribes it after Stop.
    """

    job: Job | None
    segments: tuple[Segment, ...]
    tentative: str
    recorded_seconds: float
    committed_seconds: float
    behind_seconds: float
    ended: bool = False
    error: str | None = None

    @property
    def falling_behind(self) -> bool:
        return self.behind_seconds > BEHIND_SECONDS


def _same_text(a: DecodedSegment, b: DecodedSegment) -> bool:
    return " ".join(a.text.lower().split()) == " ".join(b.text.lower().split())


def settled_count(
    pieces: Sequence[DecodedSegment],
    audio_end: float,
    previous: Sequence[DecodedSegment] = (),
    quiet_after: Callable[[float], bool] = lambda seconds: True,
) -> int:
    """How many of a pass's segments (a prefix, in order) are final, given that the audio reaches ``audio_end``.

    A segment from a full 30-second window (it ends 30 s or more before the end) is as final
    as in a file's decode. Any other must have been decoded the same by the pass before
    (``previous``, from the same cursor: Whisper's guesses at a sentence cut short change
    from pass to pass, its reading of a finished one does not), and have audio after it:
    ``HOLD_SECONDS`` and the next segment begun, or, for the last one, ``SILENCE_SECONDS``
    in which ``quiet_after(its end)`` finds no speech (a timestamp alone can lie).
    """
    count = 0
    for number, piece in enumerate(pieces):
        if piece.end <= audio_end - WINDOW_SECONDS:
            count += 1
            continue
        agreed = number < len(previous) and _same_text(piece, previous[number])
        last = number == len(pieces) - 1
        margin = SILENCE_SECONDS if last else HOLD_SECONDS
        if not agreed or piece.end > audio_end - margin or (last and not quiet_after(piece.end)):
            break
        count += 1
    return count


class LiveTranscriber(BackgroundService):
    """Decodes a growing recording for its ``recording`` job (see the module docstring).

    Args:
        engine: the engine of the data folder (its store, models, decoder factory and listener).
        job: the recording's job (``Engine.begin_recording``).
        on_update: called on this thread after every pass that changed something.
    """

    name = "live-decoder"
    interval = 0.2

    def __init__(self, engine, job: Job, on_update: Callable[[LiveUpdate], None] | None = None):
        super().__init__()
        self._engine = engine
        self._store = engine.store
        self.job = job
        self.path = Path(job.source_path)
        self._on_update = on_update or (lambda update: None)
        self._models = engine.models
        self._held: dict[str, tuple[object, object]] = {}  # model name -> (load settings, backend)
        self.committed_seconds = job.processed_seconds
        self._tokens: list[int] = list(self._store.work.recent_tokens(job.id, 0, MAX_PROMPT_TOKENS))
        self._last_pass_end = -1.0
        self._tentative = ""
        self._previous: list[DecodedSegment] = []  # the last pass's segments after the cursor
        self._last_text: DecodedSegment | None = None  # the last segment committed
        self.error: str | None = None
        self.ended = False

    # ------------------------------------------------------------------ loop

    def step(self) -> bool:
        if self.ended:
            return False
        recorded = written_seconds(self.path)
        if recorded - self._last_pass_end < STEP_SECONDS or recorded - self.committed_seconds < 0.5:
            return False
        try:
            self._pass(recorded)
        except StopDecoding:
            return False
        except StoreError as error:  # a full disk: the audio is safe, the engine finishes the text after Stop
            log.warning("live transcript of job %d: %s", self.job.id, error)
            self.error = str(error)
            return False
        except TranscriberError as error:  # a model that cannot load, unreadable audio
            log.warning("live transcript of job %d stops: %s", self.job.id, error)
            self.error = str(error)
            self.ended = True
            self._on_update(LiveUpdate(self.job, (), "", recorded, self.committed_seconds, 0.0, error=self.error))
            return False
        return written_seconds(self.path) - self._last_pass_end >= STEP_SECONDS

    def cleanup(self) -> None:
        for load_settings, _backend in self._held.values():
            self._models.release(load_settings)
        self._held.clear()
        self._store.close()  # this thread's connection

    # ----------------------------------------------------------------- a pass

    def _pass(self, recorded: float) -> None:
        self._last_pass_end = recorded
        end = min(recorded, self.committed_seconds + MAX_PASS_SECONDS)
        model = self.job.model if self.job.routed else routing.ENGLISH_MODEL
        pieces = self._decode(model, self.committed_seconds, end, recorded)
        if not self.job.routed and not self._route(pieces, end):
            # Not settled yet, or settled on another model (the next pass decodes with it): tentative only.
            self._report([], pieces, recorded)
            return
        previous, self._previous = self._previous, pieces
        count = settled_count(pieces, end, previous, lambda after: self._quiet(after, end))
        settled, rest = list(pieces[:count]), pieces[count:]
        log.debug("live pass %.1f-%.1f s: %d segments, %d settled: %s", self.committed_seconds, end, len(pieces), count,
                  " | ".join(piece.text for piece in pieces))
        if count:
            self._previous = list(rest)  # the next pass starts after the settled ones
        cursor = settled[-1].end if settled else self.committed_seconds
        if settled and not rest and settled[-1].end > end - WINDOW_SECONDS:
            # Settled over silence that was checked: start the next pass at its end, so the
            # tail of a word past an early timestamp is not decoded again as a "word" of its own.
            cursor = max(cursor, end - QUIET_MARGIN_SECONDS)
        if not pieces and end - self.committed_seconds > NOTHING_SAID_SECONDS:
            cursor = end - NOTHING_SAID_SECONDS  # silence: nothing to wait for there
        segments = [Segment(index=-1, start=piece.start, end=max(piece.start, piece.end), text=piece.text,
                            words=piece.words) for piece in settled]
        if cursor <= self.committed_seconds and not segments:
            self._report([], rest, recorded)
            return
        stored = self._store.work.commit_live(
            self.job.id, segments, processed_seconds=cursor, recorded_seconds=recorded,
            tokens=[piece.tokens for piece in settled],
        )
        if stored is None:
            self.ended = True  # removed from the queue, or stopped elsewhere
            self._on_update(LiveUpdate(None, (), "", recorded, self.committed_seconds, 0.0, ended=True))
            return
        self.committed_seconds = max(self.committed_seconds, cursor)
        for piece in settled:
            if self._last_text and _same_text(piece, self._last_text):
                # The same words again: the context may be feeding a loop ("Bye bye." ...), as
                # faster-whisper fears after a temperature fallback. Go on without it.
                self._tokens = []
                continue
            self._tokens = (self._tokens + list(piece.tokens))[-MAX_PROMPT_TOKENS:]
        if settled:
            self._last_text = settled[-1]
        job = self._store.jobs.get_job(self.job.id) or self.job
        self.job = job
        if stored:
            self._engine.listener.segments_added(job, stored)
        self._report(stored, rest, recorded)

    def _quiet(self, start: float, end: float) -> bool:
        """No speech in the recording between ``start`` and ``end`` (Silero VAD, level-normalised)."""
        if end - start <= 0:
            return False
        return speech_seconds(read_seconds(str(self.path), start, end - start)) < QUIET_SPEECH_SECONDS

    def _report(self, stored: Sequence[Segment], rest: Sequence[DecodedSegment], recorded: float) -> None:
        tentative = " ".join(piece.text.strip() for piece in rest if piece.text.strip())
        behind = max(0.0, written_seconds(self.path) - recorded)
        if not stored and tentative == self._tentative and behind <= BEHIND_SECONDS:
            return
        self._tentative = tentative
        self._on_update(LiveUpdate(self.job, tuple(stored), tentative, recorded, self.committed_seconds, behind))

    def _decode(self, model: str, start: float, end: float, recorded: float) -> list[DecodedSegment]:
        backend = self._backend(model)
        job = self.job
        language = job.language if model == job.model else "en"
        if backend.is_multilingual and not language:
            language = self._detect(backend, recorded)
            if language is None:
                return []

        def on_window(window_start: float) -> None:
            if self.stopping:
                raise StopDecoding()

        options = job.options if model == job.model else replace(job.options, model=model)
        request = DecodeRequest(
            path=str(self.path), duration_seconds=recorded, start_seconds=start,
            end_seconds=None if end >= recorded else end, language=language, prompt=tuple(self._tokens),
            options=options,
        )
        pieces = []
        try:
            for piece in backend.decode(request, on_window=on_window):
                pieces.append(replace(piece, end=min(piece.end, end)))
                if self.stopping:
                    raise StopDecoding()
        except OSError as error:  # the file went away mid-read: the next pass (or the engine) tries again
            log.info("live transcript of job %d: reading the recording: %s", job.id, error)
            return []
        return pieces

    def _backend(self, model: str):
        if model not in self._held:
            load_settings, loaded = self._models.acquire(model)
            self._held[model] = (load_settings, self._engine.backend_factory(loaded))
        return self._held[model][1]

    # ------------------------------------------------------- model and language

    def _route(self, pieces: Sequence[DecodedSegment], end: float) -> bool:
        """Settle an ``auto`` job's model as the engine would (see engine/routing.py); True when it stays tiny.en.

        tiny.en's confidence decides at once when it is sure; otherwise, once
        ``ROUTE_SECONDS`` of audio are there, ``base`` names the language.
        """
        logprob = sum(piece.avg_logprob for piece in pieces) / len(pieces) if pieces else None
        if routing.sure_english(logprob):
            route = routing.Route(routing.ENGLISH_MODEL, "en", f"English (tiny.en sure: {logprob:.2f}, live)")
        elif end >= ROUTE_SECONDS:
            backend = self._backend(routing.MULTILINGUAL_MODEL)
            route = routing.after_detection(logprob, *backend.spoken_language(str(self.path), 0.0))
        else:
            return False
        self._store.jobs.set_route(self.job.id, route.model, route.language)
        self.job = replace(self.job, routed_model=route.model, detected_language=route.language)
        log.info("recording job %d: %s, decoded by %s", self.job.id, route.reason, route.model)
        return route.model == routing.ENGLISH_MODEL

    def _detect(self, backend, recorded: float) -> str | None:
        """The language of a multilingual model's job with none given, once there is enough speech to tell."""
        if recorded < ROUTE_SECONDS:
            return None
        language = backend.detect_language(str(self.path), recorded)
        self._store.jobs.set_detected_language(self.job.id, language)
        self.job = replace(self.job, detected_language=language)
        return language
