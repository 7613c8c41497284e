"""The window tells the truth (offscreen, the real engine and model): time order, batches, notices, playback, statistics."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtGui import QGuiApplication

from conftest import word_error_rate
from transcriber.export import render
from transcriber.jobs import JobStatus, Transcript

pytestmark = pytest.mark.gui


def rows_of(view) -> list:
    return [view.model.segment_at(row) for row in range(view.model.rowCount())]


def test_a_long_file_in_parallel_parts_reads_in_time_order_live_after_and_after_a_restart(make_gui, qtbot, long_speech):
    path, reference = long_speech
    gui = make_gui(start=False)
    gui.app.store.settings.set("workers", "2")
    gui.start([str(path)])
    qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 1, timeout=20000)
    job_id = gui.window.model.jobs()[0].id
    view = gui.window.open_transcript(job_id)
    seen_live = []

    def still_running() -> bool:
        shown = rows_of(view)
        seen_live.append([segment.start for segment in shown])
        return gui.app.store.jobs.get_job(job_id).status is JobStatus.COMPLETED

    qtbot.waitUntil(still_running, timeout=300000)
    stored = gui.app.store.transcripts.segments(job_id)
    qtbot.waitUntil(lambda: view.model.rowCount() == len(stored), timeout=10000)
    assert all(starts == sorted(starts) for starts in seen_live)  # in time order at every moment, live
    shown = rows_of(view)
    assert [segment.start for segment in shown] == sorted(segment.start for segment in stored)
    indexes = [segment.index for segment in shown]
    assert indexes != sorted(indexes), "the parts did not interleave: the test did not exercise the case"
    view.copy_all()
    copied = QGuiApplication.clipboard().text()
    expected = render("txt", Transcript(job=gui.app.store.jobs.get_job(job_id), segments=tuple(stored)))
    assert copied == expected and word_error_rate(reference, copied) < 0.15

    gui.shutdown()
    again = make_gui()
    reopened = again.window.open_transcript(job_id)
    qtbot.waitUntil(lambda: reopened.model.rowCount() == len(stored), timeout=10000)
    assert [segment.index for segment in rows_of(reopened)] == indexes


def test_a_folder_of_twelve_waits_for_room_survives_quitting_and_is_done_in_order(make_gui, qtbot, sample_speech, tmp_path):
    folder = tmp_path / "interviews"
    folder.mkdir()
    for number in range(12):
        shutil.copyfile(sample_speech["short"], folder / f"talk{number:02d}.flac")
    gui = make_gui(start=False)
    other = gui.app.lock.__class__(gui.app.paths.engine_lock)
    other.acquire()  # nothing runs yet: the queue stays full
    try:
        gui.start([str(folder)])
        qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 10 and gui.app.store.backlog.count_waiting() == 2,
                        timeout=60000)
        qtbot.waitUntil(lambda: "waiting for room: 2" in gui.window.summary_label.text(), timeout=5000)
        assert gui.window.notices.messages() == []  # none refused
        gui.shutdown()
    finally:
        other.release()
    reopened = make_gui()  # quitting kept them; now the engine runs and queues them as room frees
    qtbot.waitUntil(lambda: len(reopened.window.model.jobs()) == 12
                    and all(job.status is JobStatus.COMPLETED for job in reopened.window.model.jobs()), timeout=300000)
    jobs = sorted(reopened.window.model.jobs(), key=lambda job: job.id)
    assert [job.file_name for job in jobs] == [f"talk{number:02d}.flac" for number in range(12)]  # in order
    qtbot.waitUntil(lambda: "waiting for room" not in reopened.window.summary_label.text(), timeout=5000)


def test_a_notice_about_a_file_goes_once_the_file_is_accepted(make_gui, qtbot, sample_speech, tmp_path):
    later = tmp_path / "later.flac"
    gui = make_gui()
    gui.window.add_paths([str(later)])  # not there yet
    qtbot.waitUntil(lambda: any("later.flac" in message for message in gui.window.notices.messages()), timeout=10000)
    shutil.copyfile(sample_speech["short"], later)
    gui.window.add_paths([str(later)])
    qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 1 and gui.window.activity_label.text() == "", timeout=10000)
    assert not any("later.flac" in message for message in gui.window.notices.messages())


def test_a_job_that_starts_below_the_fold_is_scrolled_into_view(make_gui, qtbot, sample_speech, tmp_path):
    from transcriber.app import EngineLock

    files = []
    for number in range(40):
        files.append(tmp_path / f"memo{number:02d}.flac")
        shutil.copyfile(sample_speech["short"], files[-1])
    gui = make_gui(start=False)
    gui.app.store.settings.set("max_queued_per_user", "100")
    other = EngineLock(gui.app.paths.engine_lock)
    other.acquire()
    try:
        gui.start(files)
        gui.window.resize(900, 300)  # room for a few rows only
        qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 40, timeout=60000)
        for job_id in [job.id for job in gui.window.model.jobs()][:39]:
            gui.app.engine.pause(job_id)  # only the last one may start
        gui.window.table.scrollToTop()
        last = gui.window.model.jobs()[-1]
        row = gui.window.model.row_of(last.id)
        assert gui.window.table.rowAt(gui.window.table.viewport().height() - 1) < row  # below the fold
    finally:
        other.release()
    qtbot.waitUntil(lambda: gui.app.store.jobs.get_job(last.id).status is not JobStatus.QUEUED, timeout=30000)
    qtbot.waitUntil(lambda: gui.window.table.rowAt(gui.window.table.visualRect(gui.window.model.index(row, 0)).center().y())
                    == row, timeout=10000)


def test_play_without_an_audio_output_says_so(make_gui, qtbot, sample_speech, tmp_path):
    from PySide6.QtMultimedia import QMediaDevices

    if QMediaDevices.audioOutputs():
        pytest.skip("this machine has an audio output")
    gui = make_gui([shutil.copyfile(sample_speech["short"], tmp_path / "talk.flac")])
    qtbot.waitUntil(lambda: bool(gui.window.model.jobs()) and gui.window.model.jobs()[0].status is JobStatus.COMPLETED,
                    timeout=120000)
    view = gui.window.open_transcript(gui.window.model.jobs()[0].id)
    qtbot.waitUntil(lambda: view.model.rowCount() >= 1, timeout=10000)
    view.toggle_play()
    assert "no audio output" in view.status.text() and view.play_button.text() == "Play"


def test_statistics_axes_have_distinct_round_ticks_and_headers_are_not_clipped(make_gui, qtbot, sample_speech, tmp_path):
    gui = make_gui([shutil.copyfile(sample_speech["short"], tmp_path / "talk.flac")])
    qtbot.waitUntil(lambda: bool(gui.window.model.jobs()) and gui.window.model.jobs()[0].status is JobStatus.COMPLETED,
                    timeout=120000)
    stats = gui.window.open_statistics()
    qtbot.waitUntil(lambda: stats.document is not None, timeout=10000)
    for view in (stats.speed_view, stats.size_view, stats.daily_view):
        axis = view.chart().axes()[1]
        ticks = [axis.min() + (axis.max() - axis.min()) * n / (axis.tickCount() - 1) for n in range(axis.tickCount())]
        labels = [axis.labelFormat().replace("%", "{:").replace("f", "f}").format(tick) for tick in ticks]
        assert len(set(labels)) == len(labels), labels  # no two ticks read the same
    for table in (stats.models_table, stats.daily_table):
        header = table.horizontalHeader()
        metrics = header.fontMetrics()
        for column in range(table.columnCount()):
            text = table.horizontalHeaderItem(column).text()
            assert header.sectionSize(column) >= metrics.horizontalAdvance(text), text
