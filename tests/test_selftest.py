"""``transcriber self-test`` and ``--version``: the checks an installed package is judged by."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from conftest import REPO, run_cli
from transcriber import __version__
from transcriber.selftest import SAMPLE_WORDS, report, run_self_test, words_in


def test_version_is_the_package_version(data_dir):
    result = run_cli("--version", data_dir=data_dir, check=True)
    assert result.stdout.strip() == f"transcriber {__version__}"


def test_self_test_passes_without_touching_the_user_data(tmp_path):
    data, cache, temp = tmp_path / "data", tmp_path / "cache", tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TRANSCRIBER_DATA_DIR": str(data), "TRANSCRIBER_CACHE_DIR": str(cache), "TMPDIR": str(temp)}
    result = subprocess.run(
        [sys.executable, "-m", "transcriber", "self-test"],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(REPO),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("self-test passed")
    heard = next(line for line in result.stdout.splitlines() if line.strip().startswith("heard:"))
    assert len(words_in(heard) & set(SAMPLE_WORDS)) >= 5
    assert "x real time" in result.stdout
    # The user's data and cache folders were never created, and the self-test's own folder is gone
    # (onnxruntime leaves a session-id file in TMPDIR on import; that one is not ours).
    assert not data.exists() and not cache.exists()
    assert [path.name for path in temp.iterdir() if path.name.startswith("transcriber")] == []


def test_self_test_fails_clearly_when_the_words_are_wrong(speak):
    speech = speak("The quick brown fox jumps over the lazy dog.", "fox.wav")
    result = run_self_test(speech)
    assert not result.passed and result.error is None
    assert {"lazy", "dog"} <= words_in(result.text)
    out, err = io.StringIO(), io.StringIO()
    assert report(result, __version__, out=out, err=err) == 1
    assert "self-test FAILED: only" in err.getvalue()
    assert "missing: welcome" in err.getvalue()
    assert "self-test passed" not in out.getvalue()


def test_self_test_fails_clearly_when_the_sample_is_missing(tmp_path):
    result = run_self_test(tmp_path / "gone.flac")
    assert not result.passed
    assert "gone.flac" in result.error and "not found" in result.error
    err = io.StringIO()
    assert report(result, __version__, out=io.StringIO(), err=err) == 1
    assert err.getvalue().startswith("self-test FAILED: ")
