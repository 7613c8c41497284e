"""The engine's runner on a thread of its own, so dispatching (store reads and writes) never stalls the window."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from ..engine.core import Engine
from ..engine.qt import EngineRunner

log = logging.getLogger(__name__)


class _Service(QObject):
    """Lives in the engine thread; owns the EngineRunner there (its timer must run in that thread)."""

    started = Signal(object)  # list[Job] recovered at start

    def __init__(self, engine: Engine, poll_ms: int):
        super().__init__()
        self._engine = engine
        self._poll_ms = poll_ms
        self.runner: EngineRunner | None = None
        self.stopped_cleanly = True

    @Slot()
    def start(self) -> None:
        self.runner = EngineRunner(self._engine, poll_ms=self._poll_ms, parent=self)
        recovered = self.runner.start()
        self.started.emit(recovered)

    @Slot(int)
    def stop(self, timeout_ms: int) -> None:
        if self.runner is not None:
            self.stopped_cleanly = self.runner.stop(timeout_ms)
            self.runner.deleteLater()
            self.runner = None


class EngineHost(QObject):
    """Starts and stops the engine's workers from the GUI thread.

    Signals:
        started: the runner recovered abandoned jobs (the list) and took up work.
    """

    started = Signal(object)
    _stop_requested = Signal(int)

    def __init__(self, engine: Engine, *, poll_ms: int = 1000, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("engine-dispatch")
        self._service = _Service(engine, poll_ms)
        self._service.moveToThread(self._thread)
        self._thread.started.connect(self._service.start)
        self._service.started.connect(self.started)
        # Blocking: stop() returns once the workers have stopped at a segment boundary.
        self._stop_requested.connect(self._service.stop, Qt.ConnectionType.BlockingQueuedConnection)
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        if not self._running:
            self._running = True
            self._thread.start()

    def stop(self, timeout_ms: int = 30000) -> bool:
        """Ask running jobs to stop at their next segment boundary (they go back to the queue) and wait.

        Returns False if a worker was still busy at the timeout.
        """
        if not self._running:
            return True
        self._stop_requested.emit(timeout_ms)
        self._thread.quit()
        self._thread.wait()
        self._running = False
        return self._service.stopped_cleanly
