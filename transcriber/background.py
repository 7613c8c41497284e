"""Background threads: the one way the app runs its own loops beside the main (or GUI) thread.

``BackgroundService`` is a thread that calls ``step()`` until it is stopped, waiting
between steps until its interval passes or someone calls ``wake()``. The engine's
dispatcher, webhook deliveries, watch folders and the recording writer are all one.
``run_with_timeout`` runs one call on a helper thread that the caller abandons after a
deadline (for drivers that can hang). Nothing else in the package starts a
``threading.Thread``; docs/architecture.md lists every thread and what it may touch.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class BackgroundService:
    """A loop on a thread of its own: ``start``, ``wake``, ``stop``.

    Subclasses implement ``step`` (return True when there is more to do at once, False to
    wait ``interval`` seconds or until woken) and may override ``finish`` (runs on the
    thread after the loop ends, once a stop was asked) and ``cleanup`` (runs last, on the
    thread, whatever happened: a store closes that thread's connection there).
    """

    name = "background"
    interval = 1.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked (``step`` may check it to end long work early)."""
        return self._stop.is_set()

    def start(self) -> None:
        if self.running:
            return
        # A fresh event per thread: a thread still finishing its last step after stop()
        # keeps seeing its own event set and ends, while a new one starts clean.
        self._stop = threading.Event()
        self._wake.clear()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run the next step now instead of after the interval (callable from any thread)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Ask the loop to end after its current step, without waiting (callable from any thread)."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Ask the loop to end and wait at most ``timeout`` seconds; False if it is still running then."""
        self.request_stop()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s did not stop within %s s", self.name, timeout)
            return False
        self._thread = None
        return True

    def step(self) -> bool:
        raise NotImplementedError

    def finish(self) -> None:
        """After the loop, on the thread: last work before it ends (the default does nothing)."""

    def cleanup(self) -> None:
        """Last thing on the thread, whatever happened (the default does nothing)."""

    def _loop(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    more = self.step()
                except Exception:  # a bug must not end the service for the session
                    log.exception("%s: step failed", self.name)
                    more = False
                if not more and not stop.is_set():
                    self._wake.wait(self.interval)
                    self._wake.clear()
            self.finish()
        except Exception:
            log.exception("%s: failed while finishing", self.name)
        finally:
            try:
                self.cleanup()
            except Exception:
                log.exception("%s: cleanup failed", self.name)


def run_with_timeout(work: Callable[[], None], timeout: float, name: str) -> bool:
    """Run ``work()`` on a helper thread and wait at most ``timeout`` seconds for it.

    Returns:
        True if it finished in time; False if it is still running (it is left behind as a
        daemon thread: the caller must not depend on its outcome).
    """

    def guarded() -> None:
        try:
            work()
        except Exception:
            log.exception("%s failed", name)

    helper = threading.Thread(target=guarded, name=name, daemon=True)
    helper.start()
    helper.join(timeout)
    return not helper.is_alive()
