"""What the engine reports while it works: the interface a client (the window, a test) implements."""

from __future__ import annotations

from typing import Sequence

from ..jobs import Job, Segment


class EngineListener:
    """What the engine reports. Override what you need; calls come from worker threads."""

    def job_changed(self, job: Job) -> None:
        """A job's status, progress or estimate changed."""

    def segments_added(self, job: Job, segments: Sequence[Segment]) -> None:
        """Segments were committed for a running job."""

    def job_finished(self, job: Job) -> None:
        """A job completed, failed or was cancelled."""

    def engine_error(self, message: str) -> None:
        """The engine cannot make progress for a reason that is not one job's fault (a full disk, a locked database)."""

    def engine_notice(self, message: str) -> None:
        """Something the user should know that stops nothing (remote workers unreachable: decoding here)."""
