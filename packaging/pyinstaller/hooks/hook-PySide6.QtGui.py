"""PySide6.QtGui as PyInstaller's own hook collects it, minus the plugins bundle_rules leaves out.

Dropping plugins here, before PyInstaller follows their library dependencies, also keeps
out what only those plugins needed (GTK 3 for the gtk3 theme, QtQuick for the virtual keyboard).
"""

import sys
from pathlib import Path

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bundle_rules import plugin_left_out  # noqa: E402

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = [(source, folder) for source, folder in binaries if not plugin_left_out(f"{folder}/{Path(source).name}")]
