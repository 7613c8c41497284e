"""Time estimates: how fast a model runs here, and when each job in the queue will finish."""

from __future__ import annotations

import heapq
from typing import Mapping, Sequence

from ..jobs import Job, JobStatus

# Audio seconds per second of one decode stream (one thread) on a modest machine, used
# until this machine has finished a job with the model (measured: benchmarks/README.md).
DEFAULT_SPEEDS = {
    "tiny": 8.0,
    "base": 3.5,
    "small": 1.0,
    "medium": 0.35,
    "large": 0.15,
    "turbo": 0.4,
    "distil": 0.5,
}
FALLBACK_SPEED = 1.0
# How much audio the prior speed counts for when blended with the live measurement.
PRIOR_WEIGHT_SECONDS = 10.0


def default_speed(model: str) -> float:
    name = model.lower().rsplit("/", 1)[-1]
    for key, speed in DEFAULT_SPEEDS.items():
        if key in name:
            return speed
    return FALLBACK_SPEED


def expected_speed(model: str, measured: Mapping[str, float]) -> float:
    """The speed to plan with before a job starts: measured history first, then the default.

    An ``auto`` job whose language is not known yet is planned as English (tiny.en), the most common case.
    """
    if model == "auto":
        model = "tiny.en"
    return measured.get(model) or default_speed(model)


def live_speed(audio_done: float, seconds_spent: float, prior: float) -> float:
    """Speed of a running job: the prior, counted as ``PRIOR_WEIGHT_SECONDS`` of audio, blended with what was measured.

    Early in a job the measurement is noisy (model loading, the first window); this keeps
    the estimate steady and lets the measurement take over within a few windows.
    """
    prior = max(prior, 1e-3)
    return (max(0.0, audio_done) + PRIOR_WEIGHT_SECONDS) / (max(0.0, seconds_spent) + PRIOR_WEIGHT_SECONDS / prior)


def estimate_queue(
    ordered_jobs: Sequence[Job],
    measured: Mapping[str, float],
    streams: int,
    now: float,
) -> dict[int, tuple[float, float]]:
    """Seconds left and finish time for running and queued jobs, by simulating the decode streams.

    Each job's remaining audio is cut into parts as the engine would cut it, and free
    streams take parts in job order; a job finishes with its last part.

    Args:
        ordered_jobs: running jobs, then queued jobs in the order they would start.
        measured: measured speed per stream, by model (see ``JobStore.model_speeds``).
        streams: how many parts are decoded at once.
        now: the current time (POSIX seconds).

    Returns:
        {job id: (eta_seconds, estimated_completion)}; paused and finished jobs are left out.
    """
    from .parts import part_count

    streams = max(1, streams)
    free_at = [now] * streams
    heapq.heapify(free_at)
    result: dict[int, tuple[float, float]] = {}
    for job in ordered_jobs:
        if job.status not in (JobStatus.RUNNING, JobStatus.QUEUED):
            continue
        count = part_count(job.duration_seconds, streams)
        per_stream = expected_speed(job.model, measured)
        if job.status is JobStatus.RUNNING and job.speed:
            per_stream = job.speed / min(count, streams)  # the live speed is summed over its parts
        chunk = job.remaining_seconds / count / max(per_stream, 1e-3)
        finish = now
        for _ in range(count):
            start = heapq.heappop(free_at)
            heapq.heappush(free_at, start + chunk)
            finish = max(finish, start + chunk)
        result[job.id] = (finish - now, finish)
    return result
