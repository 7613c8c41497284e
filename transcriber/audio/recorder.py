"""Record from a microphone straight to disk, so a crash or a kill loses at most the last second.

PortAudio (through sounddevice) calls ``_on_audio`` on its own thread with each block; the
block is copied into a queue and a writer thread appends it to a 16-bit PCM WAV file. Every
``sync_seconds`` the writer flushes the file and rewrites the WAV header's sizes, so the file
on disk is valid and playable at any moment, and memory holds only a few blocks.

While a recording runs, a ``.partial`` marker sits next to its file, exclusively locked by
the recording process; it stays until the recording has become a job (``forget``). A marker
that can be locked belongs to a recording whose process ended: ``recover`` repairs that
file's header from its real length when the process died mid-recording, and lists it, so the
window and ``transcriber record --recover`` can offer it for transcription.

Nothing here imports Qt; the window and the command line poll a ``Recorder`` for its state.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import struct
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..background import BackgroundService, run_with_timeout
from ..errors import TranscriberError
from ..filelock import try_lock
from .decode import format_clock

log = logging.getLogger(__name__)

RECORDING_RATE = 16000  # what the model uses: no resampling later, and a quarter of CD-size files
MARKER_SUFFIX = ".partial"
_HEADER_BYTES = 44
_SAMPLE_BYTES = 2  # 16-bit PCM: lossless for any microphone worth the name, half the size of float

PORTAUDIO_MISSING = (
    "Recording needs PortAudio, the sound library, which is not installed: install it "
    "(Debian/Ubuntu: apt install libportaudio2; macOS: brew install portaudio) and try again."
)
NO_DEVICE = (
    "No microphone or other input device was found. Connect one, check that the sound system "
    "is running and that this program may use the microphone, then try again."
)


class RecordingError(TranscriberError):
    """Recording cannot start or went wrong; the message says why and what to do."""


@dataclass(frozen=True)
class InputDevice:
    """An audio input as PortAudio lists it."""

    index: int
    name: str
    channels: int
    default_rate: float
    is_default: bool

    @property
    def label(self) -> str:
        return f"{self.name}{' (default)' if self.is_default else ''}"


@dataclass(frozen=True)
class Recording:
    """A finished or recovered recording file.

    Attributes:
        path: the WAV file.
        seconds: how much audio it holds.
        error: why recording ended early (device lost, ...), or None when it was stopped.
    """

    path: Path
    seconds: float
    error: str | None = None
    started_at: str | None = None


# --------------------------------------------------------------- sounddevice


def _sounddevice():
    """Import sounddevice on first use: it loads PortAudio, which may be missing (an OSError), and
    the rest of the app (transcribing files) must work without it.

    Raises:
        RecordingError: PortAudio cannot be loaded.
    """
    try:
        import sounddevice
    except (OSError, ImportError) as error:
        log.warning("sounddevice unavailable: %s", error)
        raise RecordingError(PORTAUDIO_MISSING) from None
    return sounddevice


def list_input_devices() -> list[InputDevice]:
    """Every device that can record, the system default marked.

    Raises:
        RecordingError: PortAudio is missing or fails.
    """
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_input = sd.default.device[0]
    except sd.PortAudioError as error:
        raise RecordingError(f"The sound system cannot list input devices: {error}.") from None
    if default_input is None or default_input < 0:
        try:
            default_input = sd.query_devices(kind="input")["index"]
        except (sd.PortAudioError, ValueError, KeyError):
            default_input = -1
    return [
        InputDevice(index, info["name"], int(info["max_input_channels"]), float(info["default_samplerate"]), index == default_input)
        for index, info in enumerate(devices)
        if info["max_input_channels"] > 0
    ]


def choose_device(devices: list[InputDevice], wanted: int | str | None) -> InputDevice:
    """The device ``wanted`` names (an index, or part of a name, any case); the default when None.

    Raises:
        RecordingError: there are no input devices, or none matches.
    """
    if not devices:
        raise RecordingError(NO_DEVICE)
    if wanted is None or wanted == "":
        return next((device for device in devices if device.is_default), devices[0])
    text = str(wanted).strip()
    if text.isdigit():
        match = [device for device in devices if device.index == int(text)]
    else:
        match = [device for device in devices if device.name == text] or [
            device for device in devices if text.lower() in device.name.lower()
        ]
    if len(match) != 1:
        known = "; ".join(f"{device.index}: {device.name}" for device in devices)
        problem = "matches several input devices" if match else "matches no input device"
        raise RecordingError(f"{text!r} {problem}. Input devices: {known}.")
    return match[0]


# ------------------------------------------------------------------ WAV file


def _wav_header(rate: int, channels: int, data_bytes: int) -> bytes:
    block_align = channels * _SAMPLE_BYTES
    return b"".join(
        (
            b"RIFF", struct.pack("<I", 36 + data_bytes), b"WAVE",
            b"fmt ", struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block_align, block_align, 8 * _SAMPLE_BYTES),
            b"data", struct.pack("<I", data_bytes),
        )
    )


class WavWriter:
    """A 16-bit PCM WAV file written block by block whose header is kept true by ``sync``."""

    def __init__(self, path: Path, rate: int, channels: int):
        self.path = Path(path)
        self.rate = rate
        self.channels = channels
        self.data_bytes = 0
        self._file = open(self.path, "xb")  # never over an existing recording
        self._file.write(_wav_header(rate, channels, 0))

    @property
    def seconds(self) -> float:
        return self.data_bytes / (self.rate * self.channels * _SAMPLE_BYTES)

    def write(self, pcm: bytes) -> None:
        self._file.write(pcm)
        self.data_bytes += len(pcm)

    def sync(self) -> None:
        """Put what was written on disk and make the header say so: the file is valid from here on."""
        # The data reaches the file before the header claims it, so a kill in between leaves a
        # header that is short, never long (and recovery measures the file anyway).
        self._file.flush()
        self._file.seek(4)
        self._file.write(struct.pack("<I", 36 + self.data_bytes))
        self._file.seek(40)
        self._file.write(struct.pack("<I", self.data_bytes))
        self._file.seek(0, os.SEEK_END)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()


def repair_wav(path: Path) -> float:
    """Make a WAV's header declare all the whole frames the file holds (after a crash); returns seconds.

    A header that is already right is left alone, so the file (and its modification time,
    which a queued job checks) does not change.

    Raises:
        RecordingError: the file is not a PCM WAV this module wrote.
    """
    path = Path(path)
    with open(path, "r+b") as handle:
        header = handle.read(_HEADER_BYTES)
        if len(header) < _HEADER_BYTES or header[:4] != b"RIFF" or header[8:12] != b"WAVE" or header[36:40] != b"data":
            raise RecordingError(f"{path.name} is not a recording this app can repair.")
        channels, rate = struct.unpack("<HI", header[22:28])
        block_align = struct.unpack("<H", header[32:34])[0] or channels * _SAMPLE_BYTES
        size = os.fstat(handle.fileno()).st_size
        data_bytes = (size - _HEADER_BYTES) // block_align * block_align
        seconds = data_bytes / (rate * block_align) if rate else 0.0
        declared = struct.unpack("<I", header[4:8])[0], struct.unpack("<I", header[40:44])[0]
        if declared == (36 + data_bytes, data_bytes) and size == _HEADER_BYTES + data_bytes:
            return seconds
        handle.truncate(_HEADER_BYTES + data_bytes)  # drop a half-written last frame
        handle.seek(4)
        handle.write(struct.pack("<I", 36 + data_bytes))
        handle.seek(40)
        handle.write(struct.pack("<I", data_bytes))
        handle.flush()
        os.fsync(handle.fileno())
    return seconds


# ------------------------------------------------------------------ markers


def marker_of(path: Path) -> Path:
    return path.with_name(path.name + MARKER_SUFFIX)


def _read_marker(handle) -> dict:
    # Through the locked handle: on Windows another handle may not read a locked region.
    try:
        handle.seek(0)
        return json.loads(handle.read() or "{}")
    except (OSError, ValueError):
        return {}


def recording_is_live(path: Path) -> bool:
    """Whether a recorder (in this process or another) is still writing ``path``: its marker is locked."""
    try:
        handle = open(marker_of(Path(path)), "r+")
    except OSError:
        return False  # no marker: nothing records it
    with handle:
        return not try_lock(handle)  # the lock goes when the handle closes


def written_seconds(path: Path) -> float:
    """Seconds of audio a recording's header declares: what its writer has synced to disk so far (0 if unreadable).

    A reader of a growing recording (the live transcript) reads up to here and never
    sees a frame that is not on disk yet.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(_HEADER_BYTES)
    except OSError:
        return 0.0
    if len(header) < _HEADER_BYTES or header[:4] != b"RIFF" or header[36:40] != b"data":
        return 0.0
    byte_rate = struct.unpack("<I", header[28:32])[0]
    return struct.unpack("<I", header[40:44])[0] / byte_rate if byte_rate else 0.0


