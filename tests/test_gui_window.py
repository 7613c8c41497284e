"""The window with the real engine, the real model and real SQLite (offscreen): drop, watch, control, read, edit."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox

from conftest import REPO, SAMPLE, repeat_speech, run_cli, word_error_rate
from transcriber.jobs import JobStatus

pytestmark = pytest.mark.gui


def drop(widget, paths) -> bool:
    """Drag ``paths`` onto ``widget`` and drop them, as a file manager would; returns whether the drag was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    centre = widget.rect().center()
    # QPoint: the QPointF overload is newer than PySide6 6.12 (deprecated there, still accepted).
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    dropped = QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, dropped)
    return dropped.isAccepted()


def row_texts(gui, job_id: int) -> dict[str, str]:
    from transcriber.gui.queue_model import COLUMNS

    model = gui.window.model
    row = model.row_of(job_id)
    return {key: model.index(row, column).data() for column, (key, _) in enumerate(COLUMNS)}


def store_job(gui, job_id: int):
    return gui.app.store.jobs.get_job(job_id)


def copy(source: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copyfile(source, target)
    return target


def test_dropped_files_become_jobs_with_live_progress_then_completion_and_stats(make_gui, qtbot, sample_speech, tmp_path):
    folder = tmp_path / "drop"
    medium = copy(sample_speech["medium"], folder, "meeting.flac")
    (folder / "notes.mp3").write_text("not audio at all\n" * 40)
    gui = make_gui()
    assert drop(gui.window, [folder])  # a folder: searched for media

    qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 1 and bool(gui.window.notices.messages()), timeout=20000)
    assert any("notes.mp3" in message and "not a recognised media format" in message for message in gui.window.notices.messages())
    job_id = gui.window.model.jobs()[0].id
    assert store_job(gui, job_id).source_path == str(medium)

    # Watch the table while the real model transcribes: it must show progress between 0 and 100%.
    seen: list[tuple[str, str]] = []

    def progressed() -> bool:
        texts = row_texts(gui, job_id)
        seen.append((texts["status"], texts["progress"]))
        return texts["status"] == "Completed"

    qtbot.waitUntil(progressed, timeout=120000)
    running = [progress for status, progress in seen if status == "Running"]
    assert any(progress not in ("0%", "100%") for progress in running), seen
    texts = row_texts(gui, job_id)
    assert texts["progress"] == "100%" and texts["audio"].endswith("/ 0:50") and texts["model"].startswith("tiny.en")
    assert "Nothing left to do (1 completed)" in gui.window.summary_label.text()
    assert store_job(gui, job_id).status is JobStatus.COMPLETED

    # The statistics view charts the same figures as `transcriber stats --json`.
    from transcriber.reports.stats import stats_document

    stats = gui.window.open_statistics()
    qtbot.waitUntil(lambda: stats.document is not None, timeout=10000)
    assert stats.document == stats_document(gui.app.store.stats)
    bars = stats.speed_view.chart().series()[0].barSets()[0]
    assert bars.at(0) == pytest.approx(stats.document["models"][0]["speed"]) and bars.at(0) > 1
    assert stats.models_table.item(0, 0).text() == "tiny.en"
    sizes = stats.size_view.chart().series()[0].barSets()[0]
    assert sizes.count() == len(stats.document["by_file_size"]) == 1


