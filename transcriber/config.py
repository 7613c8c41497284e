"""Every setting declared once, with its default, its parser and a one-line description.

Settings live in the store (the ``settings`` table), so the command line and the window
always see the same values. ``Settings`` is the validated snapshot the engine works from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Callable

from .errors import ConfigError

PRESETS = ("fast", "balanced", "accurate")


def default_workers() -> int:
    """One decode stream per core, each with one thread: the most work per second (engine/parts.py)."""
    return max(1, os.cpu_count() or 1)


def _positive_int(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _boolean(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _text(text: str) -> str:
    return str(text).strip()


def _formats(text: str) -> str:
    from .export import FORMATS  # late: export imports jobs only, but keep config import-light

    names = [part.strip().lower() for part in str(text).split(",") if part.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    return ",".join(dict.fromkeys(names))


def _preset(text: str) -> str:
    value = str(text).strip().lower()
    if value not in PRESETS:
        raise ValueError(f"choose one of {', '.join(PRESETS)}")
    return value


@dataclass(frozen=True)
class Setting:
    key: str
    default: Callable[[], Any]
    parse: Callable[[str], Any]
    description: str


_DECLARED = [
    Setting("max_file_size_mb", lambda: 500, _positive_int, "largest file accepted, in MB (per user)"),
    Setting("max_concurrent_per_user", lambda: 5, _positive_int, "jobs one user may have running at once"),
    Setting("max_queued_per_user", lambda: 10, _positive_int, "jobs one user may have waiting in the queue"),
    Setting("workers", default_workers, _positive_int, "decode streams at once on this machine (jobs, or parts of a long job)"),
    Setting("model", lambda: "tiny.en", _text, "default model: tiny.en (embedded), base, a folder, or a faster-whisper name"),
    Setting("language", lambda: "", _text, "default language code (empty: detect)"),
    Setting("preset", lambda: "balanced", _preset, "speed/accuracy preset: fast, balanced or accurate"),
    Setting("word_timestamps", lambda: False, _boolean, "record the timing of every word"),
    Setting("export_dir", lambda: "", _text, "folder for automatic exports (empty: the data folder's transcripts/)"),
    Setting("export_formats", lambda: "txt,srt", _formats, "formats written on automatic export"),
    Setting("auto_export", lambda: True, _boolean, "export each transcript when its job completes"),
    Setting("model_idle_unload_seconds", lambda: 300, _non_negative_int, "unload a model unused for this long"),
    Setting("notifications", lambda: True, _boolean, "tray notification when a job finishes or fails"),
    Setting("close_to_tray", lambda: True, _boolean, "closing the window keeps the engine working in the tray"),
    Setting("webhook_timeout_seconds", lambda: 10, _positive_int, "seconds a webhook receiver has to answer"),
    Setting("webhook_first_retry_seconds", lambda: 30, _positive_int, "wait before a failed webhook delivery's first retry (doubles each time, up to an hour)"),
    Setting("webhook_retry_hours", lambda: 24, _positive_int, "give up a failing webhook delivery after this many hours"),
]
DECLARED: dict[str, Setting] = {setting.key: setting for setting in _DECLARED}


@dataclass(frozen=True)
class Settings:
    """A validated snapshot of every setting."""

    max_file_size_mb: int
    max_concurrent_per_user: int
    max_queued_per_user: int
    workers: int
    model: str
    language: str
    preset: str
    word_timestamps: bool
    export_dir: str
    export_formats: str
    auto_export: bool
    model_idle_unload_seconds: int
    notifications: bool
    close_to_tray: bool
    webhook_timeout_seconds: int
    webhook_first_retry_seconds: int
    webhook_retry_hours: int

    @classmethod
    def from_stored(cls, stored: dict[str, str]) -> "Settings":
        """Build from the raw stored strings; a damaged stored value falls back to its default."""
        values = {}
        for setting in _DECLARED:
            raw = stored.get(setting.key)
            try:
                values[setting.key] = setting.parse(raw) if raw is not None else setting.default()
            except ValueError:
                values[setting.key] = setting.default()
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @property
    def export_format_list(self) -> list[str]:
        return [name for name in self.export_formats.split(",") if name]


def parse_setting(key: str, text: str) -> Any:
    """Validate one value for storage.

    Raises:
        ConfigError: the key is unknown or the value is invalid; the message says why.
    """
    setting = DECLARED.get(key)
    if setting is None:
        raise ConfigError(f"Unknown setting {key!r}. Known settings: {', '.join(DECLARED)}")
    try:
        return setting.parse(text)
    except ValueError as error:
        raise ConfigError(f"Invalid value {text!r} for {key}: {error}") from None


def format_value(value: Any) -> str:
    """The stored text form of a parsed value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
