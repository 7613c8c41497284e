"""Small dialogs: export (formats and folder) and About."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..export import FORMATS
from .icons import app_icon


class ExportDialog(QDialog):
    """Choose formats and a folder; ``choice()`` gives them once accepted."""

    def __init__(self, folder: Path, formats: Sequence[str], *, jobs: int = 1, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export transcript" if jobs == 1 else f"Export {jobs} transcripts")
        self._boxes = {}
        row = QHBoxLayout()
        for name in FORMATS:
            box = QCheckBox(name)
            box.setChecked(name in formats)
            box.toggled.connect(self._validate)
            self._boxes[name] = box
            row.addWidget(box)
        self._folder = QLineEdit(str(folder))
        self._folder.textChanged.connect(self._validate)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self._folder, 1)
        folder_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Formats:", row)
        form.addRow("Folder:", folder_row)
        self._buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self._buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Existing files of the same name are replaced."))
        layout.addWidget(self._buttons)
        self._validate()

    def choice(self) -> tuple[list[str], Path]:
        return [name for name, box in self._boxes.items() if box.isChecked()], Path(self._folder.text().strip()).expanduser()

    def _validate(self) -> None:
        formats, _ = self.choice()
        ok = bool(formats) and bool(self._folder.text().strip())
        self._buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export to folder", self._folder.text())
        if chosen:
            self._folder.setText(chosen)

    @classmethod
    def ask(cls, parent: QWidget | None, folder: Path, formats: Sequence[str], jobs: int = 1) -> tuple[list[str], Path] | None:
        """Show the dialog; the chosen formats and folder, or None if cancelled."""
        dialog = cls(folder, formats, jobs=jobs, parent=parent)
        return dialog.choice() if dialog.exec() == QDialog.DialogCode.Accepted else None


def show_about(parent: QWidget | None, data_dir: Path, log_file: Path) -> None:
    box = QMessageBox(parent)
    box.setWindowTitle("About transcriber")
    box.setIconPixmap(app_icon().pixmap(64, 64))
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(f"<h3>transcriber {__version__}</h3>"
                "<p>Turns audio and video files into text on this machine, with "
                "<a href='https://github.com/SYSTRAN/faster-whisper'>faster-whisper</a>. "
                "Nothing is uploaded.</p>")
    box.setInformativeText(f"Data folder: {data_dir}\nLog: {log_file}")
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    box.exec()