def test_pause_cancel_retry_and_resume_from_the_window_change_the_store(make_gui, qtbot, sample_speech, tmp_path):
    first = copy(sample_speech["long"], tmp_path, "first.flac")
    second = copy(sample_speech["long"], tmp_path, "second.flac")
    gui = make_gui()
    gui.app.store.settings.set("workers", "1")
    gui.window.add_paths([str(first), str(second)])
    qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 2, timeout=20000)
    a, b = (job.id for job in gui.window.model.jobs())
    actions = gui.window.actions_by_key

    def status(job_id):
        return store_job(gui, job_id).status

    qtbot.waitUntil(lambda: status(a) is JobStatus.RUNNING, timeout=20000)
    gui.window.select_jobs([a])
    assert actions["pause"].isEnabled() and not actions["retry"].isEnabled()
    actions["pause"].trigger()
    qtbot.waitUntil(lambda: status(a) is JobStatus.PAUSED and row_texts(gui, a)["status"] == "Paused", timeout=20000)

    # The worker is free, so the second job starts; cancel it from the context-menu action.
    qtbot.waitUntil(lambda: status(b) is JobStatus.RUNNING, timeout=20000)
    gui.window.select_jobs([b])
    actions["cancel"].trigger()
    qtbot.waitUntil(lambda: status(b) is JobStatus.CANCELLED and row_texts(gui, b)["status"] == "Cancelled", timeout=20000)
    assert actions["retry"].isEnabled() and not actions["pause"].isEnabled()

    # Actions apply to what the table shows, so wait for the rows as well as the store.
    waiting = {JobStatus.QUEUED, JobStatus.RUNNING}
    actions["retry"].trigger()
    qtbot.waitUntil(lambda: status(b) in waiting and row_texts(gui, b)["status"] in ("Queued", "Running"), timeout=20000)
    gui.window.select_jobs([a])
    actions["resume"].trigger()
    qtbot.waitUntil(lambda: status(a) in waiting and row_texts(gui, a)["status"] in ("Queued", "Running"), timeout=20000)
    gui.window.select_jobs([a, b])
    actions["cancel"].trigger()  # both, so no CPU is spent on the rest
    qtbot.waitUntil(lambda: status(a) is JobStatus.CANCELLED and status(b) is JobStatus.CANCELLED, timeout=20000)


def test_transcript_view_shows_the_speech_live_and_edits_persist(make_gui, qtbot, corpus, tmp_path):
    clip = corpus["en_jfk.flac"]
    gui = make_gui()
    gui.window.add_paths([str(clip["path"])])
    qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 1, timeout=20000)
    job_id = gui.window.model.jobs()[0].id
    view = gui.window.open_transcript(job_id)  # opened before any segment exists: it fills in live
    assert view.model.rowCount() == 0 or store_job(gui, job_id).processed_seconds > 0
    qtbot.waitUntil(lambda: store_job(gui, job_id).status is JobStatus.COMPLETED, timeout=120000)
    stored = gui.app.store.transcripts.segments(job_id)
    qtbot.waitUntil(lambda: view.model.rowCount() == len(stored), timeout=10000)
    shown = " ".join(view.model.index(row, 1).data() for row in range(view.model.rowCount()))
    assert word_error_rate(clip["reference"], shown) < 0.2, shown
    assert "country" in shown.lower()
    assert view.model.index(0, 0).data().startswith("0:00")

    # Search: matches are counted and next/previous select them.
    view.search.setText("country")
    assert view.match_label.text().endswith(f"of {len(view._match_rows)}") and view._match_rows
    view.find_next()
    assert "country" in view.model.segment_at(view.selected_row()).text.lower()
    assert view.match_label.text().startswith("1 of")
    view.search.setText("zebra crossing")
    assert view.match_label.text() == "no match"

    # Edit the first segment through its editor, as a user would (double-click, type, Enter).
    index = view.model.index(0, 1)
    view.table.setCurrentIndex(index)
    view.table.edit(index)
    editor = view.table.findChild(QLineEdit)
    assert editor is not None
    editor.setText("And so, my fellow Americans: EDITED.")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: gui.app.store.transcripts.segments(job_id)[0].text == "And so, my fellow Americans: EDITED.", timeout=10000)

    view.close()
    reopened = gui.window.open_transcript(job_id)
    assert reopened is not view
    qtbot.waitUntil(lambda: reopened.model.rowCount() == len(stored), timeout=10000)
    assert reopened.model.index(0, 1).data() == "And so, my fellow Americans: EDITED."

    reopened.copy_all()
    assert QGuiApplication.clipboard().text().startswith("And so, my fellow Americans: EDITED.\n")
    reopened.export_to(["srt", "json"], tmp_path / "out")
    qtbot.waitUntil(lambda: (tmp_path / "out" / "en_jfk.json").exists(), timeout=10000)
    assert "EDITED" in (tmp_path / "out" / "en_jfk.srt").read_text()


