"""Figures over finished jobs: measured speed per model (the estimates plan with it) and what analytics aggregate."""

from __future__ import annotations

from collections import defaultdict

from peewee import fn

from ..jobs import JobStatus, ModelStats, SizeBucketStats
from ..records import JobFacts
from .db import StorePart, translating

SIZE_BUCKETS_MB = (0, 1, 5, 10, 50, 100, 250, 500, float("inf"))


class StatsPart(StorePart):
    """Statistics of completed and failed jobs."""

    @translating
    def model_speeds(self, recent: int = 20) -> dict[str, float]:
        """Measured speed (audio s per processing s) of each model over its recent completed jobs."""
        Job_ = self.m.Job
        rows = (
            Job_.select(Job_.model, Job_.duration_seconds, Job_.processing_seconds)
            .where((Job_.status == JobStatus.COMPLETED.value) & (Job_.processing_seconds > 0))
            .order_by(Job_.finished_at.desc())
            .tuples()
        )
        audio: dict[str, float] = defaultdict(float)
        spent: dict[str, float] = defaultdict(float)
        counted: dict[str, int] = defaultdict(int)
        for model, duration, processing in rows:
            if counted[model] >= recent:
                continue
            counted[model] += 1
            audio[model] += duration
            spent[model] += processing
        return {model: audio[model] / spent[model] for model in audio if spent[model] > 0}

    @translating
    def model_stats(self) -> list[ModelStats]:
        Job_ = self.m.Job
        query = (
            Job_.select(
                Job_.model,
                fn.COUNT(Job_.id),
                fn.SUM(Job_.duration_seconds),
                fn.SUM(Job_.processing_seconds),
            )
            .where(Job_.status == JobStatus.COMPLETED.value)
            .group_by(Job_.model)
            .order_by(Job_.model)
            .tuples()
        )
        stats = []
        for model, count, audio, processing in query:
            audio = audio or 0.0
            processing = processing or 0.0
            stats.append(
                ModelStats(
                    model=model,
                    jobs_completed=count,
                    audio_hours=audio / 3600.0,
                    mean_processing_minutes=processing / count / 60.0 if count else 0.0,
                    speed=audio / processing if processing > 0 else 0.0,
                )
            )
        return stats

    @translating
    def size_buckets(self) -> list[SizeBucketStats]:
        """Mean processing minutes of completed jobs by file size (MB ranges of SIZE_BUCKETS_MB)."""
        Job_ = self.m.Job
        rows = (
            Job_.select(Job_.size_bytes, Job_.processing_seconds)
            .where(Job_.status == JobStatus.COMPLETED.value)
            .tuples()
        )
        sums: dict[int, list[float]] = defaultdict(list)
        for size, processing in rows:
            size_mb = size / 1_000_000
            for i in range(len(SIZE_BUCKETS_MB) - 1):
                if SIZE_BUCKETS_MB[i] <= size_mb < SIZE_BUCKETS_MB[i + 1]:
                    sums[i].append(processing)
                    break
        return [
            SizeBucketStats(
                low_mb=SIZE_BUCKETS_MB[i],
                high_mb=SIZE_BUCKETS_MB[i + 1],
                jobs=len(values),
                mean_processing_minutes=sum(values) / len(values) / 60.0,
            )
            for i, values in sorted(sums.items())
        ]

    @translating
    def job_facts(self) -> list[JobFacts]:
        """The figures of every completed or failed job, for analytics."""
        Job_ = self.m.Job
        query = (
            Job_.select(
                Job_.id,
                Job_.model,
                Job_.status,
                Job_.size_bytes,
                Job_.duration_seconds,
                Job_.processing_seconds,
                Job_.created_at,
                Job_.started_at,
                Job_.finished_at,
                Job_.failure_cause,
            )
            .where(Job_.status.in_([JobStatus.COMPLETED.value, JobStatus.FAILED.value]) & Job_.finished_at.is_null(False))
            .order_by(Job_.finished_at, Job_.id)
            .tuples()
        )
        return [JobFacts(*row) for row in query]
