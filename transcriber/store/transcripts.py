"""The transcripts: each job's segments, handed out in time order, and corrections to their text."""

from __future__ import annotations

import json

from ..errors import JobStateError
from ..jobs import Segment, Word, speaker_name
from .db import StorePart, translating


class TranscriptsPart(StorePart):
    """Segments of jobs."""

    @translating
    def segments(self, job_id: int) -> list[Segment]:
        """The job's segments in time order (``jobs.time_order``), whatever order its parts committed them in."""
        Segment_, Speaker_ = self.m.Segment, self.m.Speaker
        names = {row.label: row.name for row in Speaker_.select().where(Speaker_.job == job_id)}
        rows = (
            Segment_.select()
            .where(Segment_.job == job_id)
            .order_by(Segment_.start_seconds, Segment_.end_seconds, Segment_.idx)
        )
        return [
            Segment(
                index=row.idx,
                start=row.start_seconds,
                end=row.end_seconds,
                text=row.text,
                words=tuple(Word(*item) for item in json.loads(row.words)) if row.words else (),
                speaker=None if row.speaker is None else names.get(row.speaker, speaker_name(row.speaker)),
                speaker_label=row.speaker,
            )
            for row in rows
        ]

    @translating
    def update_segment_text(self, job_id: int, index: int, text: str) -> None:
        Segment_ = self.m.Segment
        changed = (
            Segment_.update(text=text).where((Segment_.job == job_id) & (Segment_.idx == index)).execute()
        )
        if not changed:
            raise JobStateError(f"Job {job_id} has no segment {index}.")

