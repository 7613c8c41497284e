"""The live transcript while recording: the settling rule, the recording as a job in a real store, and the real thing.

End to end, ``transcriber record --live`` runs in a subprocess against a private PulseAudio
(virtual_mic.py) with the real model: speech played into the microphone is printed before
Stop, a SIGKILL keeps the audio and the committed live text (the next start finishes the
job from there), and the final transcript is as good as transcribing the saved file.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from conftest import REPO, normalise, run_cli, word_error_rate
from transcriber.audio import recorder
from transcriber.engine.live import HOLD_SECONDS, SILENCE_SECONDS, settled_count
from transcriber.engine.whisper import DecodedSegment
from transcriber.errors import IntakeRefused, JobStateError
from transcriber.filelock import try_lock
from transcriber.jobs import JobOptions, JobStatus, Segment
from virtual_mic import virtual_mic, wait_for_line  # noqa: F401  (virtual_mic is a fixture)

RATE = 16000
TINY = JobOptions(model="tiny.en", language="en")


# ------------------------------------------------------------------ the settling rule


def piece(start: float, end: float, text: str = "words") -> DecodedSegment:
    return DecodedSegment(start=start, end=end, text=text)


@pytest.mark.parametrize(
    "ends, audio_end, settled",
    [
        ([], 10.0, 0),
        # The last segment waits for silence after it: the speaker may still be saying it.
        ([4.0], 4.0 + SILENCE_SECONDS - 0.1, 0),
        ([4.0], 4.0 + SILENCE_SECONDS, 1),
        # A segment followed by another settles sooner, once a little audio follows it.
        ([4.0, 6.0], 4.0 + HOLD_SECONDS, 1),
        ([4.0, 6.0], 4.0 + HOLD_SECONDS - 0.1, 0),
        ([4.0, 6.0, 9.0], 9.0 + SILENCE_SECONDS, 3),
        ([4.0, 6.0, 9.0], 8.0, 2),
        # Only a prefix settles: nothing after a segment that has not.
        ([4.0, 9.9, 5.0], 10.0, 1),
    ],
)
def test_which_segments_of_a_pass_have_settled_by_the_audio_after_them(ends, audio_end, settled):
    pieces = [piece(max(0.0, end - 2.0), end) for end in ends]
    assert settled_count(pieces, audio_end, previous=pieces) == settled


def test_a_segment_settles_only_when_the_pass_before_read_it_the_same():
    now = [piece(0.0, 3.0, " The weather today is sunny."), piece(3.5, 6.0, " Please remember")]
    assert settled_count(now, 12.0, previous=[]) == 0  # the first reading of a sentence is a guess
    assert settled_count(now, 12.0, previous=[piece(0.0, 2.9, " the weather today is  sunny.")]) == 1
    assert settled_count(now, 12.0, previous=[piece(0.0, 3.0, " Thank you for watching.")]) == 0
    # What a full 30-second window decoded is final, as in a file's decode.
    assert settled_count(now, 36.0, previous=[]) == 2


def test_the_last_segment_settles_only_over_real_silence():
    pieces = [piece(0.0, 3.0, " The weather today is sunny.")]
    heard = []
    assert settled_count(pieces, 6.0, previous=pieces, quiet_after=lambda at: heard.append(at) or False) == 0
    assert heard == [3.0]  # asked about the audio after its end
    assert settled_count(pieces, 6.0, previous=pieces, quiet_after=lambda at: True) == 1


# ------------------------------------------------------------- the job, real store


def growing_recording(folder: Path, seconds: float) -> recorder.WavWriter:
    """A recording being written, as the recorder writes it (synced, so its header says how long it is)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = recorder.WavWriter(folder / "recording_live.wav", RATE, 1)
    writer.write(bytes(int(seconds * RATE) * 2))
    writer.sync()
    return writer


def test_a_recording_job_is_never_claimed_and_stop_queues_it_at_its_live_cursor(make_engine, data_dir):
    engine = make_engine()
    writer = growing_recording(data_dir / "recordings", 4.0)
    job = engine.begin_recording(writer.path, user="ann", options=TINY)
    assert job.status is JobStatus.RECORDING and job.model == "tiny.en" and job.user == "ann"
    assert recorder.written_seconds(writer.path) == pytest.approx(4.0)

    stored = engine.store.work.commit_live(
        job.id, [Segment(-1, 0.2, 2.5, " Hello there.")], processed_seconds=2.5, recorded_seconds=4.0, tokens=[[1, 2, 3]],
    )
    assert [(s.index, s.text) for s in stored] == [(0, " Hello there.")]
    live = engine.store.jobs.get_job(job.id)
    assert live.status is JobStatus.RECORDING and live.processed_seconds == 2.5 and live.duration_seconds == 4.0
    # Live is not the runner's: nothing to claim, and `run --until-idle` has nothing to wait for.
    assert engine.claim_next() is None and engine.nothing_to_do()

    writer.write(bytes(2 * RATE * 2))
    writer.close()
    queued = engine.end_recording(job.id)
    assert queued.status is JobStatus.QUEUED
    assert queued.duration_seconds == pytest.approx(6.0, abs=0.01) and queued.processed_seconds == 2.5
    assert queued.size_bytes == writer.path.stat().st_size and len(queued.content_hash) == 64
    claimed = engine.claim_next()
    assert claimed is not None and claimed.job.id == job.id
    assert claimed.part.processed_seconds == 2.5 and claimed.part.end == pytest.approx(6.0, abs=0.01)
    assert engine.store.work.recent_tokens(job.id, 0) == [1, 2, 3]  # the live text is the decoder's context
    # A commit after Stop is refused: the live decoder stops.
    assert engine.store.work.commit_live(job.id, [], processed_seconds=3.0, recorded_seconds=6.0) is None
    with pytest.raises(JobStateError, match="not recording"):
        engine.end_recording(job.id)


