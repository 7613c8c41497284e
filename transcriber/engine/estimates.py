"""Time estimates: how fast a model runs here, and when each job in the queue will finish."""

from __future__ import annotations

import heapq
from typing import Mapping, Sequence

from ..jobs import Job, JobStatus

# Audio seconds per processing second on a modest two-core machine, used until this
# machine has finished a job with the model (measured: see benchmarks/README.md).
DEFAULT_SPEEDS = {
    "tiny": 10.0,
    "base": 5.0,
    "small": 1.6,
    "medium": 0.5,
    "large": 0.25,
    "turbo": 0.6,
    "distil": 0.8,
}
FALLBACK_SPEED = 1.0
# How much audio the prior speed counts for when blended with the live measurement.
PRIOR_WEIGHT_SECONDS = 30.0


def default_speed(model: str) -> float:
    name = model.lower().rsplit("/", 1)[-1]
    for key, speed in DEFAULT_SPEEDS.items():
        if key in name:
            return speed
    return FALLBACK_SPEED


def expected_speed(model: str, measured: Mapping[str, float]) -> float:
    """The speed to plan with before a job starts: measured history first, then the default."""
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
    workers: int,
    now: float,
) -> dict[int, tuple[float, float]]:
    """Seconds left and finish time for running and queued jobs, by simulating the workers.

    Args:
        ordered_jobs: running jobs, then queued jobs in the order they would start.
        measured: measured speed by model (see ``JobStore.model_speeds``).
        workers: how many jobs run at once.
        now: the current time (POSIX seconds).

    Returns:
        {job id: (eta_seconds, estimated_completion)}; paused and finished jobs are left out.
    """
    free_at = [now] * max(1, workers)
    heapq.heapify(free_at)
    result: dict[int, tuple[float, float]] = {}
    for job in ordered_jobs:
        if job.status not in (JobStatus.RUNNING, JobStatus.QUEUED):
            continue
        speed = job.speed if (job.status is JobStatus.RUNNING and job.speed) else expected_speed(job.model, measured)
        start = heapq.heappop(free_at)
        finish = start + job.remaining_seconds / max(speed, 1e-3)
        heapq.heappush(free_at, finish)
        result[job.id] = (finish - now, finish)
    return result
