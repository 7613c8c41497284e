"""A full disk under the data folder: intake is refused clearly, work waits, and resumes once space is freed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from fakes import fake_factory, fake_pool
from transcriber.engine.listener import EngineListener
from transcriber.jobs import JobStatus


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB tmpfs (needs root); skipped where it cannot be mounted."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)], capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder) -> None:
    with open(folder / "filler.bin", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    subprocess.run(["sync"], check=False)


def test_full_disk_refuses_intake_and_work_resumes_after(small_disk, speak, model_cache):
    from transcriber.engine.core import Engine
    from transcriber.store import Store

    speech = speak("Checking what happens when the disk fills up during a long recording.", "disk.wav")
    errors: list[str] = []

    class Listener(EngineListener):
        def engine_error(self, message):
            errors.append(message)

    data = small_disk / "data"
    data.mkdir()
    gate = threading.Semaphore(0)
    store = Store.open(data / "transcriber.db")
    engine = Engine(store, fake_pool(model_cache), default_export_dir=data / "transcripts",
                    listener=Listener(), backend_factory=fake_factory(step=0.5, gate=gate))
    store.settings.set("auto_export", "false")
    first = engine.add([str(speech)], user="ann")[0].job
    job, part, run_id = engine.claim_next()
    worker = threading.Thread(target=engine.execute, args=(job, part, run_id))
    worker.start()
    gate.release()
    gate.release()
    deadline = time.monotonic() + 10
    while store.jobs.get_job(job.id).processed_seconds < 1.0 and time.monotonic() < deadline:
        time.sleep(0.02)
    _fill(small_disk)
    for _ in range(200):
        gate.release()
    worker.join(20)
    assert not worker.is_alive()
    assert errors and "is full" in errors[-1]
    stuck = store.jobs.get_job(job.id)
    assert stuck.status is JobStatus.RUNNING and stuck.processed_seconds >= 1.0  # what was saved is kept

    result = engine.add([str(speech)], user="ann")[0]
    assert result.refusal is not None and "is full" in str(result.refusal)

    os.remove(small_disk / "filler.bin")
    engine._store_trouble_until = 0.0  # do not wait out the back-off in a test
    assert [j.id for j in engine.recover_orphans()] == [job.id]
    (done,) = engine.run_until_idle()
    assert done.status is JobStatus.COMPLETED
    segments = store.transcripts.segments(job.id)
    assert sorted(s.index for s in segments) == list(range(len(segments)))
    assert all(a.end <= b.start + 1e-9 for a, b in zip(segments, segments[1:]))
    assert segments[-1].end == pytest.approx(done.duration_seconds)
    store.close()


def test_engine_modules_import_no_widgets():
    """The engine, store and command line run without QtWidgets or QtGui."""
    import sys

    code = (
        "import sys, transcriber.engine.core, transcriber.engine.runner, transcriber.cli.main, transcriber.app;"
        "bad = [m for m in sys.modules if m.startswith(('PySide6.QtWidgets', 'PySide6.QtGui'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_transcribe_on_a_disk_that_fills_fails_loudly_and_the_job_continues_later(small_disk, long_speech, tmp_path):
    """A store that stays unwritable ends `transcribe` with the reason (it used to wait forever); nothing is lost."""
    import json
    import sqlite3
    import sys

    from conftest import REPO, run_cli

    path, _ = long_speech
    data = small_disk / "data"
    command = [sys.executable, "-m", "transcriber", "--data-dir", str(data), "transcribe", str(path), "-o", str(tmp_path)]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            with sqlite3.connect(f"file:{data / 'transcriber.db'}?mode=ro", uri=True) as connection:
                row = connection.execute("SELECT processed_seconds FROM job WHERE id = 1").fetchone()
        except sqlite3.Error:
            continue
        if row and row[0] > 20:
            break
    _fill(small_disk)
    stdout, stderr = running.communicate(timeout=240)
    assert running.returncode == 1, stderr
    assert "is full" in stderr and "continue" in stderr and "Traceback" not in stderr
    (small_disk / "filler.bin").unlink()
    again = run_cli("transcribe", str(path), "-o", str(tmp_path), data_dir=data, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "continuing job 1" in again.stderr
    (job,) = json.loads(run_cli("list", "--json", data_dir=data, check=True).stdout)
    assert job["status"] == "completed"
