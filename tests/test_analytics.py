"""Analytics from a real store holding known jobs: exact figures per day and model, failures by cause, CSV."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from conftest import run_cli
from transcriber.reports import analytics
from transcriber.reports.analytics import DailyModelStats, FailureCount
from transcriber.jobs import JobOptions
from transcriber.store import Store


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def put(store, name, *, model="tiny.en", duration=60.0, processing=10.0, created, started=None, finished,
        failed: str | None = None, size_mb=1.0):
    """A job that completed (or failed with cause ``failed``) at known times."""
    job = store.jobs.add_job(user="u", source_path=f"/{name}.wav", size_bytes=int(size_mb * 1_000_000), mtime=0,
                        content_hash=name, duration_seconds=duration, declared_seconds=duration,
                        options=JobOptions(model=model), max_queued=100)
    if started is not None:
        _, _, run_id = store.work.claim_work(job.id)
        store.work.commit_progress(job.id, 0, run_id, [], processed_seconds=duration, processing_seconds=processing, speed=None)
    if failed:
        store.jobs.mark_failed(job.id, f"{name} failed", failed)
    else:
        store.work.finish_part(job.id, 0)
        store.jobs.mark_completed(job.id)
    store.m.Job.update(created_at=at(created), started_at=at(started) if started else None,
                       finished_at=at(finished)).where(store.m.Job.id == job.id).execute()


@pytest.fixture
def known(data_dir):
    store = Store.open(data_dir / "transcriber.db")
    put(store, "a", duration=600, processing=60, created="2026-11-30T10:00:00", started="2026-11-30T10:01:00",
        finished="2026-11-30T10:02:00")
    put(store, "b", duration=1200, processing=240, created="2026-11-30T11:00:00", started="2026-11-30T11:03:00",
        finished="2026-11-30T11:08:00", size_mb=3)
    put(store, "c", created="2026-11-30T12:00:00", started="2026-11-30T12:00:30", finished="2026-11-30T12:01:00",
        failed="audio")
    put(store, "d", model="base", duration=3600, processing=600, created="2026-11-30T13:00:00",
        started="2026-11-30T13:00:00", finished="2026-11-30T13:10:00", size_mb=30)
    put(store, "e", created="2026-12-01T09:00:00", finished="2026-12-01T09:05:00", failed="source_changed")
    put(store, "f", created="2026-12-01T23:59:00", started="2026-12-02T00:00:00", finished="2026-12-02T00:30:00",
        failed="audio")
    yield store
    store.close()


def test_per_day_and_model(known):
    rows = analytics.daily_stats(known.stats.job_facts(), timezone.utc)
    assert rows == [
        DailyModelStats("2026-11-30", "base", 1, 0, pytest.approx(1.0), pytest.approx(600 / 3600), pytest.approx(6.0),
                        pytest.approx(0.0)),
        DailyModelStats("2026-11-30", "tiny.en", 2, 1, pytest.approx(0.5), pytest.approx(300 / 3600), pytest.approx(6.0),
                        pytest.approx(90.0)),  # waits 60, 180 and 30 s
        DailyModelStats("2026-12-01", "tiny.en", 0, 1, 0.0, 0.0, None, None),  # never started: no wait, no speed
        DailyModelStats("2026-12-02", "tiny.en", 0, 1, 0.0, 0.0, None, pytest.approx(60.0)),
    ]


def test_failures_by_cause(known):
    assert analytics.failure_counts(known.stats.job_facts(), timezone.utc) == [
        FailureCount("2026-11-30", "tiny.en", "audio", 1),
        FailureCount("2026-12-01", "tiny.en", "source_changed", 1),
        FailureCount("2026-12-02", "tiny.en", "audio", 1),
    ]


def test_a_day_is_a_day_where_the_user_lives(known):
    plus_two = timezone(__import__("datetime").timedelta(hours=2))
    days = [(row.day, row.model) for row in analytics.daily_stats(known.stats.job_facts(), plus_two)]
    # f finished at 02:30 on 2 December there; e at 11:05 on 1 December.
    assert days == [("2026-11-30", "base"), ("2026-11-30", "tiny.en"), ("2026-12-01", "tiny.en"),
                    ("2026-12-02", "tiny.en")]


def test_retry_clears_the_cause_and_the_store_keeps_it_per_failure(known):
    failed = [job for job in known.jobs.list_jobs() if job.source_path == "/c.wav"][0]
    known.jobs.retry(failed.id)
    causes = [fact.failure_cause for fact in known.stats.job_facts()]
    assert causes.count("audio") == 1  # only f is failed now


def test_csv_has_a_header_and_one_line_per_row(known):
    text = analytics.to_csv(analytics.daily_stats(known.stats.job_facts(), timezone.utc), analytics.DAILY_COLUMNS)
    assert text.splitlines() == [
        "day,model,jobs_completed,jobs_failed,audio_hours,processing_hours,mean_speed,mean_queue_wait_seconds",
        "2026-11-30,base,1,0,1,0.166667,6,0",
        "2026-11-30,tiny.en,2,1,0.5,0.0833333,6,90",
        "2026-12-01,tiny.en,0,1,0,0,,",
        "2026-12-02,tiny.en,0,1,0,0,,60",
    ]


def test_command_line_csv_and_json(known, data_dir):
    env = {"TZ": "UTC"}
    daily = run_cli("stats", "--csv", data_dir=data_dir, check=True, env=env).stdout.splitlines()
    assert daily[0].startswith("day,model,jobs_completed") and daily[2] == "2026-11-30,tiny.en,2,1,0.5,0.0833333,6,90"
    failures = run_cli("stats", "--csv", "--table", "failures", data_dir=data_dir, check=True, env=env).stdout
    assert failures.splitlines() == [
        "day,model,cause,jobs",
        "2026-11-30,tiny.en,audio,1",
        "2026-12-01,tiny.en,source_changed,1",
        "2026-12-02,tiny.en,audio,1",
    ]
    sizes = run_cli("stats", "--csv", "--table", "sizes", data_dir=data_dir, check=True, env=env).stdout
    assert sizes.splitlines() == ["low_mb,high_mb,jobs,mean_processing_minutes", "1,5,2,2.5", "10,50,1,10"]
    models = run_cli("stats", "--csv", "--table", "models", data_dir=data_dir, check=True, env=env).stdout
    assert models.splitlines()[1:] == ["base,1,1,10,6", "tiny.en,2,0.5,2.5,6"]
    text = run_cli("stats", data_dir=data_dir, check=True, env=env).stdout.splitlines()
    assert "2026-11-30  tiny.en              2      1     0.50    6.0x       1.5" in text
    assert "2026-12-01  tiny.en              0      1     0.00       -         -" in text
    document = json.loads(run_cli("stats", "--json", data_dir=data_dir, check=True, env=env).stdout)
    assert document["daily"][1] == {
        "day": "2026-11-30", "model": "tiny.en", "jobs_completed": 2, "jobs_failed": 1, "audio_hours": 0.5,
        "processing_hours": 0.083333, "mean_speed": 6.0, "mean_queue_wait_seconds": 90.0,
    }
    assert document["failures"][0] == {"day": "2026-11-30", "model": "tiny.en", "cause": "audio", "jobs": 1}


def test_the_engine_records_why_a_job_failed(make_engine, model_cache, speak, tmp_path):
    import shutil

    from fakes import fake_factory, fake_pool

    engine = make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=1.0))
    path = shutil.copyfile(speak("A file that goes away.", "away.wav"), tmp_path / "away.wav")
    engine.add([str(path)], user="ann")
    path.unlink()
    engine.run_until_idle()
    (fact,) = engine.store.stats.job_facts()
    assert fact.status == "failed" and fact.failure_cause == "source_changed"


def test_a_version_1_database_gains_the_automation_tables_and_keeps_its_jobs(data_dir):
    from peewee import SqliteDatabase

    from transcriber.store.migrations import LATEST_VERSION, MIGRATIONS, schema_version

    path = data_dir / "old.db"
    old = SqliteDatabase(str(path))
    old.connect()
    MIGRATIONS[0](old)
    old.execute_sql("PRAGMA user_version = 1")
    old.execute_sql("INSERT INTO user (id, name, created_at) VALUES (1, 'ann', 0)")
    old.execute_sql(
        "INSERT INTO job (user_id, source_path, size_bytes, mtime, content_hash, duration_seconds, model, options, "
        "status, created_at, started_at, updated_at, finished_at, processing_seconds) VALUES "
        "(1, '/old.wav', 2000000, 0, 'h', 120, 'tiny.en', '{}', 'completed', 0, 10, 70, 70, 20)"
    )
    old.close()
    store = Store.open(path)
    try:
        assert schema_version(store.db) == LATEST_VERSION
        (job,) = store.jobs.list_jobs()
        assert job.source_path == "/old.wav" and job.status.value == "completed"
        rows = analytics.daily_stats(store.stats.job_facts(), timezone.utc)
        assert [(r.day, r.jobs_completed, r.mean_speed, r.mean_queue_wait_seconds) for r in rows] == [
            ("1970-01-01", 1, 6.0, 10.0)
        ]
        assert store.automation.webhooks() == [] and store.automation.watch_folders() == [] and store.automation.delivery_log() == []
    finally:
        store.close()
