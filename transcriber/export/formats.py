"""Renderers: Transcript -> text, one per format. Pure functions, no I/O."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Callable

from ..jobs import Segment, Transcript


def _clock(seconds: float, decimal: str) -> str:
    milliseconds = int(round(max(0.0, seconds) * 1000))
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{milliseconds:03d}"


def _cue_text(segment: Segment) -> str:
    # A blank line would end the cue early in both SRT and WebVTT; "-->" would confuse WebVTT.
    lines = [line.strip() for line in segment.text.strip().splitlines() if line.strip()]
    return "\n".join(lines).replace("-->", "->") or "…"


def _spoken(transcript: Transcript) -> list[Segment]:
    return [segment for segment in transcript.segments if segment.text.strip()]


def render_txt(transcript: Transcript) -> str:
    return "".join(segment.text.strip() + "\n" for segment in _spoken(transcript))


def render_srt(transcript: Transcript) -> str:
    blocks = []
    for number, segment in enumerate(_spoken(transcript), start=1):
        end = max(segment.end, segment.start + 0.001)
        blocks.append(f"{number}\n{_clock(segment.start, ',')} --> {_clock(end, ',')}\n{_cue_text(segment)}\n")
    return "\n".join(blocks)


def render_vtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    for segment in _spoken(transcript):
        end = max(segment.end, segment.start + 0.001)
        blocks.append(f"{_clock(segment.start, '.')} --> {_clock(end, '.')}\n{_cue_text(segment)}\n")
    return "\n".join(blocks)


def render_tsv(transcript: Transcript) -> str:
    """Tab-separated start and end in integer milliseconds, then the text (tabs and newlines flattened)."""
    lines = ["start\tend\ttext"]
    for segment in _spoken(transcript):
        text = " ".join(segment.text.split())
        lines.append(f"{int(round(segment.start * 1000))}\t{int(round(segment.end * 1000))}\t{text}")
    return "\n".join(lines) + "\n"


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


def render_json(transcript: Transcript) -> str:
    job = transcript.job
    document = {
        "id": job.id,
        "user": job.user,
        "source": job.source_path,
        "file_name": job.file_name,
        "status": job.status.value,
        "model": job.model,
        "language": job.language,
        "duration_seconds": round(job.duration_seconds, 3),
        "processing_seconds": round(job.processing_seconds, 3),
        "content_sha256": job.content_hash,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
        "error": job.error,
        "warning": job.warning,
        "text": transcript.text,
        "segments": [segment.as_dict() for segment in transcript.segments],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


FORMATS: dict[str, Callable[[Transcript], str]] = {
    "txt": render_txt,
    "srt": render_srt,
    "vtt": render_vtt,
    "json": render_json,
    "tsv": render_tsv,
}


def render(fmt: str, transcript: Transcript) -> str:
    """Render ``transcript`` as ``fmt`` (one of FORMATS).

    Raises:
        ValueError: unknown format.
    """
    try:
        renderer = FORMATS[fmt.lower()]
    except KeyError:
        raise ValueError(f"Unknown format {fmt!r}; choose from {', '.join(FORMATS)}.") from None
    return renderer(transcript)
