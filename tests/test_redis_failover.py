"""The bot keeps working through a Redis failover, and submits each job once across it.

Real processes throughout: a primary, two replicas and three sentinels (``sandbox.redis_sentinel``),
the web app and the worker (``python -m bot serve`` and ``worker``) configured with
``REDIS_SENTINELS`` only (``REDIS_URL`` names a port where nothing listens), and
``VOICEBOT_REDIS_MIN_REPLICAS=1``: a submit claim and a decision are acted on only once a
replica holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis import exceptions as redis_errors
from redis.exceptions import RedisError

from bot.approvals import ApprovalRequest, ApprovalStatus, ApprovalStore
from bot.redis import StoreUnavailable
from bot.redis_ha import RedisTarget
from bot.settings import Settings
from sandbox.metastudio import LocalMetaStudio
from sandbox.redis_sentinel import SentinelGroup
from sandbox.slack import LocalSlack, SlackDriver
from sandbox.slack.state import Message
from tests.conftest import (
    ADMIN,
    APPROVE,
    APPROVER,
    CHANNEL,
    OUTSIDER,
    START_DEADLINE,
    STORE_DOWN,
    Processes,
    WorkerProcess,
    block_text,
    card_of,
    ephemeral_texts,
    grant_flow_roles,
    has_buttons,
    not_ready,
    nothing_more_happens,
    ready,
    replies_with,
    say,
    submit_job,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
FAILOVER_DEADLINE = 30.0
# Longer than the worker's retries take to come round (its backoff starts below a second).
NO_POST_WAIT = 3.0
# The worker's resume of requests without a queue job runs every 5 s here (a minute by
# default).
RESUME_DEADLINE = 40.0
NOT_CONFIRMED = "couldn't confirm your decision"


@pytest.fixture
def sentinels(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SentinelGroup]:
    """The group; a test marked ``with_passwords`` gets data nodes and sentinels that ask
    for a password."""
    passwords: dict[str, str] = getattr(request, "param", {})
    group = SentinelGroup.start(
        tmp_path / "redis",
        password=passwords.get("password"),
        sentinel_password=passwords.get("sentinel_password"),
    )
    yield group
    group.stop()


@pytest.fixture
def bot_env(bot_env: dict[str, str], sentinels: SentinelGroup) -> dict[str, str]:
    return {
        **bot_env,
        **sentinels.env(),
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "VOICEBOT_REDIS_MIN_REPLICAS": "1",
        "VOICEBOT_RESUME_INTERVAL": "5",
    }


@pytest.fixture
async def store(bot_env: dict[str, str]) -> AsyncIterator[ApprovalStore]:
    """The requests as the current primary has them (found through the sentinels)."""
    settings = Settings(**bot_env)  # type: ignore[arg-type]
    client = RedisTarget.from_settings(settings).client()
    yield ApprovalStore(client, settings.redis_prefix, ttl_seconds=60, allow_self_approval=False)
    await client.aclose()


def posts_for(metastudio: LocalMetaStudio, job: str) -> int:
    """Submit POSTs MetaStudio received for ``job``, whether it applied them or not."""
    return sum(
        1 for r in metastudio.requests if r.method == "POST" and r.path.endswith(f"/jobs/{job}")
    )


async def request_for(store: ApprovalStore, job: str) -> ApprovalRequest | None:
    try:
        requests = await store.for_job(job)
    except (StoreUnavailable, RedisError):  # the primary is moving: ask again
        return None
    return requests[-1] if requests else None


async def current(store: ApprovalStore, job: str) -> ApprovalRequest:
    """The job's request as the primary has it, once a primary answers."""
    found: list[ApprovalRequest] = []

    async def read() -> bool:
        request = await request_for(store, job)
        if request is not None:
            found.append(request)
        return request is not None

    await wait_until(read, within=FAILOVER_DEADLINE, interval=0.2)
    return found[-1]


async def status_is(store: ApprovalStore, job: str, *statuses: ApprovalStatus) -> bool:
    request = await request_for(store, job)
    return request is not None and request.status in statuses


async def card_recorded(store: ApprovalStore, job: str) -> bool:
    request = await request_for(store, job)
    return request is not None and bool(request.card_ts)


async def started(
    start_processes: Callable[[], Awaitable[Processes]], slack: LocalSlack
) -> tuple[Processes, SlackDriver]:
    processes = await start_processes()
    await wait_until(lambda: ready(processes.web_url), within=START_DEADLINE)
    driver = SlackDriver(slack, f"{processes.web_url}/slack/events", "local-signing-secret")
    await grant_flow_roles(driver)
    return processes, driver


