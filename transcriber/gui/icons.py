"""Icons: the app's own SVG (shipped in the package) and toolbar icons from the theme or the style."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

_APP_ICON: QIcon | None = None


def app_icon_path() -> Path:
    return Path(str(resources.files("transcriber") / "resources" / "transcriber.svg"))


def app_icon() -> QIcon:
    global _APP_ICON
    if _APP_ICON is None:
        _APP_ICON = QIcon(str(app_icon_path()))
    return _APP_ICON


_FALLBACK = {
    "document-open": QStyle.StandardPixmap.SP_DialogOpenButton,
    "folder-open": QStyle.StandardPixmap.SP_DirOpenIcon,
    "media-playback-pause": QStyle.StandardPixmap.SP_MediaPause,
    "media-playback-start": QStyle.StandardPixmap.SP_MediaPlay,
    "process-stop": QStyle.StandardPixmap.SP_BrowserStop,
    "view-refresh": QStyle.StandardPixmap.SP_BrowserReload,
    "go-up": QStyle.StandardPixmap.SP_ArrowUp,
    "go-down": QStyle.StandardPixmap.SP_ArrowDown,
    "edit-delete": QStyle.StandardPixmap.SP_TrashIcon,
    "text-x-generic": QStyle.StandardPixmap.SP_FileDialogDetailedView,
    "document-save-as": QStyle.StandardPixmap.SP_DialogSaveButton,
    "system-file-manager": QStyle.StandardPixmap.SP_DirLinkIcon,
    "preferences-system": QStyle.StandardPixmap.SP_FileDialogInfoView,
    "help-about": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "go-previous": QStyle.StandardPixmap.SP_ArrowBack,
    "go-next": QStyle.StandardPixmap.SP_ArrowForward,
    "edit-copy": QStyle.StandardPixmap.SP_FileDialogContentsView,
    "application-exit": QStyle.StandardPixmap.SP_DialogCloseButton,
    "window-close": QStyle.StandardPixmap.SP_TitleBarCloseButton,
    "view-statistics": QStyle.StandardPixmap.SP_FileDialogListView,
    "media-record": QStyle.StandardPixmap.SP_MediaVolume,
}


def themed(name: str) -> QIcon:
    """The desktop theme's icon ``name``, or the Qt style's closest standard icon."""
    icon = QIcon.fromTheme(name)
    if icon.isNull() and name in _FALLBACK:
        icon = QApplication.style().standardIcon(_FALLBACK[name])
    return icon
