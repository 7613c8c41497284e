"""Desktop metadata in ``resources/``: the .desktop entry, the AppStream metainfo and the icons.

Package managers and software centres read these files; a typo in them means a
missing menu entry or icon, so they are parsed and cross-checked here, and validated
with the freedesktop tools where those are installed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO
from transcriber import __version__

RESOURCES = REPO / "resources"
DESKTOP = RESOURCES / "transcriber.desktop"
METAINFO = RESOURCES / "transcriber.metainfo.xml"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def desktop_entry() -> dict[str, str]:
    """The [Desktop Entry] group as a dict (the format is simple enough to read by hand)."""
    group, entries = None, {}
    for line in DESKTOP.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            group = line
            continue
        key, _, value = line.partition("=")
        if group == "[Desktop Entry]":
            assert key.strip() not in entries, f"duplicate key {key}"
            entries[key.strip()] = value.strip()
    return entries


def load_render_icons():
    spec = importlib.util.spec_from_file_location("render_icons", REPO / "packaging" / "render_icons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_desktop_entry_has_what_menus_need():
    entry = desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] and entry["Comment"]
    assert entry["Terminal"] == "false"
    # It starts the installed console script, which opens the window when given no command,
    # and adds the files it is given ("Open with" in a file manager).
    assert entry["Exec"].split()[0] in PYPROJECT["project"]["scripts"]
    assert entry["Exec"].split()[1:] == ["%F"]
    mime_types = entry["MimeType"].split(";")
    assert "audio/mpeg" in mime_types and "video/mp4" in mime_types and entry["MimeType"].endswith(";")
    assert entry["TryExec"] == entry["Exec"].split()[0]
    assert entry["Icon"] == "transcriber"
    # Qt names the X11 window class after the program; test_linux_packages checks it with xprop.
    assert entry["StartupWMClass"] == "transcriber"
    assert (RESOURCES / "icons" / f"{entry['Icon']}.svg").is_file()
    categories = entry["Categories"]
    assert categories.endswith(";") and "AudioVideo" in categories.split(";")


def test_desktop_entry_validates():
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate is not installed (apt: desktop-file-utils)")
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    # It exits 0 on hints too; any output means something to fix.
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_metainfo_matches_the_desktop_entry_and_the_package():
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == "transcriber"
    assert root.findtext("metadata_license") == "CC0-1.0"
    assert root.findtext("project_license") == PYPROJECT["project"]["license"]["text"]
    assert root.findtext("name") == desktop_entry()["Name"]
    assert root.findtext("summary")
    assert root.find("description/p") is not None
    launchable = root.find("launchable")
    assert launchable.get("type") == "desktop-id" and launchable.text == DESKTOP.name
    assert root.findtext("icon") == desktop_entry()["Icon"]
    assert root.findtext("provides/binary") == "transcriber"
    releases = root.findall("releases/release")
    assert releases, "AppStream wants at least one release"
    # The version lives in transcriber/__init__.py; the newest release entry must follow it.
    assert releases[0].get("version") == __version__, "add a <release> for the new version to the metainfo"
    assert releases[0].get("date")


def test_metainfo_validates():
    if shutil.which("appstreamcli") is None:
        pytest.skip("appstreamcli is not installed (apt: appstream)")
    # The id is the plain name "transcriber", as the desktop file is; AppStream prefers a
    # reverse-DNS id, which it reports as a warning. Every other issue still fails the test.
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", "--override=cid-desktopapp-is-not-rdns=info", str(METAINFO)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_window_and_desktop_show_the_same_icon():
    """The window loads its icon from the package; menus and installers use resources/icons."""
    packaged = REPO / "transcriber" / "resources" / "transcriber.svg"
    if not packaged.is_file():
        pytest.skip("the package has no icon of its own")
    assert packaged.read_bytes() == (RESOURCES / "icons" / "transcriber.svg").read_bytes()


def test_icons_are_rendered_from_the_current_svg(qapp):
    # qapp: pytest-qt's QApplication. Left to itself, render_icons would make a QGuiApplication,
    # and widget tests later in this process could not create windows.
    render_icons = load_render_icons()
    assert render_icons.stale() == [], "icons are stale: run python packaging/render_icons.py"
    ico = (RESOURCES / "icons" / "transcriber.ico").read_bytes()
    assert ico[:4] == b"\x00\x00\x01\x00" and int.from_bytes(ico[4:6], "little") == len(render_icons.ICO_SIZES)
    icns = (RESOURCES / "icons" / "transcriber.icns").read_bytes()
    assert icns[:4] == b"icns" and int.from_bytes(icns[4:8], "big") == len(icns)
