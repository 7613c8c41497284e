"""The settings dialog: the engine's own settings (the store's ``settings`` table), so the CLI and the window agree.

Values are validated by the same parser the store uses (``config.parse_setting``); a bad
value keeps the dialog open with the store's message next to the field.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..config import DECLARED, PRESETS, format_value, parse_setting
from ..errors import ConfigError
from ..export import FORMATS
from ..engine.models import ModelChoice
from ..store import Store

_GROUPS = (
    ("Transcription", ("model", "language", "preset", "word_timestamps")),
    ("Limits", ("max_file_size_mb", "max_concurrent_per_user", "max_queued_per_user", "workers")),
    ("Export", ("export_dir", "export_formats", "auto_export")),
    ("Window", ("notifications", "close_to_tray")),
    ("Webhooks", ("webhook_timeout_seconds", "webhook_first_retry_seconds", "webhook_retry_hours")),
)
_LABELS = {
    "model": "Default model",
    "language": "Default language",
    "preset": "Speed / accuracy",
    "word_timestamps": "Record the timing of every word",
    "max_file_size_mb": "Largest file (MB)",
    "max_concurrent_per_user": "Running jobs per user",
    "max_queued_per_user": "Queued jobs per user",
    "workers": "Jobs at once on this machine",
    "export_dir": "Export folder",
    "export_formats": "Export formats",
    "auto_export": "Export each transcript when its job completes",
    "notifications": "Notify when a job finishes or fails",
    "close_to_tray": "Closing the window keeps transcriber working in the tray",
    "webhook_timeout_seconds": "Receiver must answer within (s)",
    "webhook_first_retry_seconds": "First retry after (s, then doubling)",
    "webhook_retry_hours": "Give up after (hours)",
}
_MODELS = ("auto", "tiny.en", "base", "small", "medium", "large-v3")
_LANGUAGES = ("", "en", "de", "fr", "es", "it", "pt", "nl", "ja", "zh", "ru", "ko")


class SettingsDialog(QDialog):
    """Edit settings; OK stores every changed value or shows why one is invalid."""

    def __init__(self, store: Store, parent: QWidget | None = None, models: list[ModelChoice] = ()):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._store = store
        self._models = list(models) or [ModelChoice(name, True, "") for name in _MODELS]
        self._stored = {key: format_value(value) for key, value in store.settings.read().as_dict().items()}
        self._editors: dict[str, QWidget] = {}
        self._errors: dict[str, QLabel] = {}
        layout = QVBoxLayout(self)
        for title, keys in _GROUPS:
            group = QGroupBox(title)
            form = QFormLayout(group)
            for key in keys:
                editor = self._make_editor(key)
                error = QLabel()
                error.setObjectName(f"error_{key}")
                error.setStyleSheet("color: #b3261e;")
                error.setWordWrap(True)
                error.hide()
                self._errors[key] = error
                box = QVBoxLayout()
                box.setSpacing(1)
                box.addWidget(editor)
                box.addWidget(error)
                holder = QWidget()
                holder.setLayout(box)
                box.setContentsMargins(0, 0, 0, 0)
                holder.setToolTip(DECLARED[key].description)
                if isinstance(self._editors[key], QCheckBox):
                    form.addRow(holder)
                else:
                    form.addRow(_LABELS[key] + ":", holder)
            layout.addWidget(group)
        note = QLabel("Settings are shared with the command line (<code>transcriber config</code>). "
                      "New defaults apply to files added from now on.")
        note.setWordWrap(True)
        layout.addWidget(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        layout.addWidget(buttons)
        self.buttons = buttons

    # ------------------------------------------------------------ editors

    def _make_editor(self, key: str) -> QWidget:
        text = self._stored[key]
        if isinstance(DECLARED[key].default(), bool):
            editor = QCheckBox(_LABELS[key])
            editor.setChecked(text == "true")
        elif key == "export_formats":
            editor = QWidget()
            row = QHBoxLayout(editor)
            row.setContentsMargins(0, 0, 0, 0)
            chosen = set(text.split(","))
            editor.boxes = {}
            for name in FORMATS:
                box = QCheckBox(name)
                box.setChecked(name in chosen)
                editor.boxes[name] = box
                row.addWidget(box)
            row.addStretch(1)
        elif key == "model":
            editor = QComboBox()
            editor.setEditable(True)  # a model folder or another faster-whisper name may be typed
            for choice in self._models:
                editor.addItem(choice.label, choice.name)
            self.set_value_text(key, text, editor)
        elif key in ("language", "preset"):
            editor = QComboBox()
            editor.setEditable(key != "preset")
            editor.addItems(list({"language": _LANGUAGES, "preset": PRESETS}[key]))
            if key == "language":
                editor.setItemText(0, "")
                editor.lineEdit().setPlaceholderText("detect")
            editor.setCurrentText(text)
        elif key == "export_dir":
            editor = QWidget()
            row = QHBoxLayout(editor)
            row.setContentsMargins(0, 0, 0, 0)
            editor.line = QLineEdit(text)
            editor.line.setPlaceholderText("the data folder's transcripts/")
            browse = QPushButton("Choose…")
            browse.clicked.connect(lambda: self._browse(editor.line))
            row.addWidget(editor.line, 1)
            row.addWidget(browse)
        else:
            editor = QLineEdit(text)
            editor.setAlignment(Qt.AlignmentFlag.AlignRight)
            editor.setMaximumWidth(120)
        editor.setObjectName(key)
        self._editors[key] = editor
        return editor

    def _browse(self, line: QLineEdit) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder for exports", line.text())
        if chosen:
            line.setText(chosen)

    def value_text(self, key: str) -> str:
        """The text the editor of ``key`` holds, in the store's form."""
        editor = self._editors[key]
        if isinstance(editor, QCheckBox):
            return "true" if editor.isChecked() else "false"
        if isinstance(editor, QComboBox):
            index = editor.findText(editor.currentText())
            named = editor.itemData(index) if index >= 0 else None
            return str(named) if named else editor.currentText().strip()  # a model's label stands for its name
        if hasattr(editor, "boxes"):
            return ",".join(name for name, box in editor.boxes.items() if box.isChecked())
        if hasattr(editor, "line"):
            return editor.line.text().strip()
        return editor.text().strip()

    def set_value_text(self, key: str, text: str, editor: QWidget | None = None) -> None:
        editor = editor or self._editors[key]
        if isinstance(editor, QCheckBox):
            editor.setChecked(text == "true")
        elif isinstance(editor, QComboBox):
            index = editor.findData(text)
            if index >= 0:
                editor.setCurrentIndex(index)
            else:
                editor.setCurrentText(text)
        elif hasattr(editor, "boxes"):
            for name, box in editor.boxes.items():
                box.setChecked(name in text.split(","))
        elif hasattr(editor, "line"):
            editor.line.setText(text)
        else:
            editor.setText(text)

    def error_text(self, key: str) -> str:
        return self._errors[key].text() if self._errors[key].isVisibleTo(self) else ""

    def restore_defaults(self) -> None:
        for key in self._editors:
            self.set_value_text(key, format_value(DECLARED[key].default()))

    # -------------------------------------------------------------- saving

    def save(self) -> bool:
        """Validate every field, then store the changed ones. Returns False (with messages) if any is invalid."""
        changes, valid = {}, True
        for key in self._editors:
            text = self.value_text(key)
            try:
                parse_setting(key, text)
            except ConfigError as error:
                self._errors[key].setText(str(error))
                self._errors[key].show()
                valid = False
                continue
            self._errors[key].hide()
            if text != self._stored[key]:
                changes[key] = text
        if key_error := self._check_formats():
            self._errors["export_formats"].setText(key_error)
            self._errors["export_formats"].show()
            valid = False
        if not valid:
            return False
        for key, text in changes.items():
            try:
                self._store.settings.set(key, text)
            except ConfigError as error:  # the store is the judge; show its word
                self._errors[key].setText(str(error))
                self._errors[key].show()
                return False
        return True

    def _check_formats(self) -> str | None:
        if self.value_text("auto_export") == "true" and not self.value_text("export_formats"):
            return "Choose at least one format, or turn automatic export off."
        return None

    def accept(self) -> None:
        if self.save():
            super().accept()
