"""Webhooks against a real HTTP receiver on 127.0.0.1: signature, retries, restarts, 4xx, the log, the CLI.

Jobs run with the fake decoder here (the outbox does not care who decoded); the test that
a slow receiver never holds up transcription uses the real model.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from conftest import run_cli
from fakes import fake_factory, fake_pool
from receiver import Receiver
from transcriber.records import DeliveryState
from transcriber.services.webhooks import RetryPolicy, WebhookDispatcher, classify, PostResult, sign, verify
from transcriber.jobs import JobStatus

LATER = 10 * 24 * 3600  # a "now" far enough ahead that every back-off is due


@pytest.fixture(scope="module")
def speech(speak):
    return speak("The webhook should tell the receiver that this file is done.", "hook.wav")


@pytest.fixture
def receiver():
    made = []

    def make(*script, default=(200, 0.0)):
        server = Receiver(script=list(script), default=default).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def fake_engine(make_engine, model_cache):
    return lambda: make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=1.0))


def copy_of(speech: Path, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    return str(shutil.copyfile(speech, folder / name))


def deliver_everything(dispatcher: WebhookDispatcher, rounds: int = 10) -> None:
    """Run the outbox as if days passed: every retry becomes due in turn."""
    for number in range(rounds):
        if not dispatcher.deliver_due(now=time.time() + LATER * (number + 1)):
            return


def test_completed_job_is_posted_signed_with_its_transcript(fake_engine, receiver, speech, tmp_path):
    server = receiver()
    engine = fake_engine()
    endpoint = engine.store.automation.add_webhook(server.url, "s3cret", ["job.started", "job.completed", "job.failed"])
    engine.add([copy_of(speech, tmp_path, "talk.wav")], user="ann")
    (job,) = engine.run_until_idle()
    WebhookDispatcher(engine.store).deliver_due()

    assert [item.headers["X-Transcriber-Event"] for item in server.received] == ["job.started", "job.completed"]
    completed = server.received[1]
    timestamp = completed.headers["X-Transcriber-Timestamp"]
    signature = completed.headers["X-Transcriber-Signature"]
    assert verify("s3cret", timestamp, completed.body, signature)
    assert signature == sign("s3cret", timestamp, completed.body)
    assert not verify("wrong", timestamp, completed.body, signature)
    assert not verify("s3cret", timestamp, completed.body + b" ", signature)  # a changed body
    assert not verify("s3cret", timestamp, completed.body, signature, now=int(timestamp) + 3600)  # a replay
    payload = completed.json
    assert payload["event"] == "job.completed" and payload["job_id"] == job.id
    assert payload["user"] == "ann" and payload["file_name"] == "talk.wav" and payload["status"] == "completed"
    assert payload["model"] == "tiny.en" and payload["language"] == "en" and payload["error"] is None
    assert payload["duration_seconds"] == pytest.approx(job.duration_seconds, abs=1e-3)
    assert payload["processing_seconds"] == pytest.approx(job.processing_seconds, abs=1e-3)
    assert payload["transcript"] == engine.transcript(job.id).text
    assert completed.headers["X-Transcriber-Delivery"] == str(payload["delivery_id"])
    log = engine.store.automation.delivery_log()
    assert [(a.endpoint_id, a.event, a.job_id, a.status_code, a.outcome) for a in log] == [
        (endpoint.id, "job.started", job.id, 200, "delivered"),
        (endpoint.id, "job.completed", job.id, 200, "delivered"),
    ]


def test_files_links_point_at_the_exports_written_before_the_event(fake_engine, receiver, speech, tmp_path):
    server = receiver()
    engine = fake_engine()
    engine.store.automation.add_webhook(server.url, "k", ["job.completed"], include="files")
    engine.add([copy_of(speech, tmp_path, "linked.wav")], user="ann")
    (job,) = engine.run_until_idle()
    WebhookDispatcher(engine.store).deliver_due()
    (item,) = server.received
    files = item.json["files"]
    assert "transcript" not in item.json
    assert sorted(Path(link.removeprefix("file://")).name for link in files) == ["linked.srt", "linked.txt"]
    assert all(Path(link.removeprefix("file://")).is_file() for link in files)


def test_a_failed_job_posts_its_error(fake_engine, receiver, speech, tmp_path):
    server = receiver()
    engine = fake_engine()
    engine.store.automation.add_webhook(server.url, "k", ["job.failed"])
    path = copy_of(speech, tmp_path, "gone.wav")
    engine.add([path], user="ann")
    Path(path).unlink()  # the source vanishes before its turn
    (job,) = engine.run_until_idle()
    assert job.status is JobStatus.FAILED
    WebhookDispatcher(engine.store).deliver_due()
    (item,) = server.received
    assert item.json["event"] == "job.failed" and item.json["status"] == "failed"
    assert item.json["error"] == job.error and "moved or deleted" in job.error


def test_receiver_failing_twice_then_succeeding_gets_exactly_one_accepted_delivery(fake_engine, receiver, speech, tmp_path):
    server = receiver((500, 0.0), (503, 0.0), (200, 0.0))
    engine = fake_engine()
    engine.store.automation.add_webhook(server.url, "k", ["job.completed"])
    engine.add([copy_of(speech, tmp_path, "retry.wav")], user="ann")
    (job,) = engine.run_until_idle()
    dispatcher = WebhookDispatcher(engine.store, policy=RetryPolicy(first_delay=60))
    assert dispatcher.deliver_due() == 1
    assert dispatcher.deliver_due() == 0  # the retry waits for its back-off
    deliver_everything(dispatcher)

    assert [item.status for item in server.received] == [500, 503, 200]
    assert len(server.accepted) == 1
    assert len({item.body for item in server.received}) == 1  # every retry sends the same body
    (delivery,) = engine.store.automation.deliveries(job.id)
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 3
    assert [(a.attempt, a.status_code, a.error, a.outcome) for a in engine.store.automation.delivery_log()] == [
        (1, 500, None, "retry"),
        (2, 503, None, "retry"),
        (3, 200, None, "delivered"),
    ]


def test_a_restart_between_failures_still_delivers(fake_engine, receiver, speech, tmp_path):
    server = receiver((500, 0.0))
    port = server.port
    first = fake_engine()
    first.store.automation.add_webhook(server.url, "k", ["job.completed"])
    first.add([copy_of(speech, tmp_path, "restart.wav")], user="ann")
    (job,) = first.run_until_idle()
    WebhookDispatcher(first.store).deliver_due()  # 500
    server.stop()  # the receiver goes down...
    WebhookDispatcher(first.store).deliver_due(now=time.time() + LATER)  # ...connection refused
    first.store.close()

    # The app restarts: new store and engine objects on the same data folder.
    second = fake_engine()
    second.recover()
    revived = Receiver(port=port).start()
    try:
        deliver_everything(WebhookDispatcher(second.store))
        assert len(revived.accepted) == 1 and revived.accepted[0].json["job_id"] == job.id
    finally:
        revived.stop()
    log = second.store.automation.delivery_log()
    assert [a.status_code for a in log] == [500, None, 200]
    assert log[1].error and log[1].outcome == "retry"
    assert second.store.automation.deliveries(job.id)[0].state == DeliveryState.DELIVERED


def test_a_4xx_is_not_retried(fake_engine, receiver, speech, tmp_path):
    server = receiver((404, 0.0))
    engine = fake_engine()
    engine.store.automation.add_webhook(server.url, "k", ["job.completed"])
    engine.add([copy_of(speech, tmp_path, "gone4xx.wav")], user="ann")
    (job,) = engine.run_until_idle()
    deliver_everything(WebhookDispatcher(engine.store))
    assert [item.status for item in server.received] == [404]
    (delivery,) = engine.store.automation.deliveries(job.id)
    assert delivery.state == DeliveryState.FAILED and delivery.last_error == "HTTP 404"
    assert [(a.status_code, a.outcome) for a in engine.store.automation.delivery_log()] == [(404, "failed")]


def test_retries_stop_when_the_policy_gives_up(fake_engine, receiver, speech, tmp_path):
    server = receiver(default=(500, 0.0))
    engine = fake_engine()
    engine.store.automation.add_webhook(server.url, "k", ["job.completed"])
    engine.add([copy_of(speech, tmp_path, "never.wav")], user="ann")
    engine.run_until_idle()
    deliver_everything(WebhookDispatcher(engine.store, policy=RetryPolicy(max_attempts=3)))
    assert len(server.received) == 3
    assert [a.outcome for a in engine.store.automation.delivery_log()] == ["retry", "retry", "failed"]


@pytest.mark.parametrize(
    "attempts, created, now, expected",
    [
        (1, 0.0, 100.0, 130.0),  # first retry: first_delay
        (2, 0.0, 100.0, 160.0),  # doubles
        (5, 0.0, 100.0, 580.0),  # 30 * 2**4
        (9, 0.0, 100.0, 3700.0),  # capped at max_delay
        (12, 0.0, 100.0, None),  # max_attempts reached
        (3, 0.0, 86380.0, None),  # past give_up_after
    ],
)
def test_retry_policy_backs_off_exponentially_for_a_bounded_time(attempts, created, now, expected):
    assert RetryPolicy().next_attempt(attempts, created, now) == expected


@pytest.mark.parametrize(
    "code, error, outcome",
    [(200, None, "delivered"), (204, None, "delivered"), (500, None, "retry"), (503, None, "retry"),
     (429, None, "retry"), (400, None, "failed"), (404, None, "failed"), (410, None, "failed"),
     (None, "timed out", "retry"), (None, "Connection refused", "retry")],
)
def test_answers_are_classified(code, error, outcome):
    assert classify(PostResult(code, error, 0.1)) == outcome


def test_the_dispatcher_thread_delivers_in_the_background(fake_engine, receiver, speech, tmp_path):
    server = receiver()
    engine = fake_engine()
    engine.store.automation.add_webhook(server.url, "k", ["job.completed"])
    dispatcher = WebhookDispatcher(engine.store, poll_seconds=0.05)
    dispatcher.start()
    try:
        engine.add([copy_of(speech, tmp_path, "bg.wav")], user="ann")
        engine.run_until_idle()
        for _ in range(400):
            if server.accepted:
                break
            time.sleep(0.05)
    finally:
        dispatcher.stop()
    assert [item.json["event"] for item in server.accepted] == ["job.completed"]


def test_command_line_adds_lists_tests_logs_and_removes_endpoints(receiver, data_dir):
    server = receiver()
    added = run_cli("webhooks", "add", server.url, "--secret", "abc", "--events", "job.completed,job.started",
                    data_dir=data_dir, check=True)
    webhook_id = added.stdout.split()[0]
    listed = run_cli("webhooks", "list", data_dir=data_dir, check=True).stdout
    assert server.url in listed and "job.completed,job.started" in listed
    tested = run_cli("webhooks", "test", webhook_id, data_dir=data_dir, check=True)
    assert "200" in tested.stdout
    (item,) = server.received
    assert item.json["event"] == "webhook.test"
    assert verify("abc", item.headers["X-Transcriber-Timestamp"], item.body, item.headers["X-Transcriber-Signature"])
    log = json.loads(run_cli("webhooks", "log", "--json", data_dir=data_dir, check=True).stdout)
    assert [(row["endpoint_id"], row["url"], row["event"], row["job_id"], row["status_code"], row["error"]) for row in log] == [
        (int(webhook_id), server.url, "webhook.test", None, 200, None)
    ]
    assert log[0]["time"]
    text_log = run_cli("webhooks", "log", data_dir=data_dir, check=True).stdout
    assert "webhook.test" in text_log and "200" in text_log
    bad = run_cli("webhooks", "add", "ftp://nowhere", data_dir=data_dir)
    assert bad.returncode != 0 and "not an http" in bad.stderr
    wrong = run_cli("webhooks", "add", server.url, "--events", "job.exploded", data_dir=data_dir)
    assert wrong.returncode != 0 and "Unknown event" in wrong.stderr
    run_cli("webhooks", "remove", webhook_id, data_dir=data_dir, check=True)
    assert server.url not in run_cli("webhooks", "list", data_dir=data_dir, check=True).stdout
    missing = run_cli("webhooks", "remove", webhook_id, data_dir=data_dir)
    assert missing.returncode != 0 and f"no webhook {webhook_id}" in missing.stderr


def test_add_without_secret_makes_one(data_dir):
    added = run_cli("webhooks", "add", "http://127.0.0.1:9/x", data_dir=data_dir, check=True).stdout
    assert "secret" in added
    listed = json.loads(run_cli("webhooks", "list", "--json", "--show-secrets", data_dir=data_dir, check=True).stdout)
    assert len(listed[0]["secret"]) == 40 and listed[0]["events"] == ["job.completed", "job.failed"]
    hidden = json.loads(run_cli("webhooks", "list", "--json", data_dir=data_dir, check=True).stdout)
    assert hidden[0]["secret"] is None and listed[0]["secret"] not in json.dumps(hidden)  # secrets only when asked


def test_run_until_idle_delivers_what_is_due_before_returning(receiver, data_dir):
    from transcriber.jobs import JobOptions
    from transcriber.store import Store

    server = receiver((503, 0.0), (200, 0.0))
    store = Store.open(data_dir / "transcriber.db")
    store.automation.add_webhook(server.url, "k", ["job.failed"])
    job = store.jobs.add_job(user="u", source_path="/nowhere.wav", size_bytes=1, mtime=0, content_hash="x",
                        duration_seconds=1.0, declared_seconds=1.0, options=JobOptions(), max_queued=10)
    store.jobs.mark_failed(job.id, "gone", "source_changed")
    store.settings.set("webhook_first_retry_seconds", "1")
    store.close()
    # No job to run: the first answer (503) schedules a retry a second later, within the
    # minute run --until-idle waits for, so it stays until the delivery is accepted.
    result = run_cli("run", "--until-idle", data_dir=data_dir, check=True)
    assert [item.status for item in server.received] == [503, 200], result.stderr
    log = json.loads(run_cli("webhooks", "log", "--json", data_dir=data_dir, check=True).stdout)
    assert [(row["job_id"], row["status_code"], row["outcome"]) for row in log] == [
        (job.id, 503, "retry"), (job.id, 200, "delivered")
    ]


def test_job_started_is_sent_once_even_when_the_job_is_paused_and_resumed(make_engine, model_cache, receiver, speech, tmp_path):
    import threading

    gate = threading.Semaphore(0)
    engine = make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=1.0, gate=gate))
    server = receiver()
    engine.store.automation.add_webhook(server.url, "k", ["job.started", "job.completed"])
    (result,) = engine.add([copy_of(speech, tmp_path, "paused.wav")], user="ann")
    worker = threading.Thread(target=engine.run_until_idle)
    worker.start()
    gate.release()
    for _ in range(400):
        if engine.store.jobs.get_job(result.job.id).processed_seconds > 0:
            break
        time.sleep(0.01)
    engine.pause(result.job.id)
    gate.release()
    worker.join()
    engine.resume(result.job.id)
    for _ in range(100):
        gate.release()
    engine.run_until_idle()
    finished = engine.store.jobs.get_job(result.job.id)
    assert finished.status is JobStatus.COMPLETED and finished.attempts == 2  # started twice
    WebhookDispatcher(engine.store).deliver_due()
    assert [item.json["event"] for item in server.received] == ["job.started", "job.completed"]


def test_a_test_event_to_a_receiver_that_is_down_fails_once_and_says_why(receiver, data_dir):
    server = receiver()
    url = server.url
    server.stop()  # nobody listens on that port now
    webhook_id = run_cli("webhooks", "add", url, "--secret", "k", data_dir=data_dir, check=True).stdout.split()[0]
    tested = run_cli("webhooks", "test", webhook_id, data_dir=data_dir)
    assert tested.returncode == 1 and "error:" in tested.stdout and "failed" in tested.stdout
    (row,) = json.loads(run_cli("webhooks", "log", "--json", data_dir=data_dir, check=True).stdout)
    assert row["status_code"] is None and row["error"] and row["outcome"] == "failed"  # a test is never retried


def test_a_completion_whose_process_died_before_its_export_is_still_delivered(fake_engine, receiver, tmp_path):
    from transcriber.jobs import JobOptions

    server = receiver()
    engine = fake_engine()
    store = engine.store
    store.automation.add_webhook(server.url, "k", ["job.completed"])
    job = store.jobs.add_job(user="u", source_path="/x.wav", size_bytes=1, mtime=0, content_hash="x", duration_seconds=5.0,
                        declared_seconds=5.0, options=JobOptions(), max_queued=10)
    _, _, run_id = store.work.claim_work(job.id)
    store.work.commit_progress(job.id, 0, run_id, [], processed_seconds=5.0, processing_seconds=1.0, speed=None)
    store.work.finish_part(job.id, 0)
    store.jobs.mark_completed(job.id)  # ...and the process dies before exporting and releasing
    assert WebhookDispatcher(store).deliver_due(now=time.time() + LATER) == 0  # held
    store.close()
    restarted = fake_engine()
    restarted.recover()
    assert WebhookDispatcher(restarted.store).deliver_due() == 1
    assert [item.json["job_id"] for item in server.accepted] == [job.id]


def test_a_dispatcher_stopped_and_started_again_runs_one_thread(fake_engine, receiver, speech, tmp_path):
    server = receiver()
    engine = fake_engine()
    engine.store.automation.add_webhook(server.url, "k", ["job.completed"])
    dispatcher = WebhookDispatcher(engine.store, poll_seconds=0.05)
    dispatcher.start()
    dispatcher.stop()
    dispatcher.start()
    try:
        engine.add([copy_of(speech, tmp_path, "again.wav")], user="ann")
        engine.run_until_idle()
        for _ in range(400):
            if server.accepted:
                break
            time.sleep(0.05)
        time.sleep(0.3)  # a second thread, if there were one, would post again meanwhile
    finally:
        dispatcher.stop()
    assert len(server.received) == 1
    assert [thread.name for thread in __import__("threading").enumerate()].count("webhooks") == 0


def test_automation_imports_no_qt_at_all():
    import subprocess
    import sys

    code = (
        "import sys, transcriber.services.webhooks, transcriber.services.watch, transcriber.reports.analytics,"
        " transcriber.cli.automation, transcriber.store;"
        "bad = [m for m in sys.modules if m.startswith('PySide6')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_receiver_slower_than_the_timeout_is_retried(fake_engine, receiver, speech, tmp_path):
    server = receiver((200, 2.0))  # answers, but too late
    engine = fake_engine()
    engine.store.automation.add_webhook(server.url, "k", ["job.completed"])
    engine.add([copy_of(speech, tmp_path, "slow.wav")], user="ann")
    (job,) = engine.run_until_idle()
    deliver_everything(WebhookDispatcher(engine.store, timeout=0.5))
    log = engine.store.automation.delivery_log()
    assert [(a.status_code, a.outcome) for a in log] == [(None, "retry"), (200, "delivered")]
    assert "timed out" in log[0].error
    assert engine.store.automation.deliveries(job.id)[0].state == DeliveryState.DELIVERED
