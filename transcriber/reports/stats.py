"""The statistics of ``transcriber stats`` and the window's statistics view: one document, and its tables as CSV.

Both take the store's statistics part (``store.stats``: ``job_facts``, ``model_stats``,
``size_buckets``) and return plain data, so the command line and the window show the
same figures. Field and column names are a contract: add, never rename.
"""

from __future__ import annotations

from . import analytics

STATS_TABLES = ("daily", "failures", "sizes", "models")
SIZE_COLUMNS = ["low_mb", "high_mb", "jobs", "mean_processing_minutes"]
MODEL_COLUMNS = ["model", "jobs_completed", "audio_hours", "mean_processing_minutes", "speed"]


def stats_document(stats) -> dict:
    """``stats --json``: speed per model, processing time by file size, per day and model, failures by cause."""
    facts = stats.job_facts()
    return {
        "models": [
            {
                "model": entry.model,
                "jobs_completed": entry.jobs_completed,
                "audio_hours": round(entry.audio_hours, 4),
                "mean_processing_minutes": round(entry.mean_processing_minutes, 3),
                "speed": round(entry.speed, 2),
            }
            for entry in stats.model_stats()
        ],
        "by_file_size": [
            {
                "size_mb_from": bucket.low_mb,
                "size_mb_to": None if bucket.high_mb == float("inf") else bucket.high_mb,
                "jobs": bucket.jobs,
                "mean_processing_minutes": round(bucket.mean_processing_minutes, 3),
            }
            for bucket in stats.size_buckets()
        ],
        "daily": [
            {key: round(value, 6) if isinstance(value, float) else value for key, value in row.__dict__.items()}
            for row in analytics.daily_stats(facts)
        ],
        "failures": [row.__dict__ for row in analytics.failure_counts(facts)],
    }


def stats_csv(stats, table: str) -> str:
    """``stats --csv --table TABLE``: daily (per day and model), failures, sizes or models, header first."""
    if table == "daily":
        return analytics.to_csv(analytics.daily_stats(stats.job_facts()), analytics.DAILY_COLUMNS)
    if table == "failures":
        return analytics.to_csv(analytics.failure_counts(stats.job_facts()), analytics.FAILURE_COLUMNS)
    if table == "sizes":
        return analytics.to_csv(stats.size_buckets(), SIZE_COLUMNS)
    if table == "models":
        return analytics.to_csv(stats.model_stats(), MODEL_COLUMNS)
    raise ValueError(f"unknown table {table!r}; choose from {', '.join(STATS_TABLES)}")
