"""One rule for waiting before a try again: capped exponential backoff with jitter.

The ceiling after ``attempt`` failures is ``min(cap, base * 2**attempt)``. Jitter spreads
the processes that failed together so they do not come back in step: ``full`` draws from
``[0, ceiling]`` (for calls retried within one process), ``equal`` from ``[ceiling / 2,
ceiling]`` (for rescheduled work, which should not come back at once), ``none`` waits the
ceiling. ``draw`` is injectable (a seeded ``random.Random().random``) so tests are exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

Jitter = Literal["full", "equal", "none"]
# Past this the ceiling is the cap anyway; it keeps 2**attempt a small number.
MAX_DOUBLINGS = 30


def backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: Jitter = "equal",
    draw: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after the ``attempt``-th failure (0-based)."""
    ceiling = min(cap, base * float(2 ** min(max(attempt, 0), MAX_DOUBLINGS)))
    if jitter == "none":
        return ceiling
    low = 0.0 if jitter == "full" else ceiling / 2
    return low + (ceiling - low) * draw()
