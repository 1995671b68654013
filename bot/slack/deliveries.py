"""Each Slack delivery does its work once, however often it arrives.

Slack redelivers an event it thinks was lost (``X-Slack-Retry-Num``), and anyone holding a
signed request can send it again within the 5-minute signature window. Every slash command
and interaction carries a ``trigger_id`` that Slack never reuses, every event an
``event_id``: right after the ack, the first delivery of one takes a key in Redis and does
its work; later ones stop there. Checking after the ack keeps Redis off the ack's path (a
replay is acknowledged like the original, which changes nothing). Approvals are atomic
anyway; this keeps a replayed ``/voice submit`` from posting a second card or spending the
requester's rate limit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from bot.redis import UNAVAILABLE_ERRORS, Keys

log = logging.getLogger("bot.slack")

# Longer than Slack's signature window (300 s), past which a replay is refused anyway.
SEEN_TTL = 600


def delivery_id(body: Mapping[str, Any]) -> str | None:
    """What names a delivery: its event id or trigger id (None for option loads, which
    have neither and change nothing)."""
    event_id = body.get("event_id")
    if isinstance(event_id, str) and event_id:
        return "e:" + event_id
    trigger_id = body.get("trigger_id")
    if isinstance(trigger_id, str) and trigger_id:
        return "t:" + trigger_id
    return None


class Deliveries:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._keys = Keys(prefix)

    async def first(self, delivery: str) -> bool:
        """True for the first delivery of ``delivery``. With Redis down it can't tell and
        lets the delivery through: the work it leads to needs Redis too and says so."""
        try:
            taken = await self._redis.set(self._keys("seen", delivery), "1", nx=True, ex=SEEN_TTL)
        except UNAVAILABLE_ERRORS:
            return True
        return bool(taken)

    async def first_of(self, body: Mapping[str, Any]) -> bool:
        """True unless ``body`` is a redelivery of one already seen (call it after the ack,
        before any work)."""
        delivery = delivery_id(body)
        if delivery is None or await self.first(delivery):
            return True
        log.info("dropped a redelivery (%s)", delivery[:2])
        return False
