"""Redis goes away and comes back: `/voice` still acks in time, says the permission store is
unavailable (doing nothing), and works again on its own once Redis is back on the same port.

The bot gets a private redis-server here, so stopping it touches no other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from sandbox.localredis import LocalRedis, start_redis_server
from sandbox.metastudio import LocalMetaStudio
from sandbox.serve import ServerThread
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import ADMIN, CHANNEL, OUTSIDER, REQUESTER, STORE_DOWN, answer, grant, say


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture
def bot_env(bot_env: dict[str, str], private_redis: LocalRedis) -> dict[str, str]:
    return {**bot_env, "REDIS_URL": private_redis.url}


async def told_store_is_down(driver: SlackDriver, slack: LocalSlack, text: str, user: str) -> str:
    sent = time.monotonic()
    result = await driver.slash_command("/voice", text, user=user, channel=CHANNEL)
    reply = await answer(slack, result, within=3.0)
    assert time.monotonic() - sent < 3.0
    assert STORE_DOWN in reply, (text, reply)
    return reply


async def test_redis_down_then_up(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    bot_web: ServerThread,
    private_redis: LocalRedis,
) -> None:
    job = metastudio.seed_job(voice_name="narrator")
    await grant(driver, slack, REQUESTER, "requester")
    port = int(private_redis.url.rsplit(":", 1)[1].split("/")[0])

    private_redis.stop()
    async with httpx.AsyncClient(base_url=bot_web.url) as http:
        assert (await http.get("/readyz")).status_code == 503
        await told_store_is_down(driver, slack, f"grant <@{OUTSIDER}> approver", ADMIN)
        await told_store_is_down(driver, slack, f"revoke <@{REQUESTER}> requester", ADMIN)
        await told_store_is_down(driver, slack, "roles", ADMIN)
        await told_store_is_down(driver, slack, f"submit {job} voice_name=v", REQUESTER)
        await told_store_is_down(driver, slack, "submit", REQUESTER)
        usage = await told_store_is_down(driver, slack, "help", REQUESTER)
        assert "/voice status" in usage
        unknown = await told_store_is_down(driver, slack, "frobnicate", REQUESTER)
        assert "Unknown subcommand `frobnicate`" in unknown
        assert slack.views == []
        assert slack.messages(CHANNEL) == []

        restarted = start_redis_server(port=port)
        try:
            assert (await http.get("/readyz")).status_code == 200
            # The restarted server is empty: the grant made before the outage is gone.
            await grant(driver, slack, REQUESTER, "requester")
            reply = await say(driver, slack, f"submit {job} voice_name=v", user=REQUESTER)
            assert "Approval requested" in reply
            assert len(slack.messages(CHANNEL)) == 1
        finally:
            restarted.stop()
