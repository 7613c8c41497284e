"""Checking files before they enter the queue: existence, size, readability, content."""

from __future__ import annotations

import hashlib
import os
from stat import S_ISREG
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..audio.decode import MEDIA_EXTENSIONS, MediaInfo, format_clock, probe
from ..display import shown
from ..errors import AudioError, IntakeRefused
from ..limits import Limits, size_refusal

_REFUSAL_REASON = {"missing": "missing", "unreadable": "unreadable", "empty": "empty", "no_audio": "no_audio"}


@dataclass(frozen=True)
class FileFacts:
    """What intake learned about a file."""

    path: str
    size_bytes: int
    mtime: float
    content_hash: str
    media: MediaInfo

    @property
    def warning(self) -> str | None:
        if self.media.truncated:
            return (
                f"The file is truncated: its header declares {format_clock(self.media.declared_seconds or 0)} "
                f"but it holds only {format_clock(self.media.duration_seconds)} of audio."
            )
        return None


def content_hash(path: str | os.PathLike) -> str:
    """sha256 of the file's bytes (hex): identifies the recording whatever its name."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expand(paths: Iterable[str | os.PathLike]) -> Iterator[tuple[str, IntakeRefused | None]]:
    """Each file to consider, with folders searched recursively for media (by extension).

    Yields ``(path, None)`` for candidates and ``(path, refusal)`` for a folder holding no
    media, a folder that cannot be read (the rest of the tree is still searched), or a
    name that cannot be looked at (a symbolic link that loops). Symbolic links to folders
    are not followed, so a link cannot make the search go round forever.
    """
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            is_folder = path.is_dir()
        except OSError as error:  # a loop of links, a name too long, ...
            yield str(path.absolute()), IntakeRefused(str(path), "unreadable", f"{shown(path)}: {error.strerror or error}.")
            continue
        if not is_folder:
            yield str(path.absolute()), None
            continue
        found, unreadable = False, []

        def note(error: OSError) -> None:
            unreadable.append(error)

        for root, dirs, files in os.walk(path, onerror=note):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if Path(name).suffix.lower() in MEDIA_EXTENSIONS and not name.startswith("."):
                    found = True
                    yield str(Path(root, name).absolute()), None
        for error in unreadable:
            folder = error.filename or str(path)
            reason = "permission denied" if isinstance(error, PermissionError) else (error.strerror or str(error))
            yield str(folder), IntakeRefused(
                str(folder), "unreadable", f"{shown(folder)}: the folder cannot be read ({reason}); its files were skipped."
            )
        if not found and not unreadable:
            yield str(path), IntakeRefused(str(path), "no_media", f"{shown(path)}: the folder holds no audio or video files.")


def inspect(path: str, limits: Limits) -> FileFacts:
    """Check that ``path`` can be transcribed, cheapest checks first.

    Raises:
        IntakeRefused: with a message naming the file and the reason.
    """
    name = shown(Path(path).name)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise IntakeRefused(path, "missing", f"{name}: file not found ({shown(path)}).") from None
    except PermissionError:
        raise IntakeRefused(path, "unreadable", f"{name}: permission denied; the file cannot be read.") from None
    except OSError as error:  # a loop of symbolic links, an unreachable network share, ...
        raise IntakeRefused(path, "unreadable", f"{name} cannot be read: {error.strerror or error}.") from None
    if Path(path).is_dir():
        raise IntakeRefused(path, "not_media", f"{name} is a folder.")
    if not S_ISREG(stat.st_mode):  # a device or a pipe would be read forever
        raise IntakeRefused(path, "not_media", f"{name} is not a regular file (a device, pipe or socket).")
    if stat.st_size == 0:
        raise IntakeRefused(path, "empty", f"{name} is empty (0 bytes).")
    too_large = size_refusal(file_name=name, size_bytes=stat.st_size, max_file_size_mb=limits.max_file_size_mb)
    if too_large:
        raise IntakeRefused(path, "too_large", too_large)
    if not os.access(path, os.R_OK):
        raise IntakeRefused(path, "unreadable", f"{name}: permission denied; the file cannot be read.")
    try:
        media = probe(path)
    except AudioError as error:
        raise IntakeRefused(path, _REFUSAL_REASON.get(error.reason, "not_media"), str(error)) from None
    try:
        digest = content_hash(path)
    except OSError as error:
        raise IntakeRefused(path, "unreadable", f"{name} cannot be read: {error.strerror or error}.") from None
    return FileFacts(path=path, size_bytes=stat.st_size, mtime=stat.st_mtime, content_hash=digest, media=media)


def source_changed(path: str, size_bytes: int, mtime: float, expected_hash: str) -> str | None:
    """Why the file at ``path`` is no longer the one that was queued, or None if it is."""
    name = Path(path).name
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return f"{name} was moved or deleted after it was queued ({path})."
    except OSError as error:
        return f"{name} can no longer be read: {error.strerror or error}."
    if stat.st_size == size_bytes and abs(stat.st_mtime - mtime) < 1e-6:
        return None
    try:
        if stat.st_size == size_bytes and content_hash(path) == expected_hash:
            return None
    except OSError as error:
        return f"{name} can no longer be read: {error.strerror or error}."
    return f"{name} changed after it was queued (its content is different); add it again to transcribe the new version."