def test_clicking_a_timestamp_plays_from_that_segment_and_highlights_it(make_gui, qtbot, sample_speech, tmp_path):
    clip = copy(sample_speech["medium"], tmp_path, "talk.flac")
    gui = make_gui([clip])
    qtbot.waitUntil(lambda: bool(gui.window.model.jobs()) and gui.window.model.jobs()[0].status is JobStatus.COMPLETED, timeout=120000)
    view = gui.window.open_transcript(gui.window.model.jobs()[0].id)
    qtbot.waitUntil(lambda: view.model.rowCount() >= 3, timeout=10000)
    row = 2
    segment = view.model.segment_at(row)
    rect = view.table.visualRect(view.model.index(row, 0))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    player = view.player()
    assert player.source().toLocalFile() == str(clip)
    assert view.model.current_row == row
    assert view.model.index(row, 1).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert view.model.index(row - 1, 1).data(Qt.ItemDataRole.BackgroundRole) is None
    # As playback moves on, the highlight follows the segment being played.
    later = view.model.segment_at(row + 1)
    view._on_position(int((later.start + 0.2) * 1000))
    assert view.model.current_row == row + 1
    view._on_position(int(segment.start * 1000) + 100)
    assert view.model.current_row == row


def test_settings_dialog_round_trips_through_the_store_and_the_cli_sees_it(make_gui, qtbot, data_dir):
    from transcriber.config import parse_setting
    from transcriber.errors import ConfigError
    from transcriber.gui.settings_dialog import SettingsDialog

    gui = make_gui(start=False)
    dialog = SettingsDialog(gui.app.store, gui.window)
    qtbot.addWidget(dialog)
    assert dialog.value_text("model") == "auto" and dialog.value_text("close_to_tray") == "true"  # the default

    dialog.set_value_text("workers", "lots")
    dialog.set_value_text("max_file_size_mb", "0")
    assert not dialog.save()
    with pytest.raises(ConfigError) as expected:
        parse_setting("workers", "lots")
    assert dialog.error_text("workers") == str(expected.value)
    assert "must be at least 1" in dialog.error_text("max_file_size_mb")
    assert gui.app.store.settings.read().workers != "lots"

    for key, text in {"workers": "2", "max_file_size_mb": "50", "model": "base", "language": "de",
                      "export_formats": "srt,vtt", "notifications": "false", "close_to_tray": "false",
                      "max_queued_per_user": "3"}.items():
        dialog.set_value_text(key, text)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    settings = gui.app.store.settings.read()
    assert (settings.workers, settings.max_file_size_mb, settings.model, settings.language) == (2, 50, "base", "de")
    assert settings.export_formats == "srt,vtt" and not settings.notifications and not settings.close_to_tray
    assert gui.app.engine.default_options().model == "base" and gui.app.engine.read_limits().max_queued_per_user == 3
    assert run_cli("config", "get", "export_formats", data_dir=data_dir, check=True).stdout.strip() == "srt,vtt"

    run_cli("config", "set", "workers", "1", data_dir=data_dir, check=True)  # and back: the dialog reads the store
    again = SettingsDialog(gui.app.store, gui.window)
    qtbot.addWidget(again)
    assert again.value_text("workers") == "1" and again.value_text("language") == "de"


def test_window_without_the_engine_lock_moves_and_removes_jobs_and_shows_refusals(make_gui, qtbot, sample_speech, tmp_path, monkeypatch):
    from transcriber.app import EngineLock
    from transcriber.paths import resolve_paths

    clips = [copy(sample_speech["short"], tmp_path, f"clip{n}.flac") for n in range(3)]
    gui = make_gui(start=False)
    other = EngineLock(gui.app.paths.engine_lock)
    other.acquire()  # as if `transcriber run` served this folder: the window shows the queue, runs nothing
    try:
        gui.start()
        qtbot.waitUntil(lambda: gui.window.engine_note.isVisibleTo(gui.window), timeout=5000)
        assert "already processing jobs" in gui.window.engine_note.text()
        assert drop(gui.window, clips + [tmp_path / "missing.wav"])
        qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 3, timeout=20000)
        qtbot.waitUntil(lambda: any("missing.wav: file not found" in m for m in gui.window.notices.messages()), timeout=5000)
        ids = [job.id for job in gui.window.model.jobs()]
        assert [store_job(gui, i).queue_position for i in ids] == [1, 2, 3]

        gui.window.select_jobs([ids[2]])
        gui.window.actions_by_key["move_up"].trigger()
        qtbot.waitUntil(lambda: store_job(gui, ids[2]).queue_position == 2, timeout=5000)
        qtbot.waitUntil(lambda: row_texts(gui, ids[2])["position"] == "2", timeout=5000)
        assert gui.window.selected_jobs()[0].id == ids[2]  # the selection survives the refresh
        gui.window.actions_by_key["move_down"].trigger()
        qtbot.waitUntil(lambda: store_job(gui, ids[2]).queue_position == 3, timeout=5000)

        gui.window.select_jobs([ids[0]])
        gui.window.actions_by_key["remove"].trigger()  # nothing transcribed yet: no question asked
        qtbot.waitUntil(lambda: store_job(gui, ids[0]) is None and gui.window.model.row_of(ids[0]) is None, timeout=5000)
        assert [job.status for job in gui.app.store.jobs.list_jobs()] == [JobStatus.QUEUED] * 2
    finally:
        other.release()
    # Once the other process lets go, the window takes over and runs the queue.
    qtbot.waitUntil(lambda: gui.engine_running, timeout=10000)
    assert not gui.window.engine_note.isVisibleTo(gui.window)
    qtbot.waitUntil(lambda: all(job.status is JobStatus.COMPLETED for job in gui.app.store.jobs.list_jobs()), timeout=120000)


