"""Renderers: Transcript -> text, one per format. Pure functions, no I/O."""

from __future__ import annotations

import json
from typing import Callable

from ..jobs import Segment, Transcript
from ..timefmt import iso_utc


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
    """One line per segment; with speakers, one ``Name: ...`` paragraph per turn."""
    if not transcript.has_speakers:
        return "".join(segment.text.strip() + "\n" for segment in _spoken(transcript))
    paragraphs: list[tuple[str | None, list[str]]] = []
    for segment in _spoken(transcript):
        if paragraphs and paragraphs[-1][0] == segment.speaker:
            paragraphs[-1][1].append(segment.text.strip())
        else:
            paragraphs.append((segment.speaker, [segment.text.strip()]))
    return "\n".join(f"{_one_line(name) + ': ' if name else ''}{' '.join(texts)}\n" for name, texts in paragraphs)


def _one_line(name: str) -> str:
    return " ".join(name.split())


def _timing(segment: Segment, decimal: str) -> str:
    """``start --> end`` of a cue (never zero-length: players drop those)."""
    end = max(segment.end, segment.start + 0.001)
    return f"{_clock(segment.start, decimal)} --> {_clock(end, decimal)}"


def render_srt(transcript: Transcript) -> str:
    return "\n".join(
        f"{number}\n{_timing(segment, ',')}\n{_speaker_prefix(segment)}{_cue_text(segment)}\n"
        for number, segment in enumerate(_spoken(transcript), start=1)
    )


def _speaker_prefix(segment: Segment) -> str:
    return f"{_one_line(segment.speaker)}: " if segment.speaker else ""


def _voice(segment: Segment) -> str:
    """A WebVTT voice tag: ``<v Name>`` (the name may hold no ``>`` and no line break)."""
    if not segment.speaker:
        return ""
    name = _one_line(segment.speaker).replace(">", "").replace("<", "").replace("&", "&amp;")
    return f"<v {name}>"


def render_vtt(transcript: Transcript) -> str:
    return "\n".join(
        ["WEBVTT\n"] + [f"{_timing(segment, '.')}\n{_voice(segment)}{_cue_text(segment)}\n" for segment in _spoken(transcript)]
    )


def render_tsv(transcript: Transcript) -> str:
    """Tab-separated start and end in integer milliseconds, then the text (tabs and newlines flattened)."""
    speakers = transcript.has_speakers
    lines = ["start\tend\tspeaker\ttext" if speakers else "start\tend\ttext"]
    for segment in _spoken(transcript):
        text = " ".join(segment.text.split())
        who = f"{' '.join((segment.speaker or '').split())}\t" if speakers else ""
        lines.append(f"{int(round(segment.start * 1000))}\t{int(round(segment.end * 1000))}\t{who}{text}")
    return "\n".join(lines) + "\n"


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
        "created_at": iso_utc(job.created_at),
        "finished_at": iso_utc(job.finished_at),
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


def parse_formats(text: str, *, allow_empty: bool = False) -> list[str]:
    """``"txt, SRT,txt"`` -> ``["txt", "srt"]``: known formats, in order, once each.

    Raises:
        ValueError: an unknown format, or none at all unless ``allow_empty``.
    """
    names = [name.strip().lower() for name in str(text).split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not (names or allow_empty):
        raise ValueError(f"unknown format {', '.join(unknown) or repr(text)}; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


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
