"""The store against a real SQLite file: schema, transitions and their guards, recovery, settings."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from transcriber.errors import ConfigError, IntakeRefused, JobStateError, StoreError
from transcriber.jobs import JobOptions, JobStatus, PartStatus, Segment
from transcriber.store import Store
from transcriber.store.migrations import LATEST_VERSION, schema_version


def add(store: JobStore, user: str = "alice", name: str = "a.wav", duration: float = 60.0, max_queued: int = 10, size: int = 1000):
    return store.jobs.add_job(
        user=user,
        source_path=f"/recordings/{name}",
        size_bytes=size,
        mtime=1.0,
        content_hash="0" * 64,
        duration_seconds=duration,
        declared_seconds=duration,
        options=JobOptions(),
        max_queued=max_queued,
    )


def test_schema_is_migrated_and_uses_wal(store, data_dir):
    with store.db.connection_context():
        assert schema_version(store.db) == LATEST_VERSION
    connection = sqlite3.connect(data_dir / "transcriber.db")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {row[1] for row in connection.execute("SELECT * FROM sqlite_master WHERE type='index'")}
    assert {"job_user_status", "job_status_position", "segment_job_idx"} <= indexes
    connection.close()


def test_reopening_does_not_migrate_again(data_dir):
    first = Store.open(data_dir / "db.sqlite")
    add(first)
    first.close()
    second = Store.open(data_dir / "db.sqlite")
    assert len(second.jobs.list_jobs()) == 1


def test_newer_schema_is_refused(data_dir):
    path = data_dir / "db.sqlite"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")
    connection.close()
    with pytest.raises(StoreError, match="newer transcriber"):
        Store.open(path)


def test_damaged_database_gives_a_clear_error(data_dir):
    path = data_dir / "db.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="damaged or is not a transcriber database"):
        Store.open(path)


def test_job_lifecycle_and_returned_dataclasses(store):
    job = add(store)
    assert job.status is JobStatus.QUEUED and job.queue_position == 1 and job.user == "alice"
    claimed, part, run_id = store.work.claim_work(job.id)
    assert claimed.status is JobStatus.RUNNING and claimed.attempts == 1 and claimed.queue_position is None
    assert (part.index, part.start, part.end, part.status) == (0, 0.0, 60.0, PartStatus.RUNNING)
    assert store.work.claim_work(job.id) is None  # its only part is taken
    stored = store.work.commit_progress(
        job.id, 0, run_id, [Segment(-1, 0.0, 4.0, " hello")], processed_seconds=4.0, processing_seconds=1.0, speed=4.0,
    )
    assert stored == [Segment(0, 0.0, 4.0, " hello")]
    current = store.jobs.get_job(job.id)
    assert current.processed_seconds == 4.0 and current.eta_seconds == 14.0 and current.estimated_completion
    assert store.transcripts.segments(job.id) == [Segment(0, 0.0, 4.0, " hello")]
    assert store.work.finish_part(job.id, 0)
    done = store.jobs.mark_completed(job.id)
    assert done.status is JobStatus.COMPLETED and done.finished_at and done.progress == 1.0


def test_commit_is_refused_once_the_job_was_paused_elsewhere(store):
    job = add(store)
    _, _, run_id = store.work.claim_work(job.id)
    store.jobs.pause(job.id)
    stored = store.work.commit_progress(
        job.id, 0, run_id, [Segment(-1, 0.0, 4.0, "late")], processed_seconds=4.0, processing_seconds=1.0, speed=None,
    )
    assert stored is None
    assert store.transcripts.segments(job.id) == []  # nothing half-written
    assert store.jobs.get_job(job.id).processed_seconds == 0.0


def test_transitions_refuse_wrong_states_with_a_message(store):
    job = add(store)
    with pytest.raises(JobStateError, match="queued; it cannot be resumed"):
        store.jobs.resume(job.id)
    store.jobs.cancel(job.id)
    with pytest.raises(JobStateError, match="cancelled; it cannot be paused"):
        store.jobs.pause(job.id)
    with pytest.raises(JobStateError, match="no job 999"):
        store.jobs.cancel(999)


def test_queue_limit_is_checked_in_the_insert_transaction(store):
    for number in range(3):
        add(store, name=f"{number}.wav", max_queued=3)
    with pytest.raises(IntakeRefused) as refused:
        add(store, name="extra.wav", max_queued=3)
    assert "max_queued_per_user = 3" in str(refused.value) and refused.value.reason == "queue_limit"
    add(store, user="bob", max_queued=3)  # other users are not affected
    assert [job.queue_position for job in store.jobs.queued_jobs()] == [1, 2, 3, 1]


def test_parallel_intake_never_overshoots_the_limit(data_dir):
    path = data_dir / "db.sqlite"
    Store.open(path).close()
    accepted, refused = [], []

    def worker(number):
        own = Store(path)
        try:
            accepted.append(add(own, name=f"{number}.wav", max_queued=5))
        except IntakeRefused:
            refused.append(number)
        finally:
            own.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(accepted) == 5 and len(refused) == 7


def test_move_reorders_within_a_user_and_paused_jobs_keep_their_place(store):
    a, b, c = (add(store, name=f"{n}.wav") for n in "abc")
    other = add(store, user="bob", name="b1.wav")
    store.jobs.move(c.id, -2)
    assert [job.id for job in store.jobs.queued_jobs() if job.user == "alice"] == [c.id, a.id, b.id]
    store.jobs.pause(a.id)
    store.jobs.move(b.id, -5)  # clamps at the top
    store.jobs.resume(a.id)
    order = [job.id for job in store.jobs.queued_jobs() if job.user == "alice"]
    assert order == [b.id, c.id, a.id]
    assert store.jobs.get_job(other.id).queue_position == 1
    with pytest.raises(JobStateError):
        store.jobs.move(999, 1)


def test_retry_keeps_committed_segments_and_requeues_at_the_end(store):
    job = add(store)
    add(store, name="later.wav")
    _, _, run_id = store.work.claim_work(job.id)
    store.work.commit_progress(job.id, 0, run_id, [Segment(-1, 0, 5, "kept")], processed_seconds=5.0,
                          processing_seconds=1, speed=5)
    store.jobs.mark_failed(job.id, "disk full")
    store.work.release_part(job.id, 0)
    retried = store.jobs.retry(job.id)
    assert retried.status is JobStatus.QUEUED and retried.error is None and retried.queue_position == 2
    assert retried.processed_seconds == 5.0 and len(store.transcripts.segments(job.id)) == 1
    _, part, _ = store.work.claim_work(job.id)
    assert part.processed_seconds == 5.0  # it continues where it stopped


def test_recover_abandoned_requeues_running_jobs_with_progress(store):
    first, second = add(store, name="1.wav"), add(store, name="2.wav")
    _, _, run_id = store.work.claim_work(first.id)
    store.work.commit_progress(first.id, 0, run_id, [Segment(-1, 0, 7, "x")], processed_seconds=7.0,
                          processing_seconds=2, speed=3.5)
    recovered = store.jobs.recover_abandoned()
    assert [job.id for job in recovered] == [first.id]
    job = store.jobs.get_job(first.id)
    assert job.status is JobStatus.QUEUED and job.processed_seconds == 7.0 and job.queue_position == 1
    assert store.jobs.get_job(second.id).queue_position == 2
    assert store.work.runs(first.id)[0].outcome == "interrupted"
    assert store.work.parts(first.id)[0].status is PartStatus.PENDING and store.work.parts(first.id)[0].processed_seconds == 7.0


def test_segment_text_edit_persists(store):
    job = add(store)
    _, _, run_id = store.work.claim_work(job.id)
    store.work.commit_progress(job.id, 0, run_id, [Segment(-1, 0, 5, "helo")], processed_seconds=5.0,
                          processing_seconds=1, speed=5)
    store.transcripts.update_segment_text(job.id, 0, "hello")
    assert store.transcripts.segments(job.id)[0].text == "hello"
    with pytest.raises(JobStateError):
        store.transcripts.update_segment_text(job.id, 5, "nope")


def test_settings_round_trip_and_validation(store):
    assert store.settings.read().max_queued_per_user == 10
    assert store.settings.set("max_queued_per_user", "3") == 3
    assert store.settings.read().max_queued_per_user == 3
    with pytest.raises(ConfigError, match="at least 1"):
        store.settings.set("workers", "0")
    with pytest.raises(ConfigError, match="Unknown setting"):
        store.settings.set("colour", "blue")
    with pytest.raises(ConfigError, match="unknown format"):
        store.settings.set("export_formats", "txt,doc")
    store.settings.reset("max_queued_per_user")
    assert store.settings.read().max_queued_per_user == 10


def test_locked_database_gives_a_clear_error(data_dir):
    path = data_dir / "db.sqlite"
    Store.open(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        impatient = Store(path, timeout=0.2)
        with pytest.raises(StoreError, match="locked by another program"):
            add(impatient)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_statistics_from_known_jobs(store):
    def finished(name, size_mb, duration, processing, model="tiny.en"):
        job = store.jobs.add_job(user="u", source_path=f"/{name}", size_bytes=int(size_mb * 1_000_000), mtime=0,
                            content_hash="h", duration_seconds=duration, declared_seconds=duration,
                            options=JobOptions(model=model), max_queued=100)
        _, _, run_id = store.work.claim_work(job.id)
        store.work.commit_progress(job.id, 0, run_id, [], processed_seconds=duration, processing_seconds=processing, speed=None)
        store.work.finish_part(job.id, 0)
        store.jobs.mark_completed(job.id)

    finished("a", 0.5, 600, 60)
    finished("b", 3, 1200, 180)
    finished("c", 30, 3600, 600, model="base")
    stats = {entry.model: entry for entry in store.stats.model_stats()}
    assert stats["tiny.en"].jobs_completed == 2
    assert stats["tiny.en"].audio_hours == pytest.approx(0.5)
    assert stats["tiny.en"].mean_processing_minutes == pytest.approx(2.0)
    assert stats["tiny.en"].speed == pytest.approx(1800 / 240)
    assert stats["base"].speed == pytest.approx(6.0)
    buckets = {(b.low_mb, b.high_mb): b for b in store.stats.size_buckets()}
    assert buckets[(0, 1)].mean_processing_minutes == pytest.approx(1.0)
    assert buckets[(1, 5)].mean_processing_minutes == pytest.approx(3.0)
    assert buckets[(10, 50)].jobs == 1 and buckets[(10, 50)].mean_processing_minutes == pytest.approx(10.0)
    assert store.stats.model_speeds() == {"tiny.en": pytest.approx(7.5), "base": pytest.approx(6.0)}


def test_a_job_split_into_parts_advances_by_all_of_them(store):
    job = add(store, duration=300.0)
    _, first, run0 = store.work.claim_work(job.id)
    assert store.work.split_fresh_job(job.id, [(0.0, 100.0), (100.0, 210.0), (210.0, 300.0)]).end == 100.0
    assert store.work.split_fresh_job(job.id, [(0.0, 50.0), (50.0, 300.0)]) is None  # only once
    _, second, run1 = store.work.claim_work(job.id)
    assert (second.index, second.start, second.end) == (1, 100.0, 210.0)
    assert [j.id for j in store.work.jobs_with_pending_parts()] == [job.id]
    assert sorted(store.work.running_parts()) == [("alice", job.id, 0), ("alice", job.id, 1)]
    store.work.commit_progress(job.id, 1, run1, [Segment(-1, 100, 104, "second part")], processed_seconds=104.0,
                          processing_seconds=1, speed=4.0)
    store.work.commit_progress(job.id, 0, run0, [Segment(-1, 0, 5, "first part")], processed_seconds=5.0,
                          processing_seconds=1, speed=5.0)
    current = store.jobs.get_job(job.id)
    assert current.processed_seconds == pytest.approx(9.0) and current.speed == pytest.approx(9.0)
    assert current.eta_seconds == pytest.approx(291 / 9)
    assert [s.text for s in store.transcripts.segments(job.id)] == ["first part", "second part"]  # in time order
    assert store.work.recent_tokens(job.id, 1) == []
    # shutting down: both parts wait again and the job goes back to the queue
    store.work.release_part(job.id, 0)
    assert store.jobs.get_job(job.id).status is JobStatus.RUNNING
    store.work.release_part(job.id, 1)
    assert store.jobs.get_job(job.id).status is JobStatus.QUEUED
    assert [p.processed_seconds for p in store.work.parts(job.id)] == [5.0, 104.0, 210.0]
    assert not store.work.finish_part(job.id, 0)
