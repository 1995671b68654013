"""The Redis client the bot's services share, how key names are built, and what "down" means.

Timeouts are short on purpose: permission checks and approvals sit on Slack's 3-second
acknowledgement path, so a stalled Redis must fail fast rather than hang a listener.
No automatic command retry is configured: a Lua script or MULTI that ran on the server but
lost its reply must not run twice. A dead pooled connection is replaced when it is next
checked out, so service resumes on its own once Redis is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, DefaultParser

CONNECT_TIMEOUT = 1.0
OPERATION_TIMEOUT = 2.0
HEALTH_CHECK_INTERVAL = 30


class NoReplicasError(redis_errors.ResponseError):
    """A primary configured with ``min-replicas-to-write`` has too few replicas in reach and
    refuses writes (``NOREPLICAS``): as good as down, until its replicas are back."""


class Parser(DefaultParser):  # type: ignore[misc,valid-type]
    """redis-py's reply parser, knowing ``NOREPLICAS`` (it reads it as a plain ResponseError)."""

    EXCEPTION_CLASSES: ClassVar[dict[str, Any]] = {
        **DefaultParser.EXCEPTION_CLASSES,
        "NOREPLICAS": NoReplicasError,
    }


# Errors that mean "Redis is not serving us right now", as opposed to a bug in a command.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    NoReplicasError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.MasterDownError,
)


def redis_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` means Redis was not serving us. A connection lost under ``WATCH``
    surfaces as a WatchError (arq's worker watches a job's key as it takes the job): what
    counts then is the lost connection behind it."""
    if isinstance(error, redis_errors.WatchError):
        # redis-py raises it while handling the connection error, without ``from``.
        error = error.__cause__ or error.__context__
    return isinstance(error, UNAVAILABLE_ERRORS)


class StoreUnavailable(Exception):
    """Redis could not be reached or did not answer in time; nothing was decided."""

    def __init__(self, message: str = "store unavailable") -> None:
        super().__init__(message)


@contextmanager
def unavailable_on_redis_errors(error: type[StoreUnavailable]) -> Iterator[None]:
    """Turn Redis outages into ``error``; the cause stays chained for the logs."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise error() from exc


def connect(
    url: str,
    *,
    socket_connect_timeout: float = CONNECT_TIMEOUT,
    socket_timeout: float = OPERATION_TIMEOUT,
    health_check_interval: int = HEALTH_CHECK_INTERVAL,
    connection_class: type[AbstractConnection] | None = None,
) -> Redis:
    """A ``redis.asyncio`` client for ``url`` that returns ``str`` replies."""
    extra: dict[str, Any] = {"parser_class": Parser}
    if connection_class is not None:
        extra["connection_class"] = connection_class
    client: Redis = Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=socket_connect_timeout,
        socket_timeout=socket_timeout,
        health_check_interval=health_check_interval,
        **extra,
    )
    return client


@dataclass(frozen=True)
class Keys:
    """Builds key names under one prefix: ``Keys("voicebot:")("roles", "T1", "U1")``."""

    prefix: str

    def __call__(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)
