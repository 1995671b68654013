"""The approval flow end to end: signed Slack deliveries to the web app, the worker as a
process, real Redis, the local Slack and the local MetaStudio.

Each test reads like the feature: a requester submits, an approver clicks, and the test
checks what reached Slack (card, thread, ephemerals), MetaStudio (commits) and the audit.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from bot.approvals import ApprovalStore
from bot.audit import AuditEvent, AuditLog
from bot.metastudio import CommitJobRequest, MetaStudioClient
from sandbox.metastudio import (
    AuditError,
    AuditFailure,
    FaultConfig,
    LocalMetaStudio,
    ReviewPlan,
)
from sandbox.slack import LocalSlack, SlackDriver
from sandbox.slack.state import Message
from tests.conftest import (
    ADMIN,
    APPROVE,
    APPROVER,
    CHANNEL,
    OUTSIDER,
    REJECT,
    REQUESTER,
    WorkerProcess,
    block_text,
    click_as_shown,
    ephemeral_texts,
    free_port,
    grant_flow_roles,
    grant_role,
    has_buttons,
    metastudio_posts,
    nothing_more_happens,
    replies_with,
    settings_from,
    submit_job,
    thread_replies,
    wait_until,
    with_env,
)


def card(slack: LocalSlack, posted: Message) -> Message:
    return slack.message(CHANNEL, posted.ts)


async def audit(redis_client: aioredis.Redis, prefix: str, job: str) -> list[AuditEvent]:
    return await AuditLog(redis_client, prefix).read(job_id=job, limit=100)


async def approved_job(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> tuple[str, Message]:
    """A job asked for by the requester and approved by the approver; its card."""
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)
    await driver.block_action(APPROVER, CHANNEL, posted.ts, APPROVE)
    return job, posted


# -- 1. approve -> submit -> review passed ---------------------------------------------------


async def test_approve_submit_review_passed(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job, "language=en tag=news")

    # The card: who asks, the job's name and state, every field that will be sent, buttons.
    shown = block_text(posted)
    assert f"<@{REQUESTER}> asks to submit job" in shown
    assert "Job: `narrator`" in shown
    assert "uploading training data" in shown
    # What the requester typed is shown as typed: plain text, never formatted.
    for label, value in (
        ("Voice name", "narrator"),
        ("Sex", "FEMALE"),
        ("Language", "EN"),
        ("Tag", "NEWS"),
    ):
        assert f'"text": "{label}\\n{value}", "emoji": false' in shown
    assert has_buttons(posted)
    # The requester's ephemeral note points at the card (here, in the same channel).
    note = await slack.wait_for_async(
        lambda: [r for r in slack.responses if "Approval requested" in r.text]
    )
    assert f"Approval requested in <#{CHANNEL}>" in note[0].text
    assert metastudio_posts(metastudio) == []

    await driver.block_action(APPROVER, CHANNEL, posted.ts, APPROVE)
    await replies_with(slack, posted, "passed review")
    thread = thread_replies(slack, posted)
    assert len(thread) == 3, thread
    assert thread[0] == f"<@{REQUESTER}> Approved by <@{APPROVER}>."
    assert thread[1].startswith(f"<@{REQUESTER}> Submitted job `{job}`")
    assert thread[2].startswith(f"<@{REQUESTER}> Job {job} passed review")
    await wait_until(lambda: "Review passed" in card(slack, posted).text)
    final = card(slack, posted)
    assert not has_buttons(final)
    assert f"by <@{APPROVER}>" in block_text(final)
    assert metastudio.commit_count(job) == 1

    store = ApprovalStore(redis_client, redis_prefix, ttl_seconds=60, allow_self_approval=False)
    [request] = await store.for_job(job)
    events = await audit(redis_client, redis_prefix, job)
    actions = [e.action for e in events]
    assert actions == ["requested", "approved", "submitted", "review_passed"]
    assert {e.payload_hash for e in events} == {request.payload_hash}
    assert {e.job_id for e in events} == {job}
    assert {e.request_id for e in events} == {request.id}
    assert events[0].actor == REQUESTER
    assert events[1].actor == APPROVER

    # An admin reads the trail.
    await grant_role(driver, ADMIN, "requester")  # roles are independent; audit needs admin only
    result = await driver.slash_command("/voice", f"audit {job}", user=ADMIN, channel=CHANNEL)
    assert result.acked
    trail = await slack.wait_for_async(
        lambda: [r for r in slack.responses if r.text.startswith("Audit trail for job")]
    )
    listed = json.dumps(trail[-1].body.get("blocks"))
    for action in actions:
        assert f"*{action}*" in listed
    assert request.payload_hash[:12] in listed
    assert job in listed


@with_env(VOICEBOT_APPROVAL_CHANNEL="CAPPROVE01")
async def test_card_in_an_approval_channel_is_linked_and_threaded_there(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    slack.add_channel("CAPPROVE01", "voice-approvals")
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    await driver.slash_command(
        "/voice", f"submit {job} voice_name=narrator sex=female", user=REQUESTER, channel=CHANNEL
    )
    note = await slack.wait_for_async(
        lambda: [r for r in slack.responses if "Approval requested" in r.text]
    )
    assert "<#CAPPROVE01>" in note[0].text
    assert "Open the approval card" in note[0].text
    [posted] = slack.messages("CAPPROVE01")
    assert slack.messages(CHANNEL) == []

    await driver.block_action(APPROVER, "CAPPROVE01", posted.ts, APPROVE)
    await wait_until(
        lambda: any("passed review" in m.text for m in slack.thread("CAPPROVE01", posted.ts))
    )
    assert len(slack.thread("CAPPROVE01", posted.ts)) == 4


# -- 2. reject with a reason -----------------------------------------------------------------


async def test_reject_with_reason(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)

    await driver.block_action(APPROVER, CHANNEL, posted.ts, REJECT)
    modal = await slack.wait_for_async(
        lambda: [v for v in slack.views if v.callback_id == "approval_reject_reason"]
    )
    await driver.view_submission(APPROVER, modal[0].id, {"reason": {"reason": "Wrong voice"}})

    await replies_with(slack, posted, "Rejected by")
    rejected = f"<@{REQUESTER}> Rejected by <@{APPROVER}>: Wrong voice"
    assert thread_replies(slack, posted) == [rejected]
    await wait_until(lambda: "Rejected" in card(slack, posted).text)
    final = card(slack, posted)
    assert not has_buttons(final)
    assert f"*Rejected* by <@{APPROVER}>" in block_text(final)
    assert '{"type": "plain_text", "text": "Wrong voice", "emoji": false}' in block_text(final)
    events = await audit(redis_client, redis_prefix, job)
    assert [e.action for e in events] == ["requested", "rejected"]
    assert events[1].detail == "Wrong voice"
    assert events[1].actor == APPROVER
    assert metastudio_posts(metastudio) == []
    assert metastudio.commit_count(job) == 0


async def test_slack_failing_at_the_click_leaves_the_posts_to_the_worker(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)
    await driver.block_action(APPROVER, CHANNEL, posted.ts, REJECT)
    modal = await slack.wait_for_async(
        lambda: [v for v in slack.views if v.callback_id == "approval_reject_reason"]
    )
    slack.fail_next("chat.update", "internal_error")
    slack.fail_next("chat.postMessage", "internal_error")
    await driver.view_submission(APPROVER, modal[0].id)

    await replies_with(slack, posted, "Rejected by")
    await wait_until(lambda: "Rejected" in card(slack, posted).text)
    await nothing_more_happens()
    assert thread_replies(slack, posted) == [f"<@{REQUESTER}> Rejected by <@{APPROVER}>."]
    assert not has_buttons(card(slack, posted))


async def test_training_outcome_is_posted_with_the_asset_id(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    metastudio.review = ReviewPlan(system_delay=0.2, admin_delay=0.2, train_delay=0.3)
    job, posted = await approved_job(driver, slack, metastudio)

    await replies_with(slack, posted, f"Job {job} succeeded")
    asset = metastudio.job(job)["asset_id"]
    [done] = [m for m in slack.thread(CHANNEL, posted.ts)[1:] if "succeeded" in m.text]
    assert "finished training" in block_text(done)
    assert asset in block_text(done)
    assert done.text.startswith(f"<@{REQUESTER}>")
    assert len(thread_replies(slack, posted)) == 4  # approved, submitted, passed, trained
    await wait_until(lambda: "succeeded" in card(slack, posted).text)


async def test_training_failure_is_posted_with_its_code_and_reason(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    metastudio.review = ReviewPlan(
        system_delay=0.2, admin_delay=0.2, train_delay=0.3, train_outcome="fail"
    )
    job, posted = await approved_job(driver, slack, metastudio)

    await replies_with(slack, posted, "passed review")
    failed = await slack.wait_for_async(
        lambda: [m for m in slack.thread(CHANNEL, posted.ts)[1:] if "ended" in block_text(m)]
    )
    shown = block_text(failed[0])
    assert metastudio.job(job)["state"] == "FAILED"
    assert metastudio.job(job)["job_failed_code"] in shown
    assert "could not be aligned with the text" in shown
    assert failed[0].text.startswith(f"<@{REQUESTER}>")
    await wait_until(lambda: "Training failed" in card(slack, posted).text)
    assert len(thread_replies(slack, posted)) == 4  # approved, submitted, passed, failed
    actions = [e.action for e in await audit(redis_client, redis_prefix, job)]
    assert actions[-1] == "training_failed"


# -- 3. review failed, with every reason ------------------------------------------------------


async def test_review_failed_shows_every_reason(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    errors = (
        AuditError(
            audio_name="a_1.wav",
            text_name="t_1.txt",
            error_code="MSS.12000101",
            error_message="audio clipped",
        ),
        AuditError(
            audio_name="a_7.wav",
            text_name="t_7.txt",
            error_code="MSS.12000103",
            error_message="signal-to-noise ratio too low",
        ),
    )
    failure = AuditFailure(
        stage="admin", errors=errors, admin_message="The authorization letter is unsigned"
    )
    job = metastudio.seed_job(voice_name="narrator", outcome="fail", failure=failure)
    posted = await submit_job(driver, slack, job)
    await driver.block_action(APPROVER, CHANNEL, posted.ts, APPROVE)

    await replies_with(slack, posted, "did not pass review")
    [failed] = [m for m in slack.thread(CHANNEL, posted.ts) if "did not pass" in m.text]
    shown = block_text(failed)
    assert failed.text.startswith(f"<@{REQUESTER}>")
    for error in errors:
        for part in (error.audio_name, error.text_name, error.error_code, error.error_message):
            assert part in shown
    assert "The authorization letter is unsigned" in shown
    await wait_until(lambda: "Review failed" in card(slack, posted).text)
    assert not has_buttons(card(slack, posted))
    assert len(thread_replies(slack, posted)) == 3
    actions = [e.action for e in await audit(redis_client, redis_prefix, job)]
    assert actions[-1] == "review_failed"
    assert metastudio.commit_count(job) == 1


# -- 4. expiry ------------------------------------------------------------------------------


@with_env(VOICEBOT_APPROVAL_TTL="1")
async def test_expiry_removes_buttons_and_refuses_late_clicks(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)
    as_first_shown = copy.deepcopy(posted)  # the local Slack edits messages in place
    assert has_buttons(as_first_shown)

    await wait_until(lambda: "Expired" in card(slack, posted).text, within=15)
    assert not has_buttons(card(slack, posted))
    await replies_with(slack, posted, "has expired")

    assert (await click_as_shown(driver, slack, APPROVER, as_first_shown, APPROVE)).acked
    await wait_until(lambda: any("expired" in t for t in ephemeral_texts(slack, APPROVER)))
    assert metastudio_posts(metastudio) == []
    actions = [e.action for e in await audit(redis_client, redis_prefix, job)]
    assert actions == ["requested", "expired"]
    assert sum("has expired" in t for t in thread_replies(slack, posted)) == 1


# -- 5. self-approval --------------------------------------------------------------------------


async def test_self_approval_refused(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    await grant_flow_roles(driver)
    await grant_role(driver, REQUESTER, "approver")
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)

    await driver.block_action(REQUESTER, CHANNEL, posted.ts, APPROVE)
    refused = "can't approve your own request"
    await slack.wait_for_async(lambda: any(refused in t for t in ephemeral_texts(slack, REQUESTER)))
    assert has_buttons(card(slack, posted))
    assert thread_replies(slack, posted) == []
    assert metastudio_posts(metastudio) == []


@with_env(VOICEBOT_ALLOW_SELF_APPROVAL="true")
async def test_self_approval_allowed_when_configured(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    await grant_flow_roles(driver)
    await grant_role(driver, REQUESTER, "approver")
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)

    await driver.block_action(REQUESTER, CHANNEL, posted.ts, APPROVE)
    await replies_with(slack, posted, "Submitted job")
    assert thread_replies(slack, posted)[0] == f"<@{REQUESTER}> Approved by <@{REQUESTER}>."
    assert metastudio.commit_count(job) == 1


# -- 6. not an approver --------------------------------------------------------------------


async def test_non_approver_refused(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)

    for action in (APPROVE, REJECT):
        await driver.block_action(OUTSIDER, CHANNEL, posted.ts, action)
    await slack.wait_for_async(lambda: len(ephemeral_texts(slack, OUTSIDER)) >= 2)
    said = ephemeral_texts(slack, OUTSIDER)
    assert len(said) == 2
    for text in said:
        assert "*approver* role" in text
        assert f"<@{ADMIN}>" in text
    assert [v for v in slack.views if v.user == OUTSIDER] == []
    assert has_buttons(card(slack, posted))
    assert metastudio_posts(metastudio) == []


# -- 7. dry run ------------------------------------------------------------------------------


async def test_dry_run_sends_nothing(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    result = await driver.slash_command(
        "/voice",
        f"submit {job} voice_name=narrator sex=female --dry-run",
        user=REQUESTER,
        channel=CHANNEL,
    )
    assert result.acked
    shown = await slack.wait_for_async(
        lambda: [r for r in slack.responses if r.text.startswith("Dry run")]
    )
    text = "\n".join(
        b["text"]["text"] for b in shown[0].body.get("blocks", []) if b["type"] == "section"
    )
    url = f"{metastudio.url}/v1/"  # type: ignore[attr-defined]
    assert f"POST {url}" in text
    assert f"/user/jobs/{job}" in text
    assert '"voice_name":"narrator"' in text
    assert '"sex":"FEMALE"' in text
    assert "authorization: ***redacted***" in text
    assert metastudio_posts(metastudio) == []
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}approval*")] == []
    assert slack.messages(CHANNEL) == []


# -- 8. approval switched off ----------------------------------------------------------------


@with_env(VOICEBOT_REQUIRE_APPROVAL="false")
async def test_without_approval_goes_straight_through(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)
    assert not has_buttons(posted)
    assert "Approval is not required" in block_text(posted)

    await replies_with(slack, posted, "passed review")
    assert len(thread_replies(slack, posted)) == 2  # submitted, passed: no decision to report
    await wait_until(lambda: "Review passed" in card(slack, posted).text)
    assert "Approval is not required" in block_text(card(slack, posted))
    actions = [e.action for e in await audit(redis_client, redis_prefix, job)]
    assert actions == ["requested", "auto_approved", "submitted", "review_passed"]
    assert metastudio.commit_count(job) == 1


# -- 9. submit failed --------------------------------------------------------------------------


async def test_submit_failed_when_the_job_moved_on(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    bot_env: dict[str, str],
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)
    # Someone submits the job outside the bot between the request and the approval.
    async with MetaStudioClient.from_settings(settings_from(bot_env)) as client:
        await client.commit_job(job, CommitJobRequest(voice_name="other"))

    await driver.block_action(APPROVER, CHANNEL, posted.ts, APPROVE)
    await replies_with(slack, posted, "failed")
    [failed] = [m for m in slack.thread(CHANNEL, posted.ts) if "Submitting job" in m.text]
    shown = block_text(failed)
    assert "MSS.41000005" in shown  # MetaStudio's code, in words
    assert "not while it is already in review" in shown  # what to do
    assert "Nothing was submitted" in shown
    await wait_until(lambda: "Submit to MetaStudio failed" in card(slack, posted).text)
    assert "MSS.41000005" in block_text(card(slack, posted))
    assert metastudio.commit_count(job) == 1  # the outside one only
    actions = [e.action for e in await audit(redis_client, redis_prefix, job)]
    assert actions[-1] == "submit_failed"


# -- 10. a lost enqueue is recovered ----------------------------------------------------------


async def test_lost_tracking_job_is_revived_by_the_sweep(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    bot_env: dict[str, str],
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    job, posted = await approved_job(driver, slack, metastudio)
    await replies_with(slack, posted, "Approved by")
    # No worker yet: drop the queued job, as if the enqueue after the click had failed.
    queue = bot_env["VOICEBOT_QUEUE_NAME"]
    queued = await redis_client.zrange(queue, 0, -1)
    assert len(queued) == 1
    assert redis_prefix in queued[0]
    await redis_client.delete(f"arq:job:{queued[0]}")
    await redis_client.zrem(queue, queued[0])

    process = WorkerProcess(bot_env).start()
    try:
        await replies_with(slack, posted, "passed review")
    finally:
        process.stop()
    assert metastudio.commit_count(job) == 1


# -- 11. the list call failing --------------------------------------------------------------


async def test_review_outcome_comes_while_listing_jobs_keeps_failing(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
) -> None:
    # Every list call fails (as with an AK/SK allowed to read a job but not to list them);
    # reading and submitting the job work.
    metastudio.faults = FaultConfig(
        error_rate=1.0, methods=frozenset({"GET"}), path=r"/voice-training-manage/user/jobs$"
    )
    job, posted = await approved_job(driver, slack, metastudio)

    await replies_with(slack, posted, "passed review")
    lists = [r for r in metastudio.requests if r.method == "GET" and r.path.endswith("/jobs")]
    assert lists, "the sweep never tried to list the jobs under review"
    assert all(r.status >= 500 for r in lists)
    assert metastudio.commit_count(job) == 1
    assert len(thread_replies(slack, posted)) == 3


@pytest.mark.slow
async def test_review_outcome_comes_while_listing_jobs_is_too_slow(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    bot_env: dict[str, str],
) -> None:
    # Each list call answers, but later than a worker job may run (0.8 of a 1 s job
    # timeout): the sweep must give up on listing in time, not be killed by the queue.
    metastudio.faults = FaultConfig(
        latency=1.5, methods=frozenset({"GET"}), path=r"/voice-training-manage/user/jobs$"
    )
    process = WorkerProcess({**bot_env, "VOICEBOT_JOB_TIMEOUT": "1"}).start()
    try:
        job, posted = await approved_job(driver, slack, metastudio)

        await replies_with(slack, posted, "passed review")
    finally:
        process.stop()
    lists = [r for r in metastudio.requests if r.method == "GET" and r.path.endswith("/jobs")]
    assert lists, "the sweep never tried to list the jobs under review"
    assert metastudio.commit_count(job) == 1
    assert len(thread_replies(slack, posted)) == 3


# -- 12. worker metrics -----------------------------------------------------------------------


async def test_worker_serves_its_metrics(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    bot_env: dict[str, str],
) -> None:
    port = free_port()
    process = WorkerProcess({**bot_env, "VOICEBOT_WORKER_METRICS_PORT": str(port)}).start()
    try:
        _, posted = await approved_job(driver, slack, metastudio)
        await replies_with(slack, posted, "passed review")

        async with httpx.AsyncClient() as client:

            async def scraped() -> dict[str, float]:
                reply = await client.get(f"http://127.0.0.1:{port}/metrics")
                return {
                    name: float(value)
                    for name, _, value in (
                        line.rpartition(" ")
                        for line in reply.text.splitlines()
                        if line.startswith("voicebot_")
                    )
                }

            await wait_until(
                lambda: scraped_has(scraped, 'voicebot_tracking_steps_total{status="passed"}')
            )
            figures = await scraped()
    finally:
        process.stop()
    assert figures['voicebot_review_sweeps_total{result="ok"}'] >= 1
    assert figures["voicebot_reviews_ended_total"] >= 1
    # The worker posted what the web process left: at least the review outcome.
    assert figures["voicebot_thread_replies_total"] >= 1


async def scraped_has(scrape: Any, name: str) -> bool:
    try:
        return bool((await scrape()).get(name, 0.0) >= 1)
    except httpx.HTTPError:
        return False
