"""Search benchmark: a synthetic library of 1000 hours of transcripts (about 10 million words) in the real schema.

    python benchmarks/search.py                 # 1000 hours
    python benchmarks/search.py --hours 50      # a quick look

Measured in one run, printed as a Markdown table and saved to benchmarks/out/search.json:

- the time to build the index from scratch: a database from before search (segments only)
  opened by this version, which builds the index on upgrade (``Store.open``);
- the index's size on disk (its FTS5 tables, from SQLite's dbstat);
- the time to index one new segment: ``store.work.commit_progress`` of one segment with the
  index's triggers, against the same without them (the difference is the index's share);
- search latency (``store.search.search``, one user's jobs, 50 hits) for a word, a frequent
  word, a phrase, a prefix, two words, and the most common word of all as the worst case:
  median and 95th percentile over 30 runs after one to warm the cache.

The text is made of a vocabulary of 40 000 made-up words drawn with Zipf's law (as word
frequencies in speech are), about 14 words per 5-second segment; the phrase "budget
freeze" is said in one segment in a thousand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from peewee import SqliteDatabase  # noqa: E402

from transcriber.jobs import Segment  # noqa: E402
from transcriber.store import Store, migrations  # noqa: E402

SEGMENT_SECONDS = 5.0
WORDS_PER_SEGMENT = 14  # about 170 words a minute, as people speak
JOB_MINUTES = 30
USERS = ("ann", "bob", "cem", "dia")
VOCABULARY = 40_000
SYLLABLES = ["ba", "ke", "lo", "mi", "nu", "ra", "se", "ti", "vo", "za", "an", "el", "in", "or", "us", "qua", "dre", "sto"]
RUNS = 30


def made_up_words(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct pronounceable words, the shortest first (common words are short)."""
    words: list[str] = []
    seen = set()
    length = 1
    while len(words) < count:
        for _ in range(count * 2):
            word = "".join(rng.choice(SYLLABLES) for _ in range(length))
            if word not in seen:
                seen.add(word)
                words.append(word)
                if len(words) == count:
                    break
        length += 1
    return words


def pre_search_database(path: Path, hours: float, rng: random.Random) -> dict:
    """A database at the schema version before search, filled with ``hours`` of synthetic transcripts."""
    db = SqliteDatabase(str(path), pragmas={"journal_mode": "wal", "foreign_keys": 1})
    for version, step in enumerate(migrations.MIGRATIONS[: migrations.SEARCH_VERSION - 1], start=1):
        step(db)
        db.execute_sql(f"PRAGMA user_version = {version}")
    db.close()

    words = made_up_words(VOCABULARY, rng)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    cumulative, total = [], 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous = off")
    now = time.time()
    connection.executemany("INSERT INTO user (id, name, created_at) VALUES (?, ?, ?)",
                           [(i + 1, name, now) for i, name in enumerate(USERS)])
    jobs = int(hours * 60 / JOB_MINUTES)
    per_job = int(JOB_MINUTES * 60 / SEGMENT_SECONDS)
    segment_id, word_count = 0, 0
    for job in range(1, jobs + 1):
        created = now - (jobs - job) * 3600.0  # one recording an hour, the newest last
        connection.execute(
            "INSERT INTO job (id, user_id, source_path, size_bytes, mtime, content_hash, duration_seconds, model, "
            "options, status, created_at, updated_at, finished_at) VALUES (?, ?, ?, 1, 0, ?, ?, 'base', '{}', "
            "'completed', ?, ?, ?)",
            (job, job % len(USERS) + 1, f"/archive/interview {job:05d}.flac", f"hash{job}", JOB_MINUTES * 60.0,
             created, created, created),
        )
        rows = []
        for index in range(per_job):
            drawn = rng.choices(words, cum_weights=cumulative, k=WORDS_PER_SEGMENT)
            if rng.random() < 0.001:
                drawn[3:5] = ["budget", "freeze"]
            text = " " + " ".join(drawn).capitalize() + "."
            word_count += len(drawn)
            segment_id += 1
            rows.append((segment_id, job, index, index * SEGMENT_SECONDS, (index + 1) * SEGMENT_SECONDS, text))
        connection.executemany(
            "INSERT INTO segment (id, job_id, idx, start_seconds, end_seconds, text) VALUES (?, ?, ?, ?, ?, ?)", rows
        )
    connection.commit()
    connection.close()
    return {"jobs": jobs, "segments": segment_id, "words": word_count, "vocabulary": words}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else platform.machine()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores {model}, {memory:.0f} GiB"


def index_bytes(store: Store) -> int:
    rows = store.db.execute_sql("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'segment_fts%'").fetchone()
    return int(rows[0] or 0)


