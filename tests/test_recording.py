"""Recording from a microphone: the recorder's logic with a fake stream, then the real thing through a virtual microphone.

The end-to-end tests run ``transcriber record`` in a subprocess against a private PulseAudio
(see virtual_mic.py): speech played into it is recorded, survives SIGKILL, survives the sound
server vanishing, and comes out as a transcript from the real model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, normalise, run_cli
from transcriber.audio import recorder
from transcriber.audio.decode import probe
from transcriber.audio.recorder import InputDevice, Recorder, RecordingError
from virtual_mic import sound_span, virtual_mic, wait_for_line  # noqa: F401  (virtual_mic is a fixture)

RATE = 16000
MIC = InputDevice(index=3, name="Fake USB microphone", channels=1, default_rate=48000.0, is_default=True)


class FakeStream:
    """An input stream that delivers ``audio`` in 10 ms blocks from its own thread, like PortAudio.

    ``vanish_after`` blocks in, it ends by itself (calling ``finished_callback``), as a stream
    does when its device is unplugged. ``gate``, when given, lets the test release blocks one
    at a time.
    """

    def __init__(self, audio: np.ndarray, *, vanish_after: int | None = None, **kwargs):
        self.kwargs = kwargs
        self.audio = audio
        self.vanish_after = vanish_after
        self.delivered = 0
        self.gate = threading.Semaphore(0)
        self.closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop = threading.Event()

    def start(self):
        self._thread.start()

    def _run(self):
        block = self.kwargs["samplerate"] // 100
        for start in range(0, len(self.audio), block):
            self.gate.acquire()
            if self._stop.is_set():
                return
            if self.vanish_after is not None and self.delivered >= self.vanish_after:
                self.kwargs["finished_callback"]()
                return
            chunk = self.audio[start : start + block].reshape(-1, 1)
            self.kwargs["callback"](chunk, len(chunk), None, None)
            self.delivered += 1

    def release(self, blocks: int) -> None:
        for _ in range(blocks):
            self.gate.release()

    def abort(self):
        self._stop.set()
        self.gate.release()

    def close(self):
        self.closed = True


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)


def fake_recorder(folder: Path, audio: np.ndarray, **stream_options):
    streams = []

    def factory(**kwargs):
        stream = FakeStream(audio, **stream_options, **kwargs)
        streams.append(stream)
        return stream

    return Recorder(folder, devices=[MIC], stream_factory=factory, sync_seconds=0.05), streams


def wait_until(condition, what: str):
    """Poll ``condition``; the fake stream's thread and the writer thread run on their own."""
    for _ in range(2000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


# ------------------------------------------------------------- logic, fake stream


def test_recording_is_a_valid_file_while_it_grows_pause_skips_audio_and_stop_keeps_it_offered(tmp_path):
    audio = tone(3.0)
    rec, streams = fake_recorder(tmp_path / "recordings", audio)
    path = rec.start()
    stream = streams[0]
    assert stream.kwargs["samplerate"] == RATE and stream.kwargs["channels"] == 1 and stream.kwargs["dtype"] == "int16"
    assert recorder.recover(tmp_path / "recordings") == []  # live: its marker is locked, not offered

    stream.release(100)  # one second
    wait_until(lambda: rec.seconds >= 1.0, "one second written")
    # Mid-recording, the file on disk is already a valid WAV holding (about) what was captured.
    wait_until(lambda: sf.info(str(path)).frames >= RATE * 0.9, "header synced")
    assert rec.take_level() == pytest.approx(12000 / 32768, abs=0.01)

    rec.pause()
    assert rec.state == "paused"
    stream.release(50)
    wait_until(lambda: stream.delivered == 150, "paused blocks delivered")
    rec.resume()
    stream.release(50)
    wait_until(lambda: stream.delivered == 200, "blocks after resuming delivered")
    wait_until(lambda: rec.seconds >= 1.5, "audio after resume written")
    result = rec.stop()

    assert rec.state == "stopped" and result.error is None and stream.closed
    assert result.seconds == pytest.approx(1.5)
    written, rate = sf.read(str(path), dtype="int16")
    assert rate == RATE and len(written) == int(1.5 * RATE)
    # The paused half second is not in the file: it goes on with the blocks after resuming.
    assert np.array_equal(written, np.concatenate([audio[:RATE], audio[int(1.5 * RATE) : 2 * RATE]]))
    assert not probe(path).truncated and probe(path).duration_seconds == pytest.approx(1.5, abs=0.01)
    # Stopped but not yet a job: still offered, until forgotten.
    offered = recorder.recover(tmp_path / "recordings")
    assert [(r.path, r.seconds) for r in offered] == [(path, pytest.approx(1.5))]
    recorder.forget(path)
    assert recorder.recover(tmp_path / "recordings") == [] and path.exists()


def test_a_device_that_stops_on_its_own_ends_the_recording_with_a_message_and_keeps_the_audio(tmp_path):
    audio = tone(2.0)
    rec, streams = fake_recorder(tmp_path, audio, vanish_after=80)
    path = rec.start()
    streams[0].release(200)
    wait_until(lambda: rec.state == "failed", "the recorder notices the stream ended")
    assert not rec.active
    result = rec.stop()
    assert "Fake USB microphone" in result.error and "stopped delivering audio" in result.error
    assert "kept" in result.error
    written, _ = sf.read(str(path), dtype="int16")
    assert np.array_equal(written, audio[: 80 * RATE // 100])
    assert [r.error for r in recorder.recover(tmp_path)] == [result.error]


def test_a_full_disk_ends_the_recording_with_a_message_and_keeps_what_was_written(tmp_path):
    import errno

    audio = tone(2.0)
    rec, streams = fake_recorder(tmp_path, audio)
    path = rec.start()
    streams[0].release(50)
    wait_until(lambda: rec.seconds >= 0.5, "half a second written")
    writer = rec._writer
    real_write = writer.write

    def full(pcm: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    writer.write = full  # the disk fills up from here on
    streams[0].release(10)
    wait_until(lambda: rec.state == "failed", "the recorder notices the disk is full")
    writer.write = real_write
    result = rec.stop()
    assert "Writing the recording failed: No space left on device" in result.error
    written, _ = sf.read(str(path), dtype="int16")
    assert np.array_equal(written, audio[: RATE // 2])


def test_a_device_that_refuses_16_khz_is_recorded_at_its_own_rate(tmp_path):
    def factory(**kwargs):
        if kwargs["samplerate"] != 48000:
            raise RuntimeError("Invalid sample rate")
        return FakeStream(tone(0.5, 48000), **kwargs)

    rec = Recorder(tmp_path, devices=[MIC], stream_factory=factory)
    rec.start()
    assert rec.rate == 48000
    result = rec.stop()
    assert result.seconds == 0 and not result.path.exists()  # nothing was released: no file, no offer
    assert recorder.recover(tmp_path) == []


def test_a_device_that_cannot_be_opened_says_so(tmp_path):
    def factory(**kwargs):
        raise RuntimeError("Device unavailable [PaErrorCode -9985]")

    with pytest.raises(RecordingError, match="Fake USB microphone.*cannot be opened.*Device unavailable.*in use"):
        Recorder(tmp_path, devices=[MIC], stream_factory=factory).start()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_written_says_so(tmp_path):
    blocked = tmp_path / "recordings"
    blocked.write_text("a file where the folder should be")
    rec, _ = fake_recorder(blocked, tone(1.0))
    with pytest.raises(RecordingError, match=f"Cannot write the recording in {blocked}"):
        rec.start()


def test_choosing_a_device():
    second = InputDevice(index=7, name="Headset Mic", channels=2, default_rate=44100.0, is_default=False)
    devices = [MIC, second]
    assert recorder.choose_device(devices, None) is MIC
    assert recorder.choose_device(devices, "7") is second
    assert recorder.choose_device(devices, "headset") is second
    with pytest.raises(RecordingError, match="'mic' matches several input devices. Input devices: 3: Fake USB"):
        recorder.choose_device(devices, "mic")
    with pytest.raises(RecordingError, match="'9' matches no input device"):
        recorder.choose_device(devices, "9")
    with pytest.raises(RecordingError, match="No microphone or other input device was found"):
        recorder.choose_device([], None)


def test_repair_makes_a_killed_writers_file_whole(tmp_path):
    path = tmp_path / "cut.wav"
    writer = recorder.WavWriter(path, RATE, 1)
    audio = tone(2.0)
    writer.write(audio[:RATE].tobytes())
    writer.sync()
    writer.write(audio[RATE:].tobytes() + b"\x01")  # written after the last sync, and half a frame
    writer._file.flush()  # what a killed process leaves: the bytes reached the file, the header did not
    assert sf.info(str(path)).frames == RATE
    assert recorder.repair_wav(path) == pytest.approx(2.0)
    written, _ = sf.read(str(path), dtype="int16")
    assert np.array_equal(written, audio)
    with pytest.raises(RecordingError, match="not a recording"):
        (tmp_path / "notes.wav").write_bytes(b"hello" * 20)
        recorder.repair_wav(tmp_path / "notes.wav")


# ------------------------------------------------------------- the command, real sound system


def record_process(data_dir: Path, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "record", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO),
    )


def test_no_portaudio_gives_a_clear_message(data_dir, tmp_path):
    # sounddevice raises OSError at import when libportaudio is missing; a stand-in module does exactly that.
    fake = tmp_path / "fake-site"
    fake.mkdir()
    (fake / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(fake), str(REPO)])}
    result = run_cli("record", "--seconds", "1", data_dir=data_dir, env=env)
    assert result.returncode == 1
    assert "Recording needs PortAudio" in result.stderr and "libportaudio2" in result.stderr
    assert "Traceback" not in result.stderr
    listing = run_cli("record", "--list-devices", data_dir=data_dir, env=env)
    assert listing.returncode == 1 and "Recording needs PortAudio" in listing.stderr


def test_no_input_device_gives_a_clear_message(data_dir, tmp_path):
    # A machine without a sound card or sound server: PortAudio lists no input at all.
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent"}
    listing = run_cli("record", "--list-devices", data_dir=data_dir, env=env)
    if listing.returncode == 0:
        pytest.skip(f"this machine has input devices of its own: {listing.stdout}")
    assert "No microphone or other input device was found" in listing.stderr
    result = run_cli("record", "--seconds", "1", data_dir=data_dir, env=env)
    assert result.returncode == 1 and "No microphone or other input device was found" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (data_dir / "recordings").exists() or not list((data_dir / "recordings").iterdir())


def test_an_unavailable_model_fails_before_recording(data_dir):
    result = run_cli("record", "--transcribe", "--model", "large-v3", "--seconds", "1", data_dir=data_dir)
    assert result.returncode == 1 and "could not be downloaded" in result.stderr
    assert "recording to" not in result.stderr and not (data_dir / "recordings").exists()


def test_record_for_n_seconds_from_a_named_device_becomes_a_job(virtual_mic, data_dir, speak):
    listing = run_cli("record", "--list-devices", data_dir=data_dir, env=virtual_mic.env, check=True)
    assert "pulse" in listing.stdout and "default" in listing.stdout
    process = record_process(data_dir, "--device", "pulse", "--seconds", "2", env=virtual_mic.env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    job_id, status, path = out.strip().split("\t")
    assert status == "queued" and "from 'pulse'" in err and "recorded 0:02" in err
    assert sf.info(path).duration == pytest.approx(2.0, abs=0.05)
    job = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)[0]
    assert job["id"] == int(job_id) and job["path"] == path and job["status"] == "queued"
    assert Path(path).parent == data_dir.resolve() / "recordings"
    assert recorder.recover(Path(path).parent) == []  # it is a job: no longer offered


def test_speech_recorded_from_the_microphone_is_transcribed(virtual_mic, data_dir, speak):
    speech = speak(
        "The weather today is sunny with a gentle breeze. Please remember to bring your umbrella tomorrow morning.",
        "weather.wav",
    )
    process = record_process(data_dir, "--transcribe", env=virtual_mic.env)
    wait_for_line(process.stderr, "recording to", process)
    time.sleep(1.0)  # a moment of silence first, as when someone starts speaking after pressing record
    virtual_mic.play(speech).wait()
    time.sleep(1.0)  # the end of the speech on its way through the sound server
    process.send_signal(signal.SIGINT)  # Ctrl+C stops the recording; the transcription follows
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err
    job_line, *transcript = out.splitlines()
    assert job_line.split("\t")[1] == "queued"
    words = set(normalise(" ".join(transcript)))
    print("transcript:", " ".join(transcript))
    for word in ("weather", "sunny", "breeze", "umbrella", "tomorrow"):
        assert word in words, f"{word!r} not in the transcript: {transcript}"
    job = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)[0]
    assert job["status"] == "completed" and job["path"] == job_line.split("\t")[2]


def test_sigkill_mid_recording_keeps_all_but_the_last_second(virtual_mic, data_dir, speak):
    speech = speak(
        "Recording keeps going while the speaker reads a long list of words. "
        "Apples, bridges, candles, dolphins, engines, forests, guitars, harbours, islands, jackets, "
        "kettles, lanterns, mountains, notebooks, oceans, pianos, quilts, rivers, sandals, tunnels.",
        "long_list.wav",
    )
    source, source_rate = sf.read(str(speech), dtype="float32")
    source_start, source_end = sound_span(source, source_rate)
    process = record_process(data_dir, "--seconds", "600", env=virtual_mic.env)
    lines = wait_for_line(process.stderr, "recording to", process)
    path = Path(lines[-1].split("recording to ", 1)[1].split(" from ", 1)[0])
    player = virtual_mic.play(speech)
    played_from = time.monotonic()
    time.sleep(min(8.0, source_end - 2.0))  # mid-speech
    process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    process.wait()
    player.kill()

    assert path.with_name(path.name + ".partial").exists()
    recovered = run_cli("record", "--recover", data_dir=data_dir, check=True)
    assert f"recovered {path}" in recovered.stderr
    job_id, status, queued_path = recovered.stdout.strip().split("\t")
    assert status == "queued" and queued_path == str(path)

    audio, rate = sf.read(str(path), dtype="float32")  # soundfile opens it: the header is whole again
    assert rate == RATE
    heard_from, _ = sound_span(audio, rate)
    # Where in the speech the file ends: its length after the speech began, plus the speech's own lead-in.
    reached = len(audio) / rate - heard_from + source_start
    played = killed_at - played_from
    lost = played - reached
    print(f"played {played:.2f} s of speech before SIGKILL; the file holds {reached:.2f} s of it: {lost:.2f} s lost")
    assert reached >= played - 2.0
    info = probe(path)
    assert not info.truncated and info.duration_seconds == pytest.approx(len(audio) / rate, abs=0.05)
    job = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)[0]
    assert job["id"] == int(job_id) and job["warning"] is None
    again = run_cli("record", "--recover", data_dir=data_dir, check=True)
    assert "no recordings waiting to be transcribed" in again.stderr


def test_the_sound_server_vanishing_mid_recording_keeps_the_audio_and_says_so(virtual_mic, data_dir, speak):
    speech = speak("One, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve.", "counting.wav")
    process = record_process(data_dir, env=virtual_mic.env)
    lines = wait_for_line(process.stderr, "recording to", process)
    path = Path(lines[-1].split("recording to ", 1)[1].split(" from ", 1)[0])
    player = virtual_mic.play(speech)

    def speech_on_disk() -> float:
        # The file is valid while it grows, so the test can read it to see how much speech it holds.
        audio, rate = sf.read(str(path), dtype="float32")
        start, end = sound_span(audio, rate)
        return end - start

    wait_until(lambda: speech_on_disk() > 1.5, "speech reaches the file")
    virtual_mic.kill_server()
    out, err = process.communicate(timeout=120)
    player.wait()
    assert process.returncode == 1
    assert "stopped delivering audio" in err and "What was recorded until then is kept" in err
    assert "Traceback" not in err
    job_id, status, queued = out.strip().split("\t")
    assert status == "queued" and queued == str(path)
    assert speech_on_disk() > 1.5  # the speech before the server went is there


def test_the_input_monitor_shows_the_level_and_writes_nothing(tmp_path):
    streams = []

    def factory(**kwargs):
        streams.append(FakeStream(tone(1.0), **kwargs))
        return streams[-1]

    monitor = recorder.InputMonitor(MIC, stream_factory=factory)
    monitor.start()
    assert monitor.take_level() == 0.0
    streams[0].release(10)
    wait_until(lambda: streams[0].delivered == 10, "blocks delivered")
    assert monitor.take_level() == pytest.approx(12000 / 32768, abs=0.01)
    assert monitor.take_level() == 0.0  # taken: the meter falls back when the sound stops
    monitor.stop()
    assert streams[0].closed and monitor.error is None


def test_a_marker_whose_recording_was_deleted_is_dropped(tmp_path):
    recorder.marker_of(tmp_path / "gone.wav").write_text(json.dumps({"state": "recording"}))
    assert recorder.recover(tmp_path) == []
    assert list(tmp_path.iterdir()) == []
