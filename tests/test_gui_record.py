"""The recording window (offscreen) with a real recorder on a virtual microphone: record, pause, stop, queue; offers after a crash."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import normalise
from transcriber.audio import recorder
from transcriber.jobs import JobStatus
from virtual_mic import sound_span, virtual_mic  # noqa: F401  (virtual_mic is a fixture)

pytestmark = pytest.mark.gui


def reinitialise_portaudio() -> None:
    """PortAudio looks for sound servers once, when initialised: make it look again."""
    if "sounddevice" in sys.modules:
        sd = sys.modules["sounddevice"]
        sd._terminate()
        sd._initialize()


@pytest.fixture
def mic(virtual_mic, monkeypatch):  # noqa: F811
    """The virtual microphone, visible to PortAudio in this process."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(virtual_mic.runtime_dir))
    monkeypatch.delenv("PULSE_SERVER", raising=False)
    reinitialise_portaudio()
    yield virtual_mic
    monkeypatch.undo()
    reinitialise_portaudio()


@pytest.fixture
def no_sound_system(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent")
    reinitialise_portaudio()
    yield
    monkeypatch.undo()
    reinitialise_portaudio()


def open_ready_dialog(gui, qtbot):
    dialog = gui.window.open_record()
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled() or "No microphone" in dialog.status_label.text(), timeout=30000)
    return dialog


