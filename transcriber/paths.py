"""Where transcriber keeps its files: one data folder per user, overridable for tests and portable installs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from . import APP_NAME

DATA_DIR_ENV = "TRANSCRIBER_DATA_DIR"
CACHE_DIR_ENV = "TRANSCRIBER_CACHE_DIR"


@dataclass(frozen=True)
class Paths:
    """Every location the app writes to, derived from one data folder."""

    data_dir: Path
    cache_dir: Path

    @property
    def database(self) -> Path:
        return self.data_dir / "transcriber.db"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "transcriber.log"

    @property
    def engine_lock(self) -> Path:
        return self.data_dir / "engine.lock"

    @property
    def default_export_dir(self) -> Path:
        return self.data_dir / "transcripts"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def model_cache(self) -> Path:
        return self.cache_dir / "models"

    @property
    def backups_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def writable(self) -> bool:
        """Whether the data folder can be written (a read-only one still serves the reading commands)."""
        return os.access(self.data_dir, os.W_OK)

    def ensure(self) -> "Paths":
        """Create the folders that must exist before anything is written, private to this user.

        The data folder holds every transcript and the webhook secrets: it is made 0700. A
        folder that exists but cannot be written is left as it is (reading still works).
        """
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.writable:
                info = self.data_dir.stat()
                if os.name == "posix" and info.st_mode & 0o077 and info.st_uid == os.getuid():
                    self.data_dir.chmod(0o700)
                self.log_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            pass  # a read-only or unreachable folder: opening the store says what is wrong
        return self


def resolve_paths(data_dir: str | os.PathLike | None = None) -> Paths:
    """Choose the data folder: the argument, then $TRANSCRIBER_DATA_DIR, then the platform's user data folder."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or platformdirs.user_data_dir(APP_NAME, appauthor=False)
    cache = os.environ.get(CACHE_DIR_ENV) or platformdirs.user_cache_dir(APP_NAME, appauthor=False)
    return Paths(data_dir=Path(chosen).expanduser().resolve(), cache_dir=Path(cache).expanduser().resolve())
