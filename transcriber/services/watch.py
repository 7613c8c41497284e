"""Watch folders: queue new media files once they stop growing, then apply the folder's rule.

Each scan walks every watch folder (recursively, media only: ``intake.expand``, as for
``transcriber add DIR``), remembers each file's size and mtime in the store, and queues a
file once neither has changed for ``settle_seconds``. A file whose content was already
transcribed with the same options (or is queued) is marked a duplicate and skipped. A
file the queue limit refuses waits and is tried again at every scan, so it is picked up
as room frees. Once a file's job completes, the rule's exports are written and the
source is kept or moved. Everything it decides is in the store, so a restart carries on.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..background import BackgroundService
from ..display import shown
from ..engine import intake
from ..limits import queue_full
from ..errors import AutomationError, IntakeRefused, StoreError, TranscriberError
from ..jobs import TRANSCRIBE, JobStatus
from ..records import WatchFile, WatchFileState, WatchFolder

log = logging.getLogger(__name__)


def parse_after(text: str | None) -> tuple[str, str | None]:
    """``keep`` or ``move:DIR`` -> (after, move_to).

    Raises:
        AutomationError: anything else.
    """
    text = (text or "keep").strip()
    if text == "keep":
        return "keep", None
    if text.startswith("move:") and text[5:].strip():
        return "move", str(Path(text[5:].strip()).expanduser().absolute())
    raise AutomationError(f"--after must be keep or move:DIR, not {text!r}.")


def check_rule(folder: str, output_dir: str | None, move_to: str | None) -> None:
    """Refuse a rule that could never take a file: exports or moved files landing in the watched folder's place.

    An output or move folder that is the watched folder itself, or one of its parents,
    would hold every file the scan finds, and the scan skips what is in them; one inside
    the watched folder is fine (its contents are skipped).

    Raises:
        AutomationError: the rule's folders overlap that way; the message says which.
    """
    watched = Path(folder).resolve()
    for label, other in (("--output", output_dir), ("--after move:", move_to)):
        if not other:
            continue
        target = Path(other).expanduser().resolve()
        if target == watched or target in watched.parents:
            raise AutomationError(
                f"{label} {shown(target)} is the watched folder or contains it, so every file would count as "
                "already handled; choose a folder outside it (or a subfolder of it)."
            )


def _inside(path: Path, folder: str | None) -> bool:
    if not folder:
        return False
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _free_name(target: Path) -> Path:
    """``target``, or ``name (2).ext``, ... if it exists: a move never overwrites."""
    candidate, number = target, 2
    while candidate.exists():
        candidate = target.with_name(f"{target.stem} ({number}){target.suffix}")
        number += 1
    return candidate


@dataclass
class ScanReport:
    """What one scan did, by file path."""

    queued: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)


class WatchService(BackgroundService):
    """Scans the watch folders of an engine's data folder; ``start`` runs scans on a thread of its own.

    Args:
        engine: the Engine whose store holds the folders and whose intake queues files.
        settle_seconds: how long a file's size and mtime must stay the same before it is queued.
        interval: seconds between scans on the thread.
    """

    def __init__(self, engine, *, settle_seconds: float = 5.0, interval: float = 2.0):
        super().__init__()
        self.engine = engine
        self.store = engine.store
        self.settle_seconds = settle_seconds
        self.interval = interval
        self._lock = threading.Lock()
        self._scans = 0  # completed since start()

    # ---------------------------------------------------------------- scan

    def scan(self, now: float | None = None) -> ScanReport:
        """Look at every watch folder once: follow up finished jobs, then notice and queue files."""
        now = time.time() if now is None else now
        report = ScanReport()
        with self._lock:
            folders = {folder.id: folder for folder in self.store.automation.watch_folders()}
            self._follow_up(folders, report)
            for folder in folders.values():
                self._scan_folder(folder, now, report)
            self._scans += 1
        return report

    def is_idle(self) -> bool:
        """True once a scan ran and no file is settling, waiting for room or waiting for its rule to apply."""
        if not self.store.automation.watch_folders():
            return True
        busy = [WatchFileState.SETTLING, WatchFileState.WAITING, WatchFileState.QUEUED]
        return self._scans > 0 and not self.store.automation.watch_files(states=busy)

    def _scan_folder(self, folder: WatchFolder, now: float, report: ScanReport) -> None:
        root = Path(folder.path)
        if not root.is_dir():
            return
        known = {item.path: item for item in self.store.automation.watch_files(folder.id)}
        present = set()
        for path, refusal in intake.expand([root]):
            if refusal is not None:
                continue  # no media in the folder (yet)
            candidate = Path(path)
            # Sources moved by the rule and exports written by it may sit inside the folder.
            if _inside(candidate, folder.move_to) or _inside(candidate, folder.output_dir):
                continue
            try:
                if self._look_at(folder, path, known.get(path), now, report):
                    present.add(path)
            except StoreError:
                raise
            except Exception:  # one odd file must never stop the others from being taken
                log.exception("watch folder %s: %s could not be looked at", folder.path, shown(path))
                present.add(path)
        for path, seen in known.items():
            if path not in present and seen.state in (WatchFileState.SETTLING, WatchFileState.WAITING):
                self.store.automation.forget_watch_file(seen.id)  # gone before it was taken (a renamed temporary file)

    def _look_at(self, folder: WatchFolder, path: str, seen: WatchFile | None, now: float, report: ScanReport) -> bool:
        """Note a file, follow its growth, take it once it settled; False if it vanished since the listing."""
        try:
            stat = os.stat(path)
        except OSError:
            return False
        if seen is None:
            self.store.automation.note_watch_file(folder.id, path, stat.st_size, stat.st_mtime, now, WatchFileState.SETTLING)
            return True
        if seen.size_bytes != stat.st_size or seen.mtime != stat.st_mtime:
            # Still growing, or a new version of a file handled before: settle again.
            self.store.automation.update_watch_file(
                seen.id, size_bytes=stat.st_size, mtime=stat.st_mtime, changed_at=now,
                state=WatchFileState.SETTLING if seen.state != WatchFileState.QUEUED else seen.state,
            )
            return True
        if seen.state in (WatchFileState.SETTLING, WatchFileState.WAITING) and now - seen.changed_at >= self.settle_seconds:
            self._take(folder, seen, report)
        return True

    def _take(self, folder: WatchFolder, seen: WatchFile, report: ScanReport) -> None:
        """Queue a settled file by the folder's rule, or say why not."""
        settings = self.engine.read_settings()
        full = queue_full(
            user=folder.user, queued_for_user=self.store.jobs.count_queued(folder.user), max_queued=settings.max_queued_per_user
        )
        if full:
            # Checked before hashing: files waiting for room are looked at every scan.
            if seen.state != WatchFileState.WAITING:
                self.store.automation.update_watch_file(seen.id, state=WatchFileState.WAITING, message=f"waiting for room: {full}")
            report.waiting.append(seen.path)
            return
        # A watch folder has its own model and language and always transcribes: the task setting is
        # the default of files a person adds, and a folder on tiny.en must not start failing when it changes.
        options = self.engine.default_options(model=folder.model, language=folder.language, task=TRANSCRIBE,
                                              settings=settings)
        try:
            digest = intake.content_hash(seen.path)
        except OSError as error:
            self.store.automation.update_watch_file(seen.id, state=WatchFileState.REFUSED, message=str(error))
            report.refused.append(seen.path)
            return
        duplicate = self.store.jobs.find_duplicate(digest, options)
        if duplicate is not None:
            self.store.automation.update_watch_file(
                seen.id,
                state=WatchFileState.DUPLICATE,
                job_id=duplicate.id,
                message=f"same content and settings as job {duplicate.id}",
            )
            report.duplicates.append(seen.path)
            log.info("watch folder %s: %s skipped, a duplicate of job %d", folder.path, seen.path, duplicate.id)
            return
        try:
            job = self.engine.add_file(seen.path, user=folder.user, options=options)
        except IntakeRefused as refusal:
            if refusal.reason in ("queue_limit", "store"):
                self.store.automation.update_watch_file(seen.id, state=WatchFileState.WAITING, message=str(refusal))
                report.waiting.append(seen.path)
            else:
                self.store.automation.update_watch_file(seen.id, state=WatchFileState.REFUSED, message=str(refusal))
                report.refused.append(seen.path)
            return
        self.store.automation.update_watch_file(seen.id, state=WatchFileState.QUEUED, job_id=job.id, message=None)
        report.queued.append(seen.path)
        log.info("watch folder %s: queued job %d for %s", folder.path, job.id, seen.path)

    def _follow_up(self, folders: dict[int, WatchFolder], report: ScanReport) -> None:
        """Apply the rule to files whose jobs finished: export, keep or move the source."""
        for seen in self.store.automation.watch_files(states=[WatchFileState.QUEUED]):
            folder = folders.get(seen.folder_id)
            job = self.store.jobs.get_job(seen.job_id) if seen.job_id is not None else None
            if folder is None:
                continue
            if job is None:
                self.store.automation.update_watch_file(seen.id, state=WatchFileState.FAILED, message="its job was removed")
                continue
            if job.status is JobStatus.COMPLETED:
                self._finish(folder, seen, job)
                report.finished.append(seen.path)
            elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                self.store.automation.update_watch_file(seen.id, state=WatchFileState.FAILED, message=job.error or job.status.value)
                report.finished.append(seen.path)

    def _finish(self, folder: WatchFolder, seen: WatchFile, job) -> None:
        notes = []
        if folder.output_dir:
            formats = list(folder.formats) or self.engine.read_settings().export_format_list or ["txt"]
            try:
                self.engine.export(job.id, formats, Path(folder.output_dir), overwrite=False)
            except TranscriberError as error:
                notes.append(f"export failed: {error}")
        path, size, mtime = seen.path, seen.size_bytes, seen.mtime
        if folder.after == "move" and folder.move_to and Path(seen.path).exists():
            try:
                relative = Path(seen.path).relative_to(folder.path)
            except ValueError:
                relative = Path(Path(seen.path).name)
            target = _free_name(Path(folder.move_to) / relative)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(seen.path, target)
                path = str(target)
            except OSError as error:
                notes.append(f"could not move it to {folder.move_to}: {error.strerror or error}")
        if path != seen.path:
            notes.append(f"moved to {path}")
        self.store.automation.update_watch_file(
            seen.id, state=WatchFileState.DONE, size_bytes=size, mtime=mtime, message="; ".join(notes) or None
        )

    # -------------------------------------------------------------- thread

    name = "watch-folders"

    def start(self) -> None:
        self._scans = 0
        super().start()

    def step(self) -> bool:
        try:
            self.scan()
        except StoreError as error:
            log.warning("watch folders not scanned: %s", error)
        return False

    def cleanup(self) -> None:
        self.store.close()  # this thread's connection