def test_a_second_launch_hands_over_its_files_and_exits(make_gui, qtbot, sample_speech, tmp_path, data_dir):
    clip = copy(sample_speech["short"], tmp_path, "handed.flac")
    gui = make_gui()
    qtbot.waitUntil(lambda: gui.engine_running, timeout=5000)
    gui.window.hide()
    second = subprocess.Popen(
        [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "handed.flac"],
        cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"},
    )
    try:
        qtbot.waitUntil(lambda: second.poll() is not None, timeout=60000)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, second.stderr.read()
    qtbot.waitUntil(lambda: [job.file_name for job in gui.window.model.jobs()] == ["handed.flac"], timeout=20000)
    assert gui.window.isVisible()  # brought back to the front
    assert store_job(gui, gui.window.model.jobs()[0].id).source_path == str(clip)
    # The window holds the engine lock: a headless engine for the same folder is refused.
    result = run_cli("run", "--until-idle", data_dir=data_dir)
    assert result.returncode == 1 and "already processing jobs" in result.stderr


def test_closing_without_a_tray_asks_before_quitting_with_work_pending(make_gui, qtbot, sample_speech, tmp_path, monkeypatch):
    clip = copy(sample_speech["long"], tmp_path, "pending.flac")
    gui = make_gui([clip])
    assert not gui.tray.visible  # offscreen: no tray
    qtbot.waitUntil(lambda: gui.window.summary.running == 1, timeout=30000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args[2]) or QMessageBox.StandardButton.No)
    gui.window.close()
    assert asked and "not finished" in asked[0] and gui.window.isVisible() and gui.engine_running
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    quits = []
    gui.window.quit_requested.connect(lambda: quits.append(True))
    monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: quits.append("app")))
    started = time.monotonic()
    gui.window.close()
    assert sorted(map(str, quits)) == ["True", "app"]
    assert time.monotonic() - started < 10  # stopped at a segment boundary, not at the end of the file
    job = gui.app.store.jobs.list_jobs()[0]
    assert job.status is JobStatus.QUEUED and job.processed_seconds < job.duration_seconds


@pytest.mark.qt_no_exception_capture
def test_an_unexpected_error_opens_a_report_dialog_and_the_engine_keeps_working(make_gui, qtbot, sample_speech, tmp_path, caplog):
    from PySide6.QtCore import QTimer

    clip = copy(sample_speech["short"], tmp_path, "survivor.flac")
    gui = make_gui([clip])
    gui.exceptions.install()
    try:
        def broken_slot():
            raise RuntimeError("a bug in a slot")

        QTimer.singleShot(0, broken_slot)
        qtbot.waitUntil(lambda: gui.exceptions.dialog is not None and gui.exceptions.dialog.isVisible(), timeout=5000)
        report = gui.exceptions.dialog.report.toPlainText()
        assert "RuntimeError: a bug in a slot" in report and "broken_slot" in report
        gui.exceptions.dialog.copy_report()
        assert "a bug in a slot" in QGuiApplication.clipboard().text()
        assert str(gui.app.paths.log_file) in gui.exceptions.dialog.findChild(type(gui.window.summary_label)).text()
        qtbot.waitUntil(lambda: bool(gui.app.store.jobs.list_jobs()) and gui.app.store.jobs.list_jobs()[0].status is JobStatus.COMPLETED,
                        timeout=120000)
        logged = [record for record in caplog.records if record.name == "transcriber.gui.error_dialog"]
        assert logged and logged[0].exc_info[1].args == ("a bug in a slot",)
    finally:
        gui.exceptions.uninstall()


