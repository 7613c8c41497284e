"""Every setting declared once: its key, type, default, range and a one-line description.

Settings live in the store (the ``setting`` table), so the command line and the window
always see the same values. ``Settings`` is the validated snapshot the engine works from;
its fields are the declarations (``DECLARED`` is derived from them), so a setting cannot be
declared in one place and forgotten in another. Keys are a contract: add, never rename.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable

from .errors import ConfigError
from .export import parse_formats
from .jobs import TASKS, parse_speakers
from .languages import CODES as LANGUAGE_CODES
from .languages import why_not_a_language

PRESETS = ("fast", "balanced", "accurate")
DEVICES = ("auto", "cpu", "cuda")
# The most decode streams (and jobs per user) one machine may be asked for; beyond it a
# setting is a typo, and a huge value would overflow the thread pool and the estimates.
MAX_STREAMS = 64


def default_workers() -> int:
    """One decode stream per core, each with one thread: the most work per second (engine/parts.py)."""
    return max(1, min(MAX_STREAMS, os.cpu_count() or 1))


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A parser for whole numbers from ``low`` to ``high``."""

    def parse(value: str) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError("expected a whole number") from None
        if number < low:
            raise ValueError(f"must be at least {low}" if low else "must be 0 or more")
        if number > high:
            raise ValueError(f"must be at most {high}")
        return number

    return parse


