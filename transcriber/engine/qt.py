"""The engine's only Qt module (QtCore): run jobs on a QThreadPool, report through signals.

Workers never touch widgets. Signals emitted on worker threads reach receivers living in
the GUI thread as queued calls, so a window can connect to them directly.
"""

from __future__ import annotations

import logging
from typing import Sequence

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from ..jobs import Job, JobStatus, Segment
from .core import Claim, Engine

log = logging.getLogger(__name__)


class QtListener(QObject):
    """An ``EngineListener`` that re-emits each callback as a signal."""

    job_changed = Signal(object)  # Job
    segments_added = Signal(object, object)  # Job, list[Segment]
    job_finished = Signal(object)  # Job
    engine_error = Signal(str)

    def on_job_changed(self, job: Job) -> None:
        self.job_changed.emit(job)

    def on_segments_added(self, job: Job, segments: Sequence[Segment]) -> None:
        self.segments_added.emit(job, list(segments))

    def on_job_finished(self, job: Job) -> None:
        self.job_finished.emit(job)

    def on_engine_error(self, message: str) -> None:
        self.engine_error.emit(message)


class _ListenerAdapter:
    """Maps the engine's listener calls onto a QtListener (keeps QObject method names distinct)."""

    def __init__(self, target: QtListener):
        self._target = target

    def job_changed(self, job: Job) -> None:
        self._target.on_job_changed(job)

    def segments_added(self, job: Job, segments: Sequence[Segment]) -> None:
        self._target.on_segments_added(job, segments)

    def job_finished(self, job: Job) -> None:
        self._target.on_job_finished(job)

    def engine_error(self, message: str) -> None:
        self._target.on_engine_error(message)


def attach_qt_listener(engine: Engine, parent: QObject | None = None) -> QtListener:
    """Make ``engine`` report through the signals of a new QtListener."""
    listener = QtListener(parent)
    engine.listener = _ListenerAdapter(listener)
    return listener


class _PartTask(QRunnable):
    """Decodes one claimed part on a pool thread."""

    def __init__(self, engine: Engine, claim: Claim, done: Signal):
        super().__init__()
        self.setAutoDelete(True)
        self._engine = engine
        self._claim = claim
        self._done = done

    def run(self) -> None:
        try:
            self._engine.execute(*self._claim)
        except Exception:  # execute handles expected errors; never let one kill the pool thread
            log.exception("worker for job %d crashed", self._claim.job.id)
        finally:
            try:
                self._done.emit(self._claim.run_id)
            except RuntimeError:  # the runner was deleted without stop(): nobody is waiting
                pass


class EngineRunner(QObject):
    """Keeps the engine's workers busy: starts queued jobs as workers free up.

    It polls the store every ``poll_ms`` too, so jobs added or resumed by another
    process (the command line) are picked up. A runner assumes it is the only one
    serving its data folder (the caller holds the engine lock): jobs marked running that
    none of its workers runs are put back in the queue.
    """

    idle = Signal()  # nothing running here and nothing queued
    _task_done = Signal(int)  # run id
    _wake = Signal()

    def __init__(self, engine: Engine, *, poll_ms: int = 1000, parent: QObject | None = None):
        super().__init__(parent)
        self.engine = engine
        self._pool = QThreadPool(self)
        self._active: set[int] = set()  # run ids being decoded
        self._stopping = False
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.dispatch)
        self._task_done.connect(self._on_task_done)
        self._wake.connect(self.dispatch)  # queued: emitted from workers when a job was split
        engine.work_available.append(self._wake.emit)
        self._ticks = 0

    @property
    def busy(self) -> bool:
        return bool(self._active)

    def start(self) -> list[Job]:
        """Recover abandoned jobs, then start work. Returns the recovered jobs."""
        recovered = self.engine.recover()
        self._stopping = False
        for service in self.engine.services:  # webhook deliveries, watch folders: threads of their own
            service.start()
        self._timer.start()
        QTimer.singleShot(0, self.dispatch)
        return recovered

    @Slot()
    def dispatch(self) -> None:
        if self._stopping:
            return
        workers = self.engine.limits.workers
        self._pool.setMaxThreadCount(max(workers, 1))
        while len(self._active) < workers:
            claimed = self.engine.claim_next()
            if claimed is None:
                break
            self._active.add(claimed.run_id)
            self.engine.listener.job_changed(claimed.job)
            self._pool.start(_PartTask(self.engine, claimed, self._task_done))
        self._ticks += 1
        if self._ticks % 5 == 0:
            if self.engine.recover_orphans():
                QTimer.singleShot(0, self.dispatch)
            if self._active:
                self.engine.refresh_estimates()
        if not self._active and not self.engine.store.queued_jobs():
            self.idle.emit()

    @Slot(int)
    def _on_task_done(self, run_id: int) -> None:
        self._active.discard(run_id)
        self.dispatch()

    def stop(self, timeout_ms: int = 60000) -> bool:
        """Stop taking work, ask running jobs to stop at a segment boundary, and wait for them.

        Jobs stopped this way go back to the queue and continue from their last segment
        at the next start. Returns False if a worker was still busy at the timeout.
        """
        self._stopping = True
        self._timer.stop()
        self.engine.stop_all()
        for service in self.engine.services:
            service.stop()
        finished = self._pool.waitForDone(timeout_ms)
        self._active.clear()
        return finished
