"""Processing analytics from the store: per day and model, failures by cause, and CSV export.

Pure functions over ``JobFacts`` (what ``store.stats.job_facts`` returns), so the figures can
be checked exactly in a test. A job counts on the day it finished, in the given time zone
(local time by default).

Speeds are audio seconds per processing second of one decode stream, the same measure
``store.stats.model_speeds`` feeds the time estimates with (they use each model's 20 most
recent completed jobs); these tables show how that figure moves from day to day.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from datetime import datetime, tzinfo
from typing import Iterable, Sequence

from ..records import JobFacts


@dataclass(frozen=True)
class DailyModelStats:
    """One day and one model. ``mean_speed`` and ``mean_queue_wait_seconds`` are None without data."""

    day: str  # YYYY-MM-DD
    model: str
    jobs_completed: int
    jobs_failed: int
    audio_hours: float  # of completed jobs
    processing_hours: float  # decode-stream hours spent on completed jobs
    mean_speed: float | None  # audio / processing over completed jobs
    mean_queue_wait_seconds: float | None  # from queued to first started, over jobs that started


@dataclass(frozen=True)
class FailureCount:
    day: str
    model: str
    cause: str
    jobs: int


def _day(timestamp: float, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(timestamp, tz).astimezone(tz).date().isoformat()


def daily_stats(facts: Iterable[JobFacts], tz: tzinfo | None = None) -> list[DailyModelStats]:
    """Per day (of finishing) and model: jobs, audio hours, speed and queue wait, oldest day first."""
    groups: dict[tuple[str, str], list[JobFacts]] = defaultdict(list)
    for fact in facts:
        groups[(_day(fact.finished_at, tz), fact.model)].append(fact)
    rows = []
    for (day, model), items in sorted(groups.items()):
        completed = [item for item in items if item.status == "completed"]
        audio = sum(item.duration_seconds for item in completed)
        processing = sum(item.processing_seconds for item in completed)
        waits = [item.started_at - item.created_at for item in items if item.started_at is not None]
        rows.append(
            DailyModelStats(
                day=day,
                model=model,
                jobs_completed=len(completed),
                jobs_failed=len(items) - len(completed),
                audio_hours=audio / 3600.0,
                processing_hours=processing / 3600.0,
                mean_speed=audio / processing if processing > 0 else None,
                mean_queue_wait_seconds=sum(waits) / len(waits) if waits else None,
            )
        )
    return rows


def failure_counts(facts: Iterable[JobFacts], tz: tzinfo | None = None) -> list[FailureCount]:
    """Failed jobs per day, model and cause (``other`` where none was recorded)."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for fact in facts:
        if fact.status == "failed":
            counts[(_day(fact.finished_at, tz), fact.model, fact.failure_cause or "other")] += 1
    return [FailureCount(day, model, cause, jobs) for (day, model, cause), jobs in sorted(counts.items())]


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        if value == float("inf"):
            return ""
        return f"{value:.6g}"
    return value


def to_csv(rows: Sequence[object], columns: Sequence[str] | None = None) -> str:
    """Dataclass rows as CSV text with a header line (empty cells for missing values)."""
    if columns is None:
        if not rows:
            return ""
        columns = [field.name for field in fields(rows[0])]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = asdict(row)
        writer.writerow([_cell(values[name]) for name in columns])
    return out.getvalue()


DAILY_COLUMNS = [field.name for field in fields(DailyModelStats)]
FAILURE_COLUMNS = [field.name for field in fields(FailureCount)]
