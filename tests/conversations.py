"""Multi-speaker conversations built from ../shared/corpus clips of different speakers, with their true turns.

Each clip is one speaker. A conversation alternates pieces of the clips (each clip cut at
its quietest moments near even shares), with a short pause between turns, so who speaks
when is known exactly. ``der`` scores turns against that truth (diarization error rate:
missed speech, false alarms and confusion, over the truth's speech, after the best
one-to-one mapping of labels).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from transcriber.audio.decode import SAMPLE_RATE, AudioStream

FRAME = 0.05  # scoring resolution, seconds

# Clips of distinct speakers (read and meeting speech, English), each at least 4.9 s.
SPEAKER_CLIPS = (
    "en_jfk.flac",
    "en_lhotse_librispeech_2412-153948-0000.flac",
    "en_mfa_librispeech_61-70968-0000.flac",
    "en_leopard_test.wav",
    "en_lhotse_ami_ES2011a_40-46s.wav",
    "en_mfa_acoustic_corpus.wav",
)

# (clips by index into SPEAKER_CLIPS, pieces per clip): the conversations of tests and the benchmark.
CONVERSATIONS = {
    "two": ((0, 1), 2),
    "two-b": ((5, 3), 2),
    "three": ((1, 0, 2), 2),
    "three-b": ((5, 1, 4), 2),
    "four": ((0, 1, 3, 5), 2),
}


@dataclass(frozen=True)
class Built:
    path: Path
    duration: float
    turns: tuple[tuple[float, float, int], ...]  # (start, end, speaker) of each piece as placed
    speech: np.ndarray  # per FRAME: the true speaker, or -1 where nobody speaks (pauses too)

    @property
    def speakers(self) -> int:
        return len({label for _, _, label in self.turns})


def _load(path: Path) -> np.ndarray:
    return np.concatenate(list(AudioStream(path).blocks()))


def _frame_rms(samples: np.ndarray) -> np.ndarray:
    size = int(FRAME * SAMPLE_RATE)
    count = len(samples) // size
    return np.sqrt((samples[: count * size].reshape(count, size) ** 2).mean(axis=1) + 1e-12)


def _cuts(samples: np.ndarray, pieces: int) -> list[int]:
    """Sample positions splitting a clip into ``pieces``, each at the quietest 50 ms near an even share."""
    rms = _frame_rms(samples)
    size = int(FRAME * SAMPLE_RATE)
    cuts = [0]
    for share in range(1, pieces):
        centre = len(rms) * share // pieces
        low, high = max(1, centre - len(rms) // (3 * pieces)), min(len(rms) - 1, centre + len(rms) // (3 * pieces))
        cuts.append((low + int(np.argmin(rms[low:high]))) * size)
    cuts.append(len(samples))
    return cuts


def build(corpus: Path, name: str, out_dir: Path, pause: float = 0.6) -> Built:
    """Write conversation ``name`` (see CONVERSATIONS) as a 16 kHz WAV in ``out_dir``."""
    clip_indexes, pieces = CONVERSATIONS[name]
    clips = [_load(corpus / SPEAKER_CLIPS[index]) for index in clip_indexes]
    split = [[clip[a:b] for a, b in zip(cuts, cuts[1:])] for clip, cuts in ((c, _cuts(c, pieces)) for c in clips)]
    gap = np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32)
    audio, turns, frames, position = [], [], [], 0
    for piece_index in range(pieces):
        for speaker, clip_pieces in enumerate(split):
            piece = clip_pieces[piece_index]
            audio += [piece, gap]
            turns.append((position / SAMPLE_RATE, (position + len(piece)) / SAMPLE_RATE, speaker))
            rms = _frame_rms(np.concatenate([piece, gap]))
            loud = rms > rms.max() * 10 ** (-35 / 20)  # the clip's own pauses are nobody speaking
            frames.append(np.where(loud, speaker, -1))
            position += len(piece) + len(gap)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"conversation-{name}.wav"
    samples = np.concatenate(audio)
    soundfile.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
    speech = np.concatenate(frames)
    return Built(path, len(samples) / SAMPLE_RATE, tuple(turns), speech)


def hypothesis_frames(turns, frames: int) -> np.ndarray:
    """Per FRAME, the label of the turn covering it (``SpeakerTurn`` or (start, end, label)), else -1."""
    labels = np.full(frames, -1)
    for turn in turns:
        start, end, label = (turn.start, turn.end, turn.label) if hasattr(turn, "label") else turn
        labels[int(round(start / FRAME)) : int(round(end / FRAME))] = label
    return labels


def der(built: Built, turns) -> float:
    """Diarization error rate of ``turns`` against the conversation's truth, with the best label mapping."""
    truth = built.speech
    guess = hypothesis_frames(turns, len(truth))
    reference = truth >= 0
    missed = np.sum(reference & (guess < 0))
    false_alarm = np.sum(~reference & (guess >= 0))
    true_labels = sorted(set(truth[reference].tolist()))
    guess_labels = sorted(set(guess[guess >= 0].tolist()))
    both = reference & (guess >= 0)
    best_correct = 0
    width = max(len(true_labels), len(guess_labels))
    padded = guess_labels + [None] * (width - len(guess_labels))
    for order in itertools.permutations(padded, len(true_labels)):
        correct = sum(np.sum(both & (truth == t) & (guess == g)) for t, g in zip(true_labels, order) if g is not None)
        best_correct = max(best_correct, correct)
    confusion = np.sum(both) - best_correct
    return float(missed + false_alarm + confusion) / max(1, int(np.sum(reference)))
