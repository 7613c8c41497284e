"""The tray icon: a menu (show window, pause all, resume all, quit), the queue's state, and notifications."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from ..jobs import Job, JobStatus
from .icons import app_icon
from .queue_model import QueueSummary


def outcome_message(job: Job) -> tuple[str, str]:
    """Title and body of the notification for a finished job."""
    if job.status is JobStatus.COMPLETED:
        return f"Transcribed: {job.file_name}", f"{job.file_name} is ready. Click to open the transcript."
    if job.status is JobStatus.FAILED:
        return f"Failed: {job.file_name}", job.error or f"{job.file_name} could not be transcribed."
    return f"{job.status.value.capitalize()}: {job.file_name}", f"{job.file_name} was {job.status.value}."


class Tray(QObject):
    """Wraps QSystemTrayIcon; shown only where the platform has a tray."""

    show_requested = Signal()
    pause_all_requested = Signal()
    resume_all_requested = Signal()
    quit_requested = Signal()
    transcript_requested = Signal(int)  # job id: the notification was clicked

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.icon = QSystemTrayIcon(app_icon(), self)
        self.menu = QMenu()
        self.show_action = self._add("Show window", self.show_requested)
        self.menu.addSeparator()
        self.pause_action = self._add("Pause all", self.pause_all_requested)
        self.resume_action = self._add("Resume all", self.resume_all_requested)
        self.menu.addSeparator()
        self.quit_action = self._add("Quit", self.quit_requested)
        self.icon.setContextMenu(self.menu)
        self.icon.setToolTip("transcriber")
        self.icon.activated.connect(self._on_activated)
        self.icon.messageClicked.connect(self._on_message_clicked)
        self._last_notified: int | None = None

    def _add(self, text: str, signal) -> QAction:
        action = QAction(text, self.menu)
        action.triggered.connect(signal)
        self.menu.addAction(action)
        return action

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> bool:
        """Show the icon if the platform has a tray; returns whether it is shown."""
        if self.available() and not self.icon.isVisible():
            self.icon.show()
        return self.icon.isVisible()

    def hide(self) -> None:
        self.icon.hide()

    @property
    def visible(self) -> bool:
        return self.icon.isVisible()

    @Slot(object)
    def set_summary(self, summary: QueueSummary) -> None:
        self.icon.setToolTip(f"transcriber\n{summary.text()}")
        self.pause_action.setEnabled(bool(summary.running or summary.queued))
        self.resume_action.setEnabled(bool(summary.paused))

    def tooltip(self) -> str:
        return self.icon.toolTip()

    def notify_finished(self, job: Job) -> None:
        title, body = outcome_message(job)
        icon = QSystemTrayIcon.MessageIcon.Information if job.status is JobStatus.COMPLETED else QSystemTrayIcon.MessageIcon.Warning
        self._last_notified = job.id
        self.icon.showMessage(title, body, icon, 10000)

    def notify(self, title: str, body: str) -> None:
        self._last_notified = None
        self.icon.showMessage(title, body, QSystemTrayIcon.MessageIcon.Information, 8000)

    @Slot()
    def _on_message_clicked(self) -> None:
        if self._last_notified is not None:
            self.transcript_requested.emit(self._last_notified)
        else:
            self.show_requested.emit()

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.show_requested.emit()
