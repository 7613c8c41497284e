"""The queue table's model: one row per job, over the store's ``Job`` dataclasses, updated in place.

Rows are replaced with ``dataChanged`` (never a reset), so selection and scroll position
survive the once-a-second refresh and a view never flickers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from ..audio.decode import format_clock
from ..jobs import Job, JobStatus

# Custom roles: the delegate and the proxy read raw values instead of display text.
JOB_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
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

    @property
    def jobs_left(self) -> int:
        return self.running + self.queued + self.paused

    def text(self) -> str:
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


def summarise(jobs: Iterable[Job]) -> QueueSummary:
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
    )


class JobTableModel(QAbstractTableModel):
    """Jobs in the order they were added; ``apply_jobs`` and ``update_job`` change rows in place."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._rows: dict[int, int] = {}  # job id -> row

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
        if not index.isValid() or index.row() >= len(self._jobs):
            return None
        job = self._jobs[index.row()]
        key = COLUMNS[index.column()][0]
        if role == JOB_ROLE:
            return job
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(job, key)
        if role == PROGRESS_ROLE:
            return job.progress
        if role == SORT_ROLE:
            return self._sort_key(job, key)
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "name":
                return job.source_path
            if key == "note":
                return job.error or job.warning
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("speed", "position", "eta", "audio"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and key in ("status", "note") and job.status is JobStatus.FAILED:
            from PySide6.QtGui import QColor  # only the view's colour needs QtGui

            return QColor("#b3261e")
        return None

    # ------------------------------------------------------------- reading

    def job_at(self, row: int) -> Job | None:
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def row_of(self, job_id: int) -> int | None:
        return self._rows.get(job_id)

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    # ------------------------------------------------------------- updating

    def apply_jobs(self, jobs: Sequence[Job]) -> None:
        """Make the rows match ``jobs`` (a full listing): change, insert and remove rows in place."""
        incoming = {job.id: job for job in jobs}
        for job_id in sorted((i for i in self._rows if i not in incoming), key=lambda i: -self._rows[i]):
            self._remove(job_id)
        for job in sorted(jobs, key=lambda job: job.id):
            self.update_job(job, force=True)

    def update_job(self, job: Job, *, force: bool = False) -> None:
        """Show ``job``'s new state; a signal older than what is shown is ignored unless ``force``."""
        row = self._rows.get(job.id)
        if row is None:
            position = len(self._jobs)
            self.beginInsertRows(QModelIndex(), position, position)
            self._jobs.append(job)
            self._rows[job.id] = position
            self.endInsertRows()
            return
        current = self._jobs[row]
        if current == job or (not force and job.updated_at < current.updated_at):
            return
        self._jobs[row] = job
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def remove_job(self, job_id: int) -> None:
        if job_id in self._rows:
            self._remove(job_id)

    def _remove(self, job_id: int) -> None:
        row = self._rows[job_id]
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._jobs[row]
        self._rows = {job.id: number for number, job in enumerate(self._jobs)}
        self.endRemoveRows()

    # ------------------------------------------------------------ formatting

    @staticmethod
    def _display(job: Job, key: str) -> str:
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

    @staticmethod
    def _sort_key(job: Job, key: str) -> Any:
        if key == "name":
            return job.file_name.lower()
        if key == "status":
            return list(JobStatus).index(job.status)
        if key == "progress":
            return job.progress
        if key == "audio":
            return job.duration_seconds
        if key == "speed":
            return job.speed or 0.0
        if key == "position":
            return job.queue_position or 10**9
        if key == "eta":
            return job.eta_seconds if job.eta_seconds is not None else float("inf")
        if key == "finish":
            return job.finished_at or job.estimated_completion or float("inf")
        return JobTableModel._display(job, key)


__all__ = ["JobTableModel", "QueueSummary", "summarise", "COLUMNS", "COLUMN", "JOB_ROLE", "SORT_ROLE", "PROGRESS_ROLE"]
