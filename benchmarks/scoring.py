"""Word and character error rates, with the normalisation the corpus needs.

References come as their sources give them (upper case, bracketed noise tags, curly
apostrophes): both sides are lower-cased, stripped of punctuation and tags before scoring.
"""

from __future__ import annotations

import re
import unicodedata


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation or bracketed tags."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\[[^\]]*\]|<[^>]*>", " ", text.lower())
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"[^\w\s']", " ", text)
    return [word.strip("'") for word in text.split() if word.strip("'")]


def edit_distance(reference: list, hypothesis: list) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref_item in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_item in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_item != hyp_item))
        previous = current
    return previous[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference words): pool these over files for a corpus WER."""
    ref = normalise(reference)
    return edit_distance(ref, normalise(hypothesis)), len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / max(1, words)


def char_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference characters) without spaces: for languages written without them."""
    ref = list("".join(normalise(reference)))
    return edit_distance(ref, list("".join(normalise(hypothesis)))), len(ref)