def crashed_recording(folder: Path, name: str, seconds: float, state: str) -> tuple[Path, np.ndarray]:
    """What a killed recorder leaves: audio after a header that never learned its size, and its marker."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = (np.sin(np.arange(int(16000 * seconds)) / 5) * 8000).astype(np.int16)
    path = folder / name
    path.write_bytes(recorder._wav_header(16000, 1, 0) + audio.tobytes())
    recorder.marker_of(path).write_text(json.dumps({"state": state, "started_at": "2026-12-01T10:00:00+00:00"}))
    return path, audio


def test_record_pause_resume_stop_from_the_window_becomes_a_job(mic, make_gui, qtbot, speak, data_dir):
    speech = speak("Testing the recording window with a short sentence about green tea.", "window.wav")
    gui = make_gui(start=False)  # the engine stays off: this test is about recording, not transcribing
    dialog = open_ready_dialog(gui, qtbot)
    labels = [dialog.device_combo.itemText(row) for row in range(dialog.device_combo.count())]
    assert "default (default)" in labels
    assert not dialog.pause_button.isEnabled() and not dialog.stop_button.isEnabled()
    # Before recording, the meter already shows what the chosen input hears.
    player = mic.play(speech)
    before = []
    qtbot.waitUntil(lambda: before.append(dialog.level_meter.value()) or max(before) > 10, timeout=30000)
    player.wait()
    assert not (data_dir / "recordings").exists() or not list((data_dir / "recordings").iterdir())

    dialog.start_button.click()
    assert dialog.recording and dialog.stop_button.isEnabled() and not dialog.device_combo.isEnabled()
    qtbot.waitUntil(lambda: dialog.recorder.wait_for_audio(0), timeout=30000)
    player = mic.play(speech)
    meter = []
    qtbot.waitUntil(lambda: meter.append(dialog.level_meter.value()) or max(meter) > 10, timeout=30000)
    player.wait()
    qtbot.waitUntil(lambda: dialog.elapsed_label.text() not in ("0:00", "0:01", "0:02"), timeout=30000)

    dialog.pause_button.click()
    assert dialog.recorder.state == "paused" and dialog.pause_button.text() == "Resume"
    qtbot.wait(300)
    paused_at = dialog.recorder.seconds
    qtbot.wait(700)
    assert dialog.recorder.seconds == paused_at  # nothing is written while paused
    dialog.pause_button.click()
    assert dialog.recorder.state == "recording"
    qtbot.waitUntil(lambda: dialog.recorder.seconds > paused_at + 0.3, timeout=30000)
    dialog.stop_button.click()
    assert not dialog.recording and dialog.start_button.isEnabled()

    # With the live transcript the job exists from Start; Stop queues it.
    qtbot.waitUntil(lambda: [job.status for job in gui.app.store.jobs.list_jobs()] == [JobStatus.QUEUED], timeout=30000)
    job = gui.app.store.jobs.list_jobs()[0]
    assert job.status is JobStatus.QUEUED and job.user == "tester"
    path = Path(job.source_path)
    assert path.parent == gui.app.paths.recordings_dir
    audio, rate = sf.read(str(path), dtype="float32")
    start, end = sound_span(audio, rate)
    assert end - start > 2.0  # the speech is in it
    assert job.duration_seconds == pytest.approx(len(audio) / rate, abs=0.05)
    qtbot.waitUntil(lambda: recorder.recover(path.parent) == [], timeout=30000)  # a job now: no longer offered
    qtbot.waitUntil(lambda: gui.window.model.row_of(job.id) is not None, timeout=30000)


def test_the_window_offers_recordings_a_crash_left_to_transcribe_or_discard(make_gui, qtbot, data_dir):
    folder = data_dir / "recordings"
    kept, kept_audio = crashed_recording(folder, "recording_a.wav", 2.0, "recording")
    unwanted, _ = crashed_recording(folder, "recording_b.wav", 1.0, "stopped")
    gui = make_gui(start=False)
    qtbot.waitUntil(lambda: any("not transcribed" in message for message in gui.window.notices.messages()), timeout=30000)
    notice = next(message for message in gui.window.notices.messages() if "not transcribed" in message)
    assert "2 recordings were not transcribed" in notice and "recording_a.wav (0:02)" in notice and "File → Record…" in notice
    written, _ = sf.read(str(kept), dtype="int16")  # repaired on the way: the whole 2 s, a valid file
    assert np.array_equal(written, kept_audio)

    dialog = gui.window.open_record()
    qtbot.waitUntil(lambda: dialog.pending_list.count() == 2, timeout=30000)
    assert dialog.pending_box.isVisible() or not gui.window.isVisible()
    assert [path.name for path in dialog.pending()] == ["recording_a.wav", "recording_b.wav"]
    dialog.pending_list.item(0).setSelected(True)
    dialog.transcribe_button.click()
    qtbot.waitUntil(lambda: len(gui.app.store.jobs.list_jobs()) == 1, timeout=30000)
    job = gui.app.store.jobs.list_jobs()[0]
    assert job.source_path == str(kept) and job.duration_seconds == pytest.approx(2.0, abs=0.01) and job.warning is None

    qtbot.waitUntil(lambda: dialog.pending() == [unwanted], timeout=30000)
    dialog.pending_list.item(0).setSelected(True)
    dialog.discard_selected(confirm=False)
    qtbot.waitUntil(lambda: dialog.pending_list.count() == 0, timeout=30000)
    assert not unwanted.exists() and kept.exists()
    # The queued recording stops being offered in the task that queued it, which may still be finishing.
    qtbot.waitUntil(lambda: recorder.recover(folder) == [], timeout=30000)


def test_no_input_device_is_said_in_the_window(no_sound_system, make_gui, qtbot):
    gui = make_gui(start=False)
    dialog = open_ready_dialog(gui, qtbot)
    if dialog.device_combo.count():
        pytest.skip("this machine has input devices of its own")
    assert "No microphone or other input device was found" in dialog.status_label.text()
    assert not dialog.start_button.isEnabled()


def test_a_device_vanishing_while_the_window_records_keeps_and_queues_the_audio(mic, make_gui, qtbot, speak):
    speech = speak("Counting slowly: one, two, three, four, five, six, seven, eight.", "vanish_window.wav")
    gui = make_gui(start=False)
    dialog = open_ready_dialog(gui, qtbot)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.recorder.wait_for_audio(0), timeout=30000)
    player = mic.play(speech)
    qtbot.waitUntil(lambda: dialog.recorder.seconds > 3.0, timeout=30000)
    mic.kill_server()
    qtbot.waitUntil(lambda: dialog.recorder is None, timeout=30000)  # the window noticed, and stopped
    player.wait()
    assert "stopped delivering audio" in dialog.status_label.text() and "added to the queue" in dialog.status_label.text()
    qtbot.waitUntil(lambda: len(gui.app.store.jobs.list_jobs()) == 1, timeout=30000)
    audio, rate = sf.read(gui.app.store.jobs.list_jobs()[0].source_path, dtype="float32")
    assert len(audio) / rate > 3.0


def test_a_recording_made_in_the_window_is_transcribed_like_a_dropped_file(mic, make_gui, qtbot, speak):
    speech = speak("The library is open in the morning, and the garden behind it is full of roses.", "library.wav")
    gui = make_gui()
    dialog = open_ready_dialog(gui, qtbot)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.recorder.wait_for_audio(0), timeout=30000)
    qtbot.wait(1000)  # a moment of silence first, as when someone starts speaking after pressing Start
    player = mic.play(speech)
    qtbot.waitUntil(lambda: player.poll() is not None, timeout=60000)
    qtbot.wait(1000)  # the end of the speech on its way through the sound server
    dialog.stop_button.click()
    qtbot.waitUntil(lambda: len(gui.app.store.jobs.list_jobs()) == 1, timeout=30000)
    job_id = gui.app.store.jobs.list_jobs()[0].id
    qtbot.waitUntil(lambda: gui.app.store.jobs.get_job(job_id).status.is_final, timeout=600000)
    assert gui.app.store.jobs.get_job(job_id).status is JobStatus.COMPLETED
    text = " ".join(segment.text for segment in gui.app.engine.transcript(job_id).segments)
    words = set(normalise(text))
    for word in ("library", "open", "morning", "garden", "roses"):
        assert word in words, f"{word!r} not in the transcript: {text}"


def test_quitting_while_recording_keeps_the_recording_as_a_job(mic, make_gui, qtbot, data_dir):
    from transcriber.store import Store

    gui = make_gui(start=False)
    dialog = open_ready_dialog(gui, qtbot)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.recorder.seconds > 1.0, timeout=30000)
    path = dialog.recorder.path
    gui.shutdown()  # what Quit does: the recording window closes, so the recording stops and is queued
    store = Store.open(data_dir / "transcriber.db")
    try:
        jobs = store.jobs.list_jobs()
    finally:
        store.close()
    assert [job.source_path for job in jobs] == [str(path)]
    assert sf.info(str(path)).duration > 1.0
    assert recorder.recover(path.parent) == []  # queued before the app closed: not offered next time
