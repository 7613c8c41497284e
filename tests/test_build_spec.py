"""Fast checks of the packaging recipe: what goes into the frozen app, and the helpers that shape it.

The full build runs in test_linux_packages.py; these catch the common mistakes in seconds:
a Qt module imported by the code but excluded from the bundle, a plugin rule that drops
the wrong file, a script with a syntax error.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bundle_rules = _load(REPO / "packaging" / "pyinstaller" / "bundle_rules.py")
elfdeps = _load(REPO / "packaging" / "linux" / "elfdeps.py")


def qt_modules_imported() -> dict[str, str]:
    """Every ``PySide6.QtX`` module the app's code imports, with one file that does."""
    found = {}
    for path in sorted((REPO / "transcriber").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + ([f"PySide6.{alias.name}" for alias in node.names] if node.module == "PySide6" else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "PySide6" and len(parts) > 1 and parts[1].startswith("Qt"):
                    found.setdefault(parts[1], str(path.relative_to(REPO)))
    return found


def test_every_qt_module_the_app_imports_goes_into_the_bundle():
    imported = qt_modules_imported()
    assert "QtCore" in imported  # the scan works: the engine uses QtCore
    missing = {module: where for module, where in imported.items() if module not in bundle_rules.QT_MODULES}
    assert not missing, f"add these to QT_MODULES in packaging/pyinstaller/bundle_rules.py: {missing}"


@pytest.mark.parametrize(
    ("destination", "left_out"),
    [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", False),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", True),
        ("PySide6/Qt/plugins/platforms/libqvnc.so", True),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", True),
        ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", False),
        ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so", True),
        ("PySide6/Qt/plugins/platforminputcontexts/libibusplatforminputcontextplugin.so", False),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
        ("PySide6/Qt/plugins/imageformats/libqpdf.so", True),
        ("PySide6/Qt/plugins/iconengines/libqsvgicon.so", False),
        ("PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so", False),
        ("PySide6/Qt/plugins/tls/libqopensslbackend.so", True),
        ("PySide6/Qt/plugins/networkinformation/libqnetworkmanager.so", True),
        ("PySide6/plugins/platforms/qwindows.dll", False),
        ("PySide6/plugins/imageformats/qpdf.dll", True),
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", False),
        ("PySide6/Qt/lib/libQt6Core.so.6", False),
    ],
)
def test_plugin_rules(destination, left_out):
    assert bundle_rules.plugin_left_out(destination) is left_out


def test_unwanted_qt_libraries_are_recognised():
    assert bundle_rules.unwanted_library("libQt6WebEngineCore.so.6")
    assert bundle_rules.unwanted_library("Qt6Pdf.dll")
    # Qt's FFmpeg media plugin links QtQuick and QtQml: they must stay allowed.
    assert not bundle_rules.unwanted_library("libQt6Quick.so.6")
    assert not bundle_rules.unwanted_library("libQt6Qml.so.6")
    assert not bundle_rules.unwanted_library("libQt6Widgets.so.6")


def test_spec_and_the_files_it_names():
    source = (REPO / "build.spec").read_text(encoding="utf-8")
    compile(source, "build.spec", "exec")
    for relative in ("packaging/pyinstaller/launcher.py", "packaging/pyinstaller/hooks/hook-PySide6.QtGui.py",
                     "packaging/pyinstaller/hooks/hook-PySide6.QtNetwork.py", "resources/icons/transcriber.ico",
                     "resources/icons/transcriber.icns"):
        assert (REPO / relative).is_file(), relative
        assert Path(relative).name in source or relative.startswith("packaging/pyinstaller/hooks")


@pytest.mark.parametrize("script", ["packaging/linux/build.sh", "packaging/macos/build-dmg.sh"])
def test_shell_scripts_parse_and_are_executable(script):
    path = REPO / script
    assert os.access(path, os.X_OK), f"chmod +x {script}"
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _elf64_with_load(offset: int, vaddr: int, align: int = 0x1000) -> bytes:
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"  # 64-bit, little-endian
    struct.pack_into("<Q", header, 32, 64)  # program headers right after the header
    struct.pack_into("<HH", header, 54, 56, 1)  # one 56-byte entry
    entry = struct.pack("<IIQQQQQQ", 1, 5, offset, vaddr, vaddr, 16, 16, align)
    return bytes(header) + entry


def test_segment_alignment_check(tmp_path):
    good, bad = tmp_path / "good.so", tmp_path / "bad.so"
    good.write_bytes(_elf64_with_load(0x1622000, 0x16E1000))
    bad.write_bytes(_elf64_with_load(0x1621098, 0x166B000))  # what strip made of numpy's OpenBLAS
    assert elfdeps.loadable_segments_aligned(good)
    assert not elfdeps.loadable_segments_aligned(bad)
    assert elfdeps.loadable_segments_aligned(Path(sys.executable).resolve())


def test_strip_keeps_libraries_it_would_break(tmp_path):
    """numpy's auditwheel-patched OpenBLAS is broken by strip; the bundle stripper must keep it as it is."""
    if shutil.which("strip") is None:
        pytest.skip("binutils is not installed")
    import numpy

    libraries = sorted((Path(numpy.__file__).parent.parent / "numpy.libs").glob("libscipy_openblas*.so"))
    if not libraries:
        pytest.skip("this numpy has no bundled OpenBLAS")
    copy = tmp_path / "bundle" / libraries[0].name
    copy.parent.mkdir()
    shutil.copyfile(libraries[0], copy)
    original = copy.read_bytes()
    saved, stripped, refused = elfdeps.strip_bundle(copy.parent)
    assert refused == [copy] and stripped == 0 and saved == 0
    assert copy.read_bytes() == original
