"""The window's wiring: QApplication, the data folder's App (built by ``app.open_app``), the window and the tray.

Start-up order matters for a quick launch: the single-instance check first (a second
launch hands over its files and exits), then the window is shown, and only then does the
data folder start being served (models load on the workers, when a job needs one).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QObject, QSettings, QTimer, Slot
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog

from ..app import App, Serving, login_user, open_app
from ..errors import EngineBusy, TranscriberError
from ..jobs import Job, JobStatus
from ..paths import resolve_paths
from .engine_signals import EngineSignals
from .error_dialog import ExceptionHandler
from .icons import app_icon
from .main_window import MainWindow
from .single_instance import InstanceServer, hand_over, server_name
from .tasks import TaskRunner
from .tray import Tray

log = logging.getLogger(__name__)

LOCK_RETRY_MS = 3000


class UpgradeProgress:
    """Shows a long database upgrade (building the search index of a large library) before the window opens.

    Called on the GUI thread by the upgrade itself, so it paints by processing events.
    """

    def __init__(self):
        self._dialog: QProgressDialog | None = None
        self.last: tuple[int, int] | None = None  # (done, total) last shown

    def __call__(self, what: str, done: int, total: int) -> None:
        if self._dialog is None:
            self._dialog = QProgressDialog(f"{what} (once, after an update)…", None, 0, total)  # nothing to cancel
            self._dialog.setWindowTitle("transcriber")
            self._dialog.setWindowIcon(app_icon())
            self._dialog.setMinimumDuration(0)
        self._dialog.setMaximum(total)
        self._dialog.setValue(done)
        self.last = (done, total)
        QApplication.processEvents()
        if done >= total:
            self._dialog.close()
            self._dialog.deleteLater()
            self._dialog = None


class TranscriberGui(QObject):
    """Everything the window needs, wired once.

    Args:
        data_dir: the data folder (default: $TRANSCRIBER_DATA_DIR or the user data folder).
        user: owner of the jobs added here (default: the login name).
        poll_ms: how often the engine looks for work added by other processes.
        refresh_ms: how often the table re-reads the queue.
        stop_timeout_ms: how long quitting waits for workers to reach a segment boundary.

    Raises:
        StoreError: the database cannot be opened.
    """

    def __init__(self, data_dir: str | os.PathLike | None = None, *, user: str | None = None, verbose: bool = False,
                 poll_ms: int = 1000, refresh_ms: int = 1000, stop_timeout_ms: int = 30000):
        super().__init__()
        self.signals = EngineSignals(self)
        self.upgrade_progress = UpgradeProgress()
        self.app: App = open_app(data_dir, listener=self.signals.listener, verbose=verbose, on_progress=self.upgrade_progress)
        self.user = user or login_user()
        self.stop_timeout_ms = stop_timeout_ms
        self.tasks = TaskRunner(cleanup=self.app.store.close, parent=self)
        self.serving = Serving(self.app, poll_seconds=poll_ms / 1000)
        self.exceptions = ExceptionHandler(self.app.paths.log_file)
        self.ui_state = QSettings(str(self.app.paths.data_dir / "window.ini"), QSettings.Format.IniFormat)

        self.tray = Tray(self)
        self.window = MainWindow(self.app, self.tasks, self.signals, user=self.user, refresh_ms=refresh_ms, tray=self.tray,
                                 remote_status=self.serving.remote_summary)
        self.window.quit_requested.connect(self.quit)
        self.window.hidden_to_tray.connect(self._on_hidden_to_tray)
        self.window.summary_changed.connect(self.tray.set_summary)
        self.tray.show_requested.connect(self.show_window)
        self.tray.pause_all_requested.connect(self.window.pause_all)
        self.tray.resume_all_requested.connect(self.window.resume_all)
        self.tray.quit_requested.connect(self.quit)
        self.tray.transcript_requested.connect(self.open_transcript)
        self.signals.job_finished.connect(self._on_job_finished)

        self.server = InstanceServer(server_name(self.app.paths.data_dir), self)
        self.server.files_received.connect(self.receive_files)
        self._lock_timer = QTimer(self)
        self._lock_timer.setInterval(LOCK_RETRY_MS)
        self._lock_timer.timeout.connect(self._start_engine)
        self.recovered: list[Job] = []
        self._shut_down = False

    # --------------------------------------------------------------- start

    def start(self, files: Sequence[str] = ()) -> None:
        """Listen for later launches, show the window and the tray, then start the engine."""
        self.server.listen()
        # Everything alive now (Qt, numpy, PyAV, the window) lives as long as the app: keep
        # the garbage collector from walking it again, or each full collection freezes the
        # window for a tenth of a second or more.
        gc.collect()
        gc.freeze()
        self.window.show()
        self.tray.show()
        self.tray.set_summary(self.window.summary)
        if files:
            self.window.add_paths(list(files))
        # After the first paint: the window appears before anything else happens.
        QTimer.singleShot(100, self._start_engine)

    @Slot()
    def _start_engine(self) -> None:
        if self._shut_down or self.serving.running:
            return
        try:
            recovered = self.serving.start()
        except EngineBusy as error:
            self.window.set_engine_note(f"{error} This window shows the queue; the jobs run there. "
                                        "It takes over when that process ends.")
            self._lock_timer.start()
            return
        except TranscriberError as error:  # the store cannot be written: say so, try again later
            self.window.set_engine_note(str(error))
            self._lock_timer.start()
            return
        self._lock_timer.stop()
        self.window.set_engine_note(None)
        self.recovered = list(recovered)
        if recovered:
            names = ", ".join(job.file_name for job in recovered[:3]) + ("…" if len(recovered) > 3 else "")
            self.window.statusBar().showMessage(f"Continuing where transcription stopped: {names}", 10000)
        self.window.refresh()

    @property
    def engine_running(self) -> bool:
        return self.serving.running

    # ------------------------------------------------------------- windows

    @Slot()
    def show_window(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    @Slot(list)
    def receive_files(self, files: list[str]) -> None:
        """Another launch handed over (the window comes to the front; its files are added)."""
        self.show_window()
        if files:
            self.window.add_paths(files)

    @Slot(int)
    def open_transcript(self, job_id: int):
        self.show_window()
        return self.window.open_transcript(job_id)

    # ----------------------------------------------------------------- tray

    @Slot(object)
    def _on_job_finished(self, job: Job) -> None:
        if job.status in (JobStatus.COMPLETED, JobStatus.FAILED) and self.window.settings.notifications and self.tray.visible:
            self.tray.notify_finished(job)

    @Slot()
    def _on_hidden_to_tray(self) -> None:
        if self.ui_state.value("tray_notice_shown", False, type=bool):
            return
        self.ui_state.setValue("tray_notice_shown", True)
        self.ui_state.sync()
        self.tray.notify(
            "transcriber keeps working in the tray",
            "Jobs continue while the window is closed. Use the tray icon to show the window again or to quit.",
        )

    # ----------------------------------------------------------------- quit

    def shutdown(self) -> bool:
        """Stop workers at a segment boundary (their jobs go back to the queue), close everything.

        Returns False if a worker did not stop within ``stop_timeout_ms``.
        """
        if self._shut_down:
            return True
        self._shut_down = True
        self._lock_timer.stop()
        self.server.close()
        self.window.allow_close()
        self.window.close_views()
        self.window.hide()
        self.tray.hide()
        stopped = self.serving.stop(self.stop_timeout_ms / 1000)
        self.tasks.close(5000)
        self.window.close()
        # Delete the widgets while QApplication exists, not in Python's garbage collection at exit.
        self.tray.menu.deleteLater()
        self.window.deleteLater()
        self.app.close()
        self.exceptions.uninstall()
        gc.unfreeze()
        log.info("window closed; workers stopped %s", "cleanly" if stopped else "late")
        return stopped

    @Slot()
    def quit(self) -> None:
        self.shutdown()
        QApplication.quit()


def _qt_application() -> QApplication:
    qt_app = QApplication.instance() or QApplication(sys.argv[:1] or ["transcriber"])
    qt_app.setApplicationName("transcriber")
    qt_app.setApplicationDisplayName("transcriber")
    qt_app.setDesktopFileName("transcriber")
    qt_app.setWindowIcon(app_icon())
    # The tray keeps the app alive with no window open; quitting is always explicit.
    qt_app.setQuitOnLastWindowClosed(False)
    return qt_app


def launch(files: Sequence[str] = (), data_dir: str | os.PathLike | None = None, *, verbose: bool = False,
           **options) -> TranscriberGui | None:
    """Start the window, or hand ``files`` to the one already open for this data folder (returns None then)."""
    _qt_application()
    if hand_over(server_name(resolve_paths(data_dir).data_dir), files):
        return None
    gui = TranscriberGui(data_dir, verbose=verbose, **options)
    gui.exceptions.install()
    gui.start(files)
    return gui


def run_window(files: Sequence[str] = (), data_dir: str | os.PathLike | None = None, *, verbose: bool = False) -> int:
    """``transcriber [FILE...]``: run the window until it quits; 0 also when another window took the files."""
    qt_app = _qt_application()
    try:
        gui = launch([str(Path(f).absolute()) for f in files], data_dir, verbose=verbose)
    except TranscriberError as error:
        QMessageBox.critical(None, "transcriber", str(error))
        return 1
    if gui is None:
        return 0
    previous = {sig: signal.signal(sig, lambda *_: gui.quit()) for sig in (signal.SIGINT, signal.SIGTERM)}
    waker = QTimer()
    waker.timeout.connect(lambda: None)  # lets Python run signal handlers while Qt waits
    waker.start(250)
    try:
        code = qt_app.exec()
    finally:
        waker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        gui.shutdown()
    return code
