"""The review-tracking queue: arq's Redis-backed jobs, one per approval request.

A request has at most one queue job at a time (job id ``{prefix}track:{id}``): arq refuses
a second job with the same id, so double clicks, Slack retries, several web processes and
the review sweep enqueue it once. The job reschedules itself with ``arq.Retry`` while there
is something to wait for (a fault's backoff, the model training), and arq re-runs it after a
worker dies mid-step. While the job is under review the request has no queue job: the review
sweep (one self-rescheduling job per queue) watches it and enqueues its next step the moment
the review is seen to end.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.redis import CONNECT_TIMEOUT, OPERATION_TIMEOUT

TRACK_FUNCTION = "track_request"
SWEEP_FUNCTION = "sweep_reviews"
# arq drops a job whose key has expired; the key is set once, at enqueue, and a job lives
# through review and training, so it gets weeks (the worker's sweep re-enqueues it after).
JOB_EXPIRES = timedelta(days=30)


class Enqueuer(Protocol):
    async def enqueue_tracking(self, request_id: str, *, defer: float | None = None) -> bool: ...


def track_job_id(prefix: str, request_id: str) -> str:
    return f"{prefix}track:{request_id}"


def redis_settings(url: str, *, ride_out_blips: bool = False) -> RedisSettings:
    """arq's connection settings. ``ride_out_blips`` (the worker's pool): a command that
    meets a dead connection is sent again, up to three times within about two seconds, so a
    blip does not end the worker's arq Worker. That is safe for what arq sends: redis-py
    never re-sends a transaction under WATCH, and the others set, delete or count tries.
    The web's pool fails at once instead: a Slack acknowledgement cannot wait."""
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    settings.conn_retries = 3
    if ride_out_blips:
        settings.retry = Retry(EqualJitterBackoff(cap=1.0, base=0.2), 3)
        settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    return settings


class ArqQueue:
    """Enqueues tracking jobs on the worker's arq queue."""

    def __init__(self, pool: ArqRedis, *, prefix: str, queue_name: str) -> None:
        self._pool = pool
        self._prefix = prefix
        self.queue_name = queue_name

    @classmethod
    async def connect(cls, url: str, *, prefix: str, queue_name: str) -> ArqQueue:
        """Connects on first use, so a process can start while Redis is away (enqueueing
        fails until it is back), with the short timeouts of the bot's own client."""
        connections = ConnectionPool.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=OPERATION_TIMEOUT
        )
        pool = ArqRedis(connections, default_queue_name=queue_name)
        # As ``Redis.from_pool``: the client owns the pool and closes it with itself.
        pool.auto_close_connection_pool = True
        return cls(pool, prefix=prefix, queue_name=queue_name)

    async def enqueue_tracking(self, request_id: str, *, defer: float | None = None) -> bool:
        job = await self._pool.enqueue_job(
            TRACK_FUNCTION,
            request_id,
            _job_id=track_job_id(self._prefix, request_id),
            _queue_name=self.queue_name,
            _defer_by=defer,
            _expires=JOB_EXPIRES,
        )
        return job is not None

    async def enqueue_sweep(self) -> bool:
        """The one review sweep of this queue (it reschedules itself)."""
        job = await self._pool.enqueue_job(
            SWEEP_FUNCTION, _job_id=f"{self._prefix}sweep", _queue_name=self.queue_name
        )
        return job is not None

    async def aclose(self) -> None:
        await self._pool.aclose()
