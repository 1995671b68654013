"""Where the bot's Redis primary is: one address (``REDIS_URL``), or whichever server the
Sentinels of ``REDIS_SENTINELS`` name as the primary ``REDIS_SENTINEL_MASTER`` right now.

Every client the bot opens (its own store, the web app's queue, the worker's arq pool) is
made here, so all three follow a failover the same way: redis-py's Sentinel pool asks the
sentinels for the primary on each new connection, drops pooled connections to a primary
that moved, and treats a demoted primary's READONLY as a lost connection. While no primary
is known every command fails with ``MasterNotFoundError`` (a ``ConnectionError``), which
the services already turn into ``StoreUnavailable``.

The database number always comes from ``REDIS_URL``; with Sentinel its host is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.redis import (
    CONNECT_TIMEOUT,
    HEALTH_CHECK_INTERVAL,
    OPERATION_TIMEOUT,
    Parser,
    connect,
)
from bot.settings import ConfigError, Settings


def _secret(settings: Settings, field: str) -> str | None:
    value = getattr(settings, field)
    return None if value is None else str(value.get_secret_value())


def _blip_retry() -> dict[str, Any]:
    """A command that meets a dead connection is sent again, up to three times within about
    two seconds (see ``bot.queue.redis_settings``: only for arq's own commands)."""
    return {
        "retry": Retry(EqualJitterBackoff(cap=1.0, base=0.2), 3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


class _SentinelPool(SentinelConnectionPool):
    """Closes the sentinels' connections with its own: redis-py leaves them open when the
    client is closed. (A primary that moved only drops the idle connections, not these.)"""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:
            for node in self.sentinel_manager.sentinels:
                await node.aclose()


@dataclass(frozen=True)
class RedisTarget:
    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str | None = None
    # Never in a repr: a target may end up in a log line or a traceback.
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisTarget:
        return cls(
            url=settings.redis_url,
            sentinels=tuple(settings.sentinel_addresses),
            master=settings.redis_sentinel_master,
            password=_secret(settings, "redis_password"),
            sentinel_password=_secret(settings, "redis_sentinel_password"),
        )

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def _master(self) -> str:
        # Settings refuse sentinels without a master name; this guards any other caller.
        if self.master is None:
            raise ConfigError("missing setting REDIS_SENTINEL_MASTER")
        return self.master

    @property
    def db(self) -> int:
        path = urlsplit(self.url).path.strip("/")
        return int(path) if path.isdigit() else 0

    def describe(self) -> str:
        """Where the primary is looked for, for logs (never a password)."""
        if self.uses_sentinel:
            hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"primary {self.master!r} of sentinels {hosts}, db {self.db}"
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 6379}, db {self.db}"

    def _sentinel(self) -> Sentinel:
        sentinel_kwargs: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": OPERATION_TIMEOUT,
        }
        if self.sentinel_password is not None:
            sentinel_kwargs["password"] = self.sentinel_password
        return Sentinel(  # type: ignore[no-untyped-call]
            list(self.sentinels), sentinel_kwargs=sentinel_kwargs
        )

    def _primary_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "connection_pool_class": _SentinelPool,
            "parser_class": Parser,
            "db": self.db,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": OPERATION_TIMEOUT,
            "health_check_interval": HEALTH_CHECK_INTERVAL,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs

    def client(self) -> Redis:
        """The bot's own client (``str`` replies, short timeouts, no command retry)."""
        if not self.uses_sentinel:
            if self.password is None or urlsplit(self.url).password:
                return connect(self.url)
            client: Redis = Redis.from_url(
                self.url,
                decode_responses=True,
                password=self.password,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=OPERATION_TIMEOUT,
                health_check_interval=HEALTH_CHECK_INTERVAL,
                parser_class=Parser,
            )
            return client
        primary: Redis = self._sentinel().master_for(
            self._master(), redis_class=Redis, decode_responses=True, **self._primary_kwargs()
        )
        return primary

    def arq_pool(self, queue_name: str, *, ride_out_blips: bool = False) -> ArqRedis:
        """An arq client that connects on first use (a process may start while Redis is
        away). ``ride_out_blips``: the worker's, as ``bot.queue.redis_settings``."""
        extra = _blip_retry() if ride_out_blips else {}
        if self.uses_sentinel:
            pool: ArqRedis = self._sentinel().master_for(
                self._master(), redis_class=ArqRedis, **self._primary_kwargs(), **extra
            )
            pool.default_queue_name = queue_name
            return pool
        if self.password is not None and not urlsplit(self.url).password:
            extra["password"] = self.password
        connections = ConnectionPool.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=OPERATION_TIMEOUT,
            parser_class=Parser,
            **extra,
        )
        pool = ArqRedis(connections, default_queue_name=queue_name)
        # As ``Redis.from_pool``: the client owns the pool and closes it with itself.
        pool.auto_close_connection_pool = True
        return pool

    async def problem(self) -> str | None:
        """What ``check-config`` reports about the sentinels: one that does not answer, or
        one that does not know the primary's name; ``None`` when all know it."""
        if not self.uses_sentinel:
            return None
        sentinel = self._sentinel()
        try:
            for (host, port), node in zip(self.sentinels, sentinel.sentinels, strict=True):
                try:
                    masters = await node.sentinel_masters()  # type: ignore[no-untyped-call]
                except RedisError as error:
                    return (
                        f"invalid setting REDIS_SENTINELS: the sentinel at {host}:{port} "
                        f"does not answer ({type(error).__name__})"
                    )
                if self.master not in masters:
                    return (
                        f"invalid setting REDIS_SENTINEL_MASTER: the sentinel at "
                        f"{host}:{port} monitors no primary named {self.master!r}"
                    )
        finally:
            for node in sentinel.sentinels:
                await node.aclose()
        return None
