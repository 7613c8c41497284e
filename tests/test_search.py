"""Full-text search through the real CLI: real corpus speech transcribed, then searched for words of its references."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from conftest import REPO, normalise, run_cli

# The login name the commands see: the owner of jobs without --user.
ANN = {"LOGNAME": "ann", "USER": "ann", "LNAME": "ann", "USERNAME": "ann"}

JFK, FRENCH, LEOPARD = "en_jfk.flac", "fr_leopard_test_fr.wav", "en_leopard_test.wav"


def search(data_dir: Path, *args: str, env: dict | None = None):
    return run_cli("search", *args, data_dir=data_dir, env={**ANN, **(env or {})})


def search_json(data_dir: Path, *args: str, env: dict | None = None) -> list[dict]:
    result = search(data_dir, *args, "--json", env=env)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def job_ids(data_dir: Path) -> dict[str, int]:
    listed = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)
    return {Path(job["path"]).name: job["id"] for job in listed}


@pytest.fixture(scope="module")
def library(corpus, tmp_path_factory) -> Path:
    """A data folder with real transcripts: ann's English and French clips, bob's English clip."""
    data_dir = tmp_path_factory.mktemp("library") / "data"
    out = data_dir.parent / "out"
    run_cli("transcribe", str(corpus[JFK]["path"]), str(corpus[FRENCH]["path"]), "-o", str(out),
            data_dir=data_dir, check=True, env=ANN)
    run_cli("transcribe", str(corpus[LEOPARD]["path"]), "--user", "bob", "-o", str(out), data_dir=data_dir, check=True)
    return data_dir


@pytest.fixture
def own_library(library, tmp_path) -> Path:
    """A copy of the library for a test that changes it."""
    copy = tmp_path / "data"
    shutil.copytree(library, copy)
    return copy


def test_a_phrase_from_the_reference_is_found_with_its_time_and_marked(library, corpus):
    assert "fellow americans" in " ".join(normalise(corpus[JFK]["reference"]))
    hits = search_json(library, '"fellow Americans"')
    assert [Path(hit["path"]).name for hit in hits] == [JFK]
    (hit,) = hits
    assert set(hit) == {"job_id", "path", "start", "end", "text", "snippet", "rank", "speaker"}
    assert hit["speaker"] is None  # no speakers asked for
    assert hit["job_id"] == job_ids(library)[JFK]
    assert hit["start"] < 1.0 < hit["end"]  # the first words of the recording
    assert "[fellow Americans]" in hit["snippet"] and "fellow Americans" in hit["text"]

    # The plain lines: job id, file name, time as M:SS, the snippet with the match marked.
    result = search(library, '"fellow americans"')
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.split("\t")[:3] == [str(hit["job_id"]), JFK, "0:00"]
    assert "[fellow Americans]" in line

    # Words in another order are no phrase.
    assert search(library, '"americans fellow"').returncode == 1


def test_a_prefix_finds_every_word_it_begins(library):
    hits = search_json(library, "coun*")
    assert len(hits) >= 2 and all(Path(hit["path"]).name == JFK for hit in hits)
    assert all("[country]" in hit["snippet"] for hit in hits)
    assert sorted(hit["start"] for hit in hits)[-1] > 5  # "... for your country" at the end of the speech too
    assert search(library, "countr").returncode == 1  # without the star a part of a word matches nothing


def test_accents_and_case_are_ignored(library, corpus):
    assert "forêts" in corpus[FRENCH]["reference"]
    for query in ("forets", "FORÊTS", "Forets"):
        hits = search_json(library, query)
        assert [Path(hit["path"]).name for hit in hits] == [FRENCH], query
        assert "[forêts]" in hits[0]["snippet"]  # the text as spoken, accents kept


def test_and_or_not_combine_words(library):
    both = search_json(library, "forets OR americans")
    assert {Path(hit["path"]).name for hit in both} == {JFK, FRENCH}
    country = search_json(library, "country")
    without = search_json(library, "country NOT fellow")
    assert len(without) == len(country) - 1 and all("fellow" not in hit["text"].lower() for hit in without)
    assert search_json(library, "country AND NOT fellow") == without  # as people write it
    assert search_json(library, "country AND consulat") == []


def test_each_user_sees_their_own_jobs_unless_user_says_otherwise(library):
    assert search(library, "apostle").returncode == 1  # bob's recording, not ann's
    hits = search_json(library, "apostle", "--user", "bob")
    assert [Path(hit["path"]).name for hit in hits] == [LEOPARD]
    assert search_json(library, "apostle", env={"LOGNAME": "bob", "USER": "bob"})  # bob himself, without --user


def test_model_since_and_limit_narrow_the_hits(library):
    models = {Path(job["path"]).name: job["model"] for job in
              json.loads(run_cli("list", "--json", data_dir=library, check=True).stdout)}
    assert models[JFK] != models[FRENCH]  # English stays on tiny.en, French went to base
    assert search_json(library, "forets OR americans", "--model", models[FRENCH])[0]["path"].endswith(FRENCH)
    assert {Path(hit["path"]).name for hit in search_json(library, "forets OR americans", "--model", models[JFK])} == {JFK}

    today, tomorrow = date.today().isoformat(), (date.today() + timedelta(days=1)).isoformat()
    assert len(search_json(library, "country", "--since", today)) >= 2
    assert search(library, "country", "--since", tomorrow).returncode == 1

    limited = search(library, "country", "--limit", "1")
    assert limited.returncode == 0 and len(limited.stdout.splitlines()) == 1
    assert "--limit" in limited.stderr  # it says there are more


def test_a_query_fts_cannot_parse_is_searched_as_plain_words_with_a_message(library):
    result = search(library, '"fellow americans')  # unterminated phrase
    assert result.returncode == 0
    assert "not valid search syntax" in result.stderr and "Traceback" not in result.stderr
    assert "[fellow]" in result.stdout and "[Americans]" in result.stdout

    # Words that name database troubles ("busy", "locked", "full") are words like any other.
    unknown_column = search(library, "country:busy")
    assert unknown_column.returncode == 1 and "not valid search syntax" in unknown_column.stderr
    assert "locked" not in unknown_column.stderr

    for query in ("((", "AND", "   "):
        refused = search(library, query)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "Nothing to search for" in refused.stderr, refused.stderr

    bad_date = search(library, "country", "--since", "last tuesday")
    assert bad_date.returncode == 2 and "not a date" in bad_date.stderr


def test_an_edited_segment_is_found_by_its_new_text_and_not_its_old(own_library):
    from transcriber.store import Store

    jfk = job_ids(own_library)[JFK]
    (hit,) = search_json(own_library, '"fellow americans"')
    store = Store.open(own_library / "transcriber.db")
    try:
        index = next(segment.index for segment in store.transcripts.segments(jfk) if segment.start == hit["start"])
        # The transcript window saves an edit with this call.
        store.transcripts.update_segment_text(jfk, index, "And so, my fellow citizens of Québec, ask not")
        store.search.check()
    finally:
        store.close()
    assert search(own_library, '"fellow americans"').returncode == 1
    (edited,) = search_json(own_library, "quebec citizens")
    assert edited["job_id"] == jfk and edited["start"] == hit["start"] and "[Québec]" in edited["snippet"]


def test_a_removed_job_is_gone_from_the_index(own_library):
    from transcriber.store import Store

    jfk = job_ids(own_library)[JFK]
    run_cli("remove", str(jfk), data_dir=own_library, check=True)
    assert search(own_library, "country").returncode == 1
    assert search_json(own_library, "forets")  # the other jobs stay
    store = Store.open(own_library / "transcriber.db")
    try:
        store.search.check()  # the index holds nothing of the removed segments
        assert store.search.indexed_segments() == store.m.Segment.select().count()
    finally:
        store.close()


def test_rows_deleted_by_cascade_leave_the_index(own_library):
    """Removing a user removes their jobs by ON DELETE CASCADE; SQLite fires the segments' delete trigger then too."""
    from transcriber.store import Store

    store = Store.open(own_library / "transcriber.db")
    try:
        before = store.search.indexed_segments()
        bob_segments = store.m.Segment.select().join(store.m.Job).join(store.m.User).where(store.m.User.name == "bob").count()
        assert bob_segments > 0
        store.m.User.delete().where(store.m.User.name == "bob").execute()
        store.search.check()
        assert store.search.indexed_segments() == before - bob_segments
        assert store.search.search("apostle").hits == []
    finally:
        store.close()


