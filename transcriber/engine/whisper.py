"""The one place that talks to faster-whisper's decoder.

``WhisperBackend.decode`` runs faster-whisper's own sequential loop (``generate_segments``:
beam search, temperature fallback, previous-text conditioning, word timings) over a
``StreamingFeatures`` view of the file instead of a whole-file array. It can start at
any second, with earlier text as the decoder's context, which is how a job continues
after a pause or a crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import numpy as np

from ..audio.decode import SAMPLE_RATE, AudioStream, read_seconds
from ..audio.features import HOP, StreamingFeatures
from ..jobs import JobOptions, Word

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = SAMPLE_RATE // HOP

# Decoding settings per preset; everything else is faster-whisper's default. Measured
# (README, Performance): beam 1 is about a third faster than beam 5 for +0.2 to 0.7 WER
# points. A wider search did not help the embedded tiny.en (60-minute file: beam 5 10.1 %,
# beam 8 10.6 %, patience 1.5 or 2 10.6 to 10.9 %), so "accurate" decodes like "balanced"
# until a setting measures better; more accuracy comes from a bigger model.
PRESET_DECODING: dict[str, dict[str, Any]] = {
    "accurate": {"beam_size": 5, "best_of": 5, "patience": 1.0},
    "balanced": {"beam_size": 5, "best_of": 5, "patience": 1.0},
    "fast": {"beam_size": 1, "best_of": 1, "patience": 1.0},
}


@dataclass(frozen=True)
class DecodeRequest:
    path: str
    duration_seconds: float
    start_seconds: float = 0.0
    end_seconds: float | None = None  # stop here (a part of a file); None: the end
    language: str | None = None
    prompt: tuple[int, ...] = ()  # decoder tokens of the text before start_seconds
    options: JobOptions = field(default_factory=JobOptions)


@dataclass(frozen=True)
class DecodedSegment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    tokens: tuple[int, ...] = ()
    avg_logprob: float = 0.0  # of the window it came from: how sure the decoder was


# faster-whisper's own rule for "this window is silence": the model thinks so and is unsure of its text.
NO_SPEECH_PROBABILITY = 0.6
LOW_LOG_PROBABILITY = -1.0
WINDOW_FRAMES = 3000
_SILENCE_PEAK = 10 ** (-50 / 20)  # -50 dBFS


def is_silent(audio: np.ndarray) -> bool:
    """Nothing in ``audio`` reaches -50 dBFS: any text decoded from it is invented."""
    return audio.size == 0 or float(np.max(np.abs(audio))) < _SILENCE_PEAK


def speech_seconds(audio: np.ndarray) -> float:
    """Seconds of speech Silero VAD finds in ``audio`` once its level is normalised."""
    if is_silent(audio):
        return 0.0
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    peak = float(np.max(np.abs(audio)))
    spans = get_speech_timestamps(
        audio * (0.7 / peak), VadOptions(threshold=0.4, min_speech_duration_ms=250, speech_pad_ms=0)
    )
    return sum(span["end"] - span["start"] for span in spans) / SAMPLE_RATE


# A segment this long with this few words while speech fills it: the decoder skipped words.
_SKIP_MIN_SECONDS = 12.0
_SKIP_WORDS_PER_SPEECH_SECOND = 1.0


def skipped_speech(segment, features: StreamingFeatures) -> bool:
    """Whether the decoder ran over speech without writing it down.

    Now and then (a quiet speaker, a text-only prompt, a temperature fallback) Whisper ends
    a window with one long segment holding a few words, and the seek jumps past 20 or
    more seconds of speech. Normal speech carries two to three words a second.
    """
    duration = segment.end - segment.start
    if duration < _SKIP_MIN_SECONDS:
        return False
    words = len(segment.text.split())
    first = int(segment.start * FRAMES_PER_SECOND)
    speech = speech_seconds(features.buffered(first, int(segment.end * FRAMES_PER_SECOND)))
    return speech > 0.5 * duration and words < _SKIP_WORDS_PER_SPEECH_SECOND * speech


def window_has_speech(audio: np.ndarray) -> bool:
    """Second opinion on a window the model calls silent.

    faster-whisper skips such windows outright, and on quiet or unusual speech (a cold,
    a far microphone, a second speaker at half level) the model is wrong often enough
    to delete whole 30-second stretches of real speech. Here the window is
    gain-normalised (Silero VAD is level-sensitive, which is why its default settings
    lose quiet speech) and checked with the VAD; only windows with no speech in them
    lose their text.
    """
    return speech_seconds(audio) >= 0.3


DETECT_SEARCH_SECONDS = 60.0  # look this far for speech to detect the language on
DETECT_SPEECH_SECONDS = 10  # of speech: as reliable as a padded 30 s window on the corpus, a fifth of the cost


class StopDecoding(Exception):
    """Raised from the window callback to stop the decoder between windows."""


@dataclass(frozen=True)
class FirstWindow:
    """A file's first window, decoded on its own (what the ``auto`` model's choice looks at; its text is kept)."""

    pieces: tuple[DecodedSegment, ...]
    next_window: float | None  # where the second window starts; None: the first was the whole file
    decoding: "Decoding"  # damaged packets and missing audio, when it was the whole file

    @property
    def mean_logprob(self) -> float | None:
        return sum(piece.avg_logprob for piece in self.pieces) / len(self.pieces) if self.pieces else None


class Decoding:
    """One pass of the decoder over a file; iterate it for segments.

    After iteration, ``missing_seconds`` is how much audio the file declared but did not
    deliver, and ``damaged_packets`` how many packets could not be decoded.
    """

    def __init__(self, segments: Iterator[DecodedSegment], stream: AudioStream, features: StreamingFeatures, language: str):
        self._segments = segments
        self._stream = stream
        self._features = features
        self.language = language

    def __iter__(self) -> Iterator[DecodedSegment]:
        return self._segments

    @property
    def missing_seconds(self) -> float:
        return self._features.missing_seconds

    @property
    def damaged_packets(self) -> int:
        return self._stream.damaged_packets


def _decoding_options(tokenizer, request: DecodeRequest, start_seconds: float):
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

    preset = PRESET_DECODING.get(request.options.preset, PRESET_DECODING["balanced"])
    return TranscriptionOptions(
        beam_size=preset["beam_size"],
        best_of=preset["best_of"],
        patience=preset["patience"],
        length_penalty=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        log_prob_threshold=-1.0,
        # Never let the model alone skip a window as silent: see _speech_check.
        no_speech_threshold=None,
        compression_ratio_threshold=2.4,
        condition_on_previous_text=True,
        prompt_reset_on_temperature=0.5,
        temperatures=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        # Tokens, not text: a text prompt has no timestamp tokens, and the model then
        # tends to answer without them too (one 30-second segment per window).
        initial_prompt=list(request.prompt) or None,
        prefix=None,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        without_timestamps=False,
        max_initial_timestamp=1.0,
        word_timestamps=request.options.word_timestamps,
        prepend_punctuations="\"'“¿([{-",
        append_punctuations="\"'.。,，!！?？:：”)]}、",
        multilingual=False,
        max_new_tokens=None,
        clip_timestamps=[start_seconds] if request.end_seconds is None else [start_seconds, request.end_seconds],
        hallucination_silence_threshold=None,
        hotwords=None,
    )


class WhisperBackend:
    """Decodes files with a loaded faster-whisper ``WhisperModel`` (shared between threads)."""

    def __init__(self, model):
        self.model = model

    @property
    def is_multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def detect_language(self, path: str, duration_seconds: float, start_seconds: float = 0.0) -> str:
        """The language spoken from ``start_seconds`` on (see ``spoken_language``)."""
        return self.spoken_language(path, start_seconds)[0]

    def spoken_language(self, path: str, start_seconds: float = 0.0) -> tuple[str, float]:
        """The language of the first ``DETECT_SPEECH_SECONDS`` of speech after ``start_seconds``, and its probability.

        Silero VAD finds the speech in the next minute (gain-normalised, so a quiet speaker
        counts), and the encoder sees that speech unpadded: a fifth of the cost of
        faster-whisper's padded 30-second window, and a silent or noisy opening does not
        decide the language.
        """
        from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

        audio = read_seconds(path, start_seconds, DETECT_SEARCH_SECONDS)
        speech = audio
        if not is_silent(audio):
            spans = get_speech_timestamps(audio * (0.7 / float(np.max(np.abs(audio)))), VadOptions(threshold=0.4))
            if spans:
                speech = np.concatenate(collect_chunks(audio, spans)[0])
        speech = speech[: DETECT_SPEECH_SECONDS * SAMPLE_RATE]
        if speech.size < SAMPLE_RATE // 2:
            speech = audio[: DETECT_SPEECH_SECONDS * SAMPLE_RATE]
        features = self.model.feature_extractor(speech)[:, : DETECT_SPEECH_SECONDS * FRAMES_PER_SECOND]
        token, probability = self.model.model.detect_language(self.model.encode(features))[0][0]
        language = token.strip("<|>")
        log.info("detected language %s (p=%.2f) in %s", language, probability, path)
        return language, float(probability)

    def decode(self, request: DecodeRequest, on_window: Callable[[float], None] | None = None) -> Decoding:
        """Start decoding ``request``; segments come out as the returned object is iterated.

        Args:
            on_window: called with the start (seconds) of each 30-second window before it
                is decoded; everything before that point has already been yielded. It may
                raise ``StopDecoding``.
        """
        from faster_whisper.tokenizer import Tokenizer

        model = self.model
        total_samples = int(round(request.duration_seconds * SAMPLE_RATE))
        start_seconds = min(max(0.0, request.start_seconds), request.duration_seconds)
        # Start decoding a little early: the first frame needs the samples before it.
        lead_in = min(start_seconds, 0.1)
        stream = AudioStream(request.path, start_seconds - lead_in)
        first_sample = int(round((start_seconds - lead_in) * SAMPLE_RATE))
        callback = (lambda frame: on_window(frame / FRAMES_PER_SECOND)) if on_window else None
        features = StreamingFeatures(stream.blocks(), model.feature_extractor, total_samples, first_sample, callback)

        language = request.language
        if not self.is_multilingual:
            language = "en"
        elif not language:
            language = self.spoken_language(request.path, start_seconds)[0]

        tokenizer = Tokenizer(model.hf_tokenizer, self.is_multilingual, task=request.options.task, language=language)
        return Decoding(self._segments(request, features, tokenizer, start_seconds), stream, features, language)

    def _segments(self, request: DecodeRequest, features: StreamingFeatures, tokenizer, start_seconds: float):
        """faster-whisper's loop, restarted once without context where it skipped speech."""
        position, prompt, retried_at = start_seconds, request.prompt, None
        while True:
            options = _decoding_options(tokenizer, replace(request, prompt=prompt), position)
            raw = self.model.generate_segments(features, tokenizer, options, False)
            restart = None
            for segment in self._kept(raw, features):
                if retried_at != segment.start and skipped_speech(segment, features):
                    restart = segment.start
                    break
                yield self._converted(segment)
            if restart is None:
                return
            raw.close()
            log.info("speech skipped at %.1f s; decoding that window again without context", restart)
            position, prompt, retried_at = restart, (), restart

    @staticmethod
    def _kept(raw, features: StreamingFeatures) -> Iterator:
        """The segments of ``raw``, less text decoded from silence (see window_has_speech)."""
        verdicts: dict[int, bool] = {}  # window start frame -> keep its text
        for segment in raw:
            if segment.seek not in verdicts:
                window = features.buffered(segment.seek, segment.seek + WINDOW_FRAMES)
                doubtful = segment.no_speech_prob > NO_SPEECH_PROBABILITY and segment.avg_logprob <= LOW_LOG_PROBABILITY
                verdicts[segment.seek] = window_has_speech(window) if doubtful else not is_silent(window)
                if not verdicts[segment.seek]:
                    log.debug("dropping text decoded from silence at %.1f s", segment.seek / FRAMES_PER_SECOND)
            if verdicts[segment.seek]:
                yield segment

    @staticmethod
    def _converted(segment) -> DecodedSegment:
        words = tuple(
            Word(start=float(w.start), end=float(w.end), word=w.word, probability=float(w.probability))
            for w in (segment.words or ())
        )
        return DecodedSegment(
            start=float(segment.start), end=float(segment.end), text=segment.text, words=words,
            tokens=tuple(segment.tokens), avg_logprob=float(segment.avg_logprob),
        )


