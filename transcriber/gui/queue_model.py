"""The queue table's model: one row per job, over the store's ``Job`` dataclasses, updated in place.

Rows are replaced with ``dataChanged`` (never a reset), so selection and scroll position
survive the once-a-second refresh and a view never flickers.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from ..audio.decode import format_clock
from ..jobs import Job, JobStatus

# Custom roles: the window and the delegate read raw values instead of display text.
JOB_ROLE = Qt.ItemDataRole.UserRole + 1
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 3

COLUMNS = (
    ("name", "Name"),
    ("status", "Status"),
    ("progress", "Progress"),
    ("audio", "Processed / total"),
    ("speed", "Speed"),
    ("position", "#"),
    ("eta", "Time left"),
    ("finish", "Finishes"),
    ("model", "Model"),
    ("note", "Error / note"),
)
COLUMN = {key: number for number, (key, _) in enumerate(COLUMNS)}

_STATUS_TEXT = {
    JobStatus.RECORDING: "Recording",
    JobStatus.QUEUED: "Queued",
    JobStatus.RUNNING: "Running",
    JobStatus.PAUSED: "Paused",
    JobStatus.COMPLETED: "Completed",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELLED: "Cancelled",
}


def status_text(status: JobStatus) -> str:
    return _STATUS_TEXT[status]


def clock_time(timestamp: float | None, now: float | None = None) -> str:
    """A finish time: ``14:05`` today, ``Tue 09:10`` within a week, a date otherwise."""
    if timestamp is None:
        return ""
    moment = datetime.fromtimestamp(timestamp)
    today = datetime.fromtimestamp(now if now is not None else time.time())
    if moment.date() == today.date():
        return moment.strftime("%H:%M")
    if abs((moment.date() - today.date()).days) < 7:
        return moment.strftime("%a %H:%M")
    return moment.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class QueueSummary:
    """The queue as a whole: what the summary line and the tray tooltip say."""

    running: int
    queued: int
    paused: int
    failed: int
    completed: int
    audio_left_seconds: float
    finish_at: float | None
    waiting_for_room: int = 0  # files in the backlog: asked for while the queue was full

    @property
    def jobs_left(self) -> int:
        return self.running + self.queued + self.paused

    def text(self) -> str:
        waiting = f" · waiting for room: {self.waiting_for_room}" if self.waiting_for_room else ""
        return self._jobs_text() + waiting

    def _jobs_text(self) -> str:
        if not self.jobs_left:
            done = f"{self.completed} completed" + (f", {self.failed} failed" if self.failed else "")
            return f"Nothing left to do ({done})." if self.completed or self.failed else "The queue is empty: drop files here."
        parts = [f"{self.jobs_left} job{'s' if self.jobs_left != 1 else ''} left"]
        detail = [f"{self.running} running"] if self.running else []
        if self.queued:
            detail.append(f"{self.queued} queued")
        if self.paused:
            detail.append(f"{self.paused} paused")
        parts[0] += f" ({', '.join(detail)})"
        parts.append(f"{format_clock(self.audio_left_seconds)} of audio left")
        if self.finish_at is not None and (self.running or self.queued):
            parts.append(f"estimated finish {clock_time(self.finish_at)}")
        return " · ".join(parts)


def summarise(jobs: Iterable[Job], waiting_for_room: int = 0) -> QueueSummary:
    """Count jobs by status and add up the audio still to transcribe (paused jobs included)."""
    counts = {status: 0 for status in JobStatus}
    audio_left = 0.0
    finish: float | None = None
    for job in jobs:
        counts[job.status] += 1
        if job.status in (JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.PAUSED):
            audio_left += job.remaining_seconds
        if job.status in (JobStatus.RUNNING, JobStatus.QUEUED) and job.estimated_completion is not None:
            finish = max(finish or 0.0, job.estimated_completion)
    return QueueSummary(
        running=counts[JobStatus.RUNNING],
        queued=counts[JobStatus.QUEUED],
        paused=counts[JobStatus.PAUSED],
        failed=counts[JobStatus.FAILED],
        completed=counts[JobStatus.COMPLETED],
        audio_left_seconds=audio_left,
        finish_at=finish,
        waiting_for_room=waiting_for_room,
    )


class JobTableModel(QAbstractTableModel):
    """Jobs in the order they were added; ``apply_jobs`` and ``update_job`` change rows in place."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._rows: dict[int, int] = {}  # job id -> row
        self._display: list[tuple] = []  # per row: the text of every column
        self._extra: list[tuple] = []  # per row: (tooltips, foreground colours)

    # ---------------------------------------------------------------- Qt API

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][1]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole and COLUMNS[section][0] == "position":
            return "Place in its owner's queue (1 = next)"
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Views ask for many roles per cell on every paint: answer from the row's cache.
        cells = _CELLS.get(role)
        if cells is None:
            return None
        row = index.row()
        if not 0 <= row < len(self._jobs):
            return None
        value = cells(self, row)
        if isinstance(value, tuple):
            return value[index.column()]
        return value

    def multiData(self, index: QModelIndex, span) -> None:  # noqa: N802 (Qt override)
        # A view asks for a cell's roles in one call here instead of one data() call per role:
        # every call into Python takes the GIL, which workers may hold, so fewer calls mean
        # shorter repaints while files are being added.
        row, column = index.row(), index.column()
        if not 0 <= row < len(self._jobs):
            return
        for role_data in span:
            getter = _CELLS.get(role_data.role())
            value = getter(self, row) if getter is not None else None
            value = value[column] if isinstance(value, tuple) else value
            if value is None:
                role_data.clearData()  # views reuse the span from cell to cell
            else:
                role_data.setData(value)

    # ------------------------------------------------------------- reading

    def job_at(self, row: int) -> Job | None:
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def row_of(self, job_id: int) -> int | None:
        return self._rows.get(job_id)

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    # ------------------------------------------------------------- updating

    def apply_jobs(self, jobs: Sequence[Job], taken_at: float | None = None) -> None:
        """Make the rows match ``jobs``, a full listing read at ``taken_at``: change, insert and remove rows in place.

        A listing may arrive after signals about newer jobs: rows of jobs created after it
        was read are kept, and rows are never moved back to an older state.
        """
        incoming = {job.id: job for job in jobs}
        # The margin: a job's created_at is stamped just before its insert commits.
        gone = [job.id for job in self._jobs
                if job.id not in incoming and (taken_at is None or job.created_at < taken_at - 5.0)]
        for job_id in gone:
            self._remove(job_id)
        for job in jobs:
            self.update_job(job)

    def update_job(self, job: Job) -> None:
        """Show ``job``'s new state; a state older than the one shown is ignored."""
        row = self._rows.get(job.id)
        if row is None:
            # Rows stay in the order jobs were added, whatever order their news arrives in.
            position = bisect.bisect([shown.id for shown in self._jobs], job.id)
            self.beginInsertRows(QModelIndex(), position, position)
            self._jobs.insert(position, job)
            self._display.insert(position, _display_row(job))
            self._extra.insert(position, _extra_row(job))
            self._rows = {shown.id: number for number, shown in enumerate(self._jobs)}
            self.endInsertRows()
            return
        current = self._jobs[row]
        if current == job or job.updated_at < current.updated_at:
            return
        self._jobs[row] = job
        display, extra = _display_row(job), _extra_row(job)
        if display == self._display[row] and extra == self._extra[row]:
            return  # nothing visible changed (an estimate moved by seconds): no repaint
        self._display[row], self._extra[row] = display, extra
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def remove_job(self, job_id: int) -> None:
        if job_id in self._rows:
            self._remove(job_id)

    def _remove(self, job_id: int) -> None:
        row = self._rows[job_id]
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._jobs[row]
        del self._display[row]
        del self._extra[row]
        self._rows = {job.id: number for number, job in enumerate(self._jobs)}
        self.endRemoveRows()


