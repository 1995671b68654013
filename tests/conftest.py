"""Shared fixtures: a real Redis (own database, own key prefix) and settings for the bot.

Tests never flush: each test gets a unique key prefix and deletes only keys carrying it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from bot.localredis import LocalRedis, ensure_redis

TEST_DB = int(os.environ.get("VOICEBOT_TEST_REDIS_DB", "11"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    server = ensure_redis(os.environ.get("REDIS_URL"))
    yield server
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    return f"vbtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> str:
    base = redis_server.url.rsplit("/", 1)[0]
    return f"{base}/{TEST_DB}"


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    keys = [key async for key in client.scan_iter(match=f"*{redis_prefix}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()
