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
        killed_at = time.time()
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
    runs = connection.execute("SELECT part, start_seconds, end_seconds, outcome FROM run ORDER BY id").fetchall()
    starts = connection.execute("SELECT part, started_at FROM run").fetchall()
    parts = connection.execute("SELECT idx, start_seconds, end_seconds, status FROM part ORDER BY idx").fetchall()
    segments = connection.execute(
        "SELECT idx, start_seconds, end_seconds, text FROM segment WHERE job_id = 1 ORDER BY start_seconds"
    ).fetchall()
    connection.close()
    # The file was cut into parts decoded side by side; all are done.
    assert len(parts) >= 2 and all(status == "done" for *_, status in parts)
    interrupted = [run for run in runs if run[3] == "interrupted"]
    assert interrupted, runs
    assert len({part for part, started in starts if started < killed_at}) >= 2  # two streams were at work
    part_ends = {index: end for index, _, end, _ in parts}
    for part, start, end, _ in interrupted:
        later = [run for run in runs if run[0] == part and run[3] in ("completed", "part-done")]
        if end >= part_ends[part] - 1e-6:
            # Killed after the part was decoded to its end, before its run record was closed
            # (recovery closes it as interrupted): nothing of it is decoded again.
            assert later == [], runs
            continue
        assert len(later) == 1, runs
        # Each part continues exactly at its last commit, which was made when its last window
        # began: what was decoded twice is at most that one 30-second window per part.
        assert later[0][1] == pytest.approx(end)
    assert committed_at_kill >= 0.35 * job["duration_seconds"]
    # No segment missing or doubled: every index once, time moving forward, no repeated text.
    assert sorted(row[0] for row in segments) == list(range(len(segments)))
    assert all(a[2] <= b[1] + 0.5 for a, b in zip(segments, segments[1:]))
    texts = [row[3].strip() for row in segments]
    assert all(a != b for a, b in zip(texts, texts[1:]))
    assert segments[-1][2] > job["duration_seconds"] - 15
    transcript = " ".join(texts)
    assert word_error_rate(reference, transcript) < 0.15
