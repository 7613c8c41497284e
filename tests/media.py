"""Test media made on the fly with ffmpeg from espeak-ng speech: formats, videos and broken files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def make_bad_inputs(folder: Path, speech: Path) -> dict[str, Path]:
    """Broken and unusual inputs, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    files["empty"] = folder / "empty.wav"
    files["empty"].write_bytes(b"")

    files["text"] = folder / "notes.mp3"  # a text file with a media extension
    files["text"].write_text("These are meeting notes, not a recording.\n" * 50)

    files["random"] = folder / "noise.m4a"
    files["random"].write_bytes(bytes((i * 7919) % 251 for i in range(200_000)))

    wav = folder / "full.wav"
    ffmpeg("-i", str(speech), "-ar", "16000", "-ac", "1", str(wav))
    data = wav.read_bytes()
    files["truncated"] = folder / "truncated.wav"  # header declares the full length
    files["truncated"].write_bytes(data[: len(data) // 3])

    mp3 = folder / "speech.mp3"
    ffmpeg("-i", str(speech), "-b:a", "64k", str(mp3))
    raw = bytearray(mp3.read_bytes())
    start = len(raw) // 3
    raw[start : start + 6000] = bytes(6000)  # a damaged stretch in the middle
    files["damaged"] = folder / "damaged.mp3"
    files["damaged"].write_bytes(bytes(raw))

    files["video_no_audio"] = folder / "silent_video.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=3", "-pix_fmt", "yuv420p", str(files["video_no_audio"]))

    files["video"] = folder / "talk.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-i", str(speech),
        "-shortest", "-pix_fmt", "yuv420p", "-c:a", "aac", str(files["video"]),
    )
    files["m4a"] = folder / "speech.m4a"
    ffmpeg("-i", str(speech), "-c:a", "aac", str(files["m4a"]))
    files["opus"] = folder / "speech.opus"
    ffmpeg("-i", str(speech), "-c:a", "libopus", str(files["opus"]))
    files["good"] = wav
    return files
