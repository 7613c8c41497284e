"""Engine logic with a fake decoder: intake, limits, control, recovery, export. Real files, real store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from fakes import fake_factory, fake_pool
from media import make_bad_inputs
from transcriber.engine.listener import EngineListener
from transcriber.errors import IntakeRefused, JobStateError
from transcriber.jobs import JobStatus

SENTENCE = "Please remember to send the minutes of the meeting to everyone before Friday afternoon."


@pytest.fixture(scope="module")
def speech(speak):
    return speak(SENTENCE, "minutes.wav")


@pytest.fixture(scope="module")
def media(speech, tmp_path_factory):
    return make_bad_inputs(tmp_path_factory.mktemp("bad"), speech)


@pytest.fixture
def copies(speech, tmp_path):
    """copies(n, prefix) -> n distinct copies of the speech file."""

    def make(count: int, prefix: str = "clip"):
        paths = []
        for number in range(count):
            path = tmp_path / f"{prefix}{number}.wav"
            shutil.copyfile(speech, path)
            paths.append(str(path))
        return paths

    return make


@pytest.fixture
def engine(make_engine, model_cache):
    return make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=1.0))


def test_added_jobs_run_and_complete_with_segments(engine, copies):
    results = engine.add(copies(2), user="ann")
    assert all(result.accepted for result in results)
    finished = engine.run_until_idle()
    assert [job.status for job in finished] == [JobStatus.COMPLETED] * 2
    job = finished[0]
    segments = engine.store.transcripts.segments(job.id)
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(job.duration_seconds)
    assert [segment.index for segment in segments] == list(range(len(segments)))
    assert job.processing_seconds > 0 and job.finished_at and job.progress == 1.0


def test_every_bad_input_is_refused_or_failed_and_the_rest_complete(engine, media, copies, tmp_path):
    empty_folder = tmp_path / "nothing-here"
    empty_folder.mkdir()
    (empty_folder / "readme.txt").write_text("no media")
    good = copies(1, "good")
    paths = [
        media["empty"], media["text"], media["random"], media["video_no_audio"],
        tmp_path / "missing.wav", empty_folder, good[0], media["truncated"], media["video"],
    ]
    results = {os.path.basename(str(result.path)): result for result in engine.add([str(p) for p in paths], user="ann")}
    refused = {name: result.refusal for name, result in results.items() if result.refusal}
    assert set(refused) == {"empty.wav", "notes.mp3", "noise.m4a", "silent_video.mp4", "missing.wav", "nothing-here"}
    assert "empty (0 bytes)" in str(refused["empty.wav"])
    assert "not a recognised media format" in str(refused["notes.mp3"])
    assert "video without an audio track" in str(refused["silent_video.mp4"])
    assert "file not found" in str(refused["missing.wav"])
    assert "holds no audio or video files" in str(refused["nothing-here"])
    finished = {job.file_name: job for job in engine.run_until_idle()}
    assert finished["good0.wav"].status is JobStatus.COMPLETED
    assert finished["talk.mp4"].status is JobStatus.COMPLETED
    truncated = finished["truncated.wav"]
    assert truncated.status is JobStatus.FAILED
    assert "truncated or damaged" in truncated.error and "can be exported" in truncated.error
    assert engine.store.transcripts.segments(truncated.id), "the part that could be decoded is kept"


def test_unreadable_file_is_refused_with_a_clear_message(media, tmp_path, data_dir):
    locked = tmp_path / "private.wav"
    shutil.copyfile(media["good"], locked)
    locked.chmod(0)
    command = [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "add", str(locked)]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                   "--inh-caps=-dac_override,-dac_read_search", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "private.wav: permission denied; the file cannot be read." in result.stdout


def test_file_size_limit_is_enforced_at_intake(engine, copies):
    engine.store.settings.set("max_file_size_mb", "1")
    big = copies(1, "big")[0]
    with open(big, "ab") as handle:
        handle.write(b"\0" * 1_200_000)
    with pytest.raises(IntakeRefused) as refused:
        engine.add_file(big, user="ann")
    assert refused.value.reason == "too_large" and "max_file_size_mb = 1" in str(refused.value)


def test_queue_limit_refuses_extra_files_without_disturbing_the_queue(engine, copies):
    engine.store.settings.set("max_queued_per_user", "3")
    results = engine.add(copies(5), user="ann")
    assert [result.accepted for result in results] == [True, True, True, False, False]
    assert "limit max_queued_per_user = 3" in str(results[3].refusal)
    assert [job.file_name for job in engine.store.jobs.queued_jobs()] == ["clip0.wav", "clip1.wav", "clip2.wav"]
    assert engine.add(copies(1, "bob"), user="bob")[0].accepted  # a different user has their own limit


def test_users_take_turns(engine, copies):
    engine.add(copies(4, "heavy"), user="heavy")
    engine.add(copies(1, "light"), user="light")
    order = [job.user for job in engine.run_until_idle()]
    assert order.index("light") == 1  # not after all four of heavy's jobs


def test_reorder_changes_the_run_order(engine, copies):
    jobs = [result.job for result in engine.add(copies(3), user="ann")]
    engine.move(jobs[2].id, -2)
    engine.move(jobs[0].id, +1)
    order = [job.id for job in engine.run_until_idle()]
    assert order == [jobs[2].id, jobs[1].id, jobs[0].id]


def _start_in_thread(engine):
    claimed = engine.claim_next()
    assert claimed is not None
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("job", engine.execute(*claimed)))
    thread.start()
    return claimed[0], thread, result


def test_pause_resume_continues_from_the_last_segment(make_engine, model_cache, copies):
    gate = threading.Semaphore(0)
    factory = fake_factory(step=1.0, gate=gate)
    engine = make_engine(models=fake_pool(model_cache), backend_factory=factory)
    engine.add(copies(1), user="ann")
    job, thread, result = _start_in_thread(engine)
    for _ in range(3):
        gate.release()
    _wait(lambda: engine.store.jobs.get_job(job.id).processed_seconds >= 3.0)
    paused = engine.pause(job.id)
    gate.release()  # let the decoder reach its next segment boundary
    thread.join(10)
    assert result["job"].status is JobStatus.PAUSED
    at_pause = engine.store.jobs.get_job(job.id).processed_seconds
    assert paused.status is JobStatus.PAUSED and 3.0 <= at_pause < job.duration_seconds
    assert engine.claim_next() is None  # paused jobs do not run
    engine.resume(job.id)
    for _ in range(100):
        gate.release()
    (done,) = engine.run_until_idle()
    assert done.status is JobStatus.COMPLETED
    assert factory.made[-1].requests[0].start_seconds == pytest.approx(at_pause)
    # the decoder's tokens from before the pause are its context
    assert factory.made[-1].requests[0].prompt[-2:] == (int(at_pause) - 1, int(at_pause))
    segments = engine.store.transcripts.segments(job.id)
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(a.end <= b.start + 1e-9 for a, b in zip(segments, segments[1:]))


def test_cancel_stops_a_running_job_and_retry_finishes_it(make_engine, model_cache, copies):
    gate = threading.Semaphore(0)
    engine = make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=1.0, gate=gate))
    engine.add(copies(1), user="ann")
    job, thread, result = _start_in_thread(engine)
    gate.release()
    _wait(lambda: engine.store.jobs.get_job(job.id).processed_seconds >= 1.0)
    engine.cancel(job.id)
    gate.release()
    thread.join(10)
    assert engine.store.jobs.get_job(job.id).status is JobStatus.CANCELLED
    with pytest.raises(JobStateError):
        engine.resume(job.id)
    engine.retry(job.id)
    for _ in range(100):
        gate.release()
    (done,) = engine.run_until_idle()
    assert done.status is JobStatus.COMPLETED and done.attempts == 2


def test_shutdown_requeues_running_jobs_in_place(make_engine, model_cache, copies):
    gate = threading.Semaphore(0)
    engine = make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=1.0, gate=gate))
    engine.add(copies(2), user="ann")
    job, thread, result = _start_in_thread(engine)
    gate.release()
    gate.release()
    _wait(lambda: engine.store.jobs.get_job(job.id).processed_seconds >= 2.0)
    engine.stop_all()
    gate.release()
    thread.join(10)
    again = engine.store.jobs.get_job(job.id)
    assert again.status is JobStatus.QUEUED and again.queue_position == 1 and again.processed_seconds >= 2.0


def test_a_source_that_changed_or_vanished_fails_clearly(engine, copies):
    changed, vanished, fine = copies(3)
    engine.add([changed, vanished, fine], user="ann")
    with open(changed, "r+b") as handle:
        handle.seek(2000)
        handle.write(b"\x7f" * 100)
    os.utime(changed, (time.time() + 5, time.time() + 5))
    os.remove(vanished)
    finished = {job.file_name: job for job in engine.run_until_idle()}
    assert finished["clip0.wav"].status is JobStatus.FAILED
    assert "changed after it was queued" in finished["clip0.wav"].error
    assert finished["clip1.wav"].status is JobStatus.FAILED
    assert "moved or deleted after it was queued" in finished["clip1.wav"].error
    assert finished["clip2.wav"].status is JobStatus.COMPLETED


def test_touching_a_file_without_changing_it_is_not_a_change(engine, copies):
    (path,) = copies(1)
    engine.add([path], user="ann")
    os.utime(path, (time.time() + 50, time.time() + 50))
    (job,) = engine.run_until_idle()
    assert job.status is JobStatus.COMPLETED


def test_an_unavailable_model_fails_the_job_not_the_engine(engine, copies):
    bad, good = copies(2)
    engine.add([bad], user="ann", options=engine.default_options(model="no-such-model"))
    engine.add([good], user="ann")
    finished = {job.file_name: job for job in engine.run_until_idle()}
    assert finished["clip0.wav"].status is JobStatus.FAILED and "Unknown model 'no-such-model'" in finished["clip0.wav"].error
    assert finished["clip1.wav"].status is JobStatus.COMPLETED


def test_automatic_export_never_overwrites(engine, copies, data_dir):
    export_dir = data_dir / "transcripts"
    export_dir.mkdir()
    (export_dir / "clip0.txt").write_text("someone else's file\n")
    engine.add(copies(1), user="ann")
    (job,) = engine.run_until_idle()
    assert (export_dir / "clip0.txt").read_text() == "someone else's file\n"
    assert sorted(os.path.basename(p) for p in job.exported_paths) == ["clip0 (2).txt", "clip0.srt"]
    assert "words from 0 to 1" in (export_dir / "clip0 (2).txt").read_text()


def test_listener_hears_progress_and_the_outcome(make_engine, model_cache, copies):
    events = []

    class Recorder(EngineListener):
        def job_changed(self, job):
            events.append(("changed", job.status))

        def segments_added(self, job, segments):
            events.append(("segments", len(segments)))

        def job_finished(self, job):
            events.append(("finished", job.status))

    engine = make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=1.0), listener=Recorder())
    engine.add(copies(1), user="ann")
    engine.run_until_idle()
    kinds = [kind for kind, _ in events]
    assert kinds.count("segments") >= 3
    assert ("finished", JobStatus.COMPLETED) in events
    assert kinds.index("finished") > kinds.index("segments")


def test_the_model_is_loaded_once_for_many_jobs(make_engine, model_cache, copies):
    loads = []
    from transcriber.engine.models import ModelPool

    pool = ModelPool(model_cache, workers=1, idle_seconds=60, loader=lambda settings: loads.append(settings) or object())
    engine = make_engine(models=pool, backend_factory=fake_factory(step=2.0))
    engine.add(copies(4), user="ann")
    engine.run_until_idle()
    assert len(loads) == 1
    pool.shutdown()


def test_a_model_unused_for_the_idle_period_is_unloaded(model_cache):
    from transcriber.engine.models import ModelPool

    pool = ModelPool(model_cache, workers=1, idle_seconds=0.2, loader=lambda settings: object())
    settings, _ = pool.acquire("tiny.en")
    pool.release(settings)
    assert pool.loaded() == [settings]
    _wait(lambda: pool.unload_idle() == 1 or pool.loaded() == [])  # the engine's dispatcher calls it every step
    settings, _ = pool.acquire("tiny.en")
    assert pool.load_count("tiny.en") == 2
    pool.release(settings)
    pool.shutdown()


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def long_recording(tmp_path):
    """200 s of quiet noise with a pause every 20 s: long enough to be cut into parts."""
    import numpy as np

    from conftest import write_wav

    rng = np.random.default_rng(3)
    audio = rng.normal(0, 0.05, 200 * 16000).astype(np.float32)
    for second in range(20, 200, 20):
        audio[second * 16000 : second * 16000 + 8000] = 0.0
    return write_wav(tmp_path / "meeting.wav", audio)


def _run_until(runner_app, condition, timeout=30.0):
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        QCoreApplication.processEvents()
        time.sleep(0.01)


def test_parts_of_a_long_job_run_side_by_side_and_pause_together(make_engine, model_cache, long_recording, qapp):
    from transcriber.engine.runner import EngineRunner

    app = qapp  # pytest-qt's application: one per process, shared with the window tests
    engine = make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=2.0, delay=0.02))
    engine.store.settings.set("workers", "2")
    (result,) = engine.add([str(long_recording)], user="ann")
    runner = EngineRunner(engine, poll_seconds=0.05)
    runner.start()
    job_id = result.job.id
    _run_until(app, lambda: len(engine.store.work.running_parts()) == 2)
    parts = engine.store.work.parts(job_id)
    assert len(parts) == 3
    for part in parts[1:]:
        assert abs(part.start - round(part.start / 20) * 20) < 0.6  # cut at a pause, not mid-sound
    try:
        _pause_and_resume(app, engine, runner, job_id, parts)
    finally:
        runner.stop()


def _pause_and_resume(app, engine, runner, job_id, parts):
    from transcriber.jobs import PartStatus

    _run_until(app, lambda: all(p.processed_seconds > p.start for p in engine.store.work.parts(job_id)[:2]))
    engine.pause(job_id)
    _run_until(app, lambda: not runner.busy)
    assert all(part.status is PartStatus.PENDING for part in engine.store.work.parts(job_id))
    paused_at = [part.processed_seconds for part in engine.store.work.parts(job_id)]
    assert paused_at[0] > 0 and paused_at[1] > parts[1].start
    engine.resume(job_id)
    _run_until(app, lambda: engine.store.jobs.get_job(job_id).status is JobStatus.COMPLETED)
    segments = engine.store.transcripts.segments(job_id)
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(200.0, abs=0.01)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(segments, segments[1:]))  # no gap, no overlap
    job = engine.store.jobs.get_job(job_id)
    assert job.processed_seconds == pytest.approx(job.duration_seconds)


def test_adding_many_files_refreshes_estimates_once_and_each_job_has_one(engine, copies, monkeypatch):
    refreshed = []
    original = engine.store.jobs.update_estimates
    monkeypatch.setattr(engine.store.jobs, "update_estimates", lambda estimates: refreshed.append(len(estimates)) or original(estimates))
    changed = []

    class Listener(EngineListener):
        def job_changed(self, job):
            changed.append(job.id)

    engine.listener = Listener()
    results = engine.add(copies(6), user="ann")
    assert refreshed == [6]  # once for the batch: per-file refreshes made big folders quadratic
    assert sorted(changed) == [result.job.id for result in results]  # the listener still hears of each job
    assert all(result.job.eta_seconds is not None and result.job.estimated_completion for result in results)
    assert [result.job.queue_position for result in results] == [1, 2, 3, 4, 5, 6]