def test_gui_thread_stays_responsive_while_two_jobs_transcribe(make_gui, qtbot, sample_speech, tmp_path):
    """A 10 ms timer in the GUI thread: the largest gap between its ticks is the worst stall a user would feel.

    The probe runs from launch. The figure asserted is the one while both jobs decode; the
    one-time loading of the model (faster-whisper parses its tokenizer holding the GIL) is
    measured and printed separately.
    """
    from PySide6.QtCore import QTimer

    # Under two minutes each, so each job is one part and two run side by side; six of
    # them keep two jobs transcribing for the whole measurement (a job takes about 6 s).
    two_minutes = repeat_speech(SAMPLE, tmp_path / "two-minutes.flac", 11)  # 111 s
    clips = [copy(two_minutes, tmp_path, f"speech{n}.flac") for n in range(6)]
    gaps: list[tuple[float, float]] = []  # (gap, time of the tick)
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append((now - last[0], now))
        last[0] = now

    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.timeout.connect(tick)
    probe.start(10)
    gui = make_gui(start=False)
    gui.app.store.settings.set("workers", "2")
    gui.start(clips)
    qtbot.waitUntil(lambda: gui.window.summary.running == 2, timeout=60000)
    view = gui.window.open_transcript(gui.window.model.jobs()[0].id)  # a live transcript view too

    def both_decoding() -> bool:
        jobs = [job for job in gui.window.model.jobs() if job.status is JobStatus.RUNNING]
        return len(jobs) == 2 and all(job.processed_seconds > 0 for job in jobs)

    qtbot.waitUntil(both_decoding, timeout=60000)
    decoding_from = time.perf_counter()
    running_samples = []

    def measured() -> bool:
        running_samples.append(gui.window.summary.running == 2)
        # The next job starts as soon as one ends: only an empty queue ends the measurement early.
        summary = gui.window.summary
        return time.perf_counter() - decoding_from > 10 or (summary.running < 2 and summary.queued == 0)

    qtbot.waitUntil(measured, timeout=60000)
    probe.stop()
    loading = max(gap for gap, at in gaps[1:] if at <= decoding_from) * 1000
    decoding = [gap for gap, at in gaps if at > decoding_from]
    largest = max(decoding) * 1000
    progress = [job.processed_seconds for job in gui.app.store.jobs.list_jobs()]
    print(f"\nGUI thread: largest stall {largest:.1f} ms over {len(decoding)} ticks ({sum(decoding):.1f} s) while two "
          f"jobs transcribed (at {progress} s of audio); {loading:.1f} ms during launch and model loading")
    assert sum(running_samples) > 0.9 * len(running_samples) and sum(decoding) > 8
    assert sum(seconds > 30 for seconds in progress) >= 2  # two jobs really transcribed meanwhile
    assert largest < 100
    assert view.model.rowCount() > 0


