"""Translation to English: real German and Spanish speech through the real command line comes out in English."""

from __future__ import annotations

import pytest

from conftest import normalise, run_cli
from transcriber.store import Store

GERMAN_WORDS = {"der", "hinter", "diesem", "liegenden", "raum", "wurde", "als", "leichenhalle", "genutzt"}
SPANISH_WORDS = {"las", "arenas", "son", "blanquecinas", "grano", "medio", "tiene", "muy", "poca", "asistencia"}


def only_job(data_dir):
    store = Store.open(data_dir / "transcriber.db")
    try:
        [job] = store.jobs.list_jobs()
        return job
    finally:
        store.close()


@pytest.mark.slow
def test_german_and_spanish_speech_are_translated_to_english(corpus, data_dir, tmp_path):
    german, spanish = corpus["de_leopard_test_de.wav"]["path"], corpus["es_leopard_test_es.wav"]["path"]
    out = tmp_path / "out"
    run_cli("transcribe", str(german), str(spanish), "--task", "translate", "-o", str(out), data_dir=data_dir, check=True)
    german_text = set(normalise((out / "de_leopard_test_de.txt").read_text()))
    spanish_text = set(normalise((out / "es_leopard_test_es.txt").read_text()))
    # "Der hinter diesem Portal liegenden Raum wurde als Leichenhalle genutzt."
    assert {"the", "room", "was", "used"} <= german_text and not german_text & GERMAN_WORDS
    # "Las arenas son blanquecinas de grano medio y tiene muy poca asistencia."
    assert {"the", "medium", "grain", "little"} <= spanish_text and not spanish_text & SPANISH_WORDS


@pytest.mark.slow
def test_the_same_german_speech_transcribed_stays_german(corpus, data_dir, tmp_path):
    """The control for the test above: without --task translate the German words are there."""
    out = tmp_path / "out"
    german = corpus["de_leopard_test_de.wav"]["path"]
    run_cli("transcribe", str(german), "--model", "base", "-o", str(out), data_dir=data_dir, check=True)
    text = set(normalise((out / "de_leopard_test_de.txt").read_text()))
    assert {"raum", "wurde", "genutzt"} <= text and "room" not in text


def test_an_english_only_model_is_refused_for_translation_before_anything_is_queued(data_dir, corpus):
    german = corpus["de_leopard_test_de.wav"]["path"]
    for command in ("transcribe", "add"):
        result = run_cli(command, str(german), "--model", "tiny.en", "--task", "translate", data_dir=data_dir)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "tiny.en is an English-only model, so it cannot translate" in result.stderr
    assert "[]" in run_cli("list", "--json", data_dir=data_dir, check=True).stdout


def test_an_unknown_task_is_refused_by_the_parser(data_dir, corpus):
    result = run_cli("add", str(corpus["de_leopard_test_de.wav"]["path"]), "--task", "summarise", data_dir=data_dir)
    assert result.returncode == 2 and "invalid choice: 'summarise'" in result.stderr


def test_add_queues_a_translation_and_the_task_setting_is_the_default(data_dir, corpus, tmp_path):
    german = corpus["de_leopard_test_de.wav"]["path"]
    run_cli("add", str(german), "--task", "translate", data_dir=data_dir, check=True)
    assert only_job(data_dir).options.task == "translate"

    other = tmp_path / "other-data"
    other.mkdir()
    refused = run_cli("config", "set", "task", "summarise", data_dir=other)
    assert refused.returncode == 1 and "choose one of transcribe, translate" in refused.stderr
    run_cli("config", "set", "task", "translate", data_dir=other, check=True)
    run_cli("add", str(german), data_dir=other, check=True)
    assert only_job(other).options.task == "translate"
    run_cli("remove", str(only_job(other).id), data_dir=other, check=True)
    run_cli("add", str(german), "--task", "transcribe", data_dir=other, check=True)  # the option beats the setting
    assert only_job(other).options.task == "transcribe"


def test_watch_folders_keep_transcribing_when_the_default_task_is_translate(data_dir, corpus, tmp_path):
    import shutil

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    run_cli("config", "set", "task", "translate", data_dir=data_dir, check=True)
    run_cli("watch", "add", str(inbox), "--model", "tiny.en", data_dir=data_dir, check=True)
    shutil.copyfile(corpus["en_jfk.flac"]["path"], inbox / "jfk.flac")
    run_cli("run", "--until-idle", data_dir=data_dir, check=True)
    job = only_job(data_dir)
    assert job.options.task == "transcribe" and job.status.value == "completed"
