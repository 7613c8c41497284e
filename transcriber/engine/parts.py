"""Splitting a long job into parts that several decode streams can work on at once.

One Whisper stream decodes a file window by window, each window waiting for the one
before it, so a single stream cannot use more than its own threads. On a small machine
one thread per stream, and as many streams as cores, gets more done than one stream with
all the threads (benchmarks/README.md has the figures); a long job is therefore cut into
parts, at quiet moments so no word is cut in two, and its parts are decoded in parallel.
"""

from __future__ import annotations

import logging

import numpy as np

from ..audio.decode import SAMPLE_RATE, read_seconds

log = logging.getLogger(__name__)

MIN_PART_SECONDS = 60.0  # below this, a part's first window (without earlier context) matters too much
PART_TARGET_SECONDS = 300.0  # short enough for several streams to share the tail of a long job
MAX_PARTS = 200
CUT_SEARCH_SECONDS = 8.0  # look this far either side of an even cut for the quietest moment
_FRAME = SAMPLE_RATE // 50  # 20 ms


def part_count(duration_seconds: float, streams: int) -> int:
    """How many parts to cut a job of this length into, for ``streams`` parallel decoders."""
    if streams <= 1 or duration_seconds < 2 * MIN_PART_SECONDS:
        return 1
    # At least two parts per stream, so a stream that finishes early takes over another's
    # remaining work instead of idling while the slowest part ends.
    wanted = max(2 * streams, round(duration_seconds / PART_TARGET_SECONDS))
    return int(max(1, min(wanted, duration_seconds // MIN_PART_SECONDS, MAX_PARTS)))


def quietest_moment(samples: np.ndarray, offset_seconds: float) -> float:
    """The middle of the quietest 200 ms of ``samples`` (which start at ``offset_seconds``)."""
    frames = samples.size // _FRAME
    if frames < 10:
        return offset_seconds + samples.size / SAMPLE_RATE / 2
    energy = np.square(samples[: frames * _FRAME].reshape(frames, _FRAME)).mean(axis=1)
    smoothed = np.convolve(energy, np.ones(10) / 10, mode="valid")  # 200 ms windows
    best = int(np.argmin(smoothed)) + 5
    return offset_seconds + best * _FRAME / SAMPLE_RATE


def plan_parts(path: str, duration_seconds: float, count: int) -> list[tuple[float, float]]:
    """Cut [0, duration) into ``count`` stretches of similar length, each cut at a quiet moment."""
    if count <= 1:
        return [(0.0, duration_seconds)]
    cuts = []
    for k in range(1, count):
        even = duration_seconds * k / count
        start = max(0.0, even - CUT_SEARCH_SECONDS)
        samples = read_seconds(path, start, 2 * CUT_SEARCH_SECONDS)
        cuts.append(quietest_moment(samples, start) if samples.size else even)
    bounds = [0.0] + sorted(cuts) + [duration_seconds]
    stretches = [(a, b) for a, b in zip(bounds, bounds[1:]) if b - a > 1.0]
    log.info("split %s into %d parts", path, len(stretches))
    return stretches
