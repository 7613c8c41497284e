"""The command line contract: names, options, output fields and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import REPO, SAMPLE, run_cli

LIST_FIELDS = {
    "id", "user", "path", "status", "progress", "processed_seconds", "duration_seconds",
    "queue_position", "eta_seconds", "estimated_completion", "error", "warning",
}


@pytest.fixture
def clips(tmp_path):
    paths = []
    for number in range(3):
        path = tmp_path / f"clip{number}.flac"
        shutil.copyfile(SAMPLE, path)
        paths.append(str(path))
    return paths


def test_add_prints_one_line_per_file_and_fails_on_refusals(data_dir, clips, tmp_path):
    result = run_cli("add", *clips, str(tmp_path / "missing.mp3"), "--user", "carol", data_dir=data_dir)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert [line.split("\t")[:2] for line in lines[:3]] == [["1", "queued"], ["2", "queued"], ["3", "queued"]]
    assert lines[3].startswith("-\trefused\t") and "missing.mp3: file not found" in lines[3]
    ok = run_cli("add", clips[0], data_dir=data_dir)
    assert ok.returncode == 0


def test_list_json_fields_and_queue_positions(data_dir, clips):
    run_cli("add", *clips, "--user", "carol", data_dir=data_dir, check=True)
    jobs = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)
    assert len(jobs) == 3 and LIST_FIELDS <= set(jobs[0])
    assert [job["queue_position"] for job in jobs] == [1, 2, 3]
    assert all(job["status"] == "queued" and job["progress"] == 0.0 and job["user"] == "carol" for job in jobs)
    assert jobs[0]["eta_seconds"] > 0 and jobs[2]["eta_seconds"] > jobs[0]["eta_seconds"]
    assert jobs[0]["estimated_completion"]
    only_bob = json.loads(run_cli("list", "--user", "bob", "--json", data_dir=data_dir, check=True).stdout)
    assert only_bob == []
    text = run_cli("list", data_dir=data_dir, check=True).stdout
    assert "clip0.flac" in text and "queued" in text


def test_control_commands(data_dir, clips):
    run_cli("add", *clips, data_dir=data_dir, check=True)
    assert run_cli("pause", "1", data_dir=data_dir, check=True).stdout.strip() == "1\tpaused"
    assert run_cli("resume", "1", data_dir=data_dir, check=True).stdout.strip() == "1\tqueued\tposition 1"
    assert run_cli("move", "3", "--up", "2", data_dir=data_dir, check=True).stdout.strip() == "3\tqueued\tposition 1"
    assert run_cli("move", "3", "--down", data_dir=data_dir, check=True).stdout.strip() == "3\tqueued\tposition 2"
    assert run_cli("cancel", "2", data_dir=data_dir, check=True).stdout.strip() == "2\tcancelled"
    wrong = run_cli("resume", "2", data_dir=data_dir)
    assert wrong.returncode == 1 and "Job 2 is cancelled; it cannot be resumed." in wrong.stderr
    assert run_cli("retry", "2", data_dir=data_dir, check=True).stdout.strip() == "2\tqueued\tposition 3"
    assert run_cli("remove", "2", data_dir=data_dir, check=True).stdout.strip() == "2\tremoved"
    missing = run_cli("cancel", "42", data_dir=data_dir)
    assert missing.returncode == 1 and "There is no job 42." in missing.stderr


def test_config_get_set_and_validation(data_dir):
    assert run_cli("config", "get", "max_queued_per_user", data_dir=data_dir, check=True).stdout.strip() == "10"
    for key, value in [
        ("max_file_size_mb", "50"), ("max_concurrent_per_user", "2"), ("max_queued_per_user", "4"),
        ("workers", "3"), ("model", "base"), ("export_dir", "/tmp/exports"), ("export_formats", "srt,vtt"),
    ]:
        assert run_cli("config", "set", key, value, data_dir=data_dir, check=True).stdout.strip() == value
        assert run_cli("config", "get", key, data_dir=data_dir, check=True).stdout.strip() == value
    bad = run_cli("config", "set", "workers", "lots", data_dir=data_dir)
    assert bad.returncode == 1 and "Invalid value 'lots' for workers" in bad.stderr
    assert "max_file_size_mb = 50" in run_cli("config", "list", data_dir=data_dir, check=True).stdout


def test_queue_limit_from_config_applies_to_add(data_dir, clips):
    run_cli("config", "set", "max_queued_per_user", "2", data_dir=data_dir, check=True)
    result = run_cli("add", *clips, data_dir=data_dir)
    assert result.returncode == 1
    assert "limit max_queued_per_user = 2" in result.stdout.splitlines()[2]


def test_data_dir_from_the_environment(tmp_path, clips):
    folder = tmp_path / "from-env"
    result = subprocess.run(
        [sys.executable, "-m", "transcriber", "add", clips[0]],
        capture_output=True, text=True, cwd=str(REPO), env={**__import__("os").environ, "TRANSCRIBER_DATA_DIR": str(folder)},
    )
    assert result.returncode == 0, result.stderr
    assert (folder / "transcriber.db").is_file()


def test_transcribe_run_export_and_stats(data_dir, clips, tmp_path):
    out = tmp_path / "out"
    result = run_cli("transcribe", clips[0], "-o", str(out), "--format", "srt,vtt,tsv", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clip0.srt", "clip0.tsv", "clip0.vtt"]
    printed = run_cli("export", "1", "--format", "txt", "-o", "-", data_dir=data_dir, check=True).stdout
    assert "welcome" in printed.lower()
    single = tmp_path / "named.json"
    run_cli("export", "1", "--format", "json", "-o", str(single), data_dir=data_dir, check=True)
    assert json.loads(single.read_text())["segments"]
    stats = json.loads(run_cli("stats", "--json", data_dir=data_dir, check=True).stdout)
    (model,) = stats["models"]
    assert model["model"] == "tiny.en" and model["jobs_completed"] == 1 and model["speed"] > 0
    assert set(model) == {"model", "jobs_completed", "audio_hours", "mean_processing_minutes", "speed"}
    assert stats["by_file_size"][0]["jobs"] == 1
    assert "tiny.en" in run_cli("stats", data_dir=data_dir, check=True).stdout


def test_transcribe_exits_non_zero_when_a_file_fails(data_dir, clips, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    result = run_cli("transcribe", clips[0], str(broken), "-o", str(tmp_path / "o"), data_dir=data_dir)
    assert result.returncode == 1
    assert "refused: broken.wav" in result.stderr
    assert (tmp_path / "o" / "clip0.txt").is_file()


def test_unavailable_model_fails_before_queueing(data_dir, clips):
    result = run_cli("transcribe", clips[0], "--model", "large-v3", data_dir=data_dir)
    assert result.returncode == 1 and "could not be downloaded" in result.stderr
    assert json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout) == []


def test_one_engine_per_data_folder_and_transcribe_defers_to_it(data_dir, clips, tmp_path):
    engine = subprocess.Popen(
        [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "run"],
        cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(3)
        second = run_cli("run", "--until-idle", data_dir=data_dir)
        assert second.returncode == 1 and "is already processing jobs in" in second.stderr
        # `transcribe` queues its file and lets the running engine do the work.
        result = run_cli("transcribe", clips[1], "-o", str(tmp_path / "o"), data_dir=data_dir, timeout=180)
        assert result.returncode == 0, result.stderr
        assert "welcome" in (tmp_path / "o" / "clip1.txt").read_text().lower()
    finally:
        engine.terminate()
        engine.wait(20)


def test_help_still_lists_the_commands(data_dir):
    result = run_cli("--help", data_dir=data_dir)
    assert result.returncode == 0 and "transcribe" in result.stdout and "opens the window" in " ".join(result.stdout.split())


def test_without_a_display_no_command_prints_help(data_dir):
    # Plain `transcriber` opens the window (tests/test_gui_window.py); on a terminal with no display it cannot.
    no_display = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "transcriber", "--data-dir", str(data_dir)], capture_output=True,
                            text=True, timeout=60, env=no_display, cwd=str(REPO))
    assert result.returncode == 0 and "transcribe" in result.stdout and "No display found" in result.stderr
    result = subprocess.run([sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "talk.wav"],
                            capture_output=True, text=True, timeout=60, env=no_display, cwd=str(REPO))
    assert result.returncode == 2 and "No display found" in result.stderr
