"""The self-test: show, on this machine, that speech becomes text with nothing but what is installed.

It transcribes the built-in sample through the real engine (intake, store, model pool,
decoder) in a throwaway data folder, so the user's queue, settings and exports are never
touched, then checks the words it heard. It also runs the voice activity detector the
engine relies on for quiet passages, because a build that lacks its model file would
otherwise only fail later, on someone's real recording. Installed packages and frozen
builds run it to prove the whole chain works offline.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from .engine.models import DEFAULT_MODEL
from .errors import TranscriberError
from .jobs import JobStatus

SAMPLE = Path(__file__).resolve().with_name("samples") / "welcome.flac"
# Words tiny.en hears reliably in the espeak-ng sample ("checks that" comes out as "checksnet").
SAMPLE_WORDS = ("welcome", "transcriber", "speech", "text", "computer", "network", "connection")
# Most, not all: another CPU's int8 kernels may change a word without anything being broken.
SAMPLE_WORDS_REQUIRED = 5


@dataclass(frozen=True)
class SelfTestResult:
    """What the self-test saw; ``passed`` says whether it is good enough."""

    sample: Path
    model: str
    expected: tuple[str, ...]
    required: int
    text: str = ""
    found: tuple[str, ...] = ()
    model_path: str = ""
    device: str = ""  # where the model ran, its compute type and why ("cpu, int8 (auto: no CUDA GPU found)")
    audio_seconds: float = 0.0
    load_seconds: float = 0.0
    transcribe_seconds: float = 0.0
    speech_detected: bool = False
    multilingual: str = ""  # what the multilingual model (other languages) says the sample speaks
    error: str | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(word for word in self.expected if word not in self.found)

    @property
    def passed(self) -> bool:
        return self.error is None and self.speech_detected and len(self.found) >= self.required

    def problem(self) -> str | None:
        """Why the self-test failed, in one sentence, or None when it passed."""
        if self.error is not None:
            return self.error
        if not self.speech_detected:
            return "the voice activity detector found no speech in the sample"
        if not self.multilingual.startswith("en "):
            return f"the multilingual model (base) did not hear English in the sample: {self.multilingual or 'nothing'}"
        if len(self.found) < self.required:
            return (
                f"only {len(self.found)} of {len(self.expected)} expected words were heard "
                f"(need {self.required}; missing: {', '.join(self.missing)})"
            )
        return None


def words_in(text: str) -> set[str]:
    """The lower-case words of ``text``, without punctuation."""
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def run_self_test(
    sample: Path = SAMPLE,
    *,
    expected: Sequence[str] = SAMPLE_WORDS,
    required: int = SAMPLE_WORDS_REQUIRED,
    model: str = DEFAULT_MODEL,
) -> SelfTestResult:
    """Transcribe ``sample`` with ``model`` in a temporary data folder and check for ``expected`` words.

    Returns:
        The result; expected problems (missing model, unreadable sample) are in its ``error``.
    """
    # Heavy imports (faster-whisper, ctranslate2) stay inside the engine's lazy paths; these are light.
    from .engine.core import Engine
    from .engine.models import ModelPool
    from .store import Store

    base = SelfTestResult(sample=Path(sample), model=model, expected=tuple(expected), required=required)
    # ignore_cleanup_errors: on Windows a file a library still holds open must not turn a pass into a crash.
    with tempfile.TemporaryDirectory(prefix="transcriber-self-test-", ignore_cleanup_errors=True) as folder:
        root = Path(folder)
        store = Store.open(root / "transcriber.db")
        models = ModelPool(root / "cache", workers=1, idle_seconds=3600)
        try:
            store.settings.set("auto_export", "false")
            engine = Engine(store, models, default_export_dir=root / "transcripts")

            started = time.monotonic()
            choice = models.device_choice()
            settings, _ = models.acquire(model)
            load_seconds = time.monotonic() - started
            device = f"{settings.device}, {settings.compute_type} ({models.device_note(settings) or choice.reason})"
            models.release(settings)  # stays loaded (idle_seconds) for the job below

            job = engine.add_file(str(sample), user="self-test", options=engine.default_options(model=model))
            started = time.monotonic()
            engine.run_until_idle()
            transcribe_seconds = time.monotonic() - started
            job = store.jobs.require_job(job.id)
            text = " ".join(segment.text.strip() for segment in store.transcripts.segments(job.id)).strip()
            heard = words_in(text)
            result = replace(
                base,
                text=text,
                found=tuple(word for word in expected if word.lower() in heard),
                model_path=settings.path,
                device=device,
                audio_seconds=job.duration_seconds,
                load_seconds=load_seconds,
                transcribe_seconds=transcribe_seconds,
                speech_detected=_speech_detected(Path(sample)),
                multilingual=_multilingual(models, Path(sample)),
                error=None if job.status is JobStatus.COMPLETED else f"the job ended {job.status.value}: {job.error}",
            )
        except TranscriberError as error:
            result = replace(base, error=str(error))
        except Exception as error:  # a diagnostic must report any breakage (a missing library or data file) plainly
            result = replace(base, error=f"{type(error).__name__}: {error}")
        finally:
            models.shutdown()
            store.close()
    return result


def _multilingual(models, sample: Path) -> str:
    """The language the multilingual model hears in the sample, with its probability (``en (p=0.97)``)."""
    from .engine.routing import MULTILINGUAL_MODEL
    from .engine.whisper import WhisperBackend

    settings, model = models.acquire(MULTILINGUAL_MODEL)  # joins base into the temporary cache
    try:
        language, probability = WhisperBackend(model).spoken_language(str(sample))
    finally:
        models.release(settings)
    return f"{language} (p={probability:.2f})"


def _speech_detected(sample: Path) -> bool:
    """Run the engine's voice activity check on the sample (loads faster-whisper's Silero VAD model)."""
    import numpy as np

    from .audio.decode import AudioStream
    from .engine.whisper import window_has_speech

    audio = np.concatenate(list(AudioStream(sample).blocks()))
    return window_has_speech(audio)


def report(result: SelfTestResult, version: str, out=sys.stdout, err=sys.stderr) -> int:
    """Print what the self-test heard and how long it took; returns the exit status (0 = passed)."""
    where = f"frozen build in {Path(sys.executable).parent}" if getattr(sys, "frozen", False) else f"Python {sys.executable}"
    print(f"transcriber {version} self-test ({where})", file=out)
    print(f"  sample: {result.sample}", file=out)
    if result.model_path:
        print(f"  model:  {result.model} from {result.model_path}, loaded in {result.load_seconds:.1f} s", file=out)
        print(f"  device: {result.device}", file=out)
    if result.audio_seconds:
        speed = result.audio_seconds / result.transcribe_seconds if result.transcribe_seconds else 0.0
        print(f"  heard:  {result.text!r}", file=out)
        print(
            f"  words:  {len(result.found)} of {len(result.expected)} expected words "
            f"(need {result.required}){'; missing: ' + ', '.join(result.missing) if result.missing else ''}",
            file=out,
        )
        print(f"  voice activity detector: {'speech found' if result.speech_detected else 'NO speech found'}", file=out)
        print(f"  other languages (base): the sample speaks {result.multilingual or '?'}", file=out)
        print(
            f"  time:   {result.audio_seconds:.1f} s of audio transcribed in {result.transcribe_seconds:.1f} s "
            f"({speed:.1f}x real time)",
            file=out,
        )
    problem = result.problem()
    if problem is None:
        print("self-test passed", file=out)
        return 0
    print(f"self-test FAILED: {problem}", file=err)
    return 1
