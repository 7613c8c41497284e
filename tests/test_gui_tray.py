"""The tray under a real X server (Xvfb) with a private session bus: registration, notifications, close to tray, quit, reopen.

Qt picks its platform once per process, and this test process is offscreen, so the
window runs in a subprocess (``gui_driver.py``) with ``QT_QPA_PLATFORM=xcb``; the
StatusNotifierWatcher and the notification server run here and record its calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from desktop import Desktop
from transcriber.jobs import JobStatus

pytestmark = pytest.mark.gui


@pytest.fixture
def desktop():
    missing = Desktop.missing()
    if missing:
        pytest.skip(missing)
    session = Desktop().start()
    try:
        yield session
    finally:
        session.close()


def read_events(process: subprocess.Popen, desktop: Desktop, timeout: float = 300) -> list[dict]:
    """Collect the driver's events; click the completion notification once it has been sent."""
    events: list[dict] = []
    clicked = False
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] in ("short_finished", "window_closed", "kept_running") and not clicked:
            waited = time.monotonic() + 10
            while (notification := desktop.recorded.notified("short.flac")) is None and time.monotonic() < waited:
                time.sleep(0.1)
            if notification is not None:
                desktop.click_notification(notification["id"])
                clicked = True
        if time.monotonic() > deadline:
            break
    return events


@pytest.mark.slow
def test_tray_notifies_keeps_working_when_closed_and_jobs_resume_after_reopening(
    desktop, sample_speech, tmp_path, data_dir, make_gui, qtbot
):
    short = tmp_path / "short.flac"
    long = tmp_path / "long.flac"
    shutil.copyfile(sample_speech["short"], short)
    shutil.copyfile(sample_speech["long"], long)
    env = {**os.environ, **desktop.env, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(REPO)}
    stderr_path = tmp_path / "driver.stderr"
    with open(stderr_path, "w") as stderr:
        driver = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "gui_driver.py"), str(data_dir), str(short), str(long)],
            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=str(tmp_path),
        )
        try:
            events = read_events(driver, desktop)
            driver.wait(60)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait(10)
    by_name = {event["event"]: event for event in events}
    assert driver.returncode == 0, stderr_path.read_text()[-3000:]
    assert "timeout" not in by_name and "finished_too_early" not in by_name, events

    # The tray icon registered with the StatusNotifierWatcher, with the queue in its tooltip.
    assert by_name["tray"]["available"] and by_name["tray"]["visible"]
    assert desktop.recorded.items, "no StatusNotifierItem was registered"
    assert "job" in by_name["tray"]["tooltip"] and "left" in by_name["tray"]["tooltip"]

    # Finishing the short job sent a notification naming the file and the outcome;
    # clicking it opened that job's transcript.
    notification = desktop.recorded.notified("short.flac")
    assert notification is not None and "Transcribed" in notification["summary"], desktop.recorded.notifications
    assert by_name["transcript_opened"]["name"] == "short.flac"

    # Closing the window hid it; the engine went on (the long job advanced), and the first
    # time it said so.
    closed, kept = by_name["window_closed"], by_name["kept_running"]
    assert closed["hidden"] and closed["engine_running"]
    assert kept["processed"] > closed["processed"] and not kept["window_visible"]
    assert desktop.recorded.notified("keeps working in the tray") is not None

    # Quitting from the tray stopped the worker at a segment boundary, quickly; the job
    # went back to the queue with its progress.
    # The window and tray go at once; the process then waits only for each stream's window
    # in flight (one 30-second window of decoding, a few seconds on a busy machine), not for
    # the rest of the file, which was well over a minute of audio away.
    assert by_name["quit"]["seconds"] < 30
    after = by_name["after_quit"]
    assert after["status"] == "queued" and 0 < after["processed"] < after["duration"] - 60 and not after["lock_held"]

    # Reopen the same data folder: every job is there, and the long one continues from
    # its last segment (not from zero) and completes.
    gui = make_gui()
    qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 2, timeout=10000)
    names = {job.file_name: job for job in gui.window.model.jobs()}
    assert set(names) == {"short.flac", "long.flac"} and names["short.flac"].status is JobStatus.COMPLETED
    long_id = names["long.flac"].id
    qtbot.waitUntil(lambda: gui.app.store.jobs.get_job(long_id).status is JobStatus.COMPLETED
                    and all(run.outcome for run in gui.app.store.work.runs(long_id)), timeout=180000)
    # Every part stopped by the quit continues exactly where its last segment ended.
    runs = gui.app.store.work.runs(long_id)
    stopped = [run for run in runs if run.outcome == "stopped"]
    assert stopped, runs
    assert sum(run.end_seconds - run.start_seconds for run in runs if run.started_at < by_name["quit"]["at"]) > 0
    for run in stopped:
        after_reopen = [later for later in runs if later.part == run.part and later.started_at > run.started_at]
        assert after_reopen and after_reopen[0].start_seconds == pytest.approx(run.end_seconds)
        assert after_reopen[-1].outcome in ("completed", "part-done")
    segments = gui.app.store.transcripts.segments(long_id)
    assert sorted(segment.index for segment in segments) == list(range(len(segments)))
    assert sum("welcome" in segment.text.lower() for segment in segments) >= 15  # said 20 times
