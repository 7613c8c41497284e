"""Per-user limits as a validated value object, and the intake decisions as pure functions.

Every refusal for a limit is worded here, naming the setting and its value, so the user
knows which setting to change: intake, the store's atomic insert and the watch folders
all use these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings

MB = 1_000_000


@dataclass(frozen=True)
class Limits:
    max_file_size_mb: int = 500
    max_concurrent_per_user: int = 5
    max_queued_per_user: int = 10
    workers: int = 1

    def __post_init__(self):
        for name in ("max_file_size_mb", "max_concurrent_per_user", "max_queued_per_user", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(
            max_file_size_mb=settings.max_file_size_mb,
            max_concurrent_per_user=settings.max_concurrent_per_user,
            max_queued_per_user=settings.max_queued_per_user,
            workers=settings.workers,
        )

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_size_mb * MB


def size_refusal(*, file_name: str, size_bytes: int, max_file_size_mb: int) -> str | None:
    """Why a file of ``size_bytes`` may not be queued, or None if its size is fine."""
    if size_bytes > max_file_size_mb * MB:
        return (
            f"{file_name}: refused, {size_bytes / MB:.1f} MB is over the file size limit "
            f"(max_file_size_mb = {max_file_size_mb})."
        )
    return None


def queue_full(*, user: str, queued_for_user: int, max_queued: int) -> str | None:
    """Why ``user`` may not queue another job now (the clause, naming the setting), or None if there is room."""
    if queued_for_user >= max_queued:
        return f"user {user!r} already has {queued_for_user} queued jobs (limit max_queued_per_user = {max_queued})"
    return None


def queue_refusal(*, file_name: str, user: str, queued_for_user: int, max_queued: int) -> str | None:
    """Why ``file_name`` may not be queued for ``user`` now, or None if there is room."""
    reason = queue_full(user=user, queued_for_user=queued_for_user, max_queued=max_queued)
    if not reason:
        return None
    return (
        f"{file_name}: refused, {reason}. To queue more, raise the limit (transcriber config set "
        f"max_queued_per_user N, or Settings), or add with --wait-for-room to queue it as room frees."
    )


def intake_refusal(limits: Limits, *, file_name: str, size_bytes: int, queued_for_user: int, user: str) -> str | None:
    """Why a file may not be queued under ``limits`` (its size first, then the user's queue), or None if it may."""
    return size_refusal(
        file_name=file_name, size_bytes=size_bytes, max_file_size_mb=limits.max_file_size_mb
    ) or queue_refusal(
        file_name=file_name, user=user, queued_for_user=queued_for_user, max_queued=limits.max_queued_per_user
    )
