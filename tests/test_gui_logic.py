"""Window logic that needs no model: the table model, the summary, command-line routing, single instance, About."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QTableView

from transcriber import __version__
from transcriber.__main__ import window_request
from transcriber.jobs import Job, JobOptions, JobStatus, Segment

pytestmark = pytest.mark.gui


def make_job(job_id: int, status: JobStatus = JobStatus.QUEUED, **changes) -> Job:
    job = Job(
        id=job_id, user="ann", source_path=f"/media/clip{job_id}.flac", size_bytes=1_000_000, mtime=0.0,
        content_hash="x", duration_seconds=120.0, options=JobOptions(), status=status, updated_at=100.0,
    )
    return replace(job, **changes)


def test_the_table_model_passes_qt_model_checks(qtmodeltester):
    from transcriber.gui.queue_model import JobTableModel

    model = JobTableModel()
    model.apply_jobs([make_job(1, JobStatus.RUNNING, processed_seconds=30, speed=4.0, eta_seconds=22.5),
                      make_job(2, queue_position=1), make_job(3, JobStatus.FAILED, error="clip3.flac is damaged.")])
    qtmodeltester.check(model)


def test_updates_change_rows_in_place_and_keep_the_selection(qapp):
    from transcriber.gui.queue_model import COLUMN, JobTableModel

    model = JobTableModel()
    view = QTableView()
    view.setModel(model)
    model.apply_jobs([make_job(1), make_job(2), make_job(3)])
    view.selectionModel().select(model.index(1, 0), QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    resets, changed = [], []
    model.modelReset.connect(lambda: resets.append(1))
    model.dataChanged.connect(lambda first, last: changed.append((first.row(), last.row())))

    running = make_job(2, JobStatus.RUNNING, processed_seconds=60, updated_at=101.0)
    model.apply_jobs([make_job(1), running, make_job(3)])
    assert changed == [(1, 1)] and not resets
    assert model.index(1, COLUMN["progress"]).data() == "50%" and model.index(1, COLUMN["status"]).data() == "Running"
    assert model.index(1, COLUMN["audio"]).data() == "1:00 / 2:00"
    assert [index.row() for index in view.selectionModel().selectedRows()] == [1]

    model.update_job(make_job(2, JobStatus.QUEUED, updated_at=99.0))  # an older signal arriving late
    assert model.index(1, COLUMN["status"]).data() == "Running"

    model.apply_jobs([running, make_job(3), make_job(4)])  # 1 removed elsewhere, 4 added by the CLI
    assert [job.id for job in model.jobs()] == [2, 3, 4] and not resets
    assert [index.row() for index in view.selectionModel().selectedRows()] == [0]  # still job 2


def test_failed_rows_show_the_error_and_finished_rows_no_estimate(qapp):
    from transcriber.gui.queue_model import COLUMN, JobTableModel

    model = JobTableModel()
    model.apply_jobs([make_job(1, JobStatus.FAILED, error="clip1.flac is truncated.", eta_seconds=5.0),
                      make_job(2, JobStatus.QUEUED, queue_position=2, eta_seconds=75.0, estimated_completion=time.time() + 75)])
    assert model.index(0, COLUMN["note"]).data() == "clip1.flac is truncated."
    assert model.index(0, COLUMN["eta"]).data() == "" and model.index(0, COLUMN["position"]).data() == ""
    assert model.index(1, COLUMN["eta"]).data() == "1:15" and model.index(1, COLUMN["position"]).data() == "2"
    assert ":" in model.index(1, COLUMN["finish"]).data()


def test_the_summary_counts_what_is_left():
    from transcriber.gui.queue_model import summarise

    now = time.time()
    summary = summarise([
        make_job(1, JobStatus.RUNNING, processed_seconds=20, estimated_completion=now + 100),
        make_job(2, JobStatus.QUEUED, estimated_completion=now + 400),
        make_job(3, JobStatus.PAUSED, processed_seconds=60),
        make_job(4, JobStatus.COMPLETED),
        make_job(5, JobStatus.FAILED),
    ])
    assert (summary.jobs_left, summary.audio_left_seconds, summary.finish_at) == (3, 100 + 120 + 60, now + 400)
    text = summary.text()
    assert text.startswith("3 jobs left (1 running, 1 queued, 1 paused)") and "4:40 of audio left" in text
    assert "estimated finish" in text
    assert summarise([make_job(4, JobStatus.COMPLETED)]).text() == "Nothing left to do (1 completed)."
    assert "drop files" in summarise([]).text()


def test_the_segment_model_finds_the_segment_playing_at_a_time(qtmodeltester):
    from transcriber.gui.transcript_view import SegmentModel

    model = SegmentModel()
    model.merge([Segment(2, 9.0, 12.0, " third"), Segment(0, 0.0, 4.0, " first")])
    model.merge([Segment(1, 4.0, 9.0, " second"), Segment(0, 0.0, 4.0, " first")])  # live and loaded overlap
    assert [segment.index for segment in model.segments()] == [0, 1, 2]
    assert [model.row_at_time(t) for t in (0.0, 3.9, 4.0, 10.0, 99.0)] == [0, 0, 1, 2, 2]
    qtmodeltester.check(model)


@pytest.mark.parametrize("argv, expected", [
    ([], (None, False, [])),
    (["talk.mp3", "b.wav"], (None, False, ["talk.mp3", "b.wav"])),
    (["--data-dir", "/d", "-v", "talk.mp3"], ("/d", True, ["talk.mp3"])),
    (["--data-dir=/d"], ("/d", False, [])),
    (["--", "list"], (None, False, ["list"])),
    (["list", "--json"], None),
    (["--data-dir", "/d", "transcribe", "a.wav"], None),
    (["--help"], None),
    (["--version"], None),
    (["--data-dir"], None),
])
def test_plain_transcriber_and_files_open_the_window_commands_do_not(argv, expected):
    assert window_request(argv) == expected


def test_single_instance_names_differ_per_data_folder_and_only_a_stale_socket_is_taken_over(qapp, tmp_path):
    """The hand-over itself runs between two processes: test_gui_window.py::test_a_second_launch_hands_over_its_files_and_exits."""
    from pathlib import Path

    from PySide6.QtCore import QDir

    from transcriber.gui.single_instance import InstanceServer, hand_over, server_name

    first, second = server_name(tmp_path / "a"), server_name(tmp_path / "b")
    assert first != second and first == server_name(tmp_path / "a")
    assert not hand_over(first, ["x.wav"])  # nobody listens
    alive = InstanceServer(first)
    assert alive.listen()
    assert not InstanceServer(first).listen()  # a window still answers there: it keeps its name
    alive.close()
    # A socket file left behind by a window that crashed is taken over.
    socket_file = Path(QDir.tempPath()) / first
    socket_file.touch()
    again = InstanceServer(first)
    assert again.listen()
    again.close()


def test_about_shows_the_version(qapp, tmp_path):
    from transcriber.gui.dialogs import show_about

    seen = []

    def read_and_close():
        box = next(widget for widget in QApplication.topLevelWidgets() if isinstance(widget, QMessageBox) and widget.isVisible())
        seen.append(box.text() + box.informativeText())
        box.accept()

    QTimer.singleShot(100, read_and_close)
    show_about(None, tmp_path, tmp_path / "log.txt")
    assert f"transcriber {__version__}" in seen[0] and str(tmp_path) in seen[0]


def test_tray_messages_name_the_file_and_the_outcome():
    from transcriber.gui.tray import outcome_message

    title, body = outcome_message(make_job(1, JobStatus.COMPLETED))
    assert title == "Transcribed: clip1.flac" and "ready" in body
    title, body = outcome_message(make_job(2, JobStatus.FAILED, error="clip2.flac was moved or deleted after it was queued."))
    assert title == "Failed: clip2.flac" and "moved or deleted" in body


def test_the_app_icon_ships_with_the_package(qapp):
    from transcriber.gui.icons import app_icon, app_icon_path

    assert app_icon_path().is_file()
    assert not app_icon().isNull() and not app_icon().pixmap(64, 64).isNull()


def test_a_view_reusing_role_buffers_gets_each_cells_own_values(qapp):
    """Views hand multiData() the same buffers cell after cell: a role one cell lacks must not keep the previous cell's value."""
    from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan

    from transcriber.gui.queue_model import COLUMN, JobTableModel

    model = JobTableModel()
    model.apply_jobs([make_job(1, JobStatus.FAILED, error="broken"), make_job(2)])
    foreground = QModelRoleData(Qt.ItemDataRole.ForegroundRole)
    display = QModelRoleData(Qt.ItemDataRole.DisplayRole)
    model.multiData(model.index(0, COLUMN["status"]), QModelRoleDataSpan(foreground))
    model.multiData(model.index(0, COLUMN["status"]), QModelRoleDataSpan(display))
    assert foreground.data() is not None and display.data() == "Failed"
    model.multiData(model.index(1, COLUMN["status"]), QModelRoleDataSpan(foreground))
    model.multiData(model.index(1, COLUMN["name"]), QModelRoleDataSpan(display))
    assert foreground.data() is None and display.data() == "clip2.flac"


