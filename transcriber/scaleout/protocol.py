"""What the app and the remote workers say to each other through Redis: key names, payloads and events.

Plain data and JSON only (no pickle): an RQ job carries a ``PartPayload`` (which part of
which job to decode, from where, how and with what context); results come back on one
Redis Stream, one entry per event (a segment, a route chosen, the part done, stopped or
failed), each naming the run it belongs to so that the app can refuse the news of a run
it has already given up. Keys live under one prefix; one Redis database serves one data
folder (another app uses another database: ``redis://host/1``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

PREFIX = "transcriber"
STREAM = f"{PREFIX}:events"  # worker -> app: every event of every remote part
GROUP = "app"  # the app's consumer group on STREAM
CONSUMER = "app"  # one app serves a data folder (the engine lock), so one consumer
TASK = "transcriber.scaleout.worker.decode_part"  # what RQ imports and runs on a worker
SMALL_QUEUE, LARGE_QUEUE = "transcribe-small", "transcribe-large"
POOLS = {"small": SMALL_QUEUE, "large": LARGE_QUEUE}
HEARTBEAT_SECONDS = 2.0  # how often a worker says it is alive
HEARTBEAT_TTL = 8  # seconds without a heartbeat after which a worker counts as gone


def worker_key(name: str) -> str:
    """A worker's registration: a hash (host, queues, capacity, model, started, busy) that expires unless refreshed."""
    return f"{PREFIX}:worker:{name}"


def stop_key(job_id: int, part: int, run_id: int) -> str:
    """Set by the app to ask the worker decoding that run to stop at its next segment."""
    return f"{PREFIX}:stop:{job_id}:{part}:{run_id}"


def rq_job_id(job_id: int, part: int, run_id: int) -> str:
    """The RQ job of one run (cancelled by that name when the app gives the run up)."""
    return f"transcriber-{job_id}-{part}-{run_id}"


def position_key(job_id: int, part: int, run_id: int) -> str:
    """The run's committed position (seconds), written in the same MULTI as each segment event."""
    return f"{PREFIX}:position:{job_id}:{part}:{run_id}"


def pool_of(part_seconds: float, threshold_minutes: float) -> str:
    """The queue a part goes to: ``transcribe-large`` from ``threshold_minutes`` of audio on, else ``transcribe-small``."""
    return LARGE_QUEUE if part_seconds >= threshold_minutes * 60 else SMALL_QUEUE


def queue_names(text: str) -> list[str]:
    """``large,small`` (or full queue names) -> the RQ queue names, in the order given.

    Raises:
        ValueError: a name that is no pool.
    """
    names = []
    for item in (piece.strip() for piece in text.split(",")):
        if not item:
            continue
        name = POOLS.get(item, item)
        if name not in POOLS.values():
            raise ValueError(f"unknown queue {item!r}; use {', '.join(POOLS)} (in the order the worker should take them)")
        names.append(name)
    if not names:
        raise ValueError("give at least one queue: large, small")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Media:
    """Where a worker finds the audio: a path on a shared folder (mapped per worker), or a presigned URL."""

    path: str | None = None  # as the app sees it; a worker maps it with --media-map SRC=DST
    url: str | None = None  # an S3 presigned GET URL
    expires_at: float | None = None  # when the URL stops working (POSIX seconds)
    size_bytes: int = 0
    content_hash: str = ""


@dataclass(frozen=True)
class PartPayload:
    """One part of one job for a worker to decode, from ``start`` (the last committed segment) to ``end``."""

    job_id: int
    part: int
    run_id: int
    media: Media
    duration_seconds: float  # of the whole file
    part_start: float
    start: float  # resume from here
    end: float | None  # None: the end of the file
    options: dict  # jobs.JobOptions as a dict
    model: str  # the model to decode with ("auto": choose, and say so with a "route" event)
    language: str | None
    prompt: tuple[int, ...] = ()  # the decoder's earlier tokens: its context
    next_seq: int = 0  # the number the part's next segment gets (events are upserted by it)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "PartPayload":
        data = json.loads(text)
        data["media"] = Media(**data["media"])
        data["prompt"] = tuple(data.get("prompt") or ())
        return cls(**data)


@dataclass(frozen=True)
class Event:
    """One piece of news from a worker about one run of one part.

    ``kind`` is ``started`` (``worker``), ``route`` (``model``, ``language``, ``reason``),
    ``segment`` (``seq``, ``start``, ``end``, ``text``, ``words``, ``tokens``, ``position``),
    ``done`` (``position``, ``missing_seconds``, ``damaged_packets``), ``stopped``,
    ``expired`` (the media URL no longer works) or ``failed`` (``error``, ``cause``).
    """

    kind: str
    job_id: int
    part: int
    run_id: int
    data: dict = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        """The Stream entry's fields."""
        return {"kind": self.kind, "job": str(self.job_id), "part": str(self.part), "run": str(self.run_id),
                "data": json.dumps(self.data)}

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> "Event":
        text = {_text(key): _text(value) for key, value in fields.items()}
        return cls(text["kind"], int(text["job"]), int(text["part"]), int(text["run"]), json.loads(text.get("data") or "{}"))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
