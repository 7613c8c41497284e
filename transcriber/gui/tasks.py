"""The window's one thread boundary: blocking engine calls run on a pool, results return as queued signals.

Modelled on git-cola's Task + Channel: a ``QRunnable`` does the work off the GUI thread and
a ``QObject`` living in the GUI thread receives its outcome through a queued signal, so
callbacks always run in the GUI thread and never touch the store's connection of another thread.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


_LOWERED: set[int] = set()


def _lower_priority() -> None:
    """Give this pool thread a lower CPU priority than the GUI thread (Linux: threads have their own nice value).

    On a busy machine the window then wins the CPU over background intake and reads.
    """
    native = threading.get_native_id()
    if native in _LOWERED or not sys.platform.startswith("linux"):
        return
    _LOWERED.add(native)
    try:
        os.setpriority(os.PRIO_PROCESS, native, min(19, os.getpriority(os.PRIO_PROCESS, native) + 5))
    except OSError:
        pass


class _Task(QRunnable):
    def __init__(self, task_id: int, work: Callable[[], Any], channel: "TaskRunner", cleanup: Callable[[], None] | None):
        super().__init__()
        self.setAutoDelete(True)
        self._task_id = task_id
        self._work = work
        self._channel = channel
        self._cleanup = cleanup

    def run(self) -> None:
        _lower_priority()
        try:
            result = self._work()
        except BaseException as error:  # handed to the GUI thread, which decides what to show
            self._channel.task_failed.emit(self._task_id, error, sys.exc_info()[2])
        else:
            self._channel.task_done.emit(self._task_id, result)
        finally:
            if self._cleanup is not None:
                try:
                    self._cleanup()
                except Exception:
                    log.exception("task cleanup failed")


class TaskRunner(QObject):
    """Runs callables on a private thread pool and calls back in the GUI thread.

    Args:
        cleanup: called on the worker thread after each task (the store closes that
            thread's connection there).
        max_threads: tasks that may run at once.
    """

    task_done = Signal(int, object)
    task_failed = Signal(int, object, object)  # id, exception, traceback

    def __init__(self, *, cleanup: Callable[[], None] | None = None, max_threads: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._cleanup = cleanup
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Callback | None, Callback | None]] = {}
        self._closed = False
        self.task_done.connect(self._on_done)
        self.task_failed.connect(self._on_failed)

    @property
    def pending(self) -> int:
        return len(self._callbacks)

    def run(self, work: Callable[[], Any], on_done: Callback | None = None, on_error: Callback | None = None) -> int:
        """Run ``work()`` off the GUI thread; then ``on_done(result)`` or ``on_error(exception)`` in the GUI thread.

        Without ``on_error``, an exception goes to ``sys.excepthook`` (the error dialog).
        """
        task_id = next(self._ids)
        if self._closed:
            return task_id  # quitting: nothing new starts
        self._callbacks[task_id] = (on_done, on_error)
        self._pool.start(_Task(task_id, work, self, self._cleanup))
        return task_id

    def close(self, timeout_ms: int = 30000) -> bool:
        """Wait for running tasks (at quit) and drop their callbacks: the widgets they would update are going away."""
        self._closed = True
        self._callbacks.clear()
        return self._pool.waitForDone(timeout_ms)

    @Slot(int, object)
    def _on_done(self, task_id: int, result: Any) -> None:
        on_done, _ = self._callbacks.pop(task_id, (None, None))
        if on_done is not None:
            on_done(result)

    @Slot(int, object, object)
    def _on_failed(self, task_id: int, error: BaseException, trace) -> None:
        if self._closed:
            return
        _, on_error = self._callbacks.pop(task_id, (None, None))
        if on_error is not None:
            on_error(error)
        else:
            sys.excepthook(type(error), error, trace)
