"""Which queued job runs next: plain functions over plain data, so tests need no threads.

Fair across users, FIFO within a user: among users below their running limit, the one
with the fewest running jobs goes first, ties broken by who started a job least
recently; that user's earliest queued job is chosen.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

from ..jobs import Job
from ..limits import Limits


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


def choose_work(
    queued: Sequence[Job],
    continuing: Sequence[Job],
    running_parts: Sequence[tuple[str, int, int]],
    running_jobs: Sequence[Job],
    limits: Limits,
    last_started: Mapping[str, float] | None = None,
) -> Job | None:
    """The job whose next part a free decode stream should take, or None.

    Streams are what users share: the user with the fewest parts being decoded goes
    first (ties: who started a job least recently). For that user, a job already running
    that has parts left comes before a new one, so jobs finish in order; a new job may
    start only while the user is below ``max_concurrent_per_user`` running jobs.

    Args:
        queued: queued jobs in queue order.
        continuing: running jobs with parts nobody decodes yet, oldest first.
        running_parts: (user, job id, part index) of every part being decoded.
        running_jobs: jobs running now.
        limits: ``workers`` is the number of decode streams.
        last_started: for each user, when they last had a job started.
    """
    if len(running_parts) >= limits.workers:
        return None
    last_started = last_started or {}
    streams_per_user = Counter(user for user, _, _ in running_parts)
    jobs_per_user = Counter(job.user for job in running_jobs)
    candidates: dict[str, tuple[int, Job]] = {}
    for job in continuing:
        candidates.setdefault(job.user, (0, job))
    order = {job.id: rank for rank, job in enumerate(queued)}
    for job in queued:
        if job.user not in candidates and jobs_per_user[job.user] < limits.max_concurrent_per_user:
            candidates[job.user] = (1, job)
    if not candidates:
        return None
    user = min(
        candidates,
        key=lambda name: (
            streams_per_user[name],
            last_started.get(name, 0.0),
            candidates[name][0],
            order.get(candidates[name][1].id, -1),
        ),
    )
    return candidates[user][1]
