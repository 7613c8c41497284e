"""The ``auto`` model: English to the fast English-only model, every other language to the multilingual one.

A job whose model is ``auto`` starts by decoding its first window with ``tiny.en``. How
sure that decode is tells English apart cheaply: on the corpus, English speech scored an
average log-probability of -0.19 to -0.59 and other languages -0.76 to -1.55 (tiny.en
then writes confident English-sounding nonsense). A sure English window keeps its text and
the job goes on with ``tiny.en``, so English pays nothing for the choice; anything less
sure asks ``base`` which language is spoken (on 10 s of speech: 24 of 24 corpus clips right)
and is decoded by ``base`` in that language, unless it is English that ``tiny.en`` still
read reasonably. The choice is stored on the job, so a job that continues after a crash
never chooses again. A job to translate goes to ``base`` at once (an English-only model
cannot translate). Plain functions here; ``execution`` does the decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

AUTO = "auto"
ENGLISH_MODEL = "tiny.en"
MULTILINGUAL_MODEL = "base"

# tiny.en's mean log-probability over the first window's segments.
SURE_ENGLISH = -0.65  # at or above: English, no second opinion needed
STILL_READABLE = -0.9  # English that tiny.en decodes at least this well stays with tiny.en


@dataclass(frozen=True)
class Route:
    """The model and language a job is decoded with, and why (for the log and the job's note)."""

    model: str
    language: str
    reason: str


def for_given_language(language: str) -> Route:
    """The route when the user named the language: no detection at all."""
    if language == "en":
        return Route(ENGLISH_MODEL, "en", "English, as given")
    return Route(MULTILINGUAL_MODEL, language, f"{language}, as given")


def for_translation(language: str) -> Route:
    """The route of a job to translate: always the multilingual model (tiny.en cannot translate)."""
    return Route(MULTILINGUAL_MODEL, language, f"translating {language} to English")


def sure_english(first_window_logprob: float | None) -> bool:
    """Whether tiny.en's first window reads as English with no doubt."""
    return first_window_logprob is not None and first_window_logprob >= SURE_ENGLISH


def after_detection(first_window_logprob: float | None, language: str, probability: float) -> Route:
    """The route once ``base`` has said which language is spoken (tiny.en was not sure)."""
    if language == "en":
        if first_window_logprob is not None and first_window_logprob >= STILL_READABLE:
            return Route(ENGLISH_MODEL, "en", f"English (p={probability:.2f})")
        return Route(MULTILINGUAL_MODEL, "en", f"English that tiny.en reads poorly (p={probability:.2f})")
    return Route(MULTILINGUAL_MODEL, language, f"{language} (p={probability:.2f})")


def choose(first_window_logprob: float | None, detect: Callable[[], tuple[str, float]]) -> Route:
    """The route from tiny.en's first window, asking ``detect()`` (base: language, probability) only when unsure."""
    if sure_english(first_window_logprob):
        return Route(ENGLISH_MODEL, "en", f"English (tiny.en sure: {first_window_logprob:.2f})")
    return after_detection(first_window_logprob, *detect())