def _cell_text(job: Job, key: str) -> str:
    running = job.status is JobStatus.RUNNING
    waiting = job.status in (JobStatus.RUNNING, JobStatus.QUEUED)
    if key == "name":
        return job.file_name
    if key == "status":
        return status_text(job.status)
    if key == "progress":
        return f"{job.progress * 100:.0f}%"
    if key == "audio":
        return f"{format_clock(job.processed_seconds)} / {format_clock(job.duration_seconds)}"
    if key == "speed":
        return f"{job.speed:.1f}×" if running and job.speed else ""
    if key == "position":
        return str(job.queue_position) if job.queue_position else ""
    if key == "eta":
        return format_clock(job.eta_seconds) if waiting and job.eta_seconds is not None else ""
    if key == "finish":
        if job.status is JobStatus.COMPLETED:
            return clock_time(job.finished_at)
        return clock_time(job.estimated_completion) if waiting else ""
    if key == "model":
        return job.model + (f" ({job.language})" if job.language else "")
    if key == "note":
        return job.error or job.warning or ""
    return ""

def _display_row(job: Job) -> tuple:
    return tuple(_cell_text(job, key) for key, _ in COLUMNS)


_FAILED_COLOUR = None


def _extra_row(job: Job) -> tuple:
    """(tooltips, foreground colours) of one row, each a tuple over the columns."""
    global _FAILED_COLOUR
    tips = tuple(job.source_path if key == "name" else (job.error or job.warning) if key == "note" else None
                 for key, _ in COLUMNS)
    colours = (None,) * len(COLUMNS)
    if job.status is JobStatus.FAILED:
        if _FAILED_COLOUR is None:
            from PySide6.QtGui import QColor  # only the view's colour needs QtGui

            _FAILED_COLOUR = QColor("#b3261e")
        colours = tuple(_FAILED_COLOUR if key in ("status", "note") else None for key, _ in COLUMNS)
    return tips, colours


_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_ALIGNMENT = tuple(_RIGHT if key in ("speed", "position", "eta", "audio") else None for key, _ in COLUMNS)

# role -> function(model, row) giving the row's values (a tuple over columns, or one value for all).
_CELLS = {
    Qt.ItemDataRole.DisplayRole: lambda model, row: model._display[row],
    Qt.ItemDataRole.ToolTipRole: lambda model, row: model._extra[row][0],
    Qt.ItemDataRole.ForegroundRole: lambda model, row: model._extra[row][1],
    Qt.ItemDataRole.TextAlignmentRole: lambda model, row: _ALIGNMENT,
    JOB_ROLE: lambda model, row: model._jobs[row],
    PROGRESS_ROLE: lambda model, row: model._jobs[row].progress,
}


__all__ = ["JobTableModel", "QueueSummary", "summarise", "COLUMNS", "COLUMN", "JOB_ROLE", "PROGRESS_ROLE"]
