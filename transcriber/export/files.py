"""Writing exports without ever losing a file the user had: one rule, used by every writer.

The rule (``claim_target``): a transcript is written to a path that is free, or that holds
a file transcriber wrote for the same job and nobody changed since, or, when the user asked
(``overwrite``), to any regular file that is not the recording itself. It never writes onto
a folder, device, pipe or symbolic link, and never onto the source media. Otherwise a
folder export takes a numbered name (``name (2).txt``) and an explicit file path is refused
with a message. Files are written atomically and follow the umask, like files any other
program writes into a folder the user chose.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Collection, Iterable, Sequence

from ..errors import TranscriberError
from ..jobs import ExportedFile, Transcript
from .formats import render

# Most file systems allow 255 bytes per name.
MAX_NAME_BYTES = 255


def _current_umask() -> int:
    # There is no way to read the umask without setting it; done once, at import (one thread).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class ExportRefused(TranscriberError):
    """An export would replace or damage a file it must not touch; the message says which and what to do."""


def written_file(path: Path) -> ExportedFile:
    """The record of a file just written, to tell later whether anyone changed it."""
    info = os.stat(path)
    return ExportedFile(str(Path(path).absolute()), info.st_size, info.st_mtime_ns)


def _unchanged(written: ExportedFile, path: Path) -> bool:
    """Whether ``path`` is the file ``written`` describes, untouched since transcriber wrote it."""
    if os.path.abspath(path) != os.path.abspath(written.path):
        return False
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == written.size and info.st_mtime_ns == written.mtime_ns


def fitting_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """``name``, its stem shortened (keeping the extension, never splitting a character) to fit ``limit`` bytes."""
    if len(os.fsencode(name)) <= limit:
        return name
    stem, suffix = os.path.splitext(name)
    digest = "~" + hashlib.sha1(os.fsencode(name)).hexdigest()[:8]  # keeps shortened names distinct
    room = max(0, limit - len(os.fsencode(suffix + digest)))
    shortened = os.fsencode(stem)[:room].decode("utf-8", errors="ignore")  # drops a character cut in two
    return shortened + digest + suffix


def output_name(source_path: str, fmt: str) -> str:
    """``<source name without extension>.<format>``, shortened where the file system would refuse it."""
    return fitting_name(f"{Path(source_path).stem}.{fmt}")


def unique_path(path: Path) -> Path:
    """``path`` if nothing is there, else ``name (2).ext``, ``name (3).ext``, ..."""
    if not os.path.lexists(path):
        return path
    stem, suffix = os.path.splitext(Path(path).name)
    number = 2
    while True:
        candidate = Path(path).with_name(fitting_name(f"{stem} ({number}){suffix}"))
        if not os.path.lexists(candidate):
            return candidate
        number += 1


def _is_source(path: Path, source_path: str | None) -> bool:
    if not source_path:
        return False
    try:
        return os.path.samefile(path, source_path)
    except OSError:
        return os.path.abspath(path) == os.path.abspath(source_path)


def claim_target(
    path: Path,
    *,
    source_path: str | None = None,
    previous: Sequence[ExportedFile] = (),
    overwrite: bool = False,
    numbered: bool = True,
    keep: Collection[Path] = (),
) -> Path:
    """Where an export meant for ``path`` may be written (see the module docstring).

    Args:
        source_path: the job's recording: never written onto.
        previous: files written earlier for the same job: replaced if nobody changed them.
        overwrite: the user asked to replace an existing regular file.
        numbered: when ``path`` is taken, use a numbered name (a folder export) instead of refusing.
        keep: files just written for another file of the same batch: never replaced.

    Raises:
        ExportRefused: the target must not be written and no other name may be chosen.
    """
    path = Path(path)
    kept = {os.path.abspath(item) for item in keep}

    def usable(candidate: Path, asked: bool) -> bool:
        if os.path.abspath(candidate) in kept:
            return False
        if not os.path.lexists(candidate):
            return True
        if _is_source(candidate, source_path):
            return False
        info = os.lstat(candidate)
        if not stat.S_ISREG(info.st_mode):
            return False
        return (asked and overwrite) or any(_unchanged(written, candidate) for written in previous)

    if usable(path, asked=True):
        return path
    if numbered:
        stem, suffix = os.path.splitext(path.name)
        number = 2
        while True:
            candidate = path.with_name(fitting_name(f"{stem} ({number}){suffix}"))
            if usable(candidate, asked=False):
                return candidate
            number += 1
    if _is_source(path, source_path):
        raise ExportRefused(f"{path} is the recording being transcribed; transcriber never writes over it.")
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else ("a link" if stat.S_ISLNK(info.st_mode) else "not a regular file")
        raise ExportRefused(f"{path} is {kind}; transcriber writes transcripts only to new or regular files.")
    raise ExportRefused(
        f"{path} already exists and was not written by transcriber for this job; "
        "choose another name, or add --overwrite to replace it."
    )


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half of one.

    Raises:
        TranscriberError: the folder cannot be written (full disk, permissions); the message says which.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A short temporary name: a long transcript name plus a prefix would pass 255 bytes.
        handle, temporary = tempfile.mkstemp(prefix=".transcriber-", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(handle, 0o666 & ~_UMASK)  # mkstemp makes it 0600; the user's folder, the user's umask
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
    previous: Sequence[ExportedFile] = (),
    named_after: str | None = None,
    keep: Collection[Path] = (),
) -> list[Path]:
    """Write ``transcript`` in each format into the folder ``destination`` (see ``claim_target``).

    Args:
        overwrite: replace existing regular files (the user asked); otherwise a file that
            transcriber did not write for this job is kept and the new one gets a numbered name.
        previous: what was written for this job before (``Job.exports``).
        named_after: the file the exports are named after (default: the job's source; a
            copy of it given to ``transcribe`` gets its transcript under its own name).
        keep: files written for other files of the same batch, never replaced.

    Returns:
        The paths written.

    Raises:
        ExportRefused: ``destination`` is not a folder.
    """
    destination = Path(destination)
    if os.path.lexists(destination) and not destination.is_dir():
        raise ExportRefused(f"{destination} is not a folder; give a folder, or one file name with one format.")
    written = []
    for fmt in formats:
        target = claim_target(
            destination / output_name(named_after or transcript.job.source_path, fmt),
            source_path=transcript.job.source_path,
            previous=previous,
            overwrite=overwrite,
            keep=keep,
        )
        write_atomic(target, render(fmt, transcript))
        written.append(target)
    return written


def export_file(
    transcript: Transcript, fmt: str, target: Path, *, overwrite: bool, previous: Sequence[ExportedFile] = ()
) -> Path:
    """Write one format to the file ``target`` the user named (never a numbered name instead).

    Raises:
        ExportRefused: ``target`` exists and may not be replaced (see ``claim_target``).
    """
    target = claim_target(target, source_path=transcript.job.source_path, previous=previous, overwrite=overwrite,
                          numbered=False)
    write_atomic(target, render(fmt, transcript))
    return target
