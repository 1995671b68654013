"""When and how long to wait before trying a MetaStudio call again.

Capped exponential backoff with full jitter (delay drawn uniformly from
``[0, min(cap, base * 2**attempt)]``) so that many workers failing together do not retry in
step; a 429's ``Retry-After`` takes precedence. ``sleep`` and ``random`` are injectable so
tests run without real waiting and with a fixed draw.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from bot.backoff import backoff
from bot.metastudio.errors import MetaStudioError, ServerError, Throttled, TransportError

T = TypeVar("T")

logger = logging.getLogger("bot.metastudio")

Sleep = Callable[[float], Awaitable[None]]


def is_retryable(error: MetaStudioError) -> bool:
    """Errors worth another try for a call that is safe to repeat (a read)."""
    return isinstance(error, TransportError | ServerError | Throttled)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` counts every try, the first included; ``attempts=1`` never retries.

    A ``Retry-After`` longer than ``max_retry_after`` is not waited out in-process: the
    error is raised so the caller can reschedule instead of holding a worker.
    """

    attempts: int = 4
    base: float = 0.2
    cap: float = 5.0
    jitter: Literal["full", "none"] = "full"
    max_retry_after: float = 30.0
    sleep: Sleep = field(default=asyncio.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")

    def backoff(self, attempt: int) -> float:
        """Delay after the ``attempt``-th failure (0-based)."""
        return backoff(attempt, base=self.base, cap=self.cap, jitter=self.jitter, draw=self.random)

    def delay(self, attempt: int, error: MetaStudioError) -> float | None:
        """Seconds to wait before the next try, or None when no further try should be made."""
        if attempt + 1 >= self.attempts:
            return None
        if isinstance(error, Throttled) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            return error.retry_after
        return self.backoff(attempt)

    async def run(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        retry_if: Callable[[MetaStudioError], bool] = is_retryable,
        what: str = "call",
    ) -> T:
        """Run ``operation`` until it succeeds, fails for good, or the tries run out."""
        attempt = 0
        while True:
            try:
                return await operation()
            except MetaStudioError as error:
                wait = self.delay(attempt, error) if retry_if(error) else None
                if wait is None:
                    raise
                logger.warning(
                    "metastudio %s failed (%s), retry %d/%d in %.2fs",
                    what,
                    type(error).__name__,
                    attempt + 1,
                    self.attempts - 1,
                    wait,
                )
                await self.sleep(wait)
                attempt += 1
