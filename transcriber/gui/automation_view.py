"""Automation: webhook endpoints (add, remove, send a test event), their delivery log, and watch folders.

Every store call runs on the window's TaskRunner; results come back to the GUI thread and
only then touch widgets. The same settings as ``transcriber webhooks`` and ``transcriber watch``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..app import App, login_user
from ..errors import TranscriberError
from ..records import DEFAULT_EVENTS, EVENTS
from ..services.watch import check_rule, parse_after
from ..services.webhooks import WebhookDispatcher, check_url, new_secret, parse_events, redacted
from .icons import app_icon
from .tasks import TaskRunner


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
    return table


def _fill(table: QTableWidget, rows: list[list[object]]) -> None:
    table.setRowCount(len(rows))
    for row, values in enumerate(rows):
        for column, value in enumerate(values):
            table.setItem(row, column, QTableWidgetItem("" if value is None else str(value)))


def _time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


class _CheckedDialog(QDialog):
    """A form whose OK button accepts only what ``values()`` accepts; its complaint shows in ``error``."""

    error: QLabel

    def values(self):
        raise NotImplementedError

    def _lay_out(self, form: QFormLayout) -> None:
        """The form, the line for its complaint, then OK (checked) and Cancel."""
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    @Slot()
    def _check(self) -> None:
        try:
            self.values()
        except TranscriberError as error:
            self.error.setText(str(error))
            return
        self.accept()


class WebhookDialog(_CheckedDialog):
    """URL, secret, events and what to send; ``values()`` is checked the way the command line checks it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add webhook")
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://example.org/hooks/transcriber")
        self.secret = QLineEdit(new_secret())
        self.events = {name: QCheckBox(name) for name in EVENTS}
        for name in DEFAULT_EVENTS:
            self.events[name].setChecked(True)
        self.include = QComboBox()
        self.include.addItem("the transcript text", "text")
        self.include.addItem("links to the exported files", "files")
        self.error = QLabel()
        self.error.setStyleSheet("color: #b3261e;")
        self.error.setWordWrap(True)
        events = QHBoxLayout()
        for box in self.events.values():
            events.addWidget(box)
        form = QFormLayout()
        form.addRow("URL", self.url)
        form.addRow("Secret (signs each request)", self.secret)
        form.addRow("Events", events)
        form.addRow("Send", self.include)
        self._lay_out(form)

    def values(self) -> tuple[str, str, tuple[str, ...], str]:
        """Raises: AutomationError: a bad URL or no event."""
        chosen = ",".join(name for name, box in self.events.items() if box.isChecked())
        return check_url(self.url.text()), self.secret.text().strip() or new_secret(), parse_events(chosen), self.include.currentData()



