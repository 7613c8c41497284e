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


@dataclass(frozen=True)
class JobOptions:
    """How a job is transcribed; fixed when the job is queued."""

    model: str = "tiny.en"
    language: str | None = None  # None: detect
    preset: str = "balanced"
    word_timestamps: bool = False
    task: str = "transcribe"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> "JobOptions":
        if not text:
            return cls()
        data = json.loads(text)
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        return cls(**known)


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

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text.strip()}
        if self.words:
            data["words"] = [
                {"start": round(w.start, 3), "end": round(w.end, 3), "word": w.word, "probability": round(w.probability, 4)}
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
