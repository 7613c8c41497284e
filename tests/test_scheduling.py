"""Limits, the scheduler and the estimator: pure functions, table-style, no threads."""

from __future__ import annotations

import numpy as np
import pytest

from transcriber.engine.estimates import default_speed, estimate_queue, expected_speed, live_speed
from transcriber.limits import Limits, intake_refusal
from transcriber.engine.parts import part_count, quietest_moment
from transcriber.engine.scheduler import choose_next, choose_work, start_order
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
    assert live_speed(600, 30, prior=10) == pytest.approx(610 / 31)  # mostly the measured 20x
    assert 10 < live_speed(30, 1.5, prior=10) < 20


def test_expected_speed_prefers_measured_history():
    assert expected_speed("tiny.en", {"tiny.en": 14.0}) == 14.0
    assert expected_speed("tiny.en", {}) == default_speed("tiny.en") == 8.0
    assert default_speed("/models/whisper-large-v3") == 0.15
    assert default_speed("mystery") == 1.0


def test_queue_estimate_simulates_the_streams():
    speeds = {"tiny.en": 10.0}
    running = job("a", JobStatus.RUNNING, duration=100, processed=50, speed=5.0)  # 10 s left
    first = job("a", duration=100)  # 10 s at 10x
    second = job("b", duration=110)  # 11 s
    paused = job("c", JobStatus.PAUSED)
    one_stream = estimate_queue([running, first, second, paused], speeds, streams=1, now=1000.0)
    assert one_stream[running.id] == (pytest.approx(10), pytest.approx(1010))
    assert one_stream[first.id][0] == pytest.approx(20)
    assert one_stream[second.id][0] == pytest.approx(31)
    assert paused.id not in one_stream
    two_streams = estimate_queue([running, first, second], speeds, streams=2, now=0.0)
    assert two_streams[first.id][0] == pytest.approx(10)  # starts at once on the free stream
    assert two_streams[second.id][0] == pytest.approx(21)  # after the running job, at 10 s


def test_queue_estimate_spreads_a_long_job_over_the_streams():
    long = job("a", duration=3600)
    (eta, _), = estimate_queue([long], {"tiny.en": 10.0}, streams=2, now=0.0).values()
    assert eta == pytest.approx(180)  # 360 s of work on two streams
    (eta, _), = estimate_queue([long], {"tiny.en": 10.0}, streams=1, now=0.0).values()
    assert eta == pytest.approx(360)


@pytest.mark.parametrize(
    "duration, streams, expected",
    [(30, 2, 1), (119, 2, 1), (150, 2, 2), (600, 2, 4), (3600, 2, 12), (3600, 1, 1), (200, 8, 3), (10**6, 4, 200)],
)
def test_part_count(duration, streams, expected):
    assert part_count(duration, streams) == expected


def test_cuts_fall_in_the_quietest_moment():
    rate = 16000
    samples = np.random.default_rng(1).normal(0, 0.1, rate * 10).astype(np.float32)
    samples[int(6.3 * rate) : int(6.7 * rate)] *= 0.001  # a short pause
    assert quietest_moment(samples, 100.0) == pytest.approx(106.5, abs=0.15)


def test_streams_are_shared_between_users_and_parts_finish_jobs_in_order():
    limits = Limits(workers=2, max_concurrent_per_user=1)
    long_job = job("ann", JobStatus.RUNNING)
    ann_next, bob_clip = job("ann"), job("bob")
    # ann's long job holds one stream; bob has none: bob's job takes the free stream
    assert choose_work([ann_next, bob_clip], [long_job], [("ann", long_job.id, 0)], [long_job], limits) is bob_clip
    # with bob served, ann's running job gets its next part before her queued job
    running = [("ann", long_job.id, 0)]
    assert choose_work([ann_next], [long_job], running, [long_job], Limits(workers=3)) is long_job
    # ann may not start a second job while at her running-job limit
    assert choose_work([ann_next], [], running, [long_job], limits) is None
    # no free stream
    assert choose_work([bob_clip], [], running + [("ann", long_job.id, 1)], [long_job], limits) is None