def test_adding_a_folder_of_hundreds_of_files_never_blocks_the_window(make_gui, qtbot, sample_speech, tmp_path):
    """Intake (probing, hashing, SQL) runs on a worker; the window keeps painting rows as they arrive.

    That worker runs Python the whole time, and every repaint calls into Python too, so
    the two take turns on the GIL: stalls are short but longer than while transcribing
    (where the decoder releases the GIL). Measured here 90 to 210 ms on a busy 2-core
    machine; the bound says "never blocks" (before the batch estimates in Engine.add,
    adding 200 files took 23 s and stalled 350 ms).
    """
    from PySide6.QtCore import QTimer

    from transcriber.app import EngineLock

    folder = tmp_path / "archive"
    for number in range(200):
        copy(sample_speech["short"], folder / f"day{number % 10}", f"memo{number:03d}.flac")
    gui = make_gui(start=False, refresh_ms=1000)  # the window's own refresh rate
    gui.app.store.settings.set("max_queued_per_user", "150")  # so some wait for room too
    other = EngineLock(gui.app.paths.engine_lock)
    other.acquire()  # keep the engine from transcribing them: this test is about adding
    try:
        gui.start()
        gaps, last = [], [time.perf_counter()]

        def tick():
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        probe = QTimer()
        probe.setTimerType(Qt.TimerType.PreciseTimer)
        probe.timeout.connect(tick)
        probe.start(10)
        started = time.perf_counter()
        assert drop(gui.window, [folder])
        assert time.perf_counter() - started < 0.1  # the drop returns at once
        assert gui.window.activity_label.text() == "Adding files…"
        qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 150 and gui.app.store.backlog.count_waiting() == 50,
                        timeout=120000)
        qtbot.waitUntil(lambda: gui.window.activity_label.text() == "", timeout=10000)
        probe.stop()
        largest = max(gaps[1:]) * 1000
        print(f"\nadding 200 files: largest GUI stall {largest:.1f} ms over {sum(gaps):.1f} s")
        assert largest < 250 and sum(gaps) < 30
        # The 50 past the queue limit (max_queued_per_user = 150) wait for room instead of being refused.
        assert gui.window.notices.messages() == []
        qtbot.waitUntil(lambda: "150 jobs left (150 queued)" in gui.window.summary_label.text()
                        and "waiting for room: 50" in gui.window.summary_label.text(), timeout=5000)
    finally:
        other.release()


def test_file_dialogs_shortcuts_and_the_tray_menu_act_on_the_queue(make_gui, qtbot, sample_speech, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from transcriber.app import EngineLock

    clips = [copy(sample_speech["short"], tmp_path / "picked", f"take{n}.flac") for n in range(2)]
    folder_clip = copy(sample_speech["short"], tmp_path / "folder" / "deep", "inside.flac")
    gui = make_gui(start=False)
    other = EngineLock(gui.app.paths.engine_lock)
    other.acquire()  # nothing runs: this is about the controls
    try:
        gui.start()
        monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args, **kwargs: ([str(c) for c in clips], ""))
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(tmp_path / "folder"))
        gui.window.actions_by_key["add_files"].trigger()
        gui.window.actions_by_key["add_folder"].trigger()
        qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 3 and gui.window.activity_label.text() == "", timeout=20000)
        assert sorted(job.file_name for job in gui.window.model.jobs()) == ["inside.flac", "take0.flac", "take1.flac"]
        assert any(job.source_path == str(folder_clip) for job in gui.window.model.jobs())

        # Keyboard: Ctrl+Down moves the selected job down, Ctrl+P pauses it.
        first = gui.window.model.jobs()[0].id
        gui.window.activateWindow()
        gui.window.table.setFocus()
        gui.window.select_jobs([first])
        qtbot.keyClick(gui.window.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: store_job(gui, first).queue_position == 2, timeout=5000)
        qtbot.keyClick(gui.window.table, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: store_job(gui, first).status is JobStatus.PAUSED, timeout=5000)

        # The tray menu's Pause all / Resume all act on the whole queue.
        gui.tray.pause_action.trigger()
        qtbot.waitUntil(lambda: all(job.status is JobStatus.PAUSED for job in gui.app.store.jobs.list_jobs()), timeout=5000)
        qtbot.waitUntil(lambda: gui.window.summary.paused == 3, timeout=5000)
        assert "3 paused" in gui.tray.tooltip() and gui.tray.resume_action.isEnabled()
        gui.tray.resume_action.trigger()
        qtbot.waitUntil(lambda: all(job.status is JobStatus.QUEUED for job in gui.app.store.jobs.list_jobs()), timeout=5000)

        # The context menu offers the job actions.
        menus = []
        monkeypatch.setattr("PySide6.QtWidgets.QMenu.popup", lambda menu, *args: menus.append(menu))
        gui.window._context_menu(gui.window.table.rect().center())
        texts = [action.text() for action in menus[0].actions() if action.text()]
        assert {"Pause", "Resume", "Cancel", "Retry", "Move up", "Move down", "Remove", "Open transcript",
                "Show in folder", "Export…"} <= set(texts)
    finally:
        other.release()
