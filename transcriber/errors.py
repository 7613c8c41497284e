"""Errors that carry a message meant for a person, not a traceback."""

from __future__ import annotations


class TranscriberError(Exception):
    """Root of the errors the app expects; str(error) is shown to the user as is."""


class IntakeRefused(TranscriberError):
    """A file was not accepted into the queue.

    Attributes:
        path: the file or folder that was refused.
        reason: a short machine-readable cause (``missing``, ``not_media``, ``too_large``,
            ``queue_limit``, ...), for clients that group refusals.
    """

    def __init__(self, path: str, reason: str, message: str):
        super().__init__(message)
        self.path = path
        self.reason = reason


class AudioError(TranscriberError):
    """A file cannot be decoded as audio (not media, no audio track, corrupt, truncated)."""

    def __init__(self, message: str, reason: str = "audio"):
        super().__init__(message)
        self.reason = reason


class SourceChanged(TranscriberError):
    """The source file changed or vanished after it was queued."""


class ModelUnavailable(TranscriberError):
    """A model cannot be found locally and cannot be downloaded."""


class StoreError(TranscriberError):
    """The database cannot be read or written (locked, disk full, damaged)."""


class JobStateError(TranscriberError):
    """An action does not apply to a job in its current state (e.g. pausing a finished job)."""


class EngineBusy(TranscriberError):
    """Another engine process already serves this data folder."""


class ConfigError(TranscriberError):
    """A setting was given an invalid value or does not exist."""


class AutomationError(TranscriberError):
    """A webhook or watch folder setting is invalid, or names one that does not exist."""


class SearchQueryError(TranscriberError):
    """A search query has nothing to search for (no word in it)."""
