"""Watch folders with a real store, real files and the fake decoder: settling, duplicates, rules, limits."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from conftest import run_cli
from fakes import fake_factory, fake_pool
from transcriber.records import WatchFileState
from transcriber.services.watch import WatchService, parse_after
from transcriber.errors import AutomationError
from transcriber.jobs import JobStatus


@pytest.fixture(scope="module")
def speech(speak):
    return speak("Files dropped in this folder are transcribed without anyone watching.", "watched.wav")


@pytest.fixture
def engine(make_engine, model_cache):
    return make_engine(models=fake_pool(model_cache), backend_factory=fake_factory(step=1.0))


@pytest.fixture
def inbox(tmp_path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def test_a_file_copied_in_slowly_is_queued_once_after_it_stops_growing(engine, inbox, speech):
    engine.store.automation.add_watch_folder(str(inbox), user="ann")
    service = WatchService(engine, settle_seconds=5.0)
    data = speech.read_bytes()
    target = inbox / "slow.wav"
    now = 1000.0
    with open(target, "wb") as handle:
        for offset in range(0, len(data), len(data) // 4 + 1):
            handle.write(data[offset : offset + len(data) // 4 + 1])
            handle.flush()
            # A scan sees each new size; the file never sits still for 5 s while it grows.
            assert service.scan(now=now).queued == []
            last_growth_seen = now
            now += 3.0
    assert service.scan(now=last_growth_seen + 4.9).queued == []
    assert service.scan(now=last_growth_seen + 5.0).queued == [str(target)]
    assert service.scan(now=last_growth_seen + 60).queued == []
    (job,) = engine.store.jobs.list_jobs()
    assert job.source_path == str(target) and job.size_bytes == len(data) and job.user == "ann"
    assert engine.run_until_idle()[0].status is JobStatus.COMPLETED


def test_a_file_being_written_by_another_thread_is_picked_up_once(engine, inbox, speech):
    engine.store.automation.add_watch_folder(str(inbox), user="ann")
    service = WatchService(engine, settle_seconds=1.5)
    data = speech.read_bytes()
    written = threading.Event()

    def copy_slowly():
        with open(inbox / "live.wav", "wb") as handle:
            for offset in range(0, len(data), 4096):
                handle.write(data[offset : offset + 4096])
                handle.flush()
                time.sleep(0.01)
        written.set()

    writer = threading.Thread(target=copy_slowly)
    writer.start()
    queued = []
    while not written.is_set():
        queued += service.scan().queued
        time.sleep(0.02)
    writer.join()
    assert queued == []  # never while it grew
    for _ in range(400):
        queued += service.scan().queued
        if queued:
            break
        time.sleep(0.05)
    queued += service.scan(now=time.time() + 60).queued
    assert queued == [str(inbox / "live.wav")]
    assert engine.store.jobs.list_jobs()[0].size_bytes == len(data)


def test_only_media_is_taken_from_subfolders_too(engine, inbox, speech):
    engine.store.automation.add_watch_folder(str(inbox), user="ann")
    (inbox / "sub").mkdir()
    shutil.copyfile(speech, inbox / "sub" / "deep.wav")
    (inbox / "notes.txt").write_text("not media")
    service = WatchService(engine, settle_seconds=1.0)
    service.scan(now=0.0)
    assert service.scan(now=10.0).queued == [str(inbox / "sub" / "deep.wav")]


def test_a_duplicate_is_skipped(engine, inbox, speech):
    engine.store.automation.add_watch_folder(str(inbox), user="ann")
    service = WatchService(engine, settle_seconds=1.0)
    shutil.copyfile(speech, inbox / "first.wav")
    service.scan(now=0.0)
    assert service.scan(now=2.0).queued == [str(inbox / "first.wav")]
    (first,) = engine.run_until_idle()
    shutil.copyfile(speech, inbox / "again.wav")  # same content, another name
    service.scan(now=3.0)
    report = service.scan(now=5.0)
    assert report.queued == [] and report.duplicates == [str(inbox / "again.wav")]
    assert len(engine.store.jobs.list_jobs()) == 1
    again = [item for item in engine.store.automation.watch_files() if item.path.endswith("again.wav")][0]
    assert again.state == WatchFileState.DUPLICATE and again.job_id == first.id


def test_the_same_file_under_another_model_is_not_a_duplicate(engine, tmp_path, speech):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    engine.store.automation.add_watch_folder(str(one), user="ann")
    engine.store.automation.add_watch_folder(str(two), user="ann", model="base")
    shutil.copyfile(speech, one / "a.wav")
    shutil.copyfile(speech, two / "a.wav")
    service = WatchService(engine, settle_seconds=1.0)
    service.scan(now=0.0)
    report = service.scan(now=2.0)
    assert sorted(report.queued) == sorted([str(one / "a.wav"), str(two / "a.wav")])
    assert sorted(job.model for job in engine.store.jobs.list_jobs()) == ["auto", "base"]  # the default model, and the rule's


def test_move_after_success_and_the_rules_exports(engine, tmp_path, inbox, speech):
    done, out = tmp_path / "done", tmp_path / "out"
    engine.store.automation.add_watch_folder(
        str(inbox), user="ann", output_dir=str(out), formats=["vtt", "json"], after="move", move_to=str(done)
    )
    (inbox / "day1").mkdir()
    shutil.copyfile(speech, inbox / "day1" / "meeting.wav")
    service = WatchService(engine, settle_seconds=1.0)
    service.scan(now=0.0)
    service.scan(now=2.0)
    assert (inbox / "day1" / "meeting.wav").exists()  # not before success
    (job,) = engine.run_until_idle()
    assert job.status is JobStatus.COMPLETED
    report = service.scan(now=3.0)
    assert report.finished == [str(inbox / "day1" / "meeting.wav")]
    assert not (inbox / "day1" / "meeting.wav").exists()
    assert (done / "day1" / "meeting.wav").read_bytes() == speech.read_bytes()
    assert sorted(path.name for path in out.iterdir()) == ["meeting.json", "meeting.vtt"]
    (seen,) = engine.store.automation.watch_files()
    assert seen.state == WatchFileState.DONE and "moved to" in seen.message
    assert service.scan(now=100.0).queued == []


def test_keep_leaves_the_source_and_a_failed_job_is_not_moved(engine, tmp_path, inbox, speech):
    engine.store.automation.add_watch_folder(str(inbox), user="ann", after="move", move_to=str(tmp_path / "done"))
    shutil.copyfile(speech, inbox / "broken.wav")
    service = WatchService(engine, settle_seconds=1.0)
    service.scan(now=0.0)
    service.scan(now=2.0)
    (job,) = engine.store.jobs.list_jobs()
    engine.cancel(job.id)
    service.scan(now=3.0)
    assert (inbox / "broken.wav").exists() and not (tmp_path / "done").exists()
    assert engine.store.automation.watch_files()[0].state == WatchFileState.FAILED


def test_over_limit_files_wait_in_the_folder_and_are_picked_up_later(engine, inbox, speech, data_dir):
    engine.store.settings.set("max_queued_per_user", "2")
    engine.store.automation.add_watch_folder(str(inbox), user="ann")
    for number in range(5):
        target = inbox / f"clip{number}.wav"
        target.write_bytes(speech.read_bytes() + bytes(2 * number))  # distinct content
    service = WatchService(engine, settle_seconds=1.0)
    service.scan(now=0.0)
    report = service.scan(now=2.0)
    assert len(report.queued) == 2 and len(report.waiting) == 3
    waiting = [item for item in engine.store.automation.watch_files() if item.state == WatchFileState.WAITING]
    assert len(waiting) == 3 and all("queue" in item.message for item in waiting)
    listed = json.loads(run_cli("watch", "files", "--json", data_dir=data_dir, check=True).stdout)
    assert sorted(item["state"] for item in listed) == ["queued", "queued", "waiting", "waiting", "waiting"]
    engine.run_until_idle()
    now = 3.0
    for _ in range(5):
        service.scan(now=now)
        engine.run_until_idle()
        now += 1.0
    jobs = engine.store.jobs.list_jobs()
    assert len(jobs) == 5 and all(job.status is JobStatus.COMPLETED for job in jobs)
    assert {item.state for item in engine.store.automation.watch_files()} == {WatchFileState.DONE}


def test_a_refused_file_is_not_tried_again_until_it_changes(engine, inbox):
    engine.store.automation.add_watch_folder(str(inbox), user="ann")
    bogus = inbox / "bogus.mp3"
    bogus.write_bytes(b"this is not audio at all" * 100)
    service = WatchService(engine, settle_seconds=1.0)
    service.scan(now=0.0)
    assert service.scan(now=2.0).refused == [str(bogus)]
    assert service.scan(now=4.0).refused == []
    assert engine.store.jobs.list_jobs() == []


def test_after_rule_is_parsed():
    assert parse_after(None) == ("keep", None)
    assert parse_after("keep") == ("keep", None)
    after, target = parse_after("move:/tmp/done")
    assert after == "move" and target == "/tmp/done"
    for bad in ("move:", "delete", "move"):
        with pytest.raises(AutomationError):
            parse_after(bad)


def test_command_line_adds_lists_and_removes_watch_folders(data_dir, inbox, tmp_path):
    added = run_cli("watch", "add", str(inbox), "--output", str(tmp_path / "out"), "--formats", "srt,txt",
                    "--model", "base", "--language", "en", "--after", f"move:{tmp_path / 'done'}",
                    data_dir=data_dir, check=True)
    folder_id = added.stdout.split()[0]
    listed = json.loads(run_cli("watch", "list", "--json", data_dir=data_dir, check=True).stdout)
    assert listed == [
        {
            "id": int(folder_id), "path": str(inbox), "user": listed[0]["user"], "model": "base", "language": "en",
            "output": str(tmp_path / "out"), "formats": ["srt", "txt"], "after": f"move:{tmp_path / 'done'}",
        }
    ]
    assert str(inbox) in run_cli("watch", "list", data_dir=data_dir, check=True).stdout
    again = run_cli("watch", "add", str(inbox), data_dir=data_dir)
    assert again.returncode != 0 and "already a watch folder" in again.stderr
    missing = run_cli("watch", "add", str(tmp_path / "nope"), data_dir=data_dir)
    assert missing.returncode != 0 and "not a folder" in missing.stderr
    assert run_cli("watch", "files", data_dir=data_dir, check=True).stdout.strip() == "no files seen yet"
    run_cli("watch", "remove", folder_id, data_dir=data_dir, check=True)
    assert json.loads(run_cli("watch", "list", "--json", data_dir=data_dir, check=True).stdout) == []


def test_a_file_gone_before_it_settled_is_forgotten_and_the_service_becomes_idle(engine, inbox, speech):
    engine.store.automation.add_watch_folder(str(inbox), user="ann")
    service = WatchService(engine, settle_seconds=5.0)
    assert not service.is_idle()  # not scanned yet
    partial = inbox / "upload.wav"
    shutil.copyfile(speech, partial)
    service.scan(now=0.0)
    assert not service.is_idle()  # settling
    partial.rename(inbox / "upload.part")  # not media any more
    service.scan(now=1.0)
    assert engine.store.automation.watch_files() == [] and service.is_idle()
