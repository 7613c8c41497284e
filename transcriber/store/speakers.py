"""Who said what, stored: each segment's speaker label, the names of a job's speakers, the diarization stage's progress.

The only SQL about speakers. ``assign`` replaces a job's segments by their speaker-labelled
(and, where a speaker changes inside one, split) versions in one transaction, with the
job's speakers named "Speaker N" unless already renamed; ``rename`` and ``merge`` change
names and labels at once, so every later export uses them.
"""

from __future__ import annotations

import json
import time
from typing import Sequence

from peewee import fn

from ..errors import JobStateError
from ..jobs import Segment, Speaker, speaker_name
from .db import StorePart, translating

MAX_NAME = 80


class SpeakersPart(StorePart):
    """Speakers of jobs."""

    @translating
    def speakers(self, job_id: int) -> list[Speaker]:
        """The job's speakers by label, with the seconds each talks (from its segments)."""
        Segment_, Speaker_ = self.m.Segment, self.m.Speaker
        seconds = dict(
            Segment_.select(Segment_.speaker, fn.SUM(Segment_.end_seconds - Segment_.start_seconds))
            .where((Segment_.job == job_id) & Segment_.speaker.is_null(False))
            .group_by(Segment_.speaker)
            .tuples()
        )
        return [
            Speaker(row.label, row.name, float(seconds.get(row.label, 0.0)))
            for row in Speaker_.select().where(Speaker_.job == job_id).order_by(Speaker_.label)
        ]

    @translating
    def set_progress(self, job_id: int, fraction: float | None, *, eta_seconds: float | None = None) -> None:
        """The diarization stage's progress (0..1, None: not started); the job's estimate with it."""
        Job_ = self.m.Job
        now = time.time()
        values = dict(speakers_progress=fraction, updated_at=now)
        if eta_seconds is not None:
            values.update(eta_seconds=eta_seconds, estimated_completion=now + eta_seconds)
        Job_.update(**values).where(Job_.id == job_id).execute()

    @translating
    def assign(self, job_id: int, segments: Sequence[Segment]) -> None:
        """Replace the job's segments by ``segments`` with their ``speaker_label``s, and mark the stage done.

        A segment with the ``index`` of a stored one updates it; one with index -1 (a piece of
        a split segment) is inserted with a new index, and stored segments missing from
        ``segments`` (the ones split) are deleted: text changes go through rows, so full-text
        indexes on ``segment.text`` follow.
        """
        Segment_, Speaker_, Job_ = self.m.Segment, self.m.Speaker, self.m.Job
        with self.db.atomic():
            stored = {row.idx: row for row in Segment_.select().where(Segment_.job == job_id)}
            keep = {segment.index for segment in segments if segment.index >= 0}
            gone = [idx for idx in stored if idx not in keep]
            if gone:
                Segment_.delete().where((Segment_.job == job_id) & Segment_.idx.in_(gone)).execute()
            following = (max(stored) + 1) if stored else 0
            for segment in segments:
                if segment.index >= 0:
                    Segment_.update(speaker=segment.speaker_label).where(
                        (Segment_.job == job_id) & (Segment_.idx == segment.index)
                    ).execute()
                    continue
                origin = stored.get(_origin(segment, stored))
                Segment_.create(
                    job=job_id, idx=following, part=origin.part if origin else 0,
                    start_seconds=segment.start, end_seconds=segment.end, text=segment.text,
                    words=json.dumps([[w.start, w.end, w.word, w.probability] for w in segment.words]) if segment.words else None,
                    tokens=None, speaker=segment.speaker_label,
                )
                following += 1
            labels = {segment.speaker_label for segment in segments if segment.speaker_label is not None}
            named = {row.label for row in Speaker_.select(Speaker_.label).where(Speaker_.job == job_id)}
            Speaker_.delete().where((Speaker_.job == job_id) & Speaker_.label.not_in(list(labels) or [-1])).execute()
            for label in sorted(labels - named):
                Speaker_.create(job=job_id, label=label, name=speaker_name(label))
            Job_.update(speakers_progress=1.0, updated_at=time.time()).where(Job_.id == job_id).execute()

    @translating
    def rename(self, job_id: int, label: int, name: str) -> Speaker:
        """Give speaker ``label`` of a job a name ("Speaker 2" -> "Dr. Amara").

        Raises:
            ValueError: an empty or overlong name.
            JobStateError: the job has no such speaker.
        """
        name = " ".join(str(name).split())
        if not name or len(name) > MAX_NAME:
            raise ValueError(f"A speaker's name must have 1 to {MAX_NAME} characters.")
        Speaker_ = self.m.Speaker
        if not Speaker_.update(name=name).where((Speaker_.job == job_id) & (Speaker_.label == label)).execute():
            raise JobStateError(f"Job {job_id} has no speaker {label + 1}.")
        return next(s for s in self.speakers(job_id) if s.label == label)

    @translating
    def merge(self, job_id: int, into: int, other: int) -> Speaker:
        """Make speaker ``other`` one with speaker ``into``: its segments become ``into``'s, its name goes.

        Raises:
            JobStateError: either speaker does not exist, or they are the same.
        """
        Segment_, Speaker_ = self.m.Segment, self.m.Speaker
        with self.db.atomic():
            labels = {row.label for row in Speaker_.select(Speaker_.label).where(Speaker_.job == job_id)}
            if into == other or into not in labels or other not in labels:
                raise JobStateError(f"Job {job_id} cannot merge speaker {other + 1} into speaker {into + 1}.")
            Segment_.update(speaker=into).where((Segment_.job == job_id) & (Segment_.speaker == other)).execute()
            Speaker_.delete().where((Speaker_.job == job_id) & (Speaker_.label == other)).execute()
        return next(s for s in self.speakers(job_id) if s.label == into)

    @translating
    def label_of(self, job_id: int, name_or_number: str) -> int:
        """A speaker's label from its name (any case) or its number as shown ("2" is "Speaker 2").

        Raises:
            JobStateError: no such speaker.
        """
        wanted = str(name_or_number).strip()
        speakers = self.speakers(job_id)
        for speaker in speakers:
            if speaker.name.casefold() == wanted.casefold():
                return speaker.label
        if wanted.isdigit() and any(s.label == int(wanted) - 1 for s in speakers):
            return int(wanted) - 1
        known = ", ".join(speaker.name for speaker in speakers) or "none"
        raise JobStateError(f"Job {job_id} has no speaker {wanted!r} (its speakers: {known}).")


def _origin(piece: Segment, stored: dict) -> int | None:
    """The stored segment a split piece came from (the one containing its start)."""
    for idx, row in stored.items():
        if row.start_seconds - 1e-6 <= piece.start <= row.end_seconds + 1e-6:
            return idx
    return None