async def opened(driver: SlackDriver, slack: LocalSlack, store: ApprovalStore, job: str) -> Message:
    card = await submit_job(driver, slack, job)
    await wait_until(lambda: card_recorded(store, job))
    return card


async def test_approval_after_a_failover_is_submitted_once(
    start_processes: Callable[[], Awaitable[Processes]],
    sentinels: SentinelGroup,
    store: ApprovalStore,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
) -> None:
    processes, driver = await started(start_processes, slack)
    job = metastudio.seed_job(voice_name="narrator")
    card = await opened(driver, slack, store, job)

    # Replicas that do not answer cannot be promoted: no primary is known for a while.
    for replica in sentinels.replicas:
        replica.pause()
    sentinels.primary.kill()
    await wait_until(sentinels.primary_down, within=FAILOVER_DEADLINE)
    assert await not_ready(processes.web_url)
    reply = await say(driver, slack, "roles", user=ADMIN)
    assert STORE_DOWN in reply, reply
    assert processes.running(), processes.report()

    for replica in sentinels.replicas:
        replica.resume()
    await wait_until(sentinels.failed_over, within=FAILOVER_DEADLINE, interval=0.2)
    await wait_until(lambda: ready(processes.web_url), within=FAILOVER_DEADLINE, interval=0.2)
    await driver.block_action(APPROVER, CHANNEL, card.ts, APPROVE)
    await replies_with(slack, card, "passed review", within=30)
    await nothing_more_happens()
    assert posts_for(metastudio, job) == 1
    assert metastudio.commit_count(job) == 1
    assert processes.running(), processes.report()


@pytest.mark.timeout(300)
async def test_primary_killed_during_twenty_approvals_submits_each_job_at_most_once(
    start_processes: Callable[[], Awaitable[Processes]],
    sentinels: SentinelGroup,
    store: ApprovalStore,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
) -> None:
    processes, driver = await started(start_processes, slack)
    jobs = [metastudio.seed_job(voice_name=f"narrator{n}") for n in range(20)]
    cards = [await opened(driver, slack, store, job) for job in jobs]

    clicks = asyncio.gather(
        *(driver.block_action(APPROVER, CHANNEL, card.ts, APPROVE) for card in cards),
        return_exceptions=True,
    )
    await wait_until(lambda: any(posts_for(metastudio, job) for job in jobs), within=30)
    sentinels.primary.kill()
    await clicks
    await wait_until(sentinels.failed_over, within=FAILOVER_DEADLINE, interval=0.2)
    await wait_until(lambda: ready(processes.web_url), within=FAILOVER_DEADLINE, interval=0.2)

    assert all(posts_for(metastudio, job) <= 1 for job in jobs)
    for job in jobs:
        request = await current(store, job)
        if request.status != ApprovalStatus.PENDING:
            continue
        # Its decision was lost or never made. Still decidable: the card kept its buttons,
        # and a click decides it.
        card = card_of(slack, job)
        assert card is not None
        assert has_buttons(card), job
        await driver.block_action(APPROVER, CHANNEL, card.ts, APPROVE)
    # A queue job written just before the failover may be lost with it: the worker's
    # periodic resume (every 5 s here) revives its request, hence the longer wait.
    with contextlib.suppress(AssertionError):
        await wait_until(
            lambda: all(metastudio.commit_count(job) == 1 for job in jobs),
            within=RESUME_DEADLINE,
            interval=0.5,
        )
    await nothing_more_happens(1.0)
    where = {
        job: str((await current(store, job)).status)
        for job in jobs
        if posts_for(metastudio, job) != 1
    }
    assert [posts_for(metastudio, job) for job in jobs] == [1] * len(jobs), where
    assert processes.running(), processes.report()


async def test_a_claim_no_replica_confirms_is_not_submitted_until_one_does(
    start_processes: Callable[[], Awaitable[Processes]],
    sentinels: SentinelGroup,
    store: ApprovalStore,
    bot_env: dict[str, str],
    tmp_path: Path,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
) -> None:
    processes, driver = await started(start_processes, slack)
    job = metastudio.seed_job(voice_name="narrator")
    card = await opened(driver, slack, store, job)
    # Approve with no worker running, then let the replicas stop answering.
    processes.worker.stop()
    await driver.block_action(APPROVER, CHANNEL, card.ts, APPROVE)
    await wait_until(lambda: status_is(store, job, ApprovalStatus.APPROVED))
    for replica in sentinels.replicas:
        replica.pause()

    log = tmp_path / "worker2.log"
    worker = WorkerProcess(bot_env, log=log).start()
    try:
        await wait_until(lambda: status_is(store, job, ApprovalStatus.SUBMITTING), within=20)
        await asyncio.sleep(NO_POST_WAIT)
        assert posts_for(metastudio, job) == 0
        assert "NotReplicated" in log.read_text()
        assert worker.exit_code is None, log.read_text()

        for replica in sentinels.replicas:
            replica.resume()
        await replies_with(slack, card, "passed review", within=30)
        await nothing_more_happens()
        assert posts_for(metastudio, job) == 1
        assert worker.exit_code is None, log.read_text()
    finally:
        worker.stop()


