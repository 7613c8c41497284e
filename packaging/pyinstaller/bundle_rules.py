"""What goes into the frozen app and what stays out: read by build.spec, its hooks and the tests.

Kept apart from build.spec so that a test can check the app's imports against it without
running PyInstaller.
"""

from __future__ import annotations

import fnmatch
from pathlib import PurePath

# The Qt modules the window imports (nothing else imports Qt): its signals (QtCore), the
# window, its tray icon and SVG icons (QtGui, QtWidgets, QtSvg), audio playback (QtMultimedia), the statistics charts
# (QtCharts) and the single-instance socket (QtNetwork's QLocalServer). Every other PySide6
# module is excluded; tests/test_build_spec.py fails when the code imports one not listed.
QT_MODULES = ("QtCore", "QtGui", "QtWidgets", "QtSvg", "QtMultimedia", "QtCharts", "QtNetwork")

# Qt plugins left out, by plugin folder and file-name pattern. Kept: the xcb, Wayland,
# offscreen and minimal platforms (and cocoa/windows elsewhere), SVG/ICO/JPEG/GIF images,
# the SVG icon engine, input methods, the XDG portal theme and the FFmpeg media backend.
QT_PLUGINS_LEFT_OUT = {
    "tls": ["*"],  # the app's only socket is a local one (single instance); no TLS, no network
    "networkinformation": ["*"],
    "generic": ["*"],  # evdev/tuio input, for the framebuffer platforms below
    "egldeviceintegrations": ["*"],
    "platforms": ["*eglfs*", "*linuxfb*", "*minimalegl*", "*vnc*", "*vkkhrdisplay*"],
    # The GTK theme links GTK 3 (and through it cairo, pango, ...), which every system would
    # then need; Qt's own style and the XDG portal theme need nothing extra.
    "platformthemes": ["*gtk3*"],
    "platforminputcontexts": ["*virtualkeyboard*"],  # pulls in QtQuick, QtQml and the keyboard
    "imageformats": ["*pdf*", "*tiff*", "*webp*", "*tga*", "*wbmp*"],  # the PDF one pulls in QtPdf
}

# Qt libraries that must not end up in the bundle (each is large, or drags in large ones).
# QtQuick and QtQml cannot be on this list: Qt's FFmpeg media plugin (audio playback) links them.
QT_LIBRARIES_UNWANTED = (
    "*Qt6WebEngine*", "*Qt6Pdf*", "*Qt63D*", "*Qt6Quick3D*", "*Qt6VirtualKeyboard*",
    "*Qt6Designer*", "*Qt6QuickControls2*", "*Qt6Location*", "*Qt6Graphs*", "*Qt6DataVisualization*",
)

# Reached only through optional imports of dependencies (huggingface_hub, tqdm, onnxruntime,
# numpy's test helpers) when such packages happen to be installed where the build runs.
PYTHON_LEFT_OUT = (
    "tkinter", "_tkinter", "IPython", "jedi", "matplotlib", "matplotlib_inline", "pandas", "PIL",
    "pytest", "_pytest", "scipy", "sympy", "notebook", "ipykernel", "ipywidgets",
    # Upload/download accelerator of huggingface_hub: optional, the hub falls back to plain HTTP.
    "hf_xet",
)


def plugin_left_out(destination: str) -> bool:
    """Whether a Qt plugin (its path inside the bundle, ``.../plugins/<folder>/<file>``) stays out."""
    parts = PurePath(destination).parts
    if "plugins" not in parts[:-1]:
        return False
    folder = parts[parts.index("plugins") + 1]
    return any(fnmatch.fnmatch(parts[-1], pattern) for pattern in QT_PLUGINS_LEFT_OUT.get(folder, ()))


def unwanted_library(name: str) -> bool:
    """Whether a file name is one of the Qt libraries that must not be bundled."""
    return any(fnmatch.fnmatch(name, pattern) for pattern in QT_LIBRARIES_UNWANTED)