def test_a_recording_that_holds_nothing_leaves_no_job(make_engine, data_dir):
    engine = make_engine()
    writer = growing_recording(data_dir / "recordings", 0.0)
    job = engine.begin_recording(writer.path, user="ann", options=TINY)
    writer.close()
    writer.path.unlink()  # what the recorder does with a recording that captured nothing
    assert engine.end_recording(job.id) is None
    assert engine.store.jobs.list_jobs() == []


def test_a_full_queue_refuses_the_recording_job_before_anyone_talks(make_engine, data_dir):
    engine = make_engine()
    run_cli("config", "set", "max_queued_per_user", "1", data_dir=data_dir, check=True)
    first = growing_recording(data_dir / "one", 1.0)
    first.close()
    engine.add([str(first.path)], user="ann", options=TINY)
    writer = growing_recording(data_dir / "recordings", 1.0)
    with pytest.raises(IntakeRefused, match="max_queued_per_user"):
        engine.begin_recording(writer.path, user="ann", options=TINY)


def test_start_up_recovery_finishes_dead_recordings_and_leaves_live_ones_alone(make_engine, data_dir):
    engine = make_engine()
    folder = data_dir / "recordings"
    dead = growing_recording(folder, 3.0)
    dead_job = engine.begin_recording(dead.path, user="ann", options=TINY)
    engine.store.work.commit_live(dead_job.id, [Segment(-1, 0.0, 1.5, " Before the crash.")],
                                  processed_seconds=1.5, recorded_seconds=3.0)
    # Killed: audio written after the last sync, a header that never learned of it, a marker nobody holds.
    dead.write(bytes(RATE * 2))
    dead._file.flush()
    recorder.marker_of(dead.path).write_text(json.dumps({"state": "recording", "job_id": dead_job.id}))

    alive_path = folder / "recording_alive.wav"
    alive = recorder.WavWriter(alive_path, RATE, 1)
    alive.write(bytes(RATE * 2))
    alive.sync()
    alive_job = engine.begin_recording(alive_path, user="ann", options=TINY)
    marker = open(recorder.marker_of(alive_path), "w")  # the recorder's lock, as a live recording holds it
    try:
        assert try_lock(marker)
        assert recorder.recording_is_live(alive_path) and not recorder.recording_is_live(dead.path)
        # A recording that is a job already is not offered as one never transcribed.
        assert recorder.recover(folder) == []

        recovered = engine.recover()
        assert [job.id for job in recovered] == [dead_job.id]
        job = engine.store.jobs.get_job(dead_job.id)
        assert job.status is JobStatus.QUEUED and job.processed_seconds == 1.5
        assert job.duration_seconds == pytest.approx(4.0, abs=0.01)  # the repaired file, unsynced second included
        assert sf.info(str(dead.path)).duration == pytest.approx(4.0, abs=0.01)
        assert not recorder.marker_of(dead.path).exists()
        assert [s.text for s in engine.transcript(job.id).segments] == [" Before the crash."]
        assert engine.store.jobs.get_job(alive_job.id).status is JobStatus.RECORDING
    finally:
        marker.close()
        alive.close()


# ------------------------------------------------------------- the command, real sound system


class Lines:
    """A process's stdout read on a thread, so a test can wait for a line with a deadline."""

    def __init__(self, stream):
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put((time.monotonic(), line.rstrip("\n")))
        self._queue.put(None)

    def wait_for(self, *words: str, timeout: float = 60.0) -> tuple[float, str]:
        """The first line (arrival time, text) holding all ``words`` (normalised); fails at the deadline or the end."""
        for seen_at, line in self.lines:
            if set(words) <= set(normalise(line)):
                return seen_at, line
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {words} within {timeout} s: {[line for _, line in self.lines]}")
            if item is None:
                raise AssertionError(f"output ended without a line with {words}: {[line for _, line in self.lines]}")
            self.lines.append(item)
            if set(words) <= set(normalise(item[1])):
                return item

    def rest(self, timeout: float = 5.0) -> list[str]:
        self._thread.join(timeout)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return [line for _, line in self.lines]
            if item is not None:
                self.lines.append(item)


def live_process(data_dir: Path, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "record", "--live", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO),
    )


def transcript_text(data_dir: Path, job_id: int) -> str:
    return run_cli("export", str(job_id), "--format", "txt", "-o", "-", data_dir=data_dir, check=True).stdout


