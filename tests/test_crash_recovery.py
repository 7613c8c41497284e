"""Kill the engine with SIGKILL mid-file, start it again: nothing lost, nothing doubled, little redone."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_cli, word_error_rate


def _job_row(database) -> dict | None:
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        connection.row_factory = sqlite3.Row
        row = connection.execute("SELECT * FROM job WHERE id = 1").fetchone()
        connection.close()
        return dict(row) if row else None
    except sqlite3.OperationalError:
        return None


@pytest.mark.slow
def test_sigkill_mid_file_then_restart(long_speech, data_dir):
    path, reference = long_speech
    database = data_dir / "transcriber.db"
    run_cli("add", str(path), data_dir=data_dir, check=True)
    engine = subprocess.Popen(
        [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "run", "--until-idle"],
        cwd=str(REPO),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        seen = 0.0
        while time.monotonic() < deadline:
            row = _job_row(database)
            if row and row["status"] == "running":
                seen = row["processed_seconds"]
                if seen >= 0.4 * row["duration_seconds"]:
                    break
            assert engine.poll() is None, engine.stderr.read().decode()
            time.sleep(0.1)
        else:
            raise AssertionError("the job never got to 40%")
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
    finally:
        if engine.poll() is None:
            engine.kill()

    abandoned = _job_row(database)
    assert abandoned["status"] == "running"  # the dead process could not say otherwise
    committed_at_kill = abandoned["processed_seconds"]
    assert committed_at_kill >= seen > 0

    result = run_cli("run", "--until-idle", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "recovered job 1" in result.stderr

    listing = run_cli("list", "--json", data_dir=data_dir, check=True)
    import json

    (job,) = json.loads(listing.stdout)
    assert job["status"] == "completed" and job["progress"] == 1.0 and job["attempts"] == 2

    connection = sqlite3.connect(database)
    runs = connection.execute("SELECT start_seconds, end_seconds, outcome FROM run ORDER BY id").fetchall()
    segments = connection.execute("SELECT idx, start_seconds, end_seconds, text FROM segment WHERE job_id = 1 ORDER BY idx").fetchall()
    connection.close()
    (first_start, first_end, first_outcome), (second_start, second_end, second_outcome) = runs
    assert first_outcome == "interrupted" and second_outcome == "completed"
    # The second run starts exactly at the last commit of the first, which was made when
    # its last window began: audio decoded twice is at most that one 30-second window.
    assert second_start == pytest.approx(first_end) == pytest.approx(committed_at_kill)
    assert second_start > 0.35 * job["duration_seconds"]
    # No segment missing or doubled: contiguous indexes, time moving forward, no repeated text.
    assert [row[0] for row in segments] == list(range(len(segments)))
    assert all(a[1] <= b[1] and a[2] <= b[2] for a, b in zip(segments, segments[1:]))
    texts = [row[3].strip() for row in segments]
    assert all(a != b for a, b in zip(texts, texts[1:]))
    assert segments[-1][2] > job["duration_seconds"] - 15
    transcript = " ".join(texts)
    assert word_error_rate(reference, transcript) < 0.15
