"""The settings dialog: the engine's own settings (the store's ``settings`` table), so the CLI and the window agree.

Values are validated by the same parser the store uses (``config.parse_setting``); a bad
value keeps the dialog open with the store's message next to the field.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
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
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..config import DECLARED, DEVICES, PRESETS, format_value, parse_setting
from ..engine.model_manager import ModelEntry, describe_size, describe_speed
from ..engine.models import ModelChoice
from ..errors import ConfigError, TranscriberError
from ..export import FORMATS
from ..jobs import TASKS
from ..store import Store

_GROUPS = (
    ("Transcription", ("model", "language", "task", "preset", "word_timestamps", "device")),
    ("Limits", ("max_file_size_mb", "max_concurrent_per_user", "max_queued_per_user", "workers")),
    ("Export", ("export_dir", "export_formats", "auto_export")),
    ("Window", ("notifications", "close_to_tray")),
    ("Webhooks", ("webhook_timeout_seconds", "webhook_first_retry_seconds", "webhook_retry_hours")),
)
_LABELS = {
    "model": "Default model",
    "language": "Default language",
    "task": "Default task",
    "device": "Run models on",
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
_CHOICES = {
    "task": {"transcribe": "transcribe (text in the language spoken)", "translate": "translate to English"},
    "device": {"auto": "auto (a CUDA GPU when there is one)", "cpu": "the CPU", "cuda": "a CUDA GPU"},
}
assert set(_CHOICES["task"]) == set(TASKS) and set(_CHOICES["device"]) == set(DEVICES)
_LANGUAGES = ("", "en", "de", "fr", "es", "it", "pt", "nl", "ja", "zh", "ru", "ko")


class SettingsDialog(QDialog):
    """Edit settings; OK stores every changed value or shows why one is invalid."""

    def __init__(
        self,
        store: Store,
        parent: QWidget | None = None,
        models: list[ModelChoice] = (),
        *,
        describe_device: Callable[[str], str] | None = None,
        installed_models: Callable[[], list[ModelEntry]] | None = None,
        remove_model: Callable[[str], None] | None = None,
    ):
        """Args:
            describe_device: where models load for a device setting, and why (ModelPool.describe_device).
            installed_models: the Models section's list (model_manager.list_models); None: no section.
            remove_model: removes a model from the cache, raising with the reason where it may not.
        """
        super().__init__(parent)
        self._describe_device = describe_device
        self._installed_models = installed_models
        self._remove_model = remove_model
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
                if key == "device" and describe_device is not None:
                    self.device_info = QLabel()
                    self.device_info.setObjectName("device_info")
                    self.device_info.setWordWrap(True)
                    box.addWidget(self.device_info)
                    editor.currentIndexChanged.connect(self._show_device)
                    self._show_device()
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
        if installed_models is not None:
            layout.addWidget(self._models_section())
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
        elif key in _CHOICES:
            editor = QComboBox()
            for value, label in _CHOICES[key].items():
                editor.addItem(label, value)
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

    def _show_device(self) -> None:
        self.device_info.setText("Models load on: " + self._describe_device(self.value_text("device")))

    # -------------------------------------------------------------- models

    def _models_section(self) -> QGroupBox:
        group = QGroupBox("Models")
        box = QVBoxLayout(group)
        table = QTableWidget(0, 4)
        table.setObjectName("models_table")
        table.setHorizontalHeaderLabels(["Model", "Installed", "Size", "Speed here"])
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        table.horizontalHeader().setStretchLastSection(True)
        table.setMaximumHeight(150)
        table.itemSelectionChanged.connect(self._update_remove)
        self.models_table = table
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("remove_model")
        self.remove_button.setToolTip("Remove the selected model from the model cache")
        self.remove_button.clicked.connect(self.remove_selected_model)
        self.models_message = QLabel()
        self.models_message.setObjectName("models_message")
        self.models_message.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.models_message, 1)
        row.addWidget(self.remove_button)
        box.addWidget(table)
        box.addLayout(row)
        self.refresh_models()
        return group

    def refresh_models(self) -> None:
        self._model_entries = self._installed_models()
        table = self.models_table
        table.setRowCount(len(self._model_entries))
        for row, entry in enumerate(self._model_entries):
            installed = "embedded" if entry.embedded and entry.installed else "yes" if entry.installed else "no"
            cells = (entry.name, installed, describe_size(entry.size_bytes), describe_speed(entry.speed))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(entry.problem or entry.install or entry.path or "")
                table.setItem(row, column, item)
        table.resizeColumnsToContents()
        self._update_remove()

    def selected_model(self) -> ModelEntry | None:
        rows = {index.row() for index in self.models_table.selectedIndexes()}
        return self._model_entries[rows.pop()] if len(rows) == 1 else None

    def _update_remove(self) -> None:
        entry = self.selected_model()
        self.remove_button.setEnabled(
            self._remove_model is not None and entry is not None and entry.installed and not entry.embedded
        )
        if entry is not None and not entry.installed:
            self.models_message.setText(entry.problem or f"Not installed: {entry.install}")

    def remove_selected_model(self) -> None:
        """Remove the selected model from the cache, or say why it stays (removing a folder takes milliseconds)."""
        entry = self.selected_model()
        if entry is None or self._remove_model is None:
            return
        try:
            self._remove_model(entry.name)
        except TranscriberError as error:
            self.models_message.setText(str(error))
            return
        self.refresh_models()
        self.models_message.setText(f"Removed {entry.name} ({describe_size(entry.size_bytes)}).")

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
