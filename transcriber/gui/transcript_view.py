"""A job's transcript: live segments with timestamps, search, playback from a segment, editing, copy and export."""

from __future__ import annotations

import bisect
import logging
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QCloseEvent, QColor, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..app import App
from ..audio.decode import format_clock
from .engine_signals import EngineSignals
from ..errors import TranscriberError
from ..export import render
from ..jobs import Job, JobStatus, Segment, Transcript, time_order
from .dialogs import ExportDialog
from .icons import app_icon, themed
from .queue_model import status_text
from .tasks import TaskRunner

log = logging.getLogger(__name__)

_CURRENT = QColor("#cfe3ff")
_MATCH = QColor("#fff3b0")
# One colour per speaker (by label), dark enough to read on white and on the highlight colours.
SPEAKER_COLOURS = tuple(QColor(code) for code in ("#1f5fa8", "#a8321f", "#2a7a2a", "#7a2a8a", "#8a5a00", "#006b6b", "#5a5a5a"))


class SegmentModel(QAbstractTableModel):
    """Segments by index: a time column and an editable text column."""

    TIME, TEXT = 0, 1
    text_edited = Signal(int, str)  # segment index, new text

    def __init__(self, parent=None):
        super().__init__(parent)
        self._segments: list[Segment] = []
        self._starts: list[float] = []
        self.current_row: int | None = None
        self.matches: set[int] = set()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(self._segments)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else 2

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return ("Time", "Text")[section]
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() == self.TEXT:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        segment = self._segments[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if index.column() == self.TIME:
                return f"{format_clock(segment.start)}\u00a0–\u00a0{format_clock(segment.end)}"  # never wrapped
            if role == Qt.ItemDataRole.DisplayRole and segment.speaker:
                return f"{segment.speaker}: {segment.text.strip()}"
            return segment.text.strip()
        if role == Qt.ItemDataRole.ForegroundRole and segment.speaker_label is not None:
            return SPEAKER_COLOURS[segment.speaker_label % len(SPEAKER_COLOURS)]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == self.TIME:
            return "Click to play from here"
        if role == Qt.ItemDataRole.BackgroundRole:
            if index.row() == self.current_row:
                return _CURRENT
            if index.row() in self.matches:
                return _MATCH
        return None

    def setData(self, index: QModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if role != Qt.ItemDataRole.EditRole or index.column() != self.TEXT:
            return False
        text = str(value).strip()
        segment = self._segments[index.row()]
        if text == segment.text.strip():
            return False
        self.replace_text(index.row(), text)
        self.text_edited.emit(segment.index, text)
        return True

    # ------------------------------------------------------------------

    def segments(self) -> list[Segment]:
        return list(self._segments)

    def segment_at(self, row: int) -> Segment:
        return self._segments[row]

    def replace_text(self, row: int, text: str) -> None:
        from dataclasses import replace

        self._segments[row] = replace(self._segments[row], text=text)
        self.dataChanged.emit(self.index(row, self.TEXT), self.index(row, self.TEXT))

    def merge(self, segments: Sequence[Segment]) -> None:
        """Add segments not shown yet, each at its place in time.

        The parts of a long job commit in parallel, and live segments may arrive before or
        after the initial load: rows are always kept in ``time_order``.
        """
        known = {segment.index for segment in self._segments}
        new = sorted((s for s in segments if s.index not in known), key=time_order)
        if not new:
            return
        keys = [time_order(segment) for segment in self._segments]
        if not self._segments or time_order(new[0]) >= keys[-1]:
            first = len(self._segments)  # the usual case: later than everything shown
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._segments += new
            self.endInsertRows()
        else:
            for segment in new:
                row = bisect.bisect_right(keys, time_order(segment))
                self.beginInsertRows(QModelIndex(), row, row)
                self._segments.insert(row, segment)
                keys.insert(row, time_order(segment))
                if self.current_row is not None and row <= self.current_row:
                    self.current_row += 1  # the playing segment moved down a row
                self.endInsertRows()
        self._starts = [segment.start for segment in self._segments]

    def row_of(self, index: int) -> int | None:
        """The row showing the segment with ``index`` (None while it is not loaded)."""
        return next((row for row, segment in enumerate(self._segments) if segment.index == index), None)

    def row_at_time(self, seconds: float) -> int | None:
        """The row of the segment playing at ``seconds`` (the last one starting at or before it)."""
        row = bisect.bisect_right(self._starts, seconds + 1e-6) - 1
        return row if row >= 0 else None

    def set_current(self, row: int | None) -> None:
        previous, self.current_row = self.current_row, row
        for changed in {previous, row} - {None}:
            self.dataChanged.emit(self.index(changed, 0), self.index(changed, 1))

    def set_matches(self, rows: set[int]) -> None:
        changed = self.matches ^ rows
        self.matches = rows
        for row in changed:
            self.dataChanged.emit(self.index(row, 0), self.index(row, 1))


class TranscriptWindow(QWidget):
    """The transcript of one job, kept live while the job runs."""

    closed = Signal()

    def __init__(self, job: Job, app: App, tasks: TaskRunner, signals: EngineSignals, parent=None):
        super().__init__(parent, Qt.WindowType.Window)
        self.job = job
        self.app = app
        self.tasks = tasks
        self._player = None
        self._audio = None
        self._match_rows: list[int] = []
        self._match_at = -1
        self._wanted: tuple[int, bool] | None = None  # (segment index, play) to show once it is loaded
        self.setWindowIcon(app_icon())
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(820, 600)

        self.title = QLabel()
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the transcript")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_search_changed)
        self.search.returnPressed.connect(self.find_next)
        self.previous_button = QToolButton()
        self.previous_button.setIcon(themed("go-previous"))
        self.previous_button.setToolTip("Previous match (Shift+F3)")
        self.previous_button.clicked.connect(self.find_previous)
        self.next_button = QToolButton()
        self.next_button.setIcon(themed("go-next"))
        self.next_button.setToolTip("Next match (F3, Enter)")
        self.next_button.clicked.connect(self.find_next)
        self.match_label = QLabel()
        self.play_button = QPushButton(themed("media-playback-start"), "Play")
        self.play_button.setToolTip("Play from the selected segment (Ctrl+Space)")
        self.play_button.clicked.connect(self.toggle_play)
        copy_button = QPushButton(themed("edit-copy"), "Copy all")
        copy_button.clicked.connect(self.copy_all)
        export_button = QPushButton(themed("document-save-as"), "Export…")
        export_button.clicked.connect(self.export)

        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.previous_button)
        bar.addWidget(self.next_button)
        bar.addWidget(self.match_label)
        bar.addSpacing(12)
        bar.addWidget(self.play_button)
        bar.addWidget(copy_button)
        bar.addWidget(export_button)

        self.model = SegmentModel(self)
        self.model.text_edited.connect(self._save_text)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setWordWrap(True)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.table.horizontalHeader().setSectionResizeMode(SegmentModel.TIME, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.clicked.connect(self._on_clicked)
        self.status = QLabel()
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

        QShortcut(QKeySequence.StandardKey.Find, self, self.search.setFocus)
        QShortcut(QKeySequence.StandardKey.FindNext, self, self.find_next)
        QShortcut(QKeySequence.StandardKey.FindPrevious, self, self.find_previous)
        QShortcut(QKeySequence("Ctrl+Space"), self, self.toggle_play)

        signals.segments_added.connect(self._on_segments_added)
        signals.job_changed.connect(self._on_job_changed)
        self._show_job(job)
        self.reload()

    # ------------------------------------------------------------ loading

    def reload(self) -> None:
        store, job_id = self.app.store, self.job.id
        self.tasks.run(lambda: store.transcripts.segments(job_id), self._on_loaded, self._on_error)

    def _on_loaded(self, segments: list[Segment]) -> None:
        self.model.merge(segments)
        self._show_wanted()

    @Slot(object, object)
    def _on_segments_added(self, job: Job, segments: list[Segment]) -> None:
        if job.id == self.job.id:
            self.model.merge(segments)
            self._show_wanted()
            self._show_job(job)
            if self.search.text():
                self._on_search_changed(self.search.text())

    @Slot(object)
    def _on_job_changed(self, job: Job) -> None:
        if job.id == self.job.id:
            self._show_job(job)

    def _show_job(self, job: Job) -> None:
        self.job = job
        self.setWindowTitle(f"{job.file_name} — transcript")
        state = status_text(job.status)
        if job.status is JobStatus.RUNNING:
            state += f", {job.progress * 100:.0f}%"
        self.title.setText(f"<b>{job.file_name}</b> &nbsp; {state} &nbsp; {format_clock(job.duration_seconds)}"
                           + (f" &nbsp; language: {job.language}" if job.language else ""))
        if job.error:
            self.status.setText(job.error)

    def text(self) -> str:
        """The transcript as plain text, as the txt export writes it."""
        return render("txt", Transcript(job=self.job, segments=tuple(self.model.segments())))

    # -------------------------------------------------------------- search

    @Slot(str)
    def _on_search_changed(self, text: str) -> None:
        needle = text.strip().lower()
        rows = [row for row, segment in enumerate(self.model.segments()) if needle and needle in segment.text.lower()]
        self._match_rows = rows
        self._match_at = min(self._match_at, len(rows) - 1)
        self.model.set_matches(set(rows))
        self._show_match_count()

    def _show_match_count(self) -> None:
        if not self.search.text().strip():
            self.match_label.setText("")
        elif not self._match_rows:
            self.match_label.setText("no match")
        else:
            shown = self._match_at + 1 if self._match_at >= 0 else 0
            self.match_label.setText(f"{shown} of {len(self._match_rows)}")

    @Slot()
    def find_next(self) -> None:
        self._step_match(1)

    @Slot()
    def find_previous(self) -> None:
        self._step_match(-1)

    def _step_match(self, step: int) -> None:
        if not self._match_rows:
            self._show_match_count()
            return
        if self._match_at < 0:
            self._match_at = 0 if step > 0 else len(self._match_rows) - 1
        else:
            self._match_at = (self._match_at + step) % len(self._match_rows)
        row = self._match_rows[self._match_at]
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        self._show_match_count()

    def show_segment(self, index: int, *, play: bool = True) -> None:
        """Scroll to the segment with ``index``, select and highlight it, and play the recording from its start.

        A segment not loaded yet (the window just opened) is shown as soon as it is.
        """
        self._wanted = (index, play)
        self._show_wanted()

    def _show_wanted(self) -> None:
        if self._wanted is None:
            return
        index, play = self._wanted
        row = self.model.row_of(index)
        if row is None:
            return
        self._wanted = None
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter)
        if play:
            self.play_from(row)
        self.model.set_current(row)

    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    # ------------------------------------------------------------ playback

    @Slot(QModelIndex)
    def _on_clicked(self, index: QModelIndex) -> None:
        if index.column() == SegmentModel.TIME:
            self.play_from(index.row())

    def player(self):
        """The media player, made on first use (QtMultimedia starts its audio backend then)."""
        if self._player is None:
            from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

            self._audio = QAudioOutput(self)
            self._player = QMediaPlayer(self)
            self._player.setAudioOutput(self._audio)
            self._player.setSource(QUrl.fromLocalFile(self.job.source_path))
            self._player.positionChanged.connect(self._on_position)
            self._player.playbackStateChanged.connect(self._on_playback_state)
            self._player.errorOccurred.connect(lambda _error, text: self.status.setText(f"Cannot play the audio: {text}"))
        return self._player

    def play_from(self, row: int) -> None:
        """Play the source from the start of segment ``row`` and highlight segments as they play."""
        if not Path(self.job.source_path).exists():
            self.status.setText(f"Cannot play: {self.job.source_path} no longer exists.")
            return
        from PySide6.QtMultimedia import QMediaDevices

        segment = self.model.segment_at(row)
        if not QMediaDevices.audioOutputs():
            self.highlight_at(segment.start)  # the segment is still marked; nothing pretends to play
            self.status.setText("Cannot play: this computer has no audio output (no sound card or sound server).")
            return
        player = self.player()
        player.setPosition(int(segment.start * 1000))
        player.play()
        self.highlight_at(segment.start)

    @Slot()
    def toggle_play(self) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        if self._player is not None and self._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self._player.pause()
            return
        row = self.selected_row()
        if row is None:
            row = self.model.current_row or 0
        if self.model.rowCount():
            self.play_from(row)

    @Slot("qlonglong")
    def _on_position(self, milliseconds: int) -> None:
        self.highlight_at(milliseconds / 1000.0)

    def highlight_at(self, seconds: float) -> None:
        """Mark the segment playing at ``seconds`` and keep it in view."""
        row = self.model.row_at_time(seconds)
        if row != self.model.current_row:
            self.model.set_current(row)
            if row is not None:
                self.table.scrollTo(self.model.index(row, 0))

    def _on_playback_state(self, state) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        playing = state == QMediaPlayer.PlaybackState.PlayingState
        self.play_button.setText("Pause" if playing else "Play")
        self.play_button.setIcon(themed("media-playback-pause" if playing else "media-playback-start"))

    # ------------------------------------------------------- edit, copy, export

    @Slot(int, str)
    def _save_text(self, index: int, text: str) -> None:
        store, job_id = self.app.store, self.job.id
        self.tasks.run(
            lambda: store.transcripts.update_segment_text(job_id, index, text),
            lambda _: self.status.setText(f"Saved segment {index + 1}."),
            self._on_error,
        )

    @Slot()
    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(self.text())
        self.status.setText("The transcript is on the clipboard.")

    @Slot()
    def export(self) -> None:
        settings = self.app.store.settings.read()
        choice = ExportDialog.ask(self, self.app.engine.export_dir(), settings.export_format_list or ["txt"])
        if choice is not None:
            self.export_to(*choice)

    def export_to(self, formats: Sequence[str], folder: Path) -> None:
        engine, job_id = self.app.engine, self.job.id
        self.tasks.run(
            lambda: engine.export(job_id, formats, folder),
            lambda written: self.status.setText("Exported: " + ", ".join(str(path) for path in written)),
            self._on_error,
        )

    def _on_error(self, error: BaseException) -> None:
        if isinstance(error, TranscriberError):
            self.status.setText(str(error))
        else:
            raise error

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self._player is not None:
            self._player.stop()
        self.closed.emit()
        super().closeEvent(event)
