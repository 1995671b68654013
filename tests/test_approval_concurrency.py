"""The approval heart under load and faults: many deliveries of one click across two web
processes, Approve racing Reject, MetaStudio and Slack failing, the worker killed mid-review.

Whatever happens, each job is committed at most once, each decision and each outcome is
posted exactly once, and nothing tracked is lost.
"""

from __future__ import annotations

import asyncio
import copy

import pytest
import redis.asyncio as aioredis

from bot.approvals import ApprovalStore
from bot.audit import AuditLog
from bot.slack.notify import due_markers
from sandbox.metastudio import FaultConfig, LocalMetaStudio, ReviewPlan
from sandbox.slack import LocalSlack, SlackDriver
from sandbox.slack.state import Message
from tests.conftest import (
    APPROVE,
    APPROVER,
    CHANNEL,
    REJECT,
    REQUESTER,
    WorkerProcess,
    click_as_shown,
    ephemeral_texts,
    grant_flow_roles,
    grant_role,
    has_buttons,
    nothing_more_happens,
    replies_with,
    submit_job,
    thread_replies,
    wait_until,
    with_env,
)

SECOND_APPROVER = "UAPPROVE02"
DECISIONS = ("Approved by", "Rejected by")
OUTCOMES = ("passed review", "did not pass review", "Submitting job")


def count(slack: LocalSlack, card: Message, needles: tuple[str, ...] | str) -> int:
    wanted = (needles,) if isinstance(needles, str) else needles
    return sum(any(n in text for n in wanted) for text in thread_replies(slack, card))


async def _replies_marked(store: ApprovalStore, job: str) -> bool:
    """Every reply the job's request has come to is marked as posted."""
    (request,) = await store.for_job(job)
    _, done = await store.shown(request.id, due_markers(request))
    return all(done.values())


async def _exists(redis_client: aioredis.Redis, pattern: str) -> bool:
    return bool([key async for key in redis_client.scan_iter(match=pattern)])