def first_window(backend, request: DecodeRequest, should_stop: Callable[[], bool]) -> FirstWindow | None:
    """Decode only the window at ``request.start_seconds`` with ``backend``; None if ``should_stop()`` said so meanwhile.

    Raises:
        OSError: the file could not be read.
    """
    next_window: list[float] = []

    def on_window(window_start: float) -> None:
        if should_stop():
            raise StopDecoding()
        if window_start > request.start_seconds + 0.01:
            next_window.append(window_start)
            raise StopDecoding()

    decoding = backend.decode(request, on_window=on_window)
    pieces = []
    try:
        pieces.extend(decoding)
    except StopDecoding:
        pass
    if should_stop():
        return None
    return FirstWindow(tuple(pieces), next_window[0] if next_window else None, decoding)


def speech_regions(samples: np.ndarray, min_silence_ms: int = 300) -> list[tuple[float, float]]:
    """Where ``samples`` (16 kHz mono) hold speech, in seconds, by faster-whisper's Silero VAD (ONNX, bundled)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps  # lazy: faster-whisper is heavy to import

    options = VadOptions(min_silence_duration_ms=min_silence_ms, speech_pad_ms=100, min_speech_duration_ms=200)
    return [(item["start"] / SAMPLE_RATE, item["end"] / SAMPLE_RATE) for item in get_speech_timestamps(samples, options)]
