"""The domain: job status and the plain dataclasses every layer passes around."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any


class JobStatus(str, Enum):
    """Lifecycle of a job; stored as its lower-case value.

    ``recording``: the job's file is still being recorded and decoded live by the recording
    process (see engine/live.py); the engine's runner never claims it. Stop (or start-up
    recovery after a crash) makes it ``queued``, and the engine finishes the tail.
    """

    RECORDING = "recording"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    def __str__(self) -> str:
        return self.value


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED)

TRANSCRIBE, TRANSLATE = "transcribe", "translate"
TASKS = (TRANSCRIBE, TRANSLATE)  # translate: the text comes out in English, whatever is spoken


@dataclass(frozen=True)
class JobOptions:
    """How a job is transcribed; fixed when the job is queued."""

    model: str = "tiny.en"
    language: str | None = None  # None: detect
    preset: str = "balanced"
    word_timestamps: bool = False
    task: str = TRANSCRIBE
    speakers: str = "off"  # who said what: off, auto, channels or a count (see ``parse_speakers``)
    min_speakers: int | None = None  # bounds for ``auto``
    max_speakers: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> "JobOptions":
        if not text:
            return cls()
        data = json.loads(text)
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        return cls(**known)


SPEAKER_MODES = ("off", "auto", "channels")
MAX_SPEAKERS = 20


def parse_speakers(text: str | int | None, min_speakers: int | None = None, max_speakers: int | None = None) -> tuple[str, int | None, int | None]:
    """Check a speakers request: ``off``, ``auto``, ``channels`` or a count from 1 to ``MAX_SPEAKERS``.

    Returns:
        (mode, min, max): mode is ``off``, ``auto``, ``channels`` or the count as text.

    Raises:
        ValueError: anything else, or bounds that contradict each other or the mode.
    """
    value = str("off" if text is None else text).strip().lower()
    if value not in SPEAKER_MODES:
        if not value.isdigit() or not 1 <= int(value) <= MAX_SPEAKERS:
            raise ValueError(f"speakers must be auto, off, channels or a number from 1 to {MAX_SPEAKERS}, not {text!r}")
        value = str(int(value))
    for name, bound in (("min", min_speakers), ("max", max_speakers)):
        if bound is not None and not 1 <= int(bound) <= MAX_SPEAKERS:
            raise ValueError(f"{name} speakers must be from 1 to {MAX_SPEAKERS}, not {bound}")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise ValueError(f"min speakers ({min_speakers}) is more than max speakers ({max_speakers})")
    if (min_speakers is not None or max_speakers is not None) and value != "auto":
        raise ValueError("min and max speakers go with --speakers auto only")
    return value, min_speakers, max_speakers


def speaker_name(label: int) -> str:
    """The name a speaker has until someone renames it: label 0 is "Speaker 1"."""
    return f"Speaker {label + 1}"


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch [start, end) of the audio in which one speaker (``label``, from 0) talks."""

    start: float
    end: float
    label: int


@dataclass(frozen=True)
class Speaker:
    """A speaker of a job's transcript: its label (stable), the name shown, and its share of the talk."""

    label: int
    name: str
    seconds: float = 0.0


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """One finished piece of transcript.

    ``index`` identifies it within its job (0, 1, 2... in the order segments were
    committed). Parts of a long job are decoded in parallel, so commit order is not time
    order: readers get segments in ``time_order`` (the store and ``Transcript`` sort them).
    """

    index: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None  # the speaker's name, when the job was diarized
    speaker_label: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text.strip()}
        if self.speaker is not None:
            data["speaker"] = self.speaker
        if self.words:
            data["words"] = [
                {"start": round(w.start, 3), "end": round(w.end, 3), "word": w.word, "probability": round(w.probability, 4)}
                | ({"speaker": self.speaker} if self.speaker is not None else {})
                for w in self.words
            ]
        return data


def time_order(segment: Segment) -> tuple[float, float, int]:
    """The reading order of segments: by start, then end, then commit order."""
    return (segment.start, segment.end, segment.index)


class PartStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


class RunOutcome(str, Enum):
    """How one attempt at one part ended; stored as its value in the run record."""

    COMPLETED = "completed"  # the job's last part ended and the job completed
    PART_DONE = "part-done"  # this part reached its end; other parts are still being decoded
    STOPPED = "stopped"  # paused, cancelled, removed or shut down: the part waits again at its cursor
    FAILED = "failed"  # the job failed (its message is on the job)
    STORE_ERROR = "store-error"  # the store could not be written; the part is put back once it can
    INTERRUPTED = "interrupted"  # the process died; closed at the next start-up
    LOST = "lost"  # its remote worker stopped beating, or Redis went away: the part continues elsewhere
    EXPIRED = "expired"  # the media URL it was given had expired: sent again with a fresh one

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Part:
    """A stretch [start, end) of a job's audio decoded as one stream; ``processed_seconds`` is its cursor."""

    job_id: int
    index: int
    start: float
    end: float
    processed_seconds: float
    status: PartStatus


