"""Which queued job runs next: plain functions over plain data, so tests need no threads.

Fair across users, FIFO within a user: among users below their running limit, the one
with the fewest running jobs goes first, ties broken by who started a job least
recently; that user's earliest queued job is chosen.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

from ..jobs import Job
from .limits import Limits


def choose_next(
    queued: Sequence[Job],
    running: Sequence[Job],
    limits: Limits,
    last_started: Mapping[str, float] | None = None,
) -> Job | None:
    """The job to start now, or None when no worker is free or nobody may start one.

    Args:
        queued: queued jobs in queue order (ascending position).
        running: jobs running now.
        limits: the worker count and per-user running limit.
        last_started: for each user, when they last had a job started (POSIX seconds).
    """
    if len(running) >= limits.workers:
        return None
    last_started = last_started or {}
    running_per_user = Counter(job.user for job in running)
    first_per_user: dict[str, Job] = {}
    for job in queued:
        first_per_user.setdefault(job.user, job)
    candidates = [
        job for user, job in first_per_user.items() if running_per_user[user] < limits.max_concurrent_per_user
    ]
    if not candidates:
        return None
    order = {job.id: rank for rank, job in enumerate(queued)}
    return min(
        candidates,
        key=lambda job: (running_per_user[job.user], last_started.get(job.user, 0.0), order[job.id]),
    )


def start_order(
    queued: Sequence[Job],
    running: Sequence[Job],
    limits: Limits,
    last_started: Mapping[str, float] | None = None,
) -> list[Job]:
    """The order in which ``queued`` would start if no new work arrived (for estimates).

    Assumes each started job finishes before the next choice, which keeps the per-user
    running limit out of the picture; fairness between users is kept.
    """
    remaining = list(queued)
    started = dict(last_started or {})
    unlimited = Limits(
        max_file_size_mb=limits.max_file_size_mb,
        max_concurrent_per_user=10**6,
        max_queued_per_user=limits.max_queued_per_user,
        workers=10**6,
    )
    order: list[Job] = []
    tick = max(started.values(), default=0.0)
    while remaining:
        job = choose_next(remaining, running, unlimited, started)
        if job is None:
            order.extend(remaining)
            break
        order.append(job)
        remaining.remove(job)
        tick += 1.0
        started[job.user] = tick
    return order
