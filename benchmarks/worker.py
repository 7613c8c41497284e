"""Run one benchmark configuration in a fresh process and print its results as JSON.

A process of its own per configuration keeps peak memory (ru_maxrss) honest.

    python benchmarks/worker.py plain  --files a.wav b.flac [--beam 5] [--vad] [--batched 8]
    python benchmarks/worker.py engine --files a.wav b.flac [--preset balanced] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_plain(args) -> dict:
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from faster_whisper.audio import decode_audio

    from transcriber.engine.models import resolve_model

    path = resolve_model(args.model, Path(tempfile.gettempdir()) / "transcriber-bench-models")
    started = time.perf_counter()
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=args.threads or os.cpu_count())
    load_seconds = time.perf_counter() - started
    pipeline = BatchedInferencePipeline(model) if args.batched else None
    texts, audio_seconds, per_file = {}, 0.0, {}
    started = time.perf_counter()
    for file in args.files:
        file_started = time.perf_counter()
        kwargs = dict(beam_size=args.beam, vad_filter=args.vad, language=args.language or None)
        if pipeline is not None:
            segments, info = pipeline.transcribe(file, batch_size=args.batched, **kwargs)
        else:
            segments, info = model.transcribe(file, **kwargs)
        texts[file] = " ".join(segment.text.strip() for segment in segments)
        audio_seconds += info.duration
        per_file[file] = {"seconds": time.perf_counter() - file_started, "language": info.language}
    return {
        "texts": texts,
        "per_file": per_file,
        "wall_seconds": time.perf_counter() - started,
        "audio_seconds": audio_seconds,
        "load_seconds": load_seconds,
    }


def run_engine(args) -> dict:
    from transcriber.engine.core import Engine
    from transcriber.engine.models import ModelPool
    from transcriber.jobs import JobOptions
    from transcriber.store import Store

    data = Path(tempfile.mkdtemp(prefix="transcriber-bench-"))
    store = Store.open(data / "transcriber.db")
    store.settings.set("workers", str(args.workers))
    store.settings.set("auto_export", "false")
    store.settings.set("max_queued_per_user", "100000")
    store.settings.set("max_file_size_mb", "100000")
    pool = ModelPool(Path(tempfile.gettempdir()) / "transcriber-bench-models", workers=args.workers, idle_seconds=3600)
    engine = Engine(store, pool, default_export_dir=data / "exports")
    options = JobOptions(model=args.model, language=args.language or None, preset=args.preset)
    started = time.perf_counter()
    # Load outside the timed part, as for plain (``auto`` starts every job with tiny.en).
    settings, _ = pool.acquire("tiny.en" if args.model == "auto" else args.model)
    load_seconds = time.perf_counter() - started
    results = engine.add(args.files, user="bench", options=options)
    refused = [str(result.refusal) for result in results if result.refusal]
    if refused:
        raise SystemExit("refused: " + "; ".join(refused))
    started = time.perf_counter()
    _run_with_runner(engine)
    wall = time.perf_counter() - started
    pool.release(settings)
    texts, per_file, audio_seconds = {}, {}, 0.0
    for job in store.jobs.list_jobs():
        texts[job.source_path] = engine.transcript(job.id).text
        audio_seconds += job.duration_seconds
        per_file[job.source_path] = {
            "seconds": job.processing_seconds,
            "status": job.status.value,
            "error": job.error,
            "language": job.language,
        }
    return {
        "texts": texts,
        "per_file": per_file,
        "wall_seconds": wall,
        "audio_seconds": audio_seconds,
        "load_seconds": load_seconds,
        "model_loads": pool.load_count(args.model),
    }


def run_estimates(args) -> dict:
    """Run files one at a time through the engine; record the estimates it gave and the real times.

    For each file: the estimate before it starts (from the speed history of the jobs before
    it, or the default), the estimate at 10% progress (elapsed + eta), and the actual time.
    """
    import threading

    from transcriber.engine.core import Engine
    from transcriber.engine.models import ModelPool
    from transcriber.engine.runner import EngineRunner
    from transcriber.jobs import JobOptions, JobStatus
    from transcriber.store import Store

    data = Path(tempfile.mkdtemp(prefix="transcriber-bench-"))
    store = Store.open(data / "transcriber.db")
    store.settings.set("workers", str(args.workers))
    store.settings.set("auto_export", "false")
    store.settings.set("max_file_size_mb", "100000")
    pool = ModelPool(Path(tempfile.gettempdir()) / "transcriber-bench-models", workers=args.workers, idle_seconds=3600)
    engine = Engine(store, pool, default_export_dir=data / "exports")
    settings, _ = pool.acquire(args.model)
    results = []
    for file in args.files:
        (intake,) = engine.add([file], user="bench", options=JobOptions(model=args.model, preset=args.preset))
        job_id = intake.job.id
        (queued,) = engine.with_estimates([store.jobs.require_job(job_id)])
        before = queued.eta_seconds
        record: dict = {}

        def watch() -> None:
            while True:
                job = store.jobs.get_job(job_id)
                if job.status is JobStatus.RUNNING and "start" not in record:
                    record["start"] = time.perf_counter()
                if job.status is JobStatus.RUNNING and job.progress >= 0.10 and job.eta_seconds is not None:
                    record["at_10"] = time.perf_counter() - record["start"] + job.eta_seconds
                    record["progress"] = job.progress
                    return
                if job.status.is_final:
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.perf_counter()
        runner = EngineRunner(engine, poll_seconds=0.1)
        runner.start()
        runner.wait_idle()
        runner.stop()
        watcher.join()
        actual = time.perf_counter() - record.get("start", started)
        results.append(
            {
                "file": file,
                "duration": store.jobs.require_job(job_id).duration_seconds,
                "estimate_before": before,
                "estimate_at_10": record.get("at_10"),
                "actual": actual,
            }
        )
    pool.release(settings)
    return {"texts": {}, "estimates": results, "wall_seconds": 0.0, "audio_seconds": 0.0}


def _run_with_runner(engine) -> None:
    """Decode every queued job with the engine's runner (its decode streams), until idle."""
    from transcriber.engine.runner import EngineRunner

    runner = EngineRunner(engine, poll_seconds=0.2)
    runner.start()
    runner.wait_idle()
    runner.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["plain", "engine", "estimates"])
    parser.add_argument("--files", nargs="+", required=True)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--language", default="")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--vad", action="store_true")
    parser.add_argument("--batched", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    result = {"plain": run_plain, "engine": run_engine, "estimates": run_estimates}[args.mode](args)
    result["peak_rss_mb"] = peak_rss_mb()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