@pytest.mark.slow
async def test_hundred_deliveries_of_one_approve_over_two_web_processes(
    driver: SlackDriver,
    second_web: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    card = copy.deepcopy(await submit_job(driver, slack, job))

    webs = (driver, second_web)
    results = await asyncio.gather(
        *(click_as_shown(webs[i % 2], slack, APPROVER, card, APPROVE) for i in range(100))
    )
    assert all(r.acked for r in results)
    await replies_with(slack, card, "passed review")
    await wait_until(lambda: len(ephemeral_texts(slack, APPROVER)) >= 99, within=15)

    await nothing_more_happens()
    assert metastudio.commit_count(job) == 1
    assert count(slack, card, "Approved by") == 1
    assert count(slack, card, "Submitted job") == 1
    assert count(slack, card, "passed review") == 1
    told = ephemeral_texts(slack, APPROVER)
    assert len(told) == 99
    assert all("already decided" in text for text in told)
    events = await AuditLog(redis_client, redis_prefix).read(job_id=job, limit=500)
    assert [e.action for e in events].count("approved") == 1
    assert [e.action for e in events].count("submitted") == 1
    assert "Review passed" in slack.message(CHANNEL, card.ts).text


async def test_approve_and_reject_at_once_make_one_decision(
    driver: SlackDriver,
    second_web: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    await grant_role(driver, SECOND_APPROVER, "approver")
    rounds: list[tuple[str, Message]] = []
    for n in range(10):
        job = metastudio.seed_job(voice_name="narrator")
        card = copy.deepcopy(await submit_job(driver, slack, job))
        await second_web.block_action(SECOND_APPROVER, CHANNEL, card.ts, REJECT)
        modal = await slack.wait_for_async(
            lambda: [
                v
                for v in slack.views
                if v.user == SECOND_APPROVER and v.callback_id == "approval_reject_reason"
            ]
        )
        assert len(modal) == 1
        await asyncio.gather(
            click_as_shown(driver, slack, APPROVER, card, APPROVE),
            second_web.view_submission(
                SECOND_APPROVER, modal[-1].id, {"reason": {"reason": f"round {n}"}}
            ),
        )
        rounds.append((job, card))

    audit = AuditLog(redis_client, redis_prefix)
    for _, card in rounds:
        await wait_until(lambda c=card: count(slack, c, DECISIONS) >= 1)
        approved = count(slack, card, "Approved by") == 1
        if approved:
            await replies_with(slack, card, "Submitted job")
    await nothing_more_happens()
    for job, card in rounds:
        assert count(slack, card, DECISIONS) == 1
        actions = [e.action for e in await audit.read(job_id=job)]
        assert actions.count("approved") + actions.count("rejected") == 1
        approved = "approved" in actions
        assert metastudio.commit_count(job) == (1 if approved else 0)
        assert count(slack, card, "Submitted job") == (1 if approved else 0)
        assert not has_buttons(slack.message(CHANNEL, card.ts))


@pytest.mark.slow
@with_env(VOICEBOT_POLL_MAX_INTERVAL="0.5")
async def test_faults_every_tracked_job_gets_exactly_one_outcome(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    await grant_flow_roles(driver)
    jobs = [metastudio.seed_job(voice_name=f"voice {n}") for n in range(10)]
    cards = [copy.deepcopy(await submit_job(driver, slack, job)) for job in jobs]

    metastudio.faults = FaultConfig(
        error_rate=0.3, lost_reply_rate=0.1, throttle_rate=0.05, seed=20240611
    )
    slack.rate_limit_next("chat.postMessage", retry_after=0, times=8)
    slack.fail_next("chat.update", "internal_error", times=4)
    slack.fail_next("chat.postMessage", "fatal_error", times=3)
    results = await asyncio.gather(
        *(click_as_shown(driver, slack, APPROVER, card, APPROVE) for card in cards)
    )
    assert all(r.acked for r in results)

    await wait_until(lambda: all(count(slack, card, OUTCOMES) >= 1 for card in cards), within=40)
    await nothing_more_happens()
    assert metastudio.stats()["faults"]["error"] > 0
    for job, card in zip(jobs, cards, strict=True):
        replies = thread_replies(slack, card)
        assert count(slack, card, OUTCOMES) == 1, replies
        assert count(slack, card, "Approved by") == 1, replies
        assert count(slack, card, "Submitted job") <= 1, replies
        assert all(text.startswith(f"<@{REQUESTER}>") for text in replies)
        assert metastudio.commit_count(job) <= 1
        if count(slack, card, "Submitted job") == 1:
            assert metastudio.commit_count(job) == 1
            assert count(slack, card, "passed review") == 1
            await wait_until(lambda c=card: "Review passed" in slack.message(CHANNEL, c.ts).text)


async def test_a_submit_whose_answer_never_comes_is_resolved_by_reading(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    """MetaStudio applies every submit but its answer never arrives (the client times out):
    the bot reads the job, sees the submit landed, and never sends a second POST."""
    await grant_flow_roles(driver)
    jobs = [metastudio.seed_job(voice_name=f"voice {n}") for n in range(3)]
    cards = [copy.deepcopy(await submit_job(driver, slack, job)) for job in jobs]
    metastudio.faults = FaultConfig(
        lost_reply_rate=1.0,
        lost_reply_mode="timeout",
        lost_reply_delay=5.0,
        methods=frozenset({"POST"}),
    )
    for card in cards:
        await click_as_shown(driver, slack, APPROVER, card, APPROVE)

    for card in cards:
        await replies_with(slack, card, "passed review")
    for job, card in zip(jobs, cards, strict=True):
        assert metastudio.commit_count(job) == 1
        assert sum(r.method == "POST" and job in r.path for r in metastudio.requests) == 1
        assert count(slack, card, "Submitted job") == 1
    assert metastudio.stats()["faults"]["lost_reply"] == 3


@pytest.mark.slow
@pytest.mark.timeout(120)
@with_env(VOICEBOT_JOB_TIMEOUT="2")
async def test_worker_killed_mid_review_loses_nothing(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    bot_env: dict[str, str],
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """SIGKILL while a step is in flight: arq runs that job again once its in-progress key
    expires (job timeout + 10 s), the others at once; a new worker finishes them all."""
    metastudio.review = ReviewPlan(system_delay=1.5, admin_delay=1.5)
    first = WorkerProcess(bot_env).start()
    replacement: WorkerProcess | None = None
    try:
        await grant_flow_roles(driver)
        jobs = [metastudio.seed_job(voice_name=f"voice {n}") for n in range(4)]
        cards = [copy.deepcopy(await submit_job(driver, slack, job)) for job in jobs]
        for card in cards:
            await click_as_shown(driver, slack, APPROVER, card, APPROVE)
        for card in cards:
            await replies_with(slack, card, "Submitted job")
        # A reply counts as posted once its marker is stored, a moment after Slack has it:
        # a kill in that moment would post it again (the worker cannot read the thread to
        # tell), which is not what this test is about.
        store = ApprovalStore(redis_client, redis_prefix, ttl_seconds=60, allow_self_approval=False)
        for job in jobs:
            await wait_until(lambda job=job: _replies_marked(store, job))
        # Slow reads keep steps in flight (a second each, so a loaded machine still kills
        # one mid-read); kill while at least one is.
        metastudio.faults = FaultConfig(latency=1.0)
        in_flight = f"arq:in-progress:{redis_prefix}track:*"
        await wait_until(lambda: _exists(redis_client, in_flight), interval=0.01)
        first.kill()
        assert await _exists(redis_client, in_flight)
        assert all(count(slack, card, "passed review") == 0 for card in cards)
        replacement = WorkerProcess(bot_env).start()
        # The budget: a notify lease the killed worker held runs out (20 s), its in-progress
        # step is run again (job timeout + 10 s), the review (3 s) and reads 1 s slow each.
        for card in cards:
            await replies_with(slack, card, "passed review", within=45)
        await nothing_more_happens()
    finally:
        first.stop()
        if replacement is not None:
            replacement.stop()
    for job, card in zip(jobs, cards, strict=True):
        assert count(slack, card, "passed review") == 1
        assert count(slack, card, "Submitted job") == 1
        assert count(slack, card, "Approved by") == 1
        assert metastudio.commit_count(job) == 1
