"""``transcriber models``: list, install and remove through the real command line, on a model cache of the test's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SAMPLE, run_cli
from transcriber.engine import model_manager

FIELDS = {"name", "installed", "embedded", "size_bytes", "path", "languages", "speed", "install", "problem"}


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def models(*args, data_dir, cache, check=False):
    return run_cli("models", *args, data_dir=data_dir, env={"TRANSCRIBER_CACHE_DIR": str(cache)}, check=check)


def listed(data_dir, cache) -> dict[str, dict]:
    result = models("list", "--json", data_dir=data_dir, cache=cache, check=True)
    entries = json.loads(result.stdout)
    assert all(set(entry) == FIELDS for entry in entries)
    return {entry["name"]: entry for entry in entries}


def test_a_fresh_cache_lists_the_embedded_model_base_to_install_and_small_with_its_problem(data_dir, cache):
    entries = listed(data_dir, cache)
    tiny = entries["tiny.en"]
    assert tiny["installed"] and tiny["embedded"] and tiny["languages"] == "en"
    assert tiny["size_bytes"] > 30_000_000 and Path(tiny["path"], "model.bin").is_file()
    assert tiny["speed"] is None and tiny["install"] is None and tiny["problem"] is None
    base = entries["base"]
    assert not base["installed"] and not base["embedded"] and base["languages"] == "multilingual"
    assert base["install"] == "transcriber models install base" and base["path"] is None and base["size_bytes"] is None
    small = entries["small"]
    assert not small["installed"] and small["install"] is None
    assert "truncated" in small["problem"] and "188,743,680 bytes" in small["problem"]
    table = models(data_dir=data_dir, cache=cache, check=True).stdout  # plain `models` is `models list`
    assert "tiny.en" in table and "not measured yet" in table and "truncated" in table


def test_install_base_joins_its_parts_into_the_cache_and_remove_takes_it_away(data_dir, cache):
    result = models("install", "base", "--json", data_dir=data_dir, cache=cache, check=True)
    installed = json.loads(result.stdout)
    folder = cache / "models" / "base"
    assert installed["installed"] and installed["path"] == str(folder)
    assert installed["size_bytes"] == model_manager.folder_size(folder) > 100_000_000
    assert listed(data_dir, cache)["base"]["installed"]
    again = models("install", "base", data_dir=data_dir, cache=cache, check=True)  # nothing to do, still fine
    assert "installed base" in again.stdout
    removed = models("remove", "base", data_dir=data_dir, cache=cache, check=True)
    assert f"removed base from {folder}" in removed.stdout and not folder.exists()
    assert not listed(data_dir, cache)["base"]["installed"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("install", "small"), "truncated"),
        (("install", "medium"), "cannot be installed offline"),
        (("remove", "tiny.en"), "embedded in transcriber"),
        (("remove", "base"), "not installed, so there is nothing to remove"),
        (("install",), "needs a model name"),
    ],
)
def test_what_cannot_be_done_is_refused_with_why(data_dir, cache, args, message):
    result = models(*args, data_dir=data_dir, cache=cache)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_a_refusal_with_json_is_json_too(data_dir, cache):
    result = models("install", "small", "--json", data_dir=data_dir, cache=cache)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"name": "small", "action": "install", "error": result.stderr.strip()[7:]}


def test_a_model_in_use_by_a_queued_job_is_not_removed(data_dir, cache):
    models("install", "base", data_dir=data_dir, cache=cache, check=True)
    env = {"TRANSCRIBER_CACHE_DIR": str(cache)}
    queued = run_cli("add", str(SAMPLE), "--model", "base", data_dir=data_dir, env=env, check=True)
    job_id = queued.stdout.split("\t")[0]
    refused = models("remove", "base", data_dir=data_dir, cache=cache)
    assert refused.returncode == 1 and "in use by a queued or running job" in refused.stderr
    assert (cache / "models" / "base" / "model.bin").is_file()
    run_cli("cancel", job_id, data_dir=data_dir, env=env, check=True)
    models("remove", "base", data_dir=data_dir, cache=cache, check=True)
    assert not (cache / "models" / "base").exists()


def test_an_auto_job_not_yet_routed_holds_both_of_its_models(data_dir, cache):
    models("install", "base", data_dir=data_dir, cache=cache, check=True)
    run_cli("add", str(SAMPLE), "--model", "auto", data_dir=data_dir, env={"TRANSCRIBER_CACHE_DIR": str(cache)}, check=True)
    refused = models("remove", "base", data_dir=data_dir, cache=cache)
    assert refused.returncode == 1 and "in use" in refused.stderr


def test_any_model_folder_in_the_cache_is_listed_and_can_be_removed(data_dir, cache):
    folder = cache / "models" / "my-whisper.en"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"\0" * 4096)
    (folder / "config.json").write_text("{}")
    entry = listed(data_dir, cache)["my-whisper.en"]
    assert entry["installed"] and not entry["embedded"] and entry["languages"] == "en"
    assert entry["size_bytes"] == 4098 and entry["path"] == str(folder)
    models("remove", "my-whisper.en", data_dir=data_dir, cache=cache, check=True)
    assert not folder.exists() and "my-whisper.en" not in listed(data_dir, cache)


def test_the_speed_measured_here_is_listed_once_a_job_completed(data_dir, cache, tmp_path):
    assert listed(data_dir, cache)["tiny.en"]["speed"] is None
    run_cli("transcribe", str(SAMPLE), "--model", "tiny.en", "-o", str(tmp_path / "out"), data_dir=data_dir,
            env={"TRANSCRIBER_CACHE_DIR": str(cache)}, check=True)
    speed = listed(data_dir, cache)["tiny.en"]["speed"]
    assert speed is not None and speed > 0
    assert f"{speed:.1f}x" in models(data_dir=data_dir, cache=cache, check=True).stdout
