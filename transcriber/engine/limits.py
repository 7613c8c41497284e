"""Per-user limits as a validated value object, and the intake decision as a pure function."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings

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


def intake_refusal(limits: Limits, *, file_name: str, size_bytes: int, queued_for_user: int, user: str) -> str | None:
    """Why a file may not be queued under ``limits``, or None if it may.

    The message names the limit and its value, so the user knows which setting to change.
    """
    if size_bytes > limits.max_file_bytes:
        return (
            f"{file_name}: refused, {size_bytes / MB:.1f} MB is over the file size limit "
            f"(max_file_size_mb = {limits.max_file_size_mb})."
        )
    if queued_for_user >= limits.max_queued_per_user:
        return (
            f"{file_name}: refused, user {user!r} already has {queued_for_user} queued jobs "
            f"(limit max_queued_per_user = {limits.max_queued_per_user})."
        )
    return None