def latency(run, runs: int = RUNS) -> dict:
    run()  # warm: the first query reads the pages from disk into the cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2)}


def commit_one_segment(store: Store, job_id: int, part: int, run_id: int, text: str, at: float) -> float:
    started = time.perf_counter()
    store.work.commit_progress(job_id, part, run_id, [Segment(0, at, at + SEGMENT_SECONDS, text)],
                               processed_seconds=at + SEGMENT_SECONDS, processing_seconds=1.0, speed=5.0)
    return (time.perf_counter() - started) * 1000


def commit_latency(store: Store, words: list[str], count: int = 40) -> float:
    from transcriber.jobs import JobOptions

    job = store.jobs.add_job(user="ann", source_path=f"/archive/live {time.time()}.flac", size_bytes=1, mtime=0,
                             content_hash=str(time.time()), duration_seconds=3600, declared_seconds=None,
                             options=JobOptions(), max_queued=10**6)
    _job, part, run_id = store.work.claim_work(job.id)
    times = [commit_one_segment(store, job.id, part.index, run_id, " ".join(words[i:i + WORDS_PER_SEGMENT]), i * 5.0)
             for i in range(count)]
    return round(statistics.median(times), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    results: dict = {"date": date.today().isoformat(), "machine": machine(),
                     "hours": args.hours, "load_average_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="search-bench-") as folder:
        path = Path(folder) / "transcriber.db"
        started = time.perf_counter()
        library = pre_search_database(path, args.hours, rng)
        results.update(jobs=library["jobs"], segments=library["segments"], words=library["words"])
        print(f"library: {library['jobs']} jobs, {library['segments']} segments, {library['words']} words "
              f"(generated in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
        results["database_bytes_before"] = path.stat().st_size + (path.with_name(path.name + "-wal").stat().st_size
                                                                  if path.with_name(path.name + "-wal").exists() else 0)

        def progress(what: str, done: int, total: int) -> None:
            if done == total or done % 200_000 < 20_000:
                print(f"  {what}: {done} of {total}", file=sys.stderr)

        started = time.perf_counter()
        store = Store.open(path, on_progress=progress)  # the upgrade builds the index
        results["build_seconds"] = round(time.perf_counter() - started, 1)
        results["index_bytes"] = index_bytes(store)
        assert store.search.indexed_segments() == library["segments"]

        vocabulary = library["vocabulary"]
        # By Zipf's law the word of rank r is in about one segment in 80 * r / 100.
        queries = {
            "word": vocabulary[2000],
            "frequent word": vocabulary[100],
            "phrase": '"budget freeze"',
            "prefix": "budg*",
            "two words": f"{vocabulary[500]} {vocabulary[900]}",
            "most common word (worst case)": vocabulary[0],
        }
        results["queries"] = {}
        for label, query in queries.items():
            hits = store.search.search(query, user="ann").hits
            matching = store.db.execute_sql("SELECT COUNT(*) FROM segment_fts WHERE segment_fts MATCH ?", (query,)).fetchone()[0]
            results["queries"][label] = {"query": query, "matching_segments": matching, "hits": len(hits),
                                         **latency(lambda: store.search.search(query, user="ann"))}

        results["commit_one_segment_ms"] = commit_latency(store, vocabulary)
        for trigger in ("segment_fts_insert", "segment_fts_delete", "segment_fts_update"):
            store.db.execute_sql(f"DROP TRIGGER {trigger}")
        results["commit_one_segment_without_index_ms"] = commit_latency(store, vocabulary)
        store.close()

    results["load_average_end"] = round(os.getloadavg()[0], 2)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "search.json").write_text(json.dumps(results, indent=2))
    mb = 1024 * 1024
    print(f"\n{results['hours']:g} hours: {results['jobs']} jobs, {results['segments']} segments, "
          f"{results['words'] / 1e6:.1f} million words; {results['date']}, {results['machine']}; "
          f"load average {results['load_average_start']} at the start, {results['load_average_end']} at the end\n")
    print("| measure | value |\n|---|---|")
    print(f"| database before the index | {results['database_bytes_before'] / mb:.0f} MB |")
    print(f"| index on disk | {results['index_bytes'] / mb:.0f} MB |")
    print(f"| build the index from scratch (upgrade) | {results['build_seconds']} s "
          f"({results['build_seconds'] / results['segments'] * 1e6:.0f} µs per segment) |")
    print(f"| commit one segment, with the index / without | {results['commit_one_segment_ms']} ms / "
          f"{results['commit_one_segment_without_index_ms']} ms |")
    for label, entry in results["queries"].items():
        print(f"| search: {label} `{entry['query']}` ({entry['matching_segments']} segments match) | "
              f"{entry['median_ms']} ms median, {entry['p95_ms']} ms p95 |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
