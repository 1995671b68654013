"""The one backoff rule every retry and reschedule uses."""

from __future__ import annotations

import random

from bot.backoff import backoff
from bot.metastudio.retry import RetryPolicy
from bot.tracking import PollPolicy


def test_the_ceiling_doubles_up_to_the_cap_and_jitter_stays_under_it() -> None:
    assert [backoff(n, base=0.5, cap=5.0, jitter="none") for n in range(6)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        5.0,
        5.0,
    ]
    assert backoff(10_000, base=1.0, cap=7.0, jitter="none") == 7.0
    rng = random.Random(3)
    for attempt in range(12):
        ceiling = min(5.0, 0.5 * 2**attempt)
        full = backoff(attempt, base=0.5, cap=5.0, jitter="full", draw=rng.random)
        equal = backoff(attempt, base=0.5, cap=5.0, jitter="equal", draw=rng.random)
        assert 0.0 <= full <= ceiling
        assert ceiling / 2 <= equal <= ceiling
    assert backoff(2, base=1.0, cap=60.0, draw=lambda: 0.0) == 2.0
    assert backoff(2, base=1.0, cap=60.0, draw=lambda: 1.0) == 4.0


def test_the_metastudio_retries_and_the_tracking_faults_follow_it() -> None:
    policy = RetryPolicy(base=0.2, cap=5.0, random=lambda: 0.5)
    assert policy.backoff(3) == backoff(3, base=0.2, cap=5.0, jitter="full", draw=lambda: 0.5)
    assert RetryPolicy(base=0.2, cap=5.0, jitter="none").backoff(3) == 1.6
    poll = PollPolicy(interval=30.0, cap=300.0, training_interval=300.0)
    assert poll.fault_delay(2, random.Random(7)) == backoff(
        2, base=30.0, cap=300.0, draw=random.Random(7).random
    )