WEATHER = "The weather today is sunny with a gentle breeze."
UMBRELLA = "Please remember to bring your umbrella tomorrow morning."


def test_words_spoken_appear_before_stop_and_the_final_transcript_is_as_good_as_the_saved_files(
    virtual_mic, data_dir, speak, tmp_path
):
    first, second = speak(WEATHER, "live_weather.wav"), speak(UMBRELLA, "live_umbrella.wav")
    process = live_process(data_dir, "--model", "tiny.en", env=virtual_mic.env)
    wait_for_line(process.stderr, "recording to", process)
    out = Lines(process.stdout)
    _, job_line = out.wait_for("recording")
    job_id, status, path = job_line.split("\t")
    assert status == "recording"
    listed = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)
    assert [(job["id"], job["status"]) for job in listed] == [(int(job_id), "recording")]

    virtual_mic.play(first).wait()
    _, line = out.wait_for("weather", "sunny", "breeze", timeout=30)  # while still recording
    assert process.poll() is None
    start, text = line.split("\t")
    assert ":" in start and text.strip()
    time.sleep(1.0)
    virtual_mic.play(second).wait()
    out.wait_for("umbrella", "tomorrow", timeout=30)
    assert process.poll() is None
    # Committed as it was shown: a crash now would keep it.
    live = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)[0]
    assert live["status"] == "recording" and live["processed_seconds"] > 0
    assert {"weather", "umbrella"} <= set(normalise(transcript_text(data_dir, int(job_id))))

    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    printed = out.rest()
    assert "Traceback" not in err
    final = transcript_text(data_dir, int(job_id))
    job = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)[0]
    assert job["status"] == "completed" and job["path"] == path
    assert job["duration_seconds"] == pytest.approx(sf.info(path).duration, abs=0.05)
    # Each segment was printed once, in time order, and they are the transcript.
    segment_lines = [line.split("\t", 1)[1] for line in printed[1:]]
    assert normalise(" ".join(segment_lines)) == normalise(final)

    # The saved file, transcribed as a dropped file would be, does no better.
    other = tmp_path / "other"
    run_cli("transcribe", path, "--model", "tiny.en", "-o", str(tmp_path / "out"), data_dir=other, check=True)
    from_file = (tmp_path / "out" / (Path(path).stem + ".txt")).read_text()
    reference = f"{WEATHER} {UMBRELLA}"
    print(f"live: {final!r}\nfile: {from_file!r}")
    assert word_error_rate(reference, final) <= word_error_rate(reference, from_file)


def test_sigkill_mid_recording_keeps_the_audio_and_the_live_transcript_and_the_next_start_finishes_it(
    virtual_mic, data_dir, speak
):
    speech = speak(
        "The weather today is sunny with a gentle breeze. "
        "Please remember to bring your umbrella tomorrow morning. "
        "The library is open in the morning, and the garden behind it is full of roses.",
        "live_kill.wav",
    )
    process = live_process(data_dir, "--model", "tiny.en", env=virtual_mic.env)
    wait_for_line(process.stderr, "recording to", process)
    out = Lines(process.stdout)
    job_id, _, path = out.wait_for("recording")[1].split("\t")
    player = virtual_mic.play(speech)
    out.wait_for("weather", timeout=30)
    out.wait_for("umbrella", timeout=30)
    process.send_signal(signal.SIGKILL)  # mid-speech: the library sentence is still being played
    process.wait()
    player.wait()
    printed = [line.split("\t", 1)[1] for line in out.rest()[1:]]

    from transcriber.store import Store

    store = Store.open(data_dir / "transcriber.db")
    try:
        job = store.jobs.get_job(int(job_id))
        committed = [segment.text for segment in store.transcripts.segments(job.id)]
    finally:
        store.close()
    assert job.status is JobStatus.RECORDING and recorder.marker_of(Path(path)).exists()
    assert [text.strip() for text in committed] == printed  # every line shown was committed, nothing more
    assert {"weather", "umbrella"} <= set(normalise(" ".join(committed)))

    # The next start (here `transcriber run`) repairs the file and finishes the job from the last committed segment.
    ran = run_cli("run", "--until-idle", data_dir=data_dir, check=True)
    assert "1 completed" in ran.stdout + ran.stderr
    job = json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)[0]
    assert job["status"] == "completed" and job["warning"] is None
    audio, rate = sf.read(path, dtype="float32")  # a whole, valid file again
    assert job["duration_seconds"] == pytest.approx(len(audio) / rate, abs=0.05)
    final = transcript_text(data_dir, int(job_id))
    assert normalise(final)[: len(normalise(" ".join(committed)))] == normalise(" ".join(committed))
    assert "library" in normalise(final)  # the tail the live transcript had not settled
    assert "no recordings waiting" in run_cli("record", "--recover", data_dir=data_dir, check=True).stderr


def test_live_refuses_no_queue(data_dir):
    result = run_cli("record", "--live", "--no-queue", "--seconds", "1", data_dir=data_dir)
    assert result.returncode == 1 and "--live" in result.stderr and "--no-queue" in result.stderr
    assert "Traceback" not in result.stderr