def test_a_running_job_is_searchable_while_it_runs(data_dir, sample_speech, tmp_path):
    """welcome.flac said 20 times (200 s): its first words are found long before the job ends."""
    source = tmp_path / "long welcome.flac"
    shutil.copyfile(sample_speech["long"], source)
    run_cli("config", "set", "workers", "1", data_dir=data_dir, check=True)
    run_cli("add", str(source), data_dir=data_dir, check=True, env=ANN)
    engine = subprocess.Popen([sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "run"],
                              cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        hits = []
        while not hits and time.monotonic() < deadline and engine.poll() is None:
            time.sleep(0.5)
            hits = search_json(data_dir, "transcriber")
        assert hits, "no hit while the job ran"
        (job,) = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)
        assert job["status"] == "running" and job["progress"] < 1.0  # found while it still ran
        assert all(hit["job_id"] == job["id"] and hit["end"] <= job["processed_seconds"] + 0.01 for hit in hits)
    finally:
        engine.terminate()
        engine.wait(timeout=120)


def pre_search_library(data_dir: Path, corpus: dict, segments: int) -> None:
    """A database in ``data_dir`` at the schema before search, with one of ann's jobs of ``segments`` segments.

    The segments say the corpus references (English and French), one after another.
    """
    from peewee import SqliteDatabase

    from transcriber.store import migrations

    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / "transcriber.db"
    db = SqliteDatabase(str(database))
    before_search = migrations.MIGRATIONS[: migrations.SEARCH_VERSION - 1]
    for version, step in enumerate(before_search, start=1):
        step(db)
        db.execute_sql(f"PRAGMA user_version = {version}")
    db.close()
    sentences = [entry["reference"] for entry in corpus.values() if entry["lang"] in ("en", "fr")]
    now = time.time()
    connection = sqlite3.connect(database)
    connection.execute("INSERT INTO user (id, name, created_at) VALUES (1, 'ann', ?)", (now,))
    connection.execute(
        "INSERT INTO job (id, user_id, source_path, size_bytes, mtime, content_hash, duration_seconds, model, options,"
        " status, created_at, updated_at) VALUES (1, 1, '/archive/interviews.flac', 1, 0, 'h', ?, 'tiny.en', '{}',"
        " 'completed', ?, ?)", (2.0 * segments, now, now))
    connection.executemany(
        "INSERT INTO segment (job_id, idx, start_seconds, end_seconds, text) VALUES (1, ?, ?, ?, ?)",
        [(i, 2.0 * i, 2.0 * i + 2, sentences[i % len(sentences)]) for i in range(segments)],
    )
    connection.commit()
    connection.close()


def test_an_existing_library_gets_its_index_on_upgrade_with_progress(tmp_path, corpus):
    """A database from before search, with 45 000 segments, is indexed the first time a command opens it."""
    data_dir = tmp_path / "data"
    pre_search_library(data_dir, corpus, 45_000)

    result = search(data_dir, "forets", "--limit", "3")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("Building the search index")]
    assert len(progress) >= 2 and progress[-1].endswith("45000 of 45000 segments (100%)"), result.stderr
    assert len(result.stdout.splitlines()) == 3 and all("[forêts]" in line for line in result.stdout.splitlines())
    again = search(data_dir, '"fellow americans"', "--limit", "1")
    assert again.returncode == 0 and "Building" not in again.stderr  # built once
