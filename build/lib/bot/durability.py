"""Confirming that a write reached the replicas before the bot acts on it.

Redis replicates asynchronously: a failover can lose the last writes the old primary
acknowledged. Two writes must not be lost once acted on: a submit claim (another worker
would submit the job again) and a decision (the card would say "Approved" for a request the
new primary still shows as pending). After each, the bot sends ``WAIT`` on the connection
that made the write: Redis answers how many replicas hold everything that connection wrote.
Fewer than ``VOICEBOT_REDIS_MIN_REPLICAS`` within ``VOICEBOT_REDIS_REPLICA_TIMEOUT`` raises
``NotReplicated`` and the caller does not act (the write may still be on the primary, and is
resumed from there). With ``VOICEBOT_REDIS_MIN_REPLICAS=0`` (a single Redis) nothing waits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.redis import StoreUnavailable


class NotReplicated(StoreUnavailable):
    """The write was made on the primary, but too few replicas confirmed it in time."""

    def __init__(self, acknowledged: int = 0, wanted: int = 1) -> None:
        super().__init__(f"{acknowledged} of {wanted} replica(s) confirmed the write")
        self.acknowledged = acknowledged
        self.wanted = wanted


@dataclass(frozen=True)
class ReplicaWait:
    """How many replicas must confirm a write, and for how long to wait for them."""

    replicas: int = 0
    timeout: float = 0.5

    @property
    def enabled(self) -> bool:
        return self.replicas > 0

    @asynccontextmanager
    async def pinned(self, redis: Redis) -> AsyncIterator[Redis]:
        """A client bound to one pooled connection: ``WAIT`` counts only the writes made on
        its own connection, so the write and its ``WAIT`` must share one."""
        async with redis.client() as pinned:
            yield pinned

    async def confirm(self, pinned: Redis) -> None:
        """``NotReplicated`` unless ``replicas`` replicas hold every write made on ``pinned``."""
        acknowledged = int(await pinned.wait(self.replicas, max(1, round(self.timeout * 1000))))
        if acknowledged < self.replicas:
            raise NotReplicated(acknowledged, self.replicas)
