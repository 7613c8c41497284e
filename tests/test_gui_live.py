"""The recording window's live transcript (offscreen), with a real recorder on a virtual microphone and the real model."""

from __future__ import annotations

import pytest

from conftest import normalise
from test_gui_record import mic, open_ready_dialog  # noqa: F401  (mic is a fixture)
from transcriber.gui.queue_model import status_text
from transcriber.jobs import JobStatus
from virtual_mic import virtual_mic  # noqa: F401  (a fixture mic needs)

pytestmark = pytest.mark.gui


def played(qtbot, player) -> None:
    """Let the window run while ``player`` plays into the microphone."""
    qtbot.waitUntil(lambda: player.poll() is not None, timeout=60000)


def test_the_window_shows_the_words_while_recording_and_pausing_pauses_them(mic, make_gui, qtbot, speak):  # noqa: F811
    first = speak("The weather today is sunny with a gentle breeze.", "gui_live_weather.wav")
    unheard = speak("Bananas and pineapples are sold at the market.", "gui_live_paused.wav")
    last = speak("Please remember to bring your umbrella tomorrow morning.", "gui_live_umbrella.wav")
    gui = make_gui()
    dialog = open_ready_dialog(gui, qtbot)
    assert dialog.live_check.isChecked()
    dialog.start_button.click()
    assert not dialog.live_check.isEnabled()
    qtbot.waitUntil(lambda: dialog.recorder.wait_for_audio(0), timeout=30000)
    # The recording is a job from the start, shown in the queue as recording.
    (job,) = gui.app.store.jobs.list_jobs()
    assert job.status is JobStatus.RECORDING and job.source_path == str(dialog.recorder.path)
    qtbot.waitUntil(lambda: gui.window.model.row_of(job.id) is not None, timeout=30000)
    assert status_text(job.status) == "Recording"

    qtbot.wait(1000)  # a moment of silence first, as when someone starts speaking after pressing Start
    played(qtbot, mic.play(first))
    qtbot.waitUntil(lambda: {"sunny", "breeze"} <= set(normalise(dialog.live_text())), timeout=30000)
    assert dialog.recording  # before Stop

    dialog.pause_button.click()
    assert "paused" in dialog.live_status.text()
    levels = []
    player = mic.play(unheard)
    qtbot.waitUntil(lambda: levels.append(dialog.level_meter.value()) or player.poll() is not None, timeout=60000)
    qtbot.wait(3000)  # time enough for the live transcript, were anything recorded
    assert max(levels) > 10  # the meter keeps working while paused
    shown = set(normalise(dialog.live_text() + " " + dialog.live_tentative.text()))
    assert not {"bananas", "pineapples", "market"} & shown

    dialog.pause_button.click()
    assert dialog.live_status.text() == ""
    played(qtbot, mic.play(last))
    qtbot.waitUntil(lambda: {"umbrella", "tomorrow"} <= set(normalise(dialog.live_text())), timeout=30000)
    qtbot.wait(500)
    dialog.stop_button.click()

    qtbot.waitUntil(lambda: gui.app.store.jobs.get_job(job.id).status.is_final, timeout=300000)
    finished = gui.app.store.jobs.get_job(job.id)
    assert finished.status is JobStatus.COMPLETED
    words = set(normalise(" ".join(segment.text for segment in gui.app.engine.transcript(job.id).segments)))
    assert {"sunny", "breeze", "umbrella", "tomorrow"} <= words
    assert not {"bananas", "pineapples"} & words
    assert len(gui.app.store.jobs.list_jobs()) == 1  # the live job is the recording's only job
