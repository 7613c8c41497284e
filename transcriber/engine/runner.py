"""Keeping the decode streams busy: claim work as streams free up and decode each part on a pool thread.

``EngineRunner`` is a ``BackgroundService`` (its dispatch loop is one thread) that hands
each claimed part to a ``ThreadPoolExecutor`` with one thread per decode stream. It wakes
when a part ends or a job was split, and polls the store every ``poll_seconds`` too, so
jobs added or resumed by another process (the command line) are picked up. A runner
assumes it is the only one serving its data folder (the caller holds the engine lock):
jobs marked running that none of its workers runs are put back in the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from ..background import BackgroundService
from ..config import MAX_STREAMS
from ..errors import StoreError
from ..jobs import RunOutcome
from .core import Claim, Engine

log = logging.getLogger(__name__)

# Every this many dispatch steps: requeue orphaned jobs and refresh the estimates.
HOUSEKEEPING_EVERY = 5


class EngineRunner(BackgroundService):
    """Starts queued work as decode streams free up (see the module docstring)."""

    name = "engine-dispatch"

    def __init__(self, engine: Engine, *, poll_seconds: float = 1.0, remote_takes_work: Callable[[], bool] | None = None):
        super().__init__()
        self.engine = engine
        # While remote workers take the queue, this machine decodes only what is handed to run_here.
        self._remote_takes_work = remote_takes_work or (lambda: False)
        self.interval = poll_seconds
        self._pool: ThreadPoolExecutor | None = None
        self._active: dict[int, Future] = {}  # run id -> its decode
        self._active_lock = threading.Lock()
        self._steps = 0
        self._idle = threading.Event()

    @property
    def busy(self) -> bool:
        return self._active_count() > 0

    def _active_count(self) -> int:
        with self._active_lock:
            return len(self._active)

    def is_idle(self) -> bool:
        """Nothing is being decoded here, and at the last step no job was queued or running and no file waited for room."""
        return self._idle.is_set() and not self.busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=MAX_STREAMS, thread_name_prefix="decode")
        self._idle.clear()
        super().start()

    def step(self) -> bool:
        engine = self.engine
        try:
            engine.promote_waiting()  # room may have freed for files in the backlog
        except StoreError as error:
            log.warning("backlog not looked at: %s", error)
        workers = 0 if self._remote_takes_work() else engine.read_limits().workers
        while not self.stopping and self._active_count() < workers:
            claimed = engine.claim_next()
            if claimed is None:
                break
            engine.listener.job_changed(claimed.job)
            self._submit(claimed)
        self._steps += 1
        if self._steps % HOUSEKEEPING_EVERY == 0:
            if engine.recover_orphans():
                self.wake()
            if self.busy:
                try:
                    engine.refresh_estimates()
                except StoreError as error:
                    log.warning("estimates not refreshed: %s", error)
        engine.models.unload_idle()
        try:
            nothing_waits = engine.nothing_to_do()
        except StoreError:
            nothing_waits = False
        if nothing_waits and not self.busy:
            self._idle.set()
        else:
            self._idle.clear()
        return False

    def run_here(self, claimed: Claim) -> None:
        """Decode a part claimed elsewhere (the scale-out coordinator) on this machine (any thread)."""
        if self._pool is None:
            self.engine.end_claim(claimed.job, claimed.part, claimed.run_id, RunOutcome.STOPPED)
            return
        self._submit(claimed)

    def _submit(self, claimed: Claim) -> None:
        future = self._pool.submit(self.engine.execute, *claimed, on_split=self.wake)
        with self._active_lock:
            self._active[claimed.run_id] = future
        future.add_done_callback(lambda done, run_id=claimed.run_id: self._finished(run_id, done))

    def _finished(self, run_id: int, future: Future) -> None:
        """On the pool thread, once a part's decode ended."""
        if future.exception() is not None:  # execute handles expected errors; this is a bug
            log.error("worker for run %d crashed", run_id, exc_info=future.exception())
        with self._active_lock:
            self._active.pop(run_id, None)
        self.wake()

    def cleanup(self) -> None:
        self.engine.store.close()  # the dispatch thread's connection

    def stop(self, timeout: float | None = 60.0) -> bool:
        """Stop taking work, ask running parts to stop at a segment boundary, and wait for them.

        Parts stopped this way go back to the queue and continue from their last segment
        at the next start. Returns False if a worker was still busy at the timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        super().stop(timeout)
        self.engine.stop_all()
        with self._active_lock:
            running = list(self._active.values())
        finished = True
        for future in running:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                future.result(left)
            except TimeoutError:
                finished = False
            except Exception:
                pass  # logged by _finished
        if self._pool is not None:
            self._pool.shutdown(wait=finished)
            self._pool = None
        return finished
