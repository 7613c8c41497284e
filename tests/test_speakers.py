"""Who said what, on real speech: conversations built from corpus clips of different speakers (known turns),
the stereo two-speaker clip, the CLI from transcribe to export, renaming and merging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import webvtt

from conftest import CORPUS
from conversations import build, der
from transcriber.engine import speakers as sp
from transcriber.jobs import parse_speakers
from transcriber.store import Store
from transcriber.store.migrations import LATEST_VERSION

REPO = Path(__file__).resolve().parent.parent


def cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcriber", "--data-dir", str(data), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def three(corpus, tmp_path_factory):
    return build(CORPUS, "three", tmp_path_factory.mktemp("conversations"))


def test_speakers_request_is_checked():
    assert parse_speakers("AUTO", 2, 4) == ("auto", 2, 4)
    assert parse_speakers("3") == ("3", None, None)
    for bad, low, high in (("7x", None, None), ("0", None, None), ("auto", 4, 2), ("3", 1, None), ("21", None, None)):
        with pytest.raises(ValueError):
            parse_speakers(bad, low, high)


def test_clustering_finds_the_groups_in_unit_vectors():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 16))
    points = np.concatenate([centre + 0.1 * rng.normal(size=(10, 16)) for centre in centres])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    labels = sp.cluster(points)
    assert len(set(labels)) == 3
    assert all(len(set(labels[i * 10:(i + 1) * 10])) == 1 for i in range(3))
    assert len(set(sp.cluster(points, 2))) == 2
    assert len(set(sp.cluster(points, max_count=2))) == 2


@pytest.mark.parametrize("name", ["two", "three", "four"])
def test_auto_counts_the_speakers_of_built_conversations(corpus, tmp_path, name):
    built = build(CORPUS, name, tmp_path)
    turns = sp.diarize(sp.Request(str(built.path), built.duration, "auto"))
    assert len({turn.label for turn in turns}) == built.speakers
    assert der(built, turns) < 0.25
    # Every true turn change (the pause between two speakers' pieces) has a found change within 1 s of it (windows are 1.5 s long).
    changes = [turns[i].start for i in range(1, len(turns)) if turns[i].label != turns[i - 1].label]
    for (_, end, _), (start, _, _) in zip(built.turns, built.turns[1:]):
        assert min(max(0.0, end - change, change - start) for change in changes) < 1.0


def test_stereo_call_is_labelled_by_channel(corpus):
    path = CORPUS / "en_mfa_michaelandsickmichael_stereo.wav"
    turns = sp.diarize(sp.Request(str(path), 52.44, "channels"))
    assert {turn.label for turn in turns} == {0, 1}
    left = sum(t.end - t.start for t in turns if t.label == 0)
    right = sum(t.end - t.start for t in turns if t.label == 1)
    assert left > 10 and right > 10


def test_channels_on_a_mono_file_says_why(corpus, tmp_path):
    result = cli(tmp_path / "data", "transcribe", str(CORPUS / "en_leopard_test.wav"), "--speakers", "channels",
                 "--model", "tiny.en", "-o", str(tmp_path))
    assert result.returncode != 0
    assert "one audio channel" in result.stderr and "Traceback" not in result.stderr


def test_bad_speakers_option_is_a_message(tmp_path, corpus):
    result = cli(tmp_path / "data", "add", str(CORPUS / "en_jfk.flac"), "--speakers", "lots")
    assert result.returncode != 0 and "speakers must be" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_transcribe_with_speakers_exports_names_and_renames(three, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    result = cli(data, "transcribe", str(three.path), "--speakers", "auto", "--model", "tiny.en", "-o", str(out),
                 "--format", "json,vtt,txt,tsv")
    assert result.returncode == 0, result.stderr
    document = json.loads((out / f"{three.path.stem}.json").read_text())
    segments = document["segments"]
    assert len({s["speaker"] for s in segments}) == 3
    assert all(w["speaker"] == s["speaker"] for s in segments for w in s.get("words", []))
    # Each segment's speaker is the true speaker at its middle (after mapping names to true labels).
    mapping = {}
    for segment in segments:
        truth = next(label for start, end, label in three.turns if start - 0.3 <= (segment["start"] + segment["end"]) / 2 <= end + 0.3)
        assert mapping.setdefault(segment["speaker"], truth) == truth
    voices = {caption.voice for caption in webvtt.read(str(out / f"{three.path.stem}.vtt"))}
    assert voices == {"Speaker 1", "Speaker 2", "Speaker 3"}
    assert (out / f"{three.path.stem}.tsv").read_text().splitlines()[0] == "start\tend\tspeaker\ttext"

    assert cli(data, "speakers", "1", "--rename", "2", "Dr. Amara").returncode == 0
    assert cli(data, "speakers", "1", "--merge", "1", "3").returncode == 0
    listed = json.loads(cli(data, "speakers", "1", "--json").stdout)
    assert [s["name"] for s in listed] == ["Speaker 1", "Dr. Amara"]
    exported = cli(data, "export", "1", "--format", "txt", "-o", "-").stdout
    assert "Dr. Amara: " in exported and "Speaker 3" not in exported
    # The library search names who said it and filters by speaker, with the new names at once.
    amara_said = next(segment["text"] for segment in segments if segment["speaker"] == "Speaker 2")
    word = max("".join(c if c.isalnum() else " " for c in amara_said).split(), key=len)
    hits = json.loads(cli(data, "search", word, "--json", "--speaker", "dr. amara").stdout or "[]")
    assert hits and all(hit["speaker"] == "Dr. Amara" for hit in hits)
    nobody = cli(data, "search", word, "--speaker", "Speaker 3")
    assert nobody.returncode == 1  # merged away: nobody of that name said anything
    store = Store.open(next(data.rglob("*.db")))
    try:
        with store.db.connection_context():
            assert store.db.execute_sql("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    finally:
        store.close()


@pytest.mark.slow
def test_sigkill_during_speakers_resumes_without_transcribing_again(three, tmp_path):
    import os
    import signal
    import sqlite3
    import time

    data = tmp_path / "data"
    assert cli(data, "add", str(three.path), "--speakers", "auto", "--model", "tiny.en").returncode == 0
    database = next(data.rglob("*.db"))
    worker = subprocess.Popen([sys.executable, "-m", "transcriber", "--data-dir", str(data), "run", "--until-idle"],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with sqlite3.connect(database, timeout=5) as db:
                progress = db.execute("SELECT speakers_progress FROM job WHERE id = 1").fetchone()[0]
            if progress is not None and progress < 1.0:
                break
            assert worker.poll() is None, "the run ended before its speakers stage was seen"
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    with sqlite3.connect(database) as db:
        before = db.execute("SELECT COUNT(*), COUNT(speaker) FROM segment WHERE job_id = 1").fetchone()
        runs_before = db.execute("SELECT COUNT(*) FROM run WHERE job_id = 1").fetchone()[0]
    assert before[0] > 0 and before[1] == 0  # transcribed, not yet labelled
    assert cli(data, "run", "--until-idle").returncode == 0
    with sqlite3.connect(database) as db:
        status = db.execute("SELECT status FROM job WHERE id = 1").fetchone()[0]
        after = db.execute("SELECT COUNT(speaker) FROM segment WHERE job_id = 1").fetchone()[0]
        resumed = db.execute("SELECT start_seconds, end_seconds FROM run WHERE job_id = 1 ORDER BY id").fetchall()[runs_before:]
    assert status == "completed" and after > 0
    # The resumed run began at the end of the audio: nothing was decoded again.
    assert resumed and all(start >= three.duration - 0.1 for start, _ in resumed)
