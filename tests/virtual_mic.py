"""A virtual microphone for recording tests: a private PulseAudio server with a null sink whose monitor is the default source.

Whatever ``play`` sends into the ``mic_sink`` sink is what PortAudio (through ALSA's pulse
plugin) records from the default input. The server is private to the test (its own runtime
folder), so the test processes given ``env`` see it and nothing else on the machine does.
Recording runs in subprocesses: PortAudio only finds a sound server started before it was
initialised.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest


class VirtualMic:
    def __init__(self, runtime_dir: Path):
        self.runtime_dir = runtime_dir
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir)}
        self.env.pop("PULSE_SERVER", None)

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def start(self) -> None:
        self._run(
            "pulseaudio", "-n", "--daemonize=yes", "--exit-idle-time=-1", "--disallow-exit",
            "-L", "module-native-protocol-unix",
            "-L", "module-null-sink sink_name=speaker",
            "-L", "module-null-sink sink_name=mic_sink rate=16000 channels=1",
            "-L", "module-always-sink",
        )
        self._run("pactl", "set-default-sink", "speaker")
        self._run("pactl", "set-default-source", "mic_sink.monitor")

    def play(self, path: Path) -> subprocess.Popen:
        """Start playing ``path`` into the microphone; returns the player (wait() for its end)."""
        return subprocess.Popen(["paplay", "-d", "mic_sink", str(path)], env=self.env)

    def kill_server(self) -> None:
        """The sound server goes away, as when a USB microphone is pulled or PulseAudio crashes."""
        self._run("pulseaudio", "--kill", check=False)

    def stop(self) -> None:
        self.kill_server()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


@pytest.fixture
def virtual_mic():
    """A private PulseAudio with a virtual microphone; skips where PulseAudio or its tools are missing."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (see scripts/test-system-packages.txt)")
    mic = VirtualMic(Path(tempfile.mkdtemp(prefix="pulse-")))  # mode 700, as PulseAudio wants
    try:
        mic.start()
    except subprocess.CalledProcessError as error:
        mic.stop()
        pytest.skip(f"PulseAudio does not start here: {error.stderr.strip()}")
    yield mic
    mic.stop()


def wait_for_line(stream, text: str, process: subprocess.Popen) -> list[str]:
    """Read ``stream`` line by line until one contains ``text``; the lines read. Fails if the process ends first."""
    lines = []
    while True:
        line = stream.readline()
        if not line:
            raise AssertionError(f"process ended ({process.wait()}) before printing {text!r}:\n{''.join(lines)}")
        lines.append(line)
        if text in line:
            return lines


def sound_span(audio: np.ndarray, rate: int, threshold: float = 0.01) -> tuple[float, float]:
    """Seconds from the start to the first and to the last sample louder than ``threshold``."""
    loud = np.nonzero(np.abs(audio) > threshold)[0]
    if loud.size == 0:
        return 0.0, 0.0
    return loud[0] / rate, (loud[-1] + 1) / rate
