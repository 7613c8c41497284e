"""Writing exports: atomically, and for automatic exports never over an existing file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from ..errors import TranscriberError
from ..jobs import Transcript
from .formats import render


def output_name(source_path: str, fmt: str) -> str:
    """``<source name without extension>.<format>``."""
    return f"{Path(source_path).stem}.{fmt}"


def unique_path(path: Path) -> Path:
    """``path`` if free, else ``name (2).ext``, ``name (3).ext``, ..."""
    if not path.exists():
        return path
    number = 2
    while True:
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
        if not candidate.exists():
            return candidate
        number += 1


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half of one.

    Raises:
        TranscriberError: the folder cannot be written (full disk, permissions); the message says which.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        reason = "the disk is full" if error.errno == 28 else (error.strerror or str(error))
        raise TranscriberError(f"Could not write {path}: {reason}.") from error


def export_transcript(
    transcript: Transcript,
    formats: Iterable[str],
    destination: Path,
    *,
    overwrite: bool,
) -> list[Path]:
    """Write ``transcript`` in each format into the folder ``destination``.

    Args:
        overwrite: replace existing files (an explicit export); when False (automatic
            export), an existing file is kept and the new one gets a numbered name.

    Returns:
        The paths written.
    """
    written = []
    for fmt in formats:
        text = render(fmt, transcript)
        target = Path(destination) / output_name(transcript.job.source_path, fmt)
        if not overwrite:
            target = unique_path(target)
        write_atomic(target, text)
        written.append(target)
    return written