class WatchDialog(_CheckedDialog):
    """A folder and its rule (empty fields: the settings' defaults)."""

    def __init__(self, folder: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add watch folder")
        self.folder = QLineEdit(folder)
        self.model = QLineEdit()
        self.model.setPlaceholderText("default model")
        self.language = QLineEdit()
        self.language.setPlaceholderText("default language")
        self.output = QLineEdit()
        self.output.setPlaceholderText("only the automatic export")
        self.formats = QLineEdit()
        self.formats.setPlaceholderText("txt,srt")
        self.move_to = QLineEdit()
        self.move_to.setPlaceholderText("keep the file where it is")
        self.error = QLabel()
        self.error.setStyleSheet("color: #b3261e;")
        form = QFormLayout()
        form.addRow("Folder", self.folder)
        form.addRow("Model", self.model)
        form.addRow("Language", self.language)
        form.addRow("Also export to", self.output)
        form.addRow("Formats", self.formats)
        form.addRow("After success, move the file to", self.move_to)
        self._lay_out(form)

    def values(self) -> dict:
        """Keyword arguments for ``store.automation.add_watch_folder`` (without ``user``). Raises: TranscriberError."""
        from ..config import parse_setting

        folder = Path(self.folder.text().strip()).expanduser()
        if not self.folder.text().strip() or not folder.is_dir():
            raise TranscriberError(f"{folder} is not a folder.")
        formats = parse_setting("export_formats", self.formats.text()) if self.formats.text().strip() else ""
        after, move_to = parse_after(f"move:{self.move_to.text().strip()}" if self.move_to.text().strip() else "keep")
        output_dir = str(Path(self.output.text().strip()).expanduser().absolute()) if self.output.text().strip() else None
        check_rule(str(folder.absolute()), output_dir, move_to)
        return dict(
            path=str(folder.absolute()),
            model=self.model.text().strip() or None,
            language=self.language.text().strip() or None,
            output_dir=output_dir,
            formats=[name for name in formats.split(",") if name],
            after=after,
            move_to=move_to,
        )



class AutomationWindow(QWidget):
    """Tabs for webhooks, the delivery log and watch folders."""

    def __init__(self, app: App, tasks: TaskRunner, parent=None):
        super().__init__(parent, Qt.WindowType.Window)
        self.app = app
        self.tasks = tasks
        self.endpoints: list = []
        self.attempts: list = []
        self.folders: list = []
        self.loaded = 0  # reloads finished (tests wait on it)
        self.setWindowTitle("transcriber — automation")
        self.setWindowIcon(app_icon())
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(900, 520)
        self.tabs = QTabWidget()
        self.endpoints_table = _table(["ID", "URL", "Events", "Sends"])
        self.log_table = _table(["Time", "Endpoint", "Event", "Job", "Result", "Outcome", "URL"])
        self.folders_table = _table(["ID", "Folder", "User", "Rule", "Files seen"])
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.tabs.addTab(self._page(self.endpoints_table, [("Add…", self.ask_webhook), ("Remove", self._remove_selected_webhook),
                                                           ("Send test event", self._test_selected)]), "Webhooks")
        self.tabs.addTab(self._page(self.log_table, [("Refresh", self.reload)]), "Delivery log")
        self.tabs.addTab(self._page(self.folders_table, [("Add folder…", self.ask_watch_folder),
                                                         ("Remove", self._remove_selected_folder)]), "Watch folders")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.status)

    def _page(self, table: QTableWidget, buttons: list[tuple[str, object]]) -> QWidget:
        page = QWidget()
        row = QHBoxLayout()
        for text, slot in buttons:
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        row.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addWidget(table)
        layout.addLayout(row)
        return page

    # -------------------------------------------------------------- loading

    def reload(self) -> None:
        store = self.app.store
        self.tasks.run(
            lambda: (store.automation.webhooks(), store.automation.delivery_log(limit=500), store.automation.watch_folders(), store.automation.watch_files()), self._show
        )

    def _show(self, loaded) -> None:
        self.endpoints, self.attempts, self.folders, files = loaded
        counts: dict[int, dict[str, int]] = {}
        for item in files:
            states = counts.setdefault(item.folder_id, {})
            states[item.state] = states.get(item.state, 0) + 1
        _fill(self.endpoints_table, [[e.id, redacted(e.url), ", ".join(e.events), e.include] for e in self.endpoints])
        _fill(self.log_table, [
            [_time(a.attempted_at), a.endpoint_id, a.event, a.job_id if a.job_id is not None else "-",
             a.status_code if a.status_code is not None else a.error, a.outcome, redacted(a.url)]
            for a in reversed(self.attempts)  # newest first
        ])
        _fill(self.folders_table, [
            [f.id, f.path, f.user, "; ".join(part for part in (
                f"model {f.model}" if f.model else "", f"language {f.language}" if f.language else "",
                f"export to {f.output_dir}" if f.output_dir else "", f"then {f.after_text}") if part),
             ", ".join(f"{count} {state}" for state, count in sorted(counts.get(f.id, {}).items())) or "none yet"]
            for f in self.folders
        ])
        self.loaded += 1

    def _done(self, message: str):
        """A callback that says ``message`` and reloads the tables."""

        def show(_result) -> None:
            self.status.setText(message)
            self.reload()

        return show

    def _failed(self, error: BaseException) -> None:
        self.status.setText(str(error))

    def _selected(self, table: QTableWidget, items: list):
        row = table.currentRow()
        return items[row] if 0 <= row < len(items) else None

    # -------------------------------------------------------------- actions

    def add_webhook(self, url: str, secret: str, events, include: str = "text") -> None:
        store = self.app.store
        self.tasks.run(lambda: store.automation.add_webhook(url, secret, events, include), self._done(f"Added {url}."), self._failed)

    def remove_webhook(self, webhook_id: int) -> None:
        store = self.app.store
        self.tasks.run(lambda: store.automation.remove_webhook(webhook_id), self._done(f"Removed webhook {webhook_id}."), self._failed)

    def send_test(self, webhook_id: int) -> None:
        store = self.app.store

        def send() -> str:
            attempt = WebhookDispatcher(store).send_test(webhook_id)
            result = f"HTTP {attempt.status_code}" if attempt.status_code is not None else attempt.error
            return f"Test event to {attempt.url}: {result} ({attempt.outcome})."

        self.status.setText("Sending a test event…")
        self.tasks.run(send, lambda message: (self.status.setText(message), self.reload()), self._failed)

    def add_watch_folder(self, **values) -> None:
        store = self.app.store
        values.setdefault("user", login_user())
        self.tasks.run(lambda: store.automation.add_watch_folder(**values), self._done(f"Watching {values['path']}."), self._failed)

    def remove_watch_folder(self, folder_id: int) -> None:
        store = self.app.store
        self.tasks.run(lambda: store.automation.remove_watch_folder(folder_id), self._done(f"Stopped watching folder {folder_id}."),
                       self._failed)

    @Slot()
    def ask_webhook(self) -> None:
        dialog = WebhookDialog(self)
        if dialog.exec():
            self.add_webhook(*dialog.values())

    @Slot()
    def ask_watch_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Watch folder")
        if not folder:
            return
        dialog = WatchDialog(folder, self)
        if dialog.exec():
            self.add_watch_folder(**dialog.values())

    @Slot()
    def _remove_selected_webhook(self) -> None:
        endpoint = self._selected(self.endpoints_table, self.endpoints)
        if endpoint is not None:
            self.remove_webhook(endpoint.id)

    @Slot()
    def _test_selected(self) -> None:
        endpoint = self._selected(self.endpoints_table, self.endpoints)
        if endpoint is not None:
            self.send_test(endpoint.id)

    @Slot()
    def _remove_selected_folder(self) -> None:
        folder = self._selected(self.folders_table, self.folders)
        if folder is not None:
            self.remove_watch_folder(folder.id)