def refuses_writes(group: SentinelGroup) -> bool:
    try:
        with group.primary.client() as client:
            client.set("voicebot-probe", "1", px=1000)
    except redis_errors.ResponseError as error:
        return "Not enough good replicas" in str(error)
    return False


async def test_a_primary_refusing_writes_for_want_of_replicas_counts_as_down(
    start_processes: Callable[[], Awaitable[Processes]],
    sentinels: SentinelGroup,
    store: ApprovalStore,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
) -> None:
    """``min-replicas-to-write`` (the README's advice) on a primary whose replicas stopped
    answering: it refuses writes with NOREPLICAS, and the bot says the store is unavailable,
    as when Redis is down, and carries on once the replicas are back."""
    processes, driver = await started(start_processes, slack)
    with sentinels.primary.client() as client:
        client.config_set("min-replicas-max-lag", 1)
        client.config_set("min-replicas-to-write", 1)
    for replica in sentinels.replicas:
        replica.pause()
    await wait_until(lambda: refuses_writes(sentinels), within=10)

    reply = await say(driver, slack, f"grant <@{OUTSIDER}> requester", user=ADMIN)
    assert STORE_DOWN in reply, reply
    # Long enough for the worker's loop to have written (and met NOREPLICAS) several times.
    await asyncio.sleep(NO_POST_WAIT)
    assert processes.running(), processes.report()

    for replica in sentinels.replicas:
        replica.resume()
    await wait_until(lambda: not refuses_writes(sentinels), within=10)
    job = metastudio.seed_job(voice_name="narrator")
    card = await opened(driver, slack, store, job)
    await driver.block_action(APPROVER, CHANNEL, card.ts, APPROVE)
    await replies_with(slack, card, "passed review", within=30)
    assert posts_for(metastudio, job) == 1
    assert processes.running(), processes.report()


async def test_a_decision_no_replica_confirms_is_not_shown_as_approved(
    start_processes: Callable[[], Awaitable[Processes]],
    sentinels: SentinelGroup,
    store: ApprovalStore,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
) -> None:
    processes, driver = await started(start_processes, slack)
    job = metastudio.seed_job(voice_name="narrator")
    card = await opened(driver, slack, store, job)
    for replica in sentinels.replicas:
        replica.pause()

    await driver.block_action(APPROVER, CHANNEL, card.ts, APPROVE)
    await wait_until(
        lambda: any(NOT_CONFIRMED in text for text in ephemeral_texts(slack, APPROVER)), within=10
    )
    await asyncio.sleep(NO_POST_WAIT)
    shown = card_of(slack, job)
    assert shown is not None
    assert has_buttons(shown), "the card still asks for a decision"
    assert "Approved" not in block_text(shown)
    assert posts_for(metastudio, job) == 0

    for replica in sentinels.replicas:
        replica.resume()
    await replies_with(slack, card, "passed review", within=30)
    assert posts_for(metastudio, job) == 1
    assert processes.running(), processes.report()


@pytest.mark.parametrize(
    "sentinels",
    [{"password": "data-node-password", "sentinel_password": "sentinel-password"}],
    indirect=True,
    ids=["passwords"],
)
async def test_with_passwords_a_failover_is_followed_and_the_job_submitted_once(
    start_processes: Callable[[], Awaitable[Processes]],
    sentinels: SentinelGroup,
    store: ApprovalStore,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
) -> None:
    """REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD reach every client: the web app's, the
    queue's and the worker's, before and after the failover."""
    processes, driver = await started(start_processes, slack)
    job = metastudio.seed_job(voice_name="narrator")
    card = await opened(driver, slack, store, job)

    sentinels.primary.kill()
    await wait_until(sentinels.failed_over, within=FAILOVER_DEADLINE, interval=0.2)
    await wait_until(lambda: ready(processes.web_url), within=FAILOVER_DEADLINE, interval=0.2)
    await driver.block_action(APPROVER, CHANNEL, card.ts, APPROVE)
    await replies_with(slack, card, "passed review", within=30)
    await nothing_more_happens()
    assert posts_for(metastudio, job) == 1
    assert processes.running(), processes.report()
    for log in processes.logs:
        assert "data-node-password" not in log.read_text()
        assert "sentinel-password" not in log.read_text()
