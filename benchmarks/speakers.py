"""Speaker diarization figures: DER on conversations built from the corpus, speed, memory on a long file.

    nice python3 benchmarks/speakers.py [--corpus ../shared/corpus] [--long-minutes 20]

DER per conversation (tests/conversations.py: known turns) for ``auto`` and for the true
count; speed as audio seconds per second of diarization (one core), next to the
transcription speed README reports; peak RSS growth while diarizing a long file made of
the conversations repeated (the audio streams, only voice prints are kept).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conversations import CONVERSATIONS, build, der  # noqa: E402
from transcriber.audio.decode import SAMPLE_RATE, AudioStream  # noqa: E402
from transcriber.engine import speakers as sp  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--out", type=Path, default=Path("/tmp/speakers-bench"))
    parser.add_argument("--long-minutes", type=float, default=20)
    args = parser.parse_args()
    rows, audio_total, spent_total = [], 0.0, 0.0
    for name in CONVERSATIONS:
        built = build(args.corpus, name, args.out)
        started = time.monotonic()
        auto = sp.diarize(sp.Request(str(built.path), built.duration, "auto"))
        spent = time.monotonic() - started
        fixed = sp.diarize(sp.Request(str(built.path), built.duration, str(built.speakers)))
        audio_total += built.duration
        spent_total += spent
        rows.append((name, built.speakers, len({t.label for t in auto}), der(built, auto), der(built, fixed), built.duration / spent))
    print("| conversation | speakers | auto found | DER auto | DER given count | speed (x real time) |")
    print("|---|---|---|---|---|---|")
    for name, true, found, d_auto, d_fixed, speed in rows:
        print(f"| {name} | {true} | {found} | {d_auto:.1%} | {d_fixed:.1%} | {speed:.0f}x |")
    print(f"mean DER auto {np.mean([r[3] for r in rows]):.1%}, given count {np.mean([r[4] for r in rows]):.1%}; "
          f"speed {audio_total / spent_total:.0f}x real time")
    # A long file: the conversations one after another, repeated.
    pieces = [np.concatenate(list(AudioStream(args.out / f"conversation-{name}.wav").blocks())) for name in CONVERSATIONS]
    one_round = np.concatenate(pieces)
    repeats = int(np.ceil(args.long_minutes * 60 * SAMPLE_RATE / len(one_round)))
    long_path = args.out / "long.wav"
    with soundfile.SoundFile(long_path, "w", SAMPLE_RATE, 1, "PCM_16") as out:
        for _ in range(repeats):
            out.write(one_round)
    duration = repeats * len(one_round) / SAMPLE_RATE
    del pieces, one_round
    before = peak_rss_mb()
    started = time.monotonic()
    turns = sp.diarize(sp.Request(str(long_path), duration, "auto"))
    spent = time.monotonic() - started
    print(f"long file {duration / 60:.1f} min: {len({t.label for t in turns})} speakers found, {spent:.0f} s "
          f"({duration / spent:.0f}x real time), peak RSS {before:.0f} MB before, {peak_rss_mb():.0f} MB after")


if __name__ == "__main__":
    main()
