"""The main window: the queue table, its actions, adding files (drop, dialogs) and the summary line."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSettings, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ..app import App
from ..audio.decode import MEDIA_EXTENSIONS
from ..config import Settings
from ..engine.core import IntakeResult
from .engine_signals import EngineSignals
from ..errors import TranscriberError
from ..jobs import ACTIVE_STATUSES, TRANSCRIBE, TRANSLATE, Job, JobStatus, Segment
from .delegates import ProgressDelegate
from .dialogs import ExportDialog, show_about
from .icons import app_icon, themed
from .notices import NoticePanel
from .queue_model import COLUMN, JOB_ROLE, JobTableModel, QueueSummary, summarise
from .search_view import LibrarySearch
from .tasks import TaskRunner
from .tray import Tray

log = logging.getLogger(__name__)

# Which statuses each job action applies to (the engine refuses the rest anyway).
_APPLIES = {
    "pause": {JobStatus.QUEUED, JobStatus.RUNNING},
    "resume": {JobStatus.PAUSED},
    "cancel": {JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED},
    "retry": {JobStatus.FAILED, JobStatus.CANCELLED},
    "move_up": {JobStatus.QUEUED, JobStatus.PAUSED},
    "move_down": {JobStatus.QUEUED, JobStatus.PAUSED},
    "remove": set(JobStatus),
    "open_transcript": set(JobStatus),
    "show_in_folder": set(JobStatus),
    "export": set(JobStatus),
}


def media_filter() -> str:
    patterns = " ".join(f"*{extension}" for extension in sorted(MEDIA_EXTENSIONS))
    return f"Audio and video ({patterns});;All files (*)"


class MainWindow(QMainWindow):
    """The queue window.

    Args:
        app: the opened data folder (store, engine, paths).
        tasks: runs blocking engine calls off the GUI thread.
        signals: the engine's signals.
        user: owner of the jobs this window adds.
        refresh_ms: how often the table is refreshed from the store while open.
        tray: the tray icon, if any: closing the window hides it to the tray when the tray is shown.
        remote_status: what the remote workers do (``2 remote workers: gpu-box, office-2``), or
            None with the local backend; read at each refresh (it makes no network call).
    """

    summary_changed = Signal(object)  # QueueSummary
    settings_changed = Signal(object)  # Settings
    quit_requested = Signal()
    hidden_to_tray = Signal()
    files_added = Signal(object)  # list[IntakeResult]

    def __init__(self, app: App, tasks: TaskRunner, signals: EngineSignals, *, user: str, refresh_ms: int = 1000,
                 tray: Tray | None = None, remote_status: Callable[[], str | None] | None = None, parent=None):
        super().__init__(parent)
        self.app = app
        self._remote_status = remote_status or (lambda: None)
        self.tasks = tasks
        self.signals = signals
        self.user = user
        self._tray = tray
        self.ui_state = QSettings(str(app.paths.data_dir / "window.ini"), QSettings.Format.IniFormat)
        self.settings: Settings = app.store.settings.read()
        self.summary = summarise([])
        self._automation = None
        self._quitting = False
        self._refreshing = False
        self._adding = 0
        self._waiting_for_room = 0  # files in the backlog, as of the last refresh
        self._transcripts: dict[int, QWidget] = {}
        self._stats = None
        self._record_dialog = None

        self.setWindowTitle("transcriber")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1100, 560)

        self.model = JobTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)  # no sorting proxy: each one doubles the Python calls of a repaint
        self.table.setItemDelegateForColumn(COLUMN["progress"], ProgressDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(self._on_double_click)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for key, width in (("name", 230), ("status", 80), ("progress", 120), ("audio", 120), ("speed", 60),
                           ("position", 34), ("eta", 70), ("finish", 80), ("model", 90)):
            self.table.setColumnWidth(COLUMN[key], width)
        self.table.selectionModel().selectionChanged.connect(self._update_actions)

        self.notices = NoticePanel()
        self.engine_note = QLabel()
        self.engine_note.setWordWrap(True)
        self.engine_note.setStyleSheet("color: #8a5300;")
        self.engine_note.hide()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.notices)
        layout.addWidget(self.engine_note)
        layout.addWidget(self.table, 1)
        self.setCentralWidget(central)

        self.summary_label = QLabel()
        self.statusBar().addWidget(self.summary_label, 1)
        self.activity_label = QLabel()
        self.statusBar().addPermanentWidget(self.activity_label)
        self.remote_label = QLabel()  # "2 remote workers: gpu-box, office-2" with the redis backend
        self.statusBar().addPermanentWidget(self.remote_label)

        self.library_search = LibrarySearch(app, tasks, user=user, parent=self)
        self.library_search.hit_activated.connect(self.open_hit)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.library_search)
        self.library_search.hide()

        self._build_actions()
        self._update_actions()
        self._show_summary(self.summary)
        self.offer_recordings()

        signals.job_changed.connect(self._on_job_changed)
        signals.segments_added.connect(self._on_segments_added)
        signals.segments_added.connect(self.library_search.on_segments_added)
        signals.engine_error.connect(self._on_engine_error)
        signals.engine_notice.connect(self._on_engine_error)

        self._timer = QTimer(self)
        self._timer.setInterval(refresh_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        geometry = self.ui_state.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.refresh()

    # ------------------------------------------------------------- actions

    def _action(self, key: str, text: str, icon: str, shortcut=None, slot=None, tip: str | None = None) -> QAction:
        action = QAction(themed(icon), text, self)
        action.setObjectName(key)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip or shortcut is not None:
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            action.setToolTip(f"{tip or text.replace('…', '')}" + (f" ({keys})" if keys else ""))
        if slot is not None:
            action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work wherever the focus is in the window
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.actions_by_key: dict[str, QAction] = {}
        table = {
            "add_files": a("add_files", "Add files…", "document-open", QKeySequence.StandardKey.Open, self.choose_files),
            "add_folder": a("add_folder", "Add folder…", "folder-open", "Ctrl+Shift+O", self.choose_folder),
            "record": a("record", "Record…", "media-record", "Ctrl+Shift+M", self.open_record,
                        "Record from a microphone; the recording is then transcribed"),
            "pause": a("pause", "Pause", "media-playback-pause", "Ctrl+P", lambda: self.act("pause")),
            "resume": a("resume", "Resume", "media-playback-start", "Ctrl+R", lambda: self.act("resume")),
            "cancel": a("cancel", "Cancel", "process-stop", "Ctrl+.", lambda: self.act("cancel")),
            "retry": a("retry", "Retry", "view-refresh", "Ctrl+Shift+R", lambda: self.act("retry")),
            "move_up": a("move_up", "Move up", "go-up", "Ctrl+Up", lambda: self.act("move_up")),
            "move_down": a("move_down", "Move down", "go-down", "Ctrl+Down", lambda: self.act("move_down")),
            "remove": a("remove", "Remove", "edit-delete", QKeySequence.StandardKey.Delete, lambda: self.act("remove")),
            "open_transcript": a("open_transcript", "Open transcript", "text-x-generic", "Ctrl+T", self.open_selected_transcripts),
            "show_in_folder": a("show_in_folder", "Show in folder", "system-file-manager", "Ctrl+Shift+L", self.show_selected_in_folder),
            "export": a("export", "Export…", "document-save-as", "Ctrl+E", self.export_selected),
            "settings": a("settings", "Settings…", "preferences-system", QKeySequence.StandardKey.Preferences, self.open_settings),
            "statistics": a("statistics", "Statistics", "view-statistics", "Ctrl+I", self.open_statistics),
            "search": a("search", "Search transcripts…", "edit-find", "Ctrl+Shift+F", self.open_search,
                        "Find words in every transcript"),
            "automation": a("automation", "Automation…", "network-transmit", None, self.open_automation,
                            tip="Webhooks, their delivery log, watch folders"),
            "about": a("about", "About transcriber", "help-about", None, self.about),
            "quit": a("quit", "Quit", "application-exit", QKeySequence.StandardKey.Quit, self.request_quit),
            "close": a("close", "Close window", "window-close", QKeySequence.StandardKey.Close, self.close),
            "translate": a("translate", "Translate to English", "preferences-desktop-locale", None, None,
                           "Files added from now on come out in English, whatever language is spoken"),
            "pause_all": a("pause_all", "Pause all", "media-playback-pause", None, self.pause_all),
            "resume_all": a("resume_all", "Resume all", "media-playback-start", None, self.resume_all),
        }
        if not table["settings"].shortcut().toString():
            table["settings"].setShortcut(QKeySequence("Ctrl+,"))
        table["translate"].setCheckable(True)
        table["translate"].setChecked(self.settings.task == TRANSLATE)  # the task setting is its default
        self.actions_by_key = table
        # Enter opens the selected job's transcript when the table has the focus.
        enter = QAction(self.table)
        enter.setShortcuts([QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
        enter.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        enter.triggered.connect(self.open_selected_transcripts)
        self.table.addAction(enter)

        toolbar = QToolBar("Actions")
        toolbar.setObjectName("actions")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setMovable(False)
        for key in ("add_files", "add_folder", "translate", None, "pause", "resume", "cancel", "retry", None, "move_up",
                    "move_down", "remove", None, "open_transcript", "export", None, "search"):
            if key is None:
                toolbar.addSeparator()
            else:
                toolbar.addAction(table[key])
        self.addToolBar(toolbar)
        self.toolbar = toolbar

        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        for key in ("add_files", "add_folder", "record", "translate", None, "settings", None, "close", "quit"):
            file_menu.addSeparator() if key is None else file_menu.addAction(table[key])
        job_menu = menus.addMenu("&Job")
        for key in self._job_menu_keys():
            job_menu.addSeparator() if key is None else job_menu.addAction(table[key])
        queue_menu = menus.addMenu("&Queue")
        queue_menu.addAction(table["pause_all"])
        queue_menu.addAction(table["resume_all"])
        queue_menu.addSeparator()
        queue_menu.addAction(table["search"])
        queue_menu.addAction(table["statistics"])
        queue_menu.addAction(table["automation"])
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(table["about"])
        log_action = QAction("Open log folder", self)
        log_action.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.app.paths.log_dir))))
        help_menu.addAction(log_action)

    @staticmethod
    def _job_menu_keys() -> list[str | None]:
        return ["open_transcript", "show_in_folder", "export", None, "pause", "resume", "cancel", "retry", None,
                "move_up", "move_down", None, "remove"]

    def _context_menu(self, position) -> None:
        menu = QMenu(self)
        for key in self._job_menu_keys():
            menu.addSeparator() if key is None else menu.addAction(self.actions_by_key[key])
        menu.popup(self.table.viewport().mapToGlobal(position))

    @Slot()
    def _update_actions(self) -> None:
        selected = self.selected_jobs()
        for key, statuses in _APPLIES.items():
            self.actions_by_key[key].setEnabled(any(job.status in statuses for job in selected))

    # ------------------------------------------------------------ selection

    def selected_jobs(self) -> list[Job]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        jobs = [self.model.job_at(row) for row in rows]
        return [job for job in jobs if job is not None]

    def select_jobs(self, job_ids: Iterable[int]) -> None:
        selection = self.table.selectionModel()
        selection.clearSelection()
        for job_id in job_ids:
            row = self.model.row_of(job_id)
            if row is not None:
                index = self.model.index(row, 0)
                selection.select(index, QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
                self.table.scrollTo(index)

    # ---------------------------------------------------------------- adding

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)
        else:
            event.ignore()

    @Slot()
    def choose_files(self) -> None:
        start = self.ui_state.value("last_folder", str(Path.home()))
        files, _ = QFileDialog.getOpenFileNames(self, "Add files to transcribe", start, media_filter())
        if files:
            self.ui_state.setValue("last_folder", str(Path(files[0]).parent))
            self.add_paths(files)

    @Slot()
    def choose_folder(self) -> None:
        start = self.ui_state.value("last_folder", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Add a folder (searched for media, with its subfolders)", start)
        if folder:
            self.ui_state.setValue("last_folder", folder)
            self.add_paths([folder])

    def add_paths(self, paths: Sequence[str]) -> None:
        """Queue files and folders in the background; refusals appear as notices, jobs as rows."""
        paths = [str(path) for path in paths]
        if not paths:
            return
        engine, user = self.app.engine, self.user
        task = TRANSLATE if self.actions_by_key["translate"].isChecked() else TRANSCRIBE
        self._adding += 1
        self._show_activity()

        def add():  # an English-only default model cannot translate: default_options says so, as a notice
            return engine.add(paths, user=user, options=engine.default_options(task=task), wait_for_room=True)

        # Files past the queue limit wait for room: a person asked for every one of them.
        self.tasks.run(add, self._on_added, self._on_add_failed)

    def _on_added(self, results: list[IntakeResult]) -> None:
        self._adding -= 1
        self._show_activity()
        self.notices.withdraw(result.path for result in results if result.accepted)
        self.notices.add_many([(str(result.refusal), result.path) for result in results if result.refusal is not None])
        waiting = sum(1 for result in results if result.waiting is not None)
        if waiting:
            self.statusBar().showMessage(
                f"Your queue is full: {waiting} file{'s wait' if waiting != 1 else ' waits'} for room and will be "
                "queued in order as jobs start.", 10000)
        for result in results:
            if result.job is not None:
                self.model.update_job(result.job)
        self._after_change()
        accepted = [result.job.id for result in results if result.job is not None]
        if accepted and not self.table.selectionModel().hasSelection():  # never take away the user's selection
            self.select_jobs(accepted[-1:])
        self.files_added.emit(results)
        self.refresh()

    def _on_add_failed(self, error: BaseException) -> None:
        self._adding -= 1
        self._show_activity()
        if isinstance(error, TranscriberError):
            self.notices.add(str(error))
        else:
            raise error

    def _show_activity(self) -> None:
        self.activity_label.setText("Adding files…" if self._adding else "")

    # ---------------------------------------------------------- job actions

    def act(self, action: str, jobs: Sequence[Job] | None = None) -> None:
        """Apply a job action to ``jobs`` (default: the selection) in the background."""
        jobs = [job for job in (jobs if jobs is not None else self.selected_jobs()) if job.status in _APPLIES[action]]
        if not jobs:
            return
        if action == "remove" and not self._confirm_remove(jobs):
            return
        engine = self.app.engine
        ids = [job.id for job in jobs]
        if action == "move_down":
            ids.reverse()  # moving several down: the lowest goes first so they keep their order

        def work():
            done, problems = [], []
            for job_id in ids:
                try:
                    if action == "remove":
                        engine.remove(job_id)
                    elif action in ("move_up", "move_down"):
                        engine.move(job_id, -1 if action == "move_up" else 1)
                    else:
                        getattr(engine, action)(job_id)
                    done.append(job_id)
                except TranscriberError as error:
                    problems.append(str(error))
            return done, problems

        def finished(outcome):
            done, problems = outcome
            for message in problems:
                self.notices.add(message)
            if action == "remove":
                for job_id in done:
                    self.model.remove_job(job_id)
            self.refresh()

        self.tasks.run(work, finished)

    def _confirm_remove(self, jobs: Sequence[Job]) -> bool:
        worth_keeping = [job for job in jobs if job.processed_seconds > 0 or job.status is JobStatus.RUNNING]
        if not worth_keeping:
            return True
        names = ", ".join(job.file_name for job in worth_keeping[:3]) + ("…" if len(worth_keeping) > 3 else "")
        answer = QMessageBox.question(
            self,
            "Remove jobs",
            f"Remove {len(jobs)} job{'s' if len(jobs) != 1 else ''} and delete the transcript of {names}?\n"
            "Exported files are kept.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def pause_all(self) -> None:
        engine = self.app.engine
        self.tasks.run(lambda: engine.pause_all(None), lambda _: self.refresh())

    @Slot()
    def resume_all(self) -> None:
        engine = self.app.engine
        self.tasks.run(lambda: engine.resume_all(None), lambda _: self.refresh())

    @Slot()
    def open_selected_transcripts(self) -> None:
        for job in self.selected_jobs()[:10]:
            self.open_transcript(job.id)

    def open_transcript(self, job_id: int):
        """Show the transcript window of a job (one per job), raised to the front."""
        from .transcript_view import TranscriptWindow

        window = self._transcripts.get(job_id)
        if window is None:
            job = next((job for job in self.model.jobs() if job.id == job_id), None) or self.app.store.jobs.get_job(job_id)
            if job is None:
                return None
            window = TranscriptWindow(job, self.app, self.tasks, self.signals)
            window.closed.connect(lambda job_id=job_id: self._transcripts.pop(job_id, None))
            self._transcripts[job_id] = window
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    @Slot()
    def open_search(self) -> LibrarySearch:
        """Show the library search and put the cursor in its field."""
        self.library_search.focus_field()
        return self.library_search

    @Slot(object)
    def open_hit(self, hit):
        """Open the transcript of a search hit at its segment, highlighted, playing from there."""
        window = self.open_transcript(hit.job_id)
        if window is not None:
            window.show_segment(hit.segment_index, play=True)
        else:
            self.statusBar().showMessage(f"Job {hit.job_id} no longer exists.", 8000)
        return window

    def transcript_windows(self) -> dict[int, QWidget]:
        return dict(self._transcripts)

    @Slot()
    def show_selected_in_folder(self) -> None:
        for job in self.selected_jobs()[:5]:
            target = next((Path(p) for p in job.exported_paths if Path(p).exists()), Path(job.source_path))
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(target.parent)))

    @Slot()
    def export_selected(self) -> None:
        jobs = self.selected_jobs()
        if not jobs:
            return
        default_dir = Path(self.ui_state.value("export_folder", str(self.app.engine.export_dir())))
        choice = ExportDialog.ask(self, default_dir, self.settings.export_format_list or ["txt"], jobs=len(jobs))
        if choice is None:
            return
        formats, folder = choice
        self.ui_state.setValue("export_folder", str(folder))
        self.export_jobs([job.id for job in jobs], formats, folder)

    def export_jobs(self, job_ids: Sequence[int], formats: Sequence[str], folder: Path) -> None:
        engine = self.app.engine

        def work():
            written, problems = [], []
            for job_id in job_ids:
                try:  # an existing file that transcriber did not write keeps its name; the export gets "name (2)"
                    written += engine.export(job_id, formats, folder)
                except TranscriberError as error:
                    problems.append(str(error))
            return written, problems

        def finished(outcome):
            written, problems = outcome
            for message in problems:
                self.notices.add(message)
            if written:
                self.statusBar().showMessage(f"Exported {len(written)} file{'s' if len(written) != 1 else ''} to {folder}", 8000)

        self.tasks.run(work, finished)

    # --------------------------------------------------------------- views

    @Slot()
    def open_settings(self) -> None:
        dialog = self.settings_dialog()
        if dialog.exec():
            self.settings = self.app.store.settings.read()
            self.actions_by_key["translate"].setChecked(self.settings.task == TRANSLATE)
            self.settings_changed.emit(self.settings)

    def settings_dialog(self):
        """The settings dialog, wired to this window's store, model pool and model cache."""
        from ..engine import model_manager
        from ..engine.models import model_choices
        from .settings_dialog import SettingsDialog

        app, cache = self.app, self.app.paths.model_cache

        def installed_models() -> list[model_manager.ModelEntry]:
            return model_manager.list_models(cache, {stats.model: stats.speed for stats in app.store.stats.model_stats()})

        def remove_model(name: str) -> None:
            in_use = model_manager.models_in_use(app.store.jobs.list_jobs(statuses=ACTIVE_STATUSES))
            model_manager.remove_model(cache, name, in_use)
            app.models.forget(name)

        return SettingsDialog(
            app.store, self, models=model_choices(cache), describe_device=app.models.describe_device,
            installed_models=installed_models, remove_model=remove_model,
        )

    @Slot()
    def open_record(self):
        """Show the recording window (one per main window)."""
        from .record import RecordDialog

        if self._record_dialog is None:
            self._record_dialog = RecordDialog(self)
        else:
            self._record_dialog.load_pending()
        self._record_dialog.show()
        self._record_dialog.raise_()
        self._record_dialog.activateWindow()
        return self._record_dialog

    def offer_recordings(self) -> None:
        """At start: say in the message strip if recordings wait to be transcribed (a crash, or never queued)."""
        from ..audio.recorder import recover
        from .record import recovered_notice

        folder = self.app.paths.recordings_dir
        self.tasks.run(lambda: recover(folder), lambda found: found and self.notices.add(recovered_notice(found), error=False))

    @Slot()
    def open_statistics(self):
        from .stats_view import StatsWindow

        if self._stats is None:
            self._stats = StatsWindow(self.app, self.tasks)
            self._stats.destroyed.connect(lambda: setattr(self, "_stats", None))
        self._stats.reload()
        self._stats.show()
        self._stats.raise_()
        return self._stats

    @Slot()
    def open_automation(self):
        from .automation_view import AutomationWindow

        if self._automation is None:
            self._automation = AutomationWindow(self.app, self.tasks)
            self._automation.destroyed.connect(lambda: setattr(self, "_automation", None))
        self._automation.reload()
        self._automation.show()
        self._automation.raise_()
        return self._automation

    @Slot()
    def about(self) -> None:
        show_about(self, self.app.paths.data_dir, self.app.paths.log_file)

    def set_engine_note(self, text: str | None) -> None:
        """A line above the table about the engine itself (another process runs the jobs, ...)."""
        self.engine_note.setText(text or "")
        self.engine_note.setVisible(bool(text))

    # ------------------------------------------------------- live updates

    @Slot()
    def refresh(self) -> None:
        """Re-read every job (with fresh estimates) in the background and update rows in place."""
        if self._refreshing:
            return
        self._refreshing = True
        engine, store = self.app.engine, self.app.store

        def work():
            taken_at = time.time()
            return engine.with_estimates(store.jobs.list_jobs()), store.settings.read(), store.backlog.count_waiting(), taken_at

        remote = self._remote_status()
        self.remote_label.setText(remote or "")
        self.remote_label.setVisible(bool(remote))

        def done(outcome):
            self._refreshing = False
            jobs, settings, waiting, taken_at = outcome
            self.model.apply_jobs(jobs, taken_at)
            self.settings = settings
            self._waiting_for_room = waiting
            self._after_change()

        def failed(error):
            self._refreshing = False
            if isinstance(error, TranscriberError):
                self._on_engine_error(str(error))
            else:
                raise error

        self.tasks.run(work, done, failed)

    @Slot(object)
    def _on_job_changed(self, job: Job) -> None:
        row = self.model.row_of(job.id)
        started = job.status is JobStatus.RUNNING and (row is None or self.model.job_at(row).status is not JobStatus.RUNNING)
        self.model.update_job(job)
        if started and self.model.row_of(job.id) is not None:
            # A job that starts below the fold is brought into view (the selection is left alone).
            self.table.scrollTo(self.model.index(self.model.row_of(job.id), 0), QAbstractItemView.ScrollHint.EnsureVisible)
        self._after_change()

    @Slot(object, object)
    def _on_segments_added(self, job: Job, segments: list[Segment]) -> None:
        self.model.update_job(job)
        self._after_change()

    @Slot(str)
    def _on_engine_error(self, message: str) -> None:
        if message not in self.notices.messages()[-3:]:
            self.notices.add(message)

    def _after_change(self) -> None:
        self._update_actions()
        summary = summarise(self.model.jobs(), waiting_for_room=self._waiting_for_room)
        if summary != self.summary:
            self.summary = summary
            self._show_summary(summary)
            self.summary_changed.emit(summary)

    def _show_summary(self, summary: QueueSummary) -> None:
        self.summary_label.setText(summary.text())

    @Slot(QModelIndex)
    def _on_double_click(self, index: QModelIndex) -> None:
        job = index.data(JOB_ROLE)
        if job is not None:
            self.open_transcript(job.id)

    # ------------------------------------------------------------- closing

    @Slot()
    def request_quit(self) -> None:
        self.quit_requested.emit()

    def allow_close(self) -> None:
        """The app is quitting: let closeEvent through."""
        self._quitting = True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self.ui_state.setValue("geometry", self.saveGeometry())
        if self._quitting:
            event.accept()
            return
        if self.settings.close_to_tray and self._tray is not None and self._tray.visible:
            event.ignore()
            self.hide()
            self.hidden_to_tray.emit()
            return
        pending = self.summary.running + self.summary.queued
        if pending:
            answer = QMessageBox.question(
                self,
                "Quit transcriber?",
                f"{pending} job{'s are' if pending != 1 else ' is'} not finished. Quit anyway?\n"
                "Unfinished jobs continue from where they stopped the next time you open transcriber.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        event.ignore()  # the composition root closes everything, this window included
        self.quit_requested.emit()

    def close_views(self) -> None:
        if self._automation is not None:
            self._automation.close()
        for window in list(self._transcripts.values()):
            window.close()
        if self._stats is not None:
            self._stats.close()
        if self._record_dialog is not None:
            self._record_dialog.close()  # a recording in progress is finished and kept
        self._timer.stop()
