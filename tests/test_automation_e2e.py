"""Automation end to end with the real model on short espeak speech: a slow receiver, and `run` serving a watch folder."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from conftest import run_cli
from receiver import Receiver
from transcriber.services.webhooks import RetryPolicy, WebhookDispatcher, verify
from transcriber.jobs import JobStatus

pytestmark = pytest.mark.slow


def test_a_receiver_that_sleeps_10_s_never_holds_up_transcription(make_engine, shared_models, speak, tmp_path):
    first = shutil.copyfile(speak("The first recording is short.", "first.wav"), tmp_path / "first.wav")
    second = shutil.copyfile(speak("The second recording follows it.", "second.wav"), tmp_path / "second.wav")
    server = Receiver(default=(200, 10.0)).start()
    engine = make_engine(models=shared_models)
    engine.store.automation.add_webhook(server.url, "k", ["job.completed"])
    dispatcher = WebhookDispatcher(engine.store, timeout=60, poll_seconds=0.05, policy=RetryPolicy(first_delay=1))
    dispatcher.start()
    try:
        engine.add([str(first), str(second)], user="ann")
        ran = engine.run_until_idle()
        assert [job.status for job in ran] == [JobStatus.COMPLETED] * 2
        one, two = (engine.store.jobs.get_job(job.id) for job in ran)
        for _ in range(1200):  # both deliveries, 10 s each: wait for them, whatever the machine
            if len(server.accepted) == 2 and all(item.answered_at for item in server.accepted):
                break
            time.sleep(0.05)
    finally:
        dispatcher.stop(timeout=30)
        server.stop()
    first_delivery, second_delivery = server.received
    assert first_delivery.json["job_id"] == one.id and second_delivery.json["job_id"] == two.id
    assert first_delivery.arrived_at >= one.finished_at  # posted after the job completed...
    # ...and while the receiver sat on it, the next job started: it did not wait for the delivery.
    assert one.finished_at <= two.started_at < first_delivery.answered_at
    assert [attempt.status_code for attempt in engine.store.automation.delivery_log()] == [200, 200]


def test_run_serves_a_watch_folder_and_its_webhook_until_idle(data_dir, speak, tmp_path):
    inbox, out, done = tmp_path / "inbox", tmp_path / "out", tmp_path / "done"
    (inbox / "monday").mkdir(parents=True)
    server = Receiver().start()
    try:
        run_cli("watch", "add", str(inbox), "--output", str(out), "--formats", "srt", "--after", f"move:{done}",
                data_dir=data_dir, check=True)
        run_cli("webhooks", "add", server.url, "--secret", "e2e", "--events", "job.completed", "--include", "files",
                data_dir=data_dir, check=True)
        # "call the office" is heard as "call it off" when a resampler rounds one bit differently; "phone" is not.
        shutil.copyfile(speak("Please phone the office on Monday morning.", "monday.wav"), inbox / "monday" / "call.wav")
        run = run_cli("run", "--until-idle", data_dir=data_dir, check=True)
    finally:
        server.stop()
    assert (done / "monday" / "call.wav").is_file() and not (inbox / "monday" / "call.wav").exists(), run.stderr
    srt = (out / "call.srt").read_text()
    assert "office" in srt.lower() and "monday" in srt.lower()
    (item,) = server.received
    assert verify("e2e", item.headers["X-Transcriber-Timestamp"], item.body, item.headers["X-Transcriber-Signature"])
    payload = item.json
    assert payload["event"] == "job.completed" and payload["file_name"] == "call.wav"
    assert all(Path(link.removeprefix("file://")).is_file() for link in payload["files"]) and payload["files"]
    jobs = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)
    assert [job["status"] for job in jobs] == ["completed"]
