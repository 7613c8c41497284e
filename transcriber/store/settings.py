"""The settings table: validated on the way in (``config``), read as one ``Settings`` snapshot."""

from __future__ import annotations

from ..config import DECLARED, Settings, format_value, parse_setting
from .db import StorePart, translating


class SettingsPart(StorePart):
    """Settings shared by the window and the command line."""

    @translating
    def read(self) -> Settings:
        stored = {row.key: row.value for row in self.m.Setting.select()}
        return Settings.from_stored(stored)

    @translating
    def set(self, key: str, text: str) -> object:
        """Validate and store one setting; returns the parsed value.

        Raises:
            ConfigError: unknown key or invalid value.
        """
        value = parse_setting(key, text)
        self.m.Setting.insert(key=key, value=format_value(value)).on_conflict_replace().execute()
        return value

    @translating
    def reset(self, key: str) -> None:
        """Back to the default.

        Raises:
            ConfigError: unknown key.
        """
        if key not in DECLARED:
            parse_setting(key, "")  # raises, naming the known settings
        self.m.Setting.delete().where(self.m.Setting.key == key).execute()

