"""Exclusive, non-blocking locks on open files (flock on POSIX, msvcrt on Windows).

The engine lock (one process runs jobs per data folder) and the markers of recordings
still being written use them: the operating system drops a lock when its process dies,
so a lock left by a crash never blocks the next start.
"""

from __future__ import annotations

import os


def try_lock(handle) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False if another holder has it."""
    try:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
