"""The window's side of issue 15: the device and task settings, the Models section, and "Translate to English"."""

from __future__ import annotations

import pytest

from conftest import SAMPLE, normalise
from transcriber.engine import model_manager
from transcriber.jobs import JobOptions, JobStatus

pytestmark = pytest.mark.gui


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A model cache of this test's own, so removing a model never touches the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TRANSCRIBER_CACHE_DIR", str(folder))
    return folder / "models"


def rows(dialog) -> dict[str, list[str]]:
    table = dialog.models_table
    return {table.item(row, 0).text(): [table.item(row, column).text() for column in range(1, 4)]
            for row in range(table.rowCount())}


def select(dialog, name: str) -> None:
    table = dialog.models_table
    [row] = [row for row in range(table.rowCount()) if table.item(row, 0).text() == name]
    table.selectRow(row)


def test_the_settings_dialog_says_where_models_run_and_stores_device_and_task(make_gui, qtbot, cache):
    import ctranslate2

    gui = make_gui(start=False)
    dialog = gui.window.settings_dialog()
    qtbot.addWidget(dialog)
    assert dialog.value_text("device") == "auto" and dialog.value_text("task") == "transcribe"
    if ctranslate2.get_cuda_device_count() == 0:
        assert dialog.device_info.text() == "Models load on: cpu, int8 (auto: no CUDA GPU found)"
    else:  # a machine with a GPU
        assert dialog.device_info.text().startswith("Models load on: cuda, ")
    dialog.set_value_text("device", "cpu")
    assert dialog.device_info.text() == "Models load on: cpu, int8 (the device setting is cpu)"
    dialog.set_value_text("task", "translate")
    dialog.accept()
    settings = gui.app.store.settings.read()
    assert (settings.device, settings.task) == ("cpu", "translate")
    assert gui.app.engine.default_options(model="base").task == "translate"


def test_the_models_section_lists_models_and_removes_one_unless_a_job_needs_it(make_gui, qtbot, cache):
    model_manager.install_model(cache, "base")
    gui = make_gui(start=False)
    dialog = gui.window.settings_dialog()
    qtbot.addWidget(dialog)
    listed = rows(dialog)
    assert listed["tiny.en"][0] == "embedded" and listed["tiny.en"][2] == "not measured yet"
    assert listed["base"][:2] == ["yes", "148 MB"] and listed["small"][0] == "no"

    select(dialog, "tiny.en")
    assert not dialog.remove_button.isEnabled()  # the embedded model stays
    select(dialog, "small")
    assert not dialog.remove_button.isEnabled() and "truncated" in dialog.models_message.text()

    [result] = gui.app.engine.add([str(SAMPLE)], user="tester", options=JobOptions(model="base"))
    select(dialog, "base")
    assert dialog.remove_button.isEnabled()
    dialog.remove_button.click()
    assert "in use by a queued or running job" in dialog.models_message.text()
    assert (cache / "base" / "model.bin").is_file() and rows(dialog)["base"][0] == "yes"

    gui.app.engine.cancel(result.job.id)
    dialog.remove_button.click()
    assert dialog.models_message.text() == "Removed base (148 MB)."
    assert not (cache / "base").exists() and rows(dialog)["base"][0] == "no"


@pytest.mark.slow
def test_translate_to_english_in_the_window_translates_added_german_speech(make_gui, qtbot, corpus, cache):
    gui = make_gui()
    translate = gui.window.actions_by_key["translate"]
    assert translate in gui.window.toolbar.actions() and not translate.isChecked()
    translate.trigger()
    gui.window.add_paths([str(corpus["de_leopard_test_de.wav"]["path"])])
    qtbot.waitUntil(lambda: any(job.status is JobStatus.COMPLETED for job in gui.window.model.jobs()), timeout=120000)
    [job] = gui.app.store.jobs.list_jobs()
    assert job.options.task == "translate" and job.model == "base"
    words = set(normalise(" ".join(segment.text for segment in gui.app.store.transcripts.segments(job.id))))
    assert {"room", "used"} <= words and not words & {"raum", "wurde", "genutzt", "leichenhalle"}
