"""Redis goes away for a while under running processes and comes back: the web app and the
worker (``python -m bot serve`` and ``python -m bot worker``, each a process of its own)
keep running, ``/readyz`` says not ready while Redis is down, and a request asked for
before the outage and approved after it is submitted exactly once. Processes started while
Redis is down wait for it the same way.

The processes get a private redis-server that writes every change to an append-only file;
it is killed (as in a crash) and started again on the same port and directory, so it comes
back with its data, as a real Redis does.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.approvals import ApprovalStore
from sandbox.localredis import LocalRedis, start_redis_server
from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from sandbox.slack.state import Message
from tests.conftest import (
    ADMIN,
    APPROVE,
    APPROVER,
    CHANNEL,
    START_DEADLINE,
    STORE_DOWN,
    Processes,
    WorkerProcess,
    grant_flow_roles,
    not_ready,
    ready,
    replies_with,
    say,
    stops_cleanly,
    submit_job,
    wait_until,
)

OUTAGE = 5.0
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@dataclass
class RestartableRedis:
    """A private redis-server whose data outlives the process."""

    data_dir: Path
    server: LocalRedis

    @property
    def url(self) -> str:
        return self.server.url

    def crash(self) -> None:
        self.server.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.server = start_redis_server(self.server.port, data_dir=self.data_dir)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    data_dir = tmp_path / "redis"
    data_dir.mkdir()
    redis = RestartableRedis(data_dir, start_redis_server(data_dir=data_dir))
    yield redis
    redis.server.stop()


@pytest.fixture
def bot_env(bot_env: dict[str, str], private_redis: RestartableRedis) -> dict[str, str]:
    return {**bot_env, "REDIS_URL": private_redis.url}


async def card_recorded(url: str, prefix: str, job: str) -> bool:
    client: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        store = ApprovalStore(client, prefix, ttl_seconds=60, allow_self_approval=False)
        return any(request.card_ts for request in await store.for_job(job))
    finally:
        await client.aclose()


async def told_store_is_down(driver: SlackDriver, slack: LocalSlack) -> None:
    reply = await say(driver, slack, "roles", user=ADMIN)
    assert STORE_DOWN in reply, reply


async def approved_and_passed(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, card: Message, job: str
) -> None:
    await driver.block_action(APPROVER, CHANNEL, card.ts, APPROVE)
    await replies_with(slack, card, "passed review", within=30)
    assert metastudio.commit_count(job) == 1


async def test_processes_outlive_a_redis_outage_and_the_next_approval_is_submitted(
    start_processes: Callable[[], Awaitable[Processes]],
    private_redis: RestartableRedis,
    redis_prefix: str,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
) -> None:
    processes = await start_processes()
    await wait_until(lambda: ready(processes.web_url), within=START_DEADLINE)
    driver = SlackDriver(slack, f"{processes.web_url}/slack/events", "local-signing-secret")
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    card = await submit_job(driver, slack, job)
    # The card is posted first and its place recorded after: crash once it is recorded.
    await wait_until(lambda: card_recorded(private_redis.url, redis_prefix, job))

    private_redis.crash()
    down_since = time.monotonic()
    assert await not_ready(processes.web_url)
    await told_store_is_down(driver, slack)
    await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_since)))
    assert await not_ready(processes.web_url)
    assert processes.running(), processes.report()

    private_redis.restart()
    await wait_until(lambda: ready(processes.web_url), within=10, interval=0.2)
    await approved_and_passed(driver, slack, metastudio, card, job)
    assert processes.running(), processes.report()
    await stops_cleanly(processes.worker, processes)


async def test_processes_started_while_redis_is_down_wait_for_it(
    start_processes: Callable[[], Awaitable[Processes]],
    private_redis: RestartableRedis,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
) -> None:
    private_redis.crash()
    down_since = time.monotonic()
    processes = await start_processes()
    driver = SlackDriver(slack, f"{processes.web_url}/slack/events", "local-signing-secret")
    assert await not_ready(processes.web_url)
    await told_store_is_down(driver, slack)
    await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_since)))
    assert processes.running(), processes.report()

    private_redis.restart()
    await wait_until(lambda: ready(processes.web_url), within=10, interval=0.2)
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    card = await submit_job(driver, slack, job)
    await approved_and_passed(driver, slack, metastudio, card, job)
    assert processes.running(), processes.report()
    await stops_cleanly(processes.worker, processes)


async def test_worker_stops_on_sigterm_while_redis_is_down(
    bot_env: dict[str, str], private_redis: RestartableRedis, tmp_path: Path
) -> None:
    private_redis.crash()
    log = tmp_path / "worker.log"
    worker = WorkerProcess(bot_env, log=log).start()
    try:
        await wait_until(lambda: "starting a new worker" in log.read_text(), within=30)
        assert worker.process is not None
        worker.process.terminate()
        assert worker.process.wait(30) == 0, log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        worker.stop()
