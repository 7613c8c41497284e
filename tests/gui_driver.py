"""Runs the real window in its own process (for the xcb platform under Xvfb) and acts out a scenario.

Usage: python tests/gui_driver.py DATA_DIR SHORT_FILE LONG_FILE

Events are printed to stdout as JSON lines for the test to check. The scenario:
  1. launch the window with both files (one worker: the short one first);
  2. report the tray and, when the short job completes, that it completed;
  3. report any transcript window that opens (the test clicks the notification);
  4. once the long job has committed progress, close the main window (it goes to the
     tray), report that it is hidden and that the job keeps advancing;
  5. quit from the tray menu and report the long job's state after the workers stopped.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from transcriber.gui.app import launch  # noqa: E402
from transcriber.jobs import JobStatus  # noqa: E402


def emit(event: str, **data) -> None:
    print(json.dumps({"event": event, "time": time.monotonic(), **data}), flush=True)


def main() -> int:
    data_dir, short_file, long_file = sys.argv[1:4]
    gui = launch([short_file, long_file], data_dir, poll_ms=300, refresh_ms=300, stop_timeout_ms=60000)
    assert gui is not None
    app = QApplication.instance()
    store = gui.app.store
    state = {"step": "start", "closed_at": None, "opened": set(), "deadline": time.monotonic() + 400}

    def job_named(name: str):
        return next((job for job in store.jobs.list_jobs() if Path(job.source_path).name == name), None)

    def step() -> None:
        if time.monotonic() > state["deadline"]:
            emit("timeout", step=state["step"])
            gui.quit()
            return
        for job_id in gui.window.transcript_windows():
            if job_id not in state["opened"]:
                state["opened"].add(job_id)
                emit("transcript_opened", job=job_id, name=store.jobs.get_job(job_id).file_name)
        short, long = job_named(Path(short_file).name), job_named(Path(long_file).name)
        # Once both files are queued (intake runs in the background, slower on a busy machine).
        if state["step"] == "start" and short is not None and long is not None and gui.window.summary.jobs_left:
            emit("tray", available=gui.tray.available(), visible=gui.tray.visible, tooltip=gui.tray.tooltip())
            state["step"] = "wait_short"
        if state["step"] == "wait_short" and short is not None and short.status.is_final:
            emit("short_finished", status=short.status.value, tooltip=gui.tray.tooltip())
            state["step"] = "wait_long"
        if state["step"] == "wait_long" and long is not None and long.status is JobStatus.RUNNING and long.processed_seconds > 0:
            gui.window.close()
            state["closed_at"] = long.processed_seconds
            emit("window_closed", hidden=not gui.window.isVisible(), processed=long.processed_seconds,
                 engine_running=gui.engine_running, app_alive=True)
            state["step"] = "in_tray"
        if state["step"] == "in_tray" and long is not None:
            if long.status is JobStatus.RUNNING and long.processed_seconds > state["closed_at"]:
                emit("kept_running", processed=long.processed_seconds, window_visible=gui.window.isVisible())
                state["step"] = "quitting"
                QTimer.singleShot(1500, quit_from_tray)  # give the test time to click the notification
            elif long.status.is_final:
                emit("finished_too_early", status=long.status.value)
                gui.quit()

    def quit_from_tray() -> None:
        started = time.monotonic()
        gui.tray.quit_action.trigger()
        emit("quit", seconds=time.monotonic() - started, at=time.time())

    timer = QTimer()
    timer.timeout.connect(step)
    timer.start(100)
    code = app.exec()
    long = job_named(Path(long_file).name)
    emit("after_quit", status=long.status.value, processed=long.processed_seconds, duration=long.duration_seconds,
         lock_held=gui.app.lock.held)
    return code


if __name__ == "__main__":
    sys.exit(main())
