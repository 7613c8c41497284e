"""Unexpected exceptions: logged, then shown in a dialog with a copyable report and the log's path.

Installed as ``sys.excepthook``; Qt routes exceptions raised in slots there too. The
engine's workers run elsewhere, so an error in the window never stops them.
"""

from __future__ import annotations

import logging
import platform
import sys
import traceback
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from .. import __version__

log = logging.getLogger(__name__)


def error_report(exc_type, exc, trace) -> str:
    lines = traceback.format_exception(exc_type, exc, trace)
    return (
        f"transcriber {__version__}, Python {platform.python_version()}, PySide6 {pyside_version}, "
        f"{platform.platform()}\n\n" + "".join(lines)
    )


class ErrorDialog(QDialog):
    """Shows one or more unexpected errors; the report can be selected or copied whole."""

    def __init__(self, log_file: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("transcriber: unexpected error")
        self.setModal(False)
        self.resize(720, 420)
        intro = QLabel(
            "Something went wrong in the window. Your jobs are safe and keep running.<br>"
            f"Please send this report with the log file: <code>{log_file}</code>"
        )
        intro.setWordWrap(True)
        intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = QPushButton("Copy report")
        copy.clicked.connect(self.copy_report)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.hide)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.report, 1)
        layout.addWidget(buttons)

    def add_report(self, text: str) -> None:
        existing = self.report.toPlainText()
        self.report.setPlainText((existing + "\n" + "-" * 60 + "\n" if existing else "") + text)

    def copy_report(self) -> None:
        QGuiApplication.clipboard().setText(self.report.toPlainText())


class ExceptionHandler:
    """The ``sys.excepthook`` of the window: log, then show (or add to) the error dialog."""

    def __init__(self, log_file: Path):
        self.log_file = log_file
        self.dialog: ErrorDialog | None = None
        self._previous = sys.excepthook

    def install(self) -> None:
        sys.excepthook = self

    def uninstall(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self._previous
        if self.dialog is not None:
            self.dialog.deleteLater()
            self.dialog = None

    def __call__(self, exc_type, exc, trace) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous(exc_type, exc, trace)
            return
        log.error("unexpected error in the window", exc_info=(exc_type, exc, trace))
        try:
            if self.dialog is None:
                self.dialog = ErrorDialog(self.log_file)
            self.dialog.add_report(error_report(exc_type, exc, trace))
            self.dialog.show()
            self.dialog.raise_()
        except Exception:  # never let the hook itself fail
            self._previous(exc_type, exc, trace)
