"""Limits, the scheduler and the estimator: pure functions, table-style, no threads."""

from __future__ import annotations

import pytest

from transcriber.engine.estimates import default_speed, estimate_queue, expected_speed, live_speed
from transcriber.engine.limits import Limits, intake_refusal
from transcriber.engine.scheduler import choose_next, start_order
from transcriber.jobs import Job, JobOptions, JobStatus

_ids = iter(range(1, 10_000))


def job(user: str, status: JobStatus = JobStatus.QUEUED, duration: float = 100.0, processed: float = 0.0,
        model: str = "tiny.en", speed: float | None = None) -> Job:
    return Job(id=next(_ids), user=user, source_path=f"/{user}.wav", size_bytes=1, mtime=0, content_hash="h",
               duration_seconds=duration, options=JobOptions(model=model), status=status,
               processed_seconds=processed, speed=speed)


@pytest.mark.parametrize(
    "field, value",
    [("max_file_size_mb", 0), ("max_concurrent_per_user", -1), ("max_queued_per_user", 1.5), ("workers", True)],
)
def test_limits_reject_nonsense(field, value):
    with pytest.raises(ValueError, match=field):
        Limits(**{field: value})


@pytest.mark.parametrize(
    "size_mb, queued, expected",
    [
        (499, 9, None),
        (500, 0, None),
        (501, 0, "over the file size limit (max_file_size_mb = 500)"),
        (10, 10, "already has 10 queued jobs (limit max_queued_per_user = 10)"),
    ],
)
def test_intake_refusal_names_the_limit(size_mb, queued, expected):
    message = intake_refusal(Limits(), file_name="x.wav", size_bytes=size_mb * 1_000_000, queued_for_user=queued, user="u")
    if expected is None:
        assert message is None
    else:
        assert expected in message and "x.wav" in message


def test_scheduler_respects_the_worker_count():
    queued = [job("a")]
    assert choose_next(queued, [job("b", JobStatus.RUNNING)], Limits(workers=1)) is None
    assert choose_next(queued, [job("b", JobStatus.RUNNING)], Limits(workers=2)) is queued[0]


def test_scheduler_respects_the_per_user_running_limit():
    running = [job("a", JobStatus.RUNNING), job("a", JobStatus.RUNNING)]
    queued = [job("a"), job("a")]
    assert choose_next(queued, running, Limits(workers=8, max_concurrent_per_user=2)) is None
    assert choose_next(queued, running, Limits(workers=8, max_concurrent_per_user=3)) is queued[0]


def test_a_user_with_many_jobs_does_not_starve_a_user_with_one():
    heavy = [job("heavy") for _ in range(10)]
    light = job("light")
    queued = heavy + [light]  # the light user queued last
    limits = Limits(workers=1)
    # heavy already had a job started; light never did
    assert choose_next(queued, [], limits, {"heavy": 100.0}) is light
    order = start_order(queued, [], limits, {"heavy": 100.0})
    assert order.index(light) == 0
    # with no history, users alternate: light starts second, not eleventh
    assert start_order(queued, [], limits).index(light) == 1


def test_fifo_within_a_user():
    first, second, third = job("a"), job("a"), job("a")
    assert start_order([first, second, third], [], Limits()) == [first, second, third]


def test_user_with_fewer_running_jobs_goes_first():
    running = [job("a", JobStatus.RUNNING)]
    a_next, b_next = job("a"), job("b")
    assert choose_next([a_next, b_next], running, Limits(workers=4)) is b_next


def test_live_speed_moves_from_prior_to_measurement():
    assert live_speed(0, 0, prior=10) == pytest.approx(10)
    assert live_speed(600, 30, prior=10) == pytest.approx(630 / 33)  # mostly the measured 20x
    assert 10 < live_speed(30, 1.5, prior=10) < 20


def test_expected_speed_prefers_measured_history():
    assert expected_speed("tiny.en", {"tiny.en": 14.0}) == 14.0
    assert expected_speed("tiny.en", {}) == default_speed("tiny.en") == 10.0
    assert default_speed("/models/whisper-large-v3") == 0.25
    assert default_speed("mystery") == 1.0


def test_queue_estimate_simulates_the_workers():
    running = job("a", JobStatus.RUNNING, duration=100, processed=50, speed=5.0)  # 10 s left
    first = job("a", duration=100)  # 10 s at 10x
    second = job("b", duration=200)  # 20 s
    paused = job("c", JobStatus.PAUSED)
    one_worker = estimate_queue([running, first, second, paused], {}, workers=1, now=1000.0)
    assert one_worker[running.id] == (pytest.approx(10), pytest.approx(1010))
    assert one_worker[first.id][0] == pytest.approx(20)
    assert one_worker[second.id][0] == pytest.approx(40)
    assert paused.id not in one_worker
    two_workers = estimate_queue([running, first, second], {}, workers=2, now=0.0)
    assert two_workers[first.id][0] == pytest.approx(10)  # starts at once on the free worker
    assert two_workers[second.id][0] == pytest.approx(30)  # after the running job, at 10 s
