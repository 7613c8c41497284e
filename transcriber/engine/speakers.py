"""Who spoke when: offline speaker diarization of one file, streamed, with no download and no torch.

Two ways, chosen per job (``JobOptions.speakers``):

- a model (``auto`` or a count): the file streams in chunks of ``CHUNK_SECONDS``; in each
  chunk Silero VAD (faster-whisper's bundled ONNX) finds speech, and every speech region
  is cut into windows of ``WINDOW_SECONDS`` every ``HOP_SECONDS``; each window becomes a
  192-number voice print from CAM++ (3D-Speaker, Apache-2.0, converted to ONNX once by
  scripts/convert_speaker_model.py and shipped in transcriber/resources). Only the voice
  prints are kept, so memory grows by 768 bytes per window, not with the audio. The prints
  are then grouped by agglomerative clustering on cosine similarity: to the count asked
  for, or, for ``auto``, until the closest two groups are less alike than
  ``AUTO_THRESHOLD`` (within ``min``/``max``).
- ``channels``: a stereo file with one speaker per channel (a phone call, a two-track
  podcast) is labelled by the louder channel, no model at all.

``diarize`` returns ``SpeakerTurn``s; ``assign`` lays them over a transcript's segments,
splitting a segment where the speaker changes between its words.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..audio.decode import SAMPLE_RATE, AudioStream
from ..errors import AudioError
from ..jobs import Segment, SpeakerTurn, Word
from .whisper import speech_regions

log = logging.getLogger(__name__)

CHUNK_SECONDS = 60.0
WINDOW_SECONDS = 1.5
HOP_SECONDS = 0.75
MIN_WINDOW_SECONDS = 0.5  # shorter speech is labelled by its neighbours
AUTO_THRESHOLD = 0.4  # cosine similarity (mean over pairs) below which two groups are different speakers; tuned on tests/conversations.py
MAX_UNITS = 800  # more windows than this are clustered in averaged runs, then each window is reassigned
BATCH = 32
MODEL_FILE = "campplus_speaker.onnx"


class StopDiarization(Exception):
    """Raised inside ``diarize`` when ``is_cancelled`` says so."""


@dataclass(frozen=True)
class Request:
    """What to tell apart: ``mode`` is ``auto``, ``channels`` or a count as text."""

    path: str
    duration_seconds: float
    mode: str = "auto"
    min_speakers: int | None = None
    max_speakers: int | None = None
    threshold: float | None = None  # for ``auto``; None: AUTO_THRESHOLD


def model_path() -> Path:
    return Path(str(resources.files("transcriber") / "resources" / MODEL_FILE))


_session = None


def _embedder():
    """The CAM++ ONNX session, loaded once per process (about 30 MB)."""
    global _session
    if _session is None:
        import onnxruntime  # lazy: only jobs that want speakers pay for it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        _session = onnxruntime.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
    return _session


# ----------------------------------------------------------------- features


def _mel_banks(bins: int = 80, fft: int = 512, low: float = 20.0, high: float = SAMPLE_RATE / 2) -> np.ndarray:
    """Kaldi's triangular mel filters (mel = 1127 ln(1 + f/700)), shape (bins, fft/2)."""
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    low_mel, high_mel = mel(low), mel(high)
    delta = (high_mel - low_mel) / (bins + 1)
    freqs = mel(np.arange(fft // 2) * SAMPLE_RATE / fft)
    banks = np.zeros((bins, fft // 2), dtype=np.float32)
    for index in range(bins):
        left, centre, right = low_mel + index * delta, low_mel + (index + 1) * delta, low_mel + (index + 2) * delta
        rising = (freqs - left) / (centre - left)
        falling = (right - freqs) / (right - centre)
        banks[index] = np.maximum(0.0, np.minimum(rising, falling))
    return banks


_BANKS = _mel_banks()
_FRAME, _SHIFT, _FFT = 400, 160, 512
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_FRAME) / (_FRAME - 1))) ** 0.85  # Povey's window


def fbank(samples: np.ndarray) -> np.ndarray:
    """80 log-mel energies per 10 ms (25 ms frames), mean-normalised: CAM++'s input, as Kaldi computes it."""
    samples = samples.astype(np.float32) * 32768.0
    count = 1 + (len(samples) - _FRAME) // _SHIFT
    if count < 1:
        return np.zeros((0, 80), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(samples, _FRAME)[::_SHIFT][:count].astype(np.float32)
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1] - 0.97 * frames[:, :1], frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    spectrum = np.abs(np.fft.rfft(frames * _WINDOW, _FFT)[:, : _FFT // 2]) ** 2
    energies = np.log(np.maximum(spectrum @ _BANKS.T, np.finfo(np.float32).eps))
    return (energies - energies.mean(axis=0, keepdims=True)).astype(np.float32)


# ----------------------------------------------------------------- windows


@dataclass(frozen=True)
class _Window:
    start: float
    end: float
    region: int  # windows of one speech region share it


def _windows(regions: Sequence[tuple[float, float]], first_region: int) -> list[_Window]:
    found = []
    for offset, (start, end) in enumerate(regions):
        length = end - start
        if length < MIN_WINDOW_SECONDS:
            continue
        if length <= WINDOW_SECONDS:
            found.append(_Window(start, end, first_region + offset))
            continue
        steps = int(math.ceil((length - WINDOW_SECONDS) / HOP_SECONDS))
        for step in range(steps + 1):
            window_start = min(start + step * HOP_SECONDS, end - WINDOW_SECONDS)
            found.append(_Window(window_start, window_start + WINDOW_SECONDS, first_region + offset))
    return found


def _chunks(path: str) -> Iterator[tuple[float, np.ndarray]]:
    """(start second, samples) of consecutive chunks of the file."""
    size = int(CHUNK_SECONDS * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    held, origin = 0, 0
    for block in AudioStream(path).blocks():
        pending.append(block)
        held += block.size
        while held >= size:
            joined = np.concatenate(pending)
            yield origin / SAMPLE_RATE, joined[:size]
            rest = joined[size:]
            pending, held, origin = [rest], rest.size, origin + size
    if held:
        yield origin / SAMPLE_RATE, np.concatenate(pending)


def _embed(samples: np.ndarray, windows: Sequence[_Window], offset: float) -> np.ndarray:
    """One L2-normalised voice print per window of a chunk (``offset``: the chunk's first second)."""
    session = _embedder()
    prints = []
    for first in range(0, len(windows), BATCH):
        batch = windows[first : first + BATCH]
        features = [fbank(samples[int((w.start - offset) * SAMPLE_RATE) : int((w.end - offset) * SAMPLE_RATE)]) for w in batch]
        frames = max(len(item) for item in features)
        padded = np.stack([np.pad(item, ((0, frames - len(item)), (0, 0)), mode="wrap") for item in features])
        prints.append(session.run(None, {"features": padded})[0])
    embeddings = np.concatenate(prints).astype(np.float32)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-9)


# ---------------------------------------------------------------- clustering


def cluster(embeddings: np.ndarray, count: int | None = None, *, threshold: float | None = None,
            min_count: int | None = None, max_count: int | None = None) -> np.ndarray:
    """Agglomerative clustering of unit vectors, average linkage on cosine similarity.

    Two groups are as alike as the mean similarity of their members' pairs (a group's mean
    vector would make large groups look alike).

    Args:
        count: the number of groups wanted; None: merge while the closest groups are at least
            ``threshold`` (default ``AUTO_THRESHOLD``) alike, ending with between
            ``min_count`` and ``max_count`` groups.

    Returns:
        A label per row, numbered from 0 in order of first appearance.
    """
    threshold = AUTO_THRESHOLD if threshold is None else threshold
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=int)
    sums = embeddings.astype(np.float64).copy()
    sizes = np.ones(n)
    alive = np.ones(n, dtype=bool)
    owner = np.arange(n)
    similarity = sums @ sums.T
    np.fill_diagonal(similarity, -np.inf)
    groups = n
    low = max(1, min_count or 1) if count is None else count
    high = (max_count or n) if count is None else count
    while groups > low:
        a, b = divmod(int(np.argmax(similarity)), n)
        if groups <= high and count is None and similarity[a, b] < threshold:
            break
        sums[a] += sums[b]
        sizes[a] += sizes[b]
        alive[b] = False
        owner[owner == b] = a
        row = (sums @ sums[a]) / (sizes * sizes[a])
        row[~alive] = -np.inf
        row[a] = -np.inf
        similarity[a, :] = row
        similarity[:, a] = row
        similarity[b, :] = -np.inf
        similarity[:, b] = -np.inf
        groups -= 1
    _, first_seen = np.unique(owner, return_index=True)
    order = {owner[index]: label for label, index in enumerate(sorted(first_seen))}
    return np.array([order[item] for item in owner])


def _cluster_many(embeddings: np.ndarray, request: Request) -> np.ndarray:
    """``cluster`` for any number of windows: runs of neighbours are averaged first, then each window joins its nearest group."""
    count = None if request.mode == "auto" else int(request.mode)
    step = max(1, int(math.ceil(len(embeddings) / MAX_UNITS)))
    if step == 1:
        return cluster(embeddings, count, threshold=request.threshold, min_count=request.min_speakers, max_count=request.max_speakers)
    units = np.stack([embeddings[i : i + step].mean(axis=0) for i in range(0, len(embeddings), step)])
    units /= np.maximum(np.linalg.norm(units, axis=1, keepdims=True), 1e-9)
    unit_labels = cluster(units, count, threshold=request.threshold, min_count=request.min_speakers, max_count=request.max_speakers)
    centroids = np.stack([units[unit_labels == label].mean(axis=0) for label in range(unit_labels.max() + 1)])
    nearest = np.argmax(embeddings @ centroids.T, axis=1)
    _, first_seen = np.unique(nearest, return_index=True)
    order = {nearest[index]: label for label, index in enumerate(sorted(first_seen))}
    return np.array([order[item] for item in nearest])


# ------------------------------------------------------------------ turns


def _turns(regions: Sequence[tuple[float, float]], windows: Sequence[_Window], labels: np.ndarray) -> list[SpeakerTurn]:
    """Speech regions cut where the nearest window's label changes (the change falls between two window centres)."""
    if not windows:
        return []
    centres = np.array([(w.start + w.end) / 2 for w in windows])
    turns: list[SpeakerTurn] = []
    for start, end in regions:
        inside = [i for i, c in enumerate(centres) if start <= c <= end]
        if not inside:
            label = int(labels[int(np.argmin(np.abs(centres - (start + end) / 2)))])
            turns.append(SpeakerTurn(start, end, label))
            continue
        cursor, current = start, int(labels[inside[0]])
        for before, after in zip(inside, inside[1:]):
            if labels[after] != current:
                change = (centres[before] + centres[after]) / 2
                turns.append(SpeakerTurn(cursor, change, current))
                cursor, current = change, int(labels[after])
        turns.append(SpeakerTurn(cursor, end, current))
    return merge_turns(turns)


def merge_turns(turns: Sequence[SpeakerTurn], gap: float = 0.5) -> list[SpeakerTurn]:
    """Join consecutive turns of one speaker separated by less than ``gap`` seconds."""
    merged: list[SpeakerTurn] = []
    for turn in sorted(turns, key=lambda t: t.start):
        if merged and merged[-1].label == turn.label and turn.start - merged[-1].end < gap:
            merged[-1] = replace(merged[-1], end=max(merged[-1].end, turn.end))
        else:
            merged.append(turn)
    return merged


def diarize(request: Request, *, on_progress: Callable[[float], None] = lambda seconds: None,
            is_cancelled: Callable[[], bool] = lambda: False) -> list[SpeakerTurn]:
    """Tell the speakers of a file apart (see the module docstring).

    Args:
        on_progress: called with the seconds of audio looked at so far.
        is_cancelled: asked between chunks; True raises ``StopDiarization``.

    Raises:
        AudioError: the file cannot be read, or ``channels`` was asked of a file without two channels.
        StopDiarization: ``is_cancelled`` said so.
    """
    if request.mode == "channels":
        return _by_channel(request, on_progress, is_cancelled)
    regions: list[tuple[float, float]] = []
    windows: list[_Window] = []
    prints: list[np.ndarray] = []
    for offset, samples in _chunks(request.path):
        if is_cancelled():
            raise StopDiarization()
        found = [(offset + a, offset + b) for a, b in speech_regions(samples)]
        chunk_windows = _windows(found, len(regions))
        regions.extend(found)
        if chunk_windows:
            prints.append(_embed(samples, chunk_windows, offset))
            windows.extend(chunk_windows)
        on_progress(offset + samples.size / SAMPLE_RATE)
    if not windows:
        return [SpeakerTurn(a, b, 0) for a, b in regions]
    labels = _cluster_many(np.concatenate(prints), request)
    return _turns(regions, windows, labels)


# ---------------------------------------------------------------- channels

FRAME_SECONDS = 0.05
SILENCE_RMS = 10 ** (-45 / 20)  # quieter than -45 dBFS on both channels: nobody speaks
MIN_TURN_SECONDS = 0.3


def _by_channel(request: Request, on_progress, is_cancelled) -> list[SpeakerTurn]:
    """Label each 50 ms by the louder channel (channel 1 is "Speaker 1"); short blips join their neighbours."""
    stream = AudioStream(request.path, channels=2)
    size = int(FRAME_SECONDS * SAMPLE_RATE)
    frames: list[int] = []  # -1: silence, else the channel
    pending = np.zeros((0, 2), dtype=np.float32)
    seen = 0.0
    for block in stream.blocks():
        pending = np.concatenate([pending, block])
        usable = (len(pending) // size) * size
        if usable:
            rms = np.sqrt((pending[:usable].reshape(-1, size, 2) ** 2).mean(axis=1))
            loud = rms.max(axis=1) > SILENCE_RMS
            frames.extend(np.where(loud, np.argmax(rms, axis=1), -1).tolist())
            pending = pending[usable:]
        seen += len(block) / SAMPLE_RATE
        if seen >= CHUNK_SECONDS:
            on_progress(len(frames) * FRAME_SECONDS)
            seen = 0.0
            if is_cancelled():
                raise StopDiarization()
    if stream.source_channels < 2:
        raise AudioError(f"{Path(request.path).name} has one audio channel, so its speakers cannot be told apart "
                         "by channel; use --speakers auto instead.", "mono")
    on_progress(len(frames) * FRAME_SECONDS)
    turns = []
    index = 0
    while index < len(frames):
        label, end = frames[index], index
        while end < len(frames) and frames[end] == label:
            end += 1
        if label >= 0:
            turns.append(SpeakerTurn(index * FRAME_SECONDS, end * FRAME_SECONDS, label))
        index = end
    kept = [turn for turn in turns if turn.end - turn.start >= MIN_TURN_SECONDS]
    return merge_turns(kept, gap=1.0)


# ---------------------------------------------------------------- assigning


def speaker_at(turns: Sequence[SpeakerTurn], start: float, end: float) -> int | None:
    """The speaker who talks most within [start, end), or the nearest turn's if none overlaps."""
    if not turns:
        return None
    overlap: dict[int, float] = {}
    for turn in turns:
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            overlap[turn.label] = overlap.get(turn.label, 0.0) + shared
    if overlap:
        return max(overlap, key=overlap.get)
    middle = (start + end) / 2
    return min(turns, key=lambda t: min(abs(t.start - middle), abs(t.end - middle))).label


def assign(segments: Sequence[Segment], turns: Sequence[SpeakerTurn]) -> list[Segment]:
    """Each segment with its speaker's label; a segment whose words change speaker is split between those words.

    Returned segments keep their ``index`` when unsplit; the pieces of a split one have index -1.
    """
    result: list[Segment] = []
    for segment in segments:
        if not segment.words:
            result.append(replace(segment, speaker_label=speaker_at(turns, segment.start, segment.end)))
            continue
        runs: list[tuple[int | None, list[Word]]] = []
        for word in segment.words:
            label = speaker_at(turns, word.start, max(word.end, word.start + 0.01))
            if runs and runs[-1][0] == label:
                runs[-1][1].append(word)
            else:
                runs.append((label, [word]))
        if len(runs) == 1:
            result.append(replace(segment, speaker_label=runs[0][0]))
            continue
        for position, (label, words) in enumerate(runs):
            start = segment.start if position == 0 else words[0].start
            end = segment.end if position == len(runs) - 1 else words[-1].end
            text = "".join(word.word for word in words)
            result.append(Segment(index=-1, start=start, end=end, text=text, words=tuple(words), speaker_label=label))
    return result


# ------------------------------------------------------------------ the stage

PROGRESS_INTERVAL = 0.5  # seconds between progress writes


def request_for(job, mode: str | None = None, min_speakers: int | None = None, max_speakers: int | None = None) -> Request:
    """The diarization a job asked for (or ``mode`` etc. instead, for a completed job)."""
    options = job.options
    return Request(
        path=job.source_path,
        duration_seconds=job.duration_seconds,
        mode=mode or options.speakers,
        min_speakers=min_speakers if mode else options.min_speakers,
        max_speakers=max_speakers if mode else options.max_speakers,
    )


def run_stage(store, job, listener, *, is_cancelled: Callable[[], bool] = lambda: False,
              request: Request | None = None) -> list[SpeakerTurn]:
    """The speakers stage of a job: diarize its file, then label (and split) its stored segments in one transaction.

    Progress and an estimate go to the job (``store.speakers.set_progress``) and the
    listener as it goes. A crash before the last transaction leaves the segments as they
    were and the stage to run again; the transcription is never repeated.

    Raises:
        StopDiarization: ``is_cancelled`` said so (nothing was changed).
        AudioError: the file cannot be read, or ``channels`` on a mono file.
    """
    import time

    request = request or request_for(job)
    started = time.monotonic()
    last = [0.0]

    def on_progress(seconds: float) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_INTERVAL and seconds < request.duration_seconds:
            return
        last[0] = now
        fraction = min(0.99, seconds / request.duration_seconds) if request.duration_seconds > 0 else 0.0
        speed = seconds / max(1e-3, now - started)
        eta = max(0.0, request.duration_seconds - seconds) / speed if speed > 0 else None
        store.speakers.set_progress(job.id, fraction, eta_seconds=eta)
        listener.job_changed(store.jobs.get_job(job.id) or job)

    store.speakers.set_progress(job.id, 0.0)
    turns = diarize(request, on_progress=on_progress, is_cancelled=is_cancelled)
    if is_cancelled():
        raise StopDiarization()
    segments = assign(store.transcripts.segments(job.id), turns)
    store.speakers.assign(job.id, segments)
    log.info("job %d: %d speakers in %.1f s", job.id, len({t.label for t in turns}), time.monotonic() - started)
    listener.job_changed(store.jobs.get_job(job.id) or job)
    return turns