def parse_boolean(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def parse_text(value: str) -> str:
    return str(value).strip()


def parse_format_list(value: str) -> str:
    return ",".join(parse_formats(value, allow_empty=True))


def parse_language(value: str) -> str:
    code = str(value).strip().lower()
    if code and code not in LANGUAGE_CODES:
        raise ValueError(f"not a language code: {why_not_a_language(code)}")
    return code


def parse_speakers_setting(value: str) -> str:
    return parse_speakers(value)[0]


def parse_preset(value: str) -> str:
    lowered = str(value).strip().lower()
    if lowered not in PRESETS:
        raise ValueError(f"choose one of {', '.join(PRESETS)}")
    return lowered


def one_of(*choices: str) -> Callable[[str], str]:
    """A parser for one of a few words."""

    def parse(value: str) -> str:
        lowered = str(value).strip().lower()
        if lowered not in choices:
            raise ValueError(f"choose one of {', '.join(choices)}")
        return lowered

    return parse


def parse_redis_url(value: str) -> str:
    """``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS) or ``unix://``; empty: none."""
    text = str(value).strip()
    if text and text.split("://", 1)[0].lower() not in ("redis", "rediss", "unix") or text.endswith("://"):
        raise ValueError("expected redis://[user:password@]host[:port][/db], rediss://... (TLS) or unix:///path")
    return text


def parse_http_url(value: str) -> str:
    text = str(value).strip()
    if text and not (text.startswith("http://") or text.startswith("https://")):
        raise ValueError("expected an http:// or https:// address")
    return text.rstrip("/")


def declare(default: Any, parse: Callable[[str], Any], description: str) -> Any:
    """A field of ``Settings``: its default (a value, or a function giving one), parser and description."""
    metadata = {"parse": parse, "description": description}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Setting:
    """One declared setting, as the command line and the settings dialog list it."""

    key: str
    parse: Callable[[str], Any]
    description: str
    _default: Callable[[], Any]

    def default(self) -> Any:
        return self._default()


@dataclass(frozen=True)
class Settings:
    """A validated snapshot of every setting; each field is a setting's declaration."""

    max_file_size_mb: int = declare(500, whole_number(1, 1_000_000), "largest file accepted, in MB (per user)")
    max_concurrent_per_user: int = declare(5, whole_number(1, MAX_STREAMS), "jobs one user may have running at once")
    max_queued_per_user: int = declare(10, whole_number(1, 100_000), "jobs one user may have waiting in the queue")
    workers: int = declare(default_workers, whole_number(1, MAX_STREAMS),
                           "decode streams at once on this machine (jobs, or parts of a long job)")
    model: str = declare(
        "auto", parse_text,
        "default model: auto (English with tiny.en, other languages with base), tiny.en, base, a folder, or a faster-whisper name",
    )
    language: str = declare("", parse_language, "default language code (empty: detect)")
    preset: str = declare("balanced", parse_preset, "speed/accuracy preset: fast, balanced or accurate")
    task: str = declare("transcribe", one_of(*TASKS),
                        "default task: transcribe (text in the language spoken) or translate (text in English)")
    device: str = declare("auto", one_of(*DEVICES),
                          "where models run: auto (a CUDA GPU when there is one, else the CPU), cpu or cuda")
    word_timestamps: bool = declare(False, parse_boolean, "record the timing of every word")
    speakers: str = declare("off", parse_speakers_setting,
                            "who said what, by default: off, auto, channels (one speaker per stereo channel) or a number")
    export_dir: str = declare("", parse_text, "folder for automatic exports (empty: the data folder's transcripts/)")
    export_formats: str = declare("txt,srt", parse_format_list, "formats written on automatic export")
    auto_export: bool = declare(True, parse_boolean, "export each transcript when its job completes")
    model_idle_unload_seconds: int = declare(300, whole_number(0, 7 * 86400), "unload a model unused for this long")
    notifications: bool = declare(True, parse_boolean, "tray notification when a job finishes or fails")
    close_to_tray: bool = declare(True, parse_boolean, "closing the window keeps the engine working in the tray")
    webhook_timeout_seconds: int = declare(10, whole_number(1, 600), "seconds a webhook receiver has to answer")
    webhook_first_retry_seconds: int = declare(
        30, whole_number(1, 86400), "wait before a failed webhook delivery's first retry (doubles each time, up to an hour)"
    )
    webhook_retry_hours: int = declare(24, whole_number(1, 30 * 24), "give up a failing webhook delivery after this many hours")
    queue_backend: str = declare("local", one_of("local", "redis"),
                                 "local: decode here; redis: send parts to remote workers through RQ on Redis")
    redis_url: str = declare("", parse_redis_url, "the Redis of the remote workers (redis://user:password@host:port/0)")
    size_pool_threshold_minutes: int = declare(
        30, whole_number(1, 24 * 60), "parts this long or longer go to the transcribe-large queue, shorter to transcribe-small"
    )
    media_transport: str = declare("shared-folder", one_of("shared-folder", "s3"),
                                   "how remote workers get the audio: a shared folder, or presigned S3 URLs")
    s3_endpoint: str = declare("", parse_http_url, "S3-compatible endpoint (empty: AWS); credentials come from the environment")
    s3_bucket: str = declare("", parse_text, "bucket the audio is uploaded to for remote workers")

    @classmethod
    def from_stored(cls, stored: dict[str, str]) -> "Settings":
        """Build from the raw stored strings; a damaged stored value falls back to its default."""
        values = {}
        for setting in DECLARED.values():
            raw = stored.get(setting.key)
            try:
                values[setting.key] = setting.parse(raw) if raw is not None else setting.default()
            except ValueError:
                values[setting.key] = setting.default()
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @property
    def export_format_list(self) -> list[str]:
        return [name for name in self.export_formats.split(",") if name]


def _declared() -> dict[str, Setting]:
    declared = {}
    for item in fields(Settings):
        default = item.default_factory if item.default is MISSING else (lambda value=item.default: value)
        declared[item.name] = Setting(item.name, item.metadata["parse"], item.metadata["description"], default)
    return declared


DECLARED: dict[str, Setting] = _declared()


def parse_setting(key: str, value: str) -> Any:
    """Validate one value for storage.

    Raises:
        ConfigError: the key is unknown or the value is invalid; the message says why.
    """
    setting = DECLARED.get(key)
    if setting is None:
        raise ConfigError(f"Unknown setting {key!r}. Known settings: {', '.join(DECLARED)}")
    try:
        return setting.parse(value)
    except ValueError as error:
        raise ConfigError(f"Invalid value {value!r} for {key}: {error}") from None


def format_value(value: Any) -> str:
    """The stored text form of a parsed value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