def recover(folder: Path) -> list[Recording]:
    """Repair the recordings in ``folder`` whose process died, and list every recording not yet dealt with.

    A recording is dealt with once ``forget`` removes its marker (it became a job, or the user
    discarded it); until then it is offered here, whether it was interrupted or stopped and then
    refused or never queued. Live recordings (their marker is locked) are left alone, and so
    are recordings that are jobs already (a live transcript's, with ``job_id`` in the marker):
    the engine's start-up recovery finishes those (``Engine.recover_recordings``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found, orphans = [], []
    for marker in sorted(folder.glob(f"*{MARKER_SUFFIX}")):
        audio = marker.with_name(marker.name[: -len(MARKER_SUFFIX)])
        try:
            handle = open(marker, "r+")
        except OSError:
            continue
        with handle:
            if not try_lock(handle):
                continue  # recording right now, in this process or another
            state = _read_marker(handle)
            if state.get("job_id") is not None and audio.exists():
                continue  # a job already: the engine's recovery finishes it
            if not audio.exists():
                orphans.append(marker)  # removed once closed: Windows deletes no open file
                continue
            try:
                seconds = repair_wav(audio)
            except (OSError, RecordingError) as error:
                log.warning("cannot repair %s: %s", audio, error)
                continue
            if state.get("state") == "recording":
                log.info("recovered interrupted recording %s (%s)", audio, format_clock(seconds))
                state["state"] = "recovered"
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(state))
                handle.flush()
            found.append(Recording(audio, seconds, state.get("error"), state.get("started_at")))
    for marker in orphans:
        marker.unlink(missing_ok=True)
    return found


def forget(path: Path) -> None:
    """Stop offering a recording (it became a job, or the user dealt with it); the file stays."""
    marker_of(Path(path)).unlink(missing_ok=True)


def discard(path: Path) -> None:
    """Delete a recording that was offered, and its marker."""
    Path(path).unlink(missing_ok=True)
    forget(path)


# ------------------------------------------------------------------ streams


def open_input_stream(device: InputDevice, callback, finished_callback, factory=None):
    """An unstarted 16-bit mono input stream at 16 kHz, or at the device's own rate if it refuses 16 kHz.

    Returns ``(stream, rate)``.

    Raises:
        RecordingError: the device cannot be opened (busy, gone, not allowed), or PortAudio is missing.
    """
    rates = [RECORDING_RATE] + ([int(device.default_rate)] if int(device.default_rate) != RECORDING_RATE else [])
    if factory is None:
        factory = _sounddevice().InputStream
    last_error: Exception | None = None
    for rate in rates:
        try:
            stream = factory(device=device.index, samplerate=rate, channels=1, dtype="int16",
                             callback=callback, finished_callback=finished_callback)
        except Exception as error:  # PortAudioError: busy, gone, no permission, unsupported rate
            last_error = error
            continue
        return stream, rate
    raise RecordingError(
        f"The input device {device.name!r} cannot be opened: {last_error}. It may be in use by another "
        "program, disconnected, or this program may not be allowed to use the microphone."
    )


def _peak(indata) -> float:
    block = np.asarray(indata)
    return float(np.abs(block.astype(np.int32)).max()) / 32768.0 if block.size else 0.0


def close_stream(stream, timeout: float = 3.0) -> None:
    """Abort and close an input stream without ever hanging the caller.

    A graceful ``stop()`` waits for PortAudio's capture thread, and when the sound server
    has gone away that thread can wait forever (the window froze on closing). ``abort()``
    cancels the thread instead, dropping at most the block in flight. It runs on a helper
    thread so that even a driver that hangs costs the caller ``timeout`` seconds, not the app.
    """

    def close() -> None:
        try:
            stream.abort()
            stream.close()
        except Exception as error:  # a vanished device may refuse; the file matters more
            log.info("closing the input stream: %s", error)

    if not run_with_timeout(close, timeout, "input-stream-close"):
        log.warning("the input stream did not close within %.0f s; left behind", timeout)


class _WavAppender(BackgroundService):
    """The recording's writer thread: appends the blocks the capture callback queued, and syncs the file.

    PortAudio's callback must never block, so it only queues blocks; this thread writes
    them and makes the file valid on disk every ``sync_seconds``. After a stop it writes
    what is still queued, so nothing captured before the stop is lost.
    """

    name = "recording-writer"

    def __init__(self, recorder: "Recorder", writer: WavWriter):
        super().__init__()
        self._recorder = recorder
        self._writer = writer
        self._next_sync = time.monotonic() + recorder.sync_seconds

    def step(self) -> bool:
        try:
            block = self._recorder._blocks.get(timeout=0.1)
        except queue.Empty:
            block = None
        self._write(block)
        return True  # the queue's wait is the pause between steps

    def finish(self) -> None:
        while True:
            try:
                block = self._recorder._blocks.get_nowait()
            except queue.Empty:
                return
            self._write(block)

    def _write(self, block) -> None:
        recorder, writer = self._recorder, self._writer
        try:
            if block is not None and not recorder._paused:
                writer.write(block.tobytes())
                recorder._recorded_seconds = writer.seconds
            if time.monotonic() >= self._next_sync:
                writer.sync()
                self._next_sync = time.monotonic() + recorder.sync_seconds
        except OSError as error:  # disk full, folder removed: stop, keep what is on disk
            recorder.error = f"Writing the recording failed: {error.strerror or error}. What was written is kept."
            recorder._state = "failed"
            recorder._stopping.set()
            self.request_stop()


class InputMonitor:
    """The level of an input, recording nothing: the meter that helps choose a device before recording."""

    def __init__(self, device: InputDevice, *, stream_factory: Callable[..., Any] | None = None):
        self.device = device
        self._factory = stream_factory
        self._stream = None
        self._level = 0.0
        self.error: str | None = None

    def start(self) -> None:
        """Raises: RecordingError: the device cannot be opened."""
        self._stream, _ = open_input_stream(self.device, self._on_audio, self._on_finished, self._factory)
        try:
            self._stream.start()
        except Exception as error:
            self.stop()
            raise RecordingError(f"The input device {self.device.name!r} cannot start: {error}.") from None

    def _on_audio(self, indata, frames, time_info, status) -> None:
        self._level = max(self._level, _peak(indata))

    def _on_finished(self) -> None:
        if self._stream is not None:
            self.error = f"The input device {self.device.name!r} stopped delivering audio."

    def take_level(self) -> float:
        level, self._level = self._level, 0.0
        return level

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            close_stream(stream)


# ------------------------------------------------------------------ recorder


def new_recording_path(folder: Path) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path = folder / f"recording_{stamp}.wav"
    number = 2
    while path.exists() or marker_of(path).exists():
        path = folder / f"recording_{stamp}_{number}.wav"
        number += 1
    return path


class Recorder:
    """One recording from one input device into one WAV file in ``folder``.

    States: ``idle`` → ``recording`` ⇄ ``paused`` → ``stopped``, or ``failed`` when the
    device stops on its own (unplugged, sound server gone); the audio so far is kept either way.
    The level meter keeps moving while paused, so the user sees the microphone works.

    Args:
        folder: where the file goes (created if missing).
        device: an index or part of a name (see ``choose_device``); None for the default.
        sync_seconds: how often the file on disk is made valid: the most a crash loses.
        stream_factory: builds the input stream (tests pass a fake); default: sounddevice's.
        devices: the inputs to choose from, when the caller has listed them already.
    """

    def __init__(self, folder: Path, *, device: int | str | None = None, sync_seconds: float = 0.5,
                 stream_factory: Callable[..., Any] | None = None, devices: list[InputDevice] | None = None):
        self.folder = Path(folder)
        self.wanted = device
        self.sync_seconds = sync_seconds
        self.device: InputDevice | None = None
        self.path: Path | None = None
        self.rate = RECORDING_RATE
        self.error: str | None = None
        self._devices = devices
        self._stream_factory = stream_factory
        self._stream = None
        self._state = "idle"
        self._blocks: queue.Queue = queue.Queue()
        self._writer: WavWriter | None = None
        self._appender: _WavAppender | None = None
        self._marker = None
        self._marker_state: dict = {}
        self._stopping = threading.Event()
        self._first_audio = threading.Event()
        self._paused = False
        self._peak = 0.0
        self._last_audio = 0.0
        self._recorded_seconds = 0.0
        self._started_at = datetime.now().astimezone().isoformat(timespec="seconds")

    # -- state, read from any thread

    @property
    def state(self) -> str:
        return self._state

    @property
    def seconds(self) -> float:
        """Audio written so far (pauses excluded): the elapsed time to show."""
        return self._recorded_seconds

    @property
    def active(self) -> bool:
        return self._state in ("recording", "paused")

    def take_level(self) -> float:
        """The loudest sample (0..1) since the last call: a meter polls this."""
        peak, self._peak = self._peak, 0.0
        return peak

    def seconds_without_audio(self) -> float:
        """How long the device has sent nothing (0 before the first block): a stalled device shows here."""
        return time.monotonic() - self._last_audio if self._first_audio.is_set() else 0.0

    def wait_for_audio(self, timeout: float | None = None) -> bool:
        """Block until the device delivered its first block (PortAudio starts a second or so late)."""
        return self._first_audio.wait(timeout)

    # -- control

    def start(self) -> Path:
        """Open the device and the file, and start recording. Returns the file's path.

        Raises:
            RecordingError: PortAudio missing, no such device, the device cannot be opened.
        """
        if self._state != "idle":
            raise RecordingError("This recorder was already started.")
        devices = self._devices if self._devices is not None else list_input_devices()
        self.device = choose_device(devices, self.wanted)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RecordingError(f"Cannot write the recording in {self.folder}: {error.strerror or error}.") from None
        stream = self._open_stream()
        self.path = new_recording_path(self.folder)
        try:
            self._marker = open(marker_of(self.path), "w")
            try_lock(self._marker)
            self._marker_state = {
                "state": "recording", "device": self.device.name, "rate": self.rate,
                "started_at": self._started_at, "pid": os.getpid(),
            }
            self._marker.write(json.dumps(self._marker_state))
            self._marker.flush()
            self._writer = WavWriter(self.path, self.rate, 1)
        except OSError as error:
            stream.close()
            self._release_marker(delete=True)
            raise RecordingError(f"Cannot write the recording in {self.folder}: {error.strerror or error}.") from None
        self._stream = stream
        self._state = "recording"
        self._appender = _WavAppender(self, self._writer)
        self._appender.start()
        try:
            stream.start()
        except Exception as error:  # PortAudioError, or anything a driver throws at us
            self.error = f"The input device {self.device.name!r} cannot start: {error}."
            self.stop()
            raise RecordingError(self.error) from None
        log.info("recording from %r at %d Hz into %s", self.device.name, self.rate, self.path)
        return self.path

    def attach_job(self, job_id: int) -> None:
        """Note in the marker that this recording is job ``job_id`` already (its transcript is made live).

        After a crash the engine's recovery then finishes that job, and the recording is
        not offered again as one never transcribed.
        """
        if self._marker is None:
            return
        self._marker_state["job_id"] = job_id
        self._write_marker(self._marker_state)

    def _write_marker(self, state: dict) -> None:
        try:
            self._marker.seek(0)
            self._marker.truncate()
            self._marker.write(json.dumps(state))
            self._marker.flush()
        except OSError as error:
            log.warning("cannot update the marker of %s: %s", self.path, error)

    def pause(self) -> None:
        if self._state == "recording":
            self._paused = True
            self._state = "paused"

    def resume(self) -> None:
        if self._state == "paused":
            self._paused = False
            self._state = "recording"

    def stop(self) -> Recording:
        """Stop (idempotent), finish the file and return it; an error that ended it is on ``error``."""
        if self._state == "idle":
            raise RecordingError("Nothing is being recorded.")
        self._stopping.set()
        stream, self._stream = self._stream, None
        if stream is not None:
            close_stream(stream)
        if self._appender is not None:
            self._appender.stop(timeout=None)
            self._appender = None
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError as error:
                self.error = self.error or f"The recording could not be finished on disk: {error}."
            self._recorded_seconds = self._writer.seconds
        if self._state in ("recording", "paused"):
            self._state = "stopped"
        nothing = not self._recorded_seconds
        self._release_marker(delete=nothing)
        if nothing and self.path is not None:
            self.path.unlink(missing_ok=True)  # a header without audio is no recording
        if self.error:
            log.warning("recording %s ended: %s", self.path, self.error)
        return Recording(self.path, self._recorded_seconds, self.error, self._started_at)

    # -- internals

    def _open_stream(self):
        stream, self.rate = open_input_stream(self.device, self._on_audio, self._on_finished, self._stream_factory)
        return stream

    def _on_audio(self, indata, frames, time_info, status) -> None:
        """PortAudio's thread: copy and hand over; nothing here may block."""
        if status:
            log.debug("input status: %s", status)
        block = np.array(indata[:, 0] if getattr(indata, "ndim", 1) > 1 else indata, dtype=np.int16, copy=True)
        self._peak = max(self._peak, _peak(block))
        self._last_audio = time.monotonic()
        self._first_audio.set()
        self._blocks.put(block)

    def _on_finished(self) -> None:
        """PortAudio's thread: the stream ended. Unasked, that means the device went away."""
        if not self._stopping.is_set():
            self.error = (
                f"The input device {self.device.name if self.device else ''!r} stopped delivering audio "
                "(disconnected, or the sound system stopped). What was recorded until then is kept."
            )
            self._state = "failed"
            self._stopping.set()
            if self._appender is not None:
                self._appender.request_stop()  # it writes what is queued, then ends

    def _release_marker(self, *, delete: bool) -> None:
        """Drop the live lock. The marker stays (unlocked) until the recording is queued: see ``forget``."""
        if self._marker is None:
            return
        marker = marker_of(self.path) if self.path else None
        try:
            if not delete:
                state = {"state": "stopped", "error": self.error, "started_at": self._started_at}
                if self._marker_state.get("job_id") is not None:
                    state["job_id"] = self._marker_state["job_id"]
                self._marker.seek(0)
                self._marker.truncate()
                self._marker.write(json.dumps(state))
            self._marker.close()
        except OSError:
            pass
        self._marker = None
        if delete and marker is not None:
            marker.unlink(missing_ok=True)
