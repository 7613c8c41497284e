"""The engine's reports as Qt signals: how results cross from worker threads to the GUI thread.

The engine calls its listener on the thread that did the work (a decode thread, the
dispatcher, a task of the window). ``EngineSignals`` lives in the GUI thread and re-emits
each call as a signal; Qt delivers a signal emitted on another thread as a queued call
in the receiver's thread, so every slot connected to it runs in the GUI thread.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QObject, Signal

from ..engine.listener import EngineListener
from ..jobs import Job, Segment


class EngineSignals(QObject):
    """The signals the window connects to; ``listener`` is what the engine is built with."""

    job_changed = Signal(object)  # Job
    segments_added = Signal(object, object)  # Job, list[Segment]
    job_finished = Signal(object)  # Job
    engine_error = Signal(str)
    engine_notice = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.listener = _Relay(self)


class _Relay(EngineListener):
    """The engine-side face of EngineSignals (a QObject cannot reuse the signals' names as methods)."""

    def __init__(self, signals: EngineSignals):
        self._signals = signals

    def job_changed(self, job: Job) -> None:
        self._signals.job_changed.emit(job)

    def segments_added(self, job: Job, segments: Sequence[Segment]) -> None:
        self._signals.segments_added.emit(job, list(segments))

    def job_finished(self, job: Job) -> None:
        self._signals.job_finished.emit(job)

    def engine_error(self, message: str) -> None:
        self._signals.engine_error.emit(message)

    def engine_notice(self, message: str) -> None:
        self._signals.engine_notice.emit(message)