def test_a_late_listing_neither_drops_newer_jobs_nor_turns_rows_back(qapp):
    from transcriber.gui.queue_model import COLUMN, JobTableModel

    model = JobTableModel()
    model.apply_jobs([make_job(1, created_at=100.0), make_job(2, created_at=100.0)], taken_at=110.0)
    model.update_job(make_job(4, created_at=130.0))  # news of jobs added after the next listing was read
    model.update_job(make_job(3, created_at=129.0))
    model.update_job(make_job(2, JobStatus.RUNNING, created_at=100.0, updated_at=131.0))
    # That listing (read at 125, before jobs 3 and 4 existed and before job 2 started) lands now.
    model.apply_jobs([make_job(1, created_at=100.0), make_job(2, created_at=100.0, updated_at=120.0)], taken_at=125.0)
    assert [job.id for job in model.jobs()] == [1, 2, 3, 4]  # kept, and in the order they were added
    assert model.index(1, COLUMN["status"]).data() == "Running"
    model.apply_jobs([make_job(2, JobStatus.RUNNING, created_at=100.0, updated_at=131.0), make_job(3, created_at=129.0),
                      make_job(4, created_at=130.0)], taken_at=140.0)
    assert [job.id for job in model.jobs()] == [2, 3, 4]  # job 1 was removed elsewhere