@dataclass(frozen=True)
class ExportedFile:
    """A file transcriber wrote for a job, as it was right after writing: whether anyone changed it since can be told."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class RunRecord:
    """One attempt at one part of a job, as recorded: where it started, how far it got, how it ended."""

    part: int
    attempt: int
    pid: int
    started_at: float
    ended_at: float | None
    start_seconds: float
    end_seconds: float
    processing_seconds: float
    outcome: RunOutcome | None
    queue: str | None = None  # the RQ queue it was sent to; None: decoded by this machine
    worker: str | None = None  # the remote worker that took it


@dataclass(frozen=True)
class RemoteRun:
    """A run handed to a remote worker that has not ended: what the coordinator watches."""

    run_id: int
    job_id: int
    part: int
    queue: str
    worker: str | None
    remote_seq: int | None  # the last segment event committed


@dataclass(frozen=True)
class Job:
    """A file to transcribe, with where it stands. Times are POSIX seconds (UTC)."""

    id: int
    user: str
    source_path: str
    size_bytes: int
    mtime: float
    content_hash: str
    duration_seconds: float
    options: JobOptions
    status: JobStatus
    processed_seconds: float = 0.0
    queue_position: int | None = None  # 1 = next of this user's queued jobs; None when not queued
    estimated_completion: float | None = None
    eta_seconds: float | None = None
    speed: float | None = None  # audio seconds per processing second, live while running
    attempts: int = 0
    error: str | None = None
    warning: str | None = None
    detected_language: str | None = None
    processing_seconds: float = 0.0
    created_at: float = 0.0
    started_at: float | None = None
    updated_at: float = 0.0
    finished_at: float | None = None
    exported_paths: tuple[str, ...] = field(default_factory=tuple)  # the automatic exports
    exports: tuple[ExportedFile, ...] = field(default_factory=tuple)  # every file written for the job
    routed_model: str | None = None  # for ``auto``: the model chosen for the language spoken
    speakers_progress: float | None = None  # 0..1 while its speakers are being told apart; 1 once done

    @property
    def file_name(self) -> str:
        return Path(self.source_path).name

    @property
    def model(self) -> str:
        """The model that decodes the job: the one asked for, or, for ``auto``, the one chosen once the language is known."""
        return self.routed_model or self.options.model

    @property
    def routed(self) -> bool:
        """Whether the model and language are settled (always, unless ``auto`` has not chosen yet)."""
        return self.options.model != "auto" or self.routed_model is not None

    @property
    def language(self) -> str | None:
        return self.options.language or self.detected_language

    @property
    def progress(self) -> float:
        if self.status is JobStatus.COMPLETED:
            return 1.0
        if self.duration_seconds <= 0:
            return 0.0
        return max(0.0, min(1.0, self.processed_seconds / self.duration_seconds))

    @property
    def remaining_seconds(self) -> float:
        return max(0.0, self.duration_seconds - self.processed_seconds)

    def with_estimate(self, eta_seconds: float | None, completion: float | None) -> "Job":
        return replace(self, eta_seconds=eta_seconds, estimated_completion=completion)


class WaitingState(str, Enum):
    """Where a file waiting for room in its user's queue stands; stored as its value."""

    WAITING = "waiting"  # the user's queue is full; queued in order as room frees
    QUEUED = "queued"  # it became a job (``job_id``)
    REFUSED = "refused"  # it changed or vanished while it waited (``message``)
    CANCELLED = "cancelled"  # the user took it back

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class WaitingFile:
    """A file a person asked to transcribe while their queue was full, with what intake learned of it."""

    id: int
    user: str
    source_path: str
    size_bytes: int
    mtime: float
    content_hash: str
    duration_seconds: float
    declared_seconds: float | None
    warning: str | None
    options: JobOptions
    state: WaitingState
    job_id: int | None = None
    message: str | None = None
    created_at: float = 0.0

    @property
    def file_name(self) -> str:
        return Path(self.source_path).name


@dataclass(frozen=True)
class Transcript:
    """A job and its segments, always in time order whatever order they were given in."""

    job: Job
    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(sorted(self.segments, key=time_order)))

    @property
    def text(self) -> str:
        return " ".join(segment.text.strip() for segment in self.segments if segment.text.strip())

    @property
    def has_speakers(self) -> bool:
        return any(segment.speaker is not None for segment in self.segments)


@dataclass(frozen=True)
class ModelStats:
    """Aggregates over completed jobs of one model, for the monitoring view and estimates."""

    model: str
    jobs_completed: int
    audio_hours: float
    mean_processing_minutes: float
    speed: float  # audio seconds per processing second


@dataclass(frozen=True)
class SizeBucketStats:
    """Mean processing minutes for completed jobs whose files fall in one size range (MB)."""

    low_mb: float
    high_mb: float
    jobs: int
    mean_processing_minutes: float
