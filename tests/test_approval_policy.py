"""Approval policies: N distinct approvers before a submit, set for the workspace
(``VOICEBOT_REQUIRED_APPROVALS``) or per channel (``/voice policy``), fixed per request when
it is made; every click still one atomic decision."""

from __future__ import annotations

import asyncio
import copy

import pytest

from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    ADMIN,
    APPROVE,
    APPROVER,
    CHANNEL,
    REJECT,
    WorkerProcess,
    block_text,
    card_of,
    click_as_shown,
    ephemeral_texts,
    grant_flow_roles,
    grant_role,
    has_buttons,
    nothing_more_happens,
    replies_with,
    say,
    submit_job,
    thread_replies,
    wait_until,
    with_env,
)

SECOND = "UAPPROVE02"
APPROVERS = [APPROVER, SECOND, "UAPPROVE03", "UAPPROVE04", "UAPPROVE05"]


def approvals_shown(slack: LocalSlack, job: str) -> str:
    card = card_of(slack, job)
    assert card is not None
    return block_text(card)


@with_env(VOICEBOT_REQUIRED_APPROVALS="2")
async def test_one_approver_twice_does_not_submit_and_a_second_approver_submits_once(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    await grant_flow_roles(driver)
    await grant_role(driver, SECOND, "approver")
    job = metastudio.seed_job(voice_name="narrator")
    card = copy.deepcopy(await submit_job(driver, slack, job))
    assert "0 of 2 approvals" in block_text(card)

    first = await click_as_shown(driver, slack, APPROVER, card, APPROVE)
    assert first.acked
    await wait_until(lambda: "1 of 2 approvals" in approvals_shown(slack, job))
    assert f"<@{APPROVER}>" in approvals_shown(slack, job)
    assert "1 more approval needed" in approvals_shown(slack, job)
    again = await click_as_shown(driver, slack, APPROVER, card, APPROVE)
    assert again.acked
    await wait_until(lambda: any("already approved" in t for t in ephemeral_texts(slack, APPROVER)))
    await nothing_more_happens()
    assert metastudio.commit_count(job) == 0
    assert "1 of 2 approvals" in approvals_shown(slack, job)
    shown = card_of(slack, job)
    assert shown is not None
    assert has_buttons(shown)

    await click_as_shown(driver, slack, SECOND, card, APPROVE)
    await replies_with(slack, card, "passed review")
    await nothing_more_happens()
    assert metastudio.commit_count(job) == 1
    assert sum("Approved by" in t for t in thread_replies(slack, card)) == 1
    assert f"Approved by <@{APPROVER}> and <@{SECOND}>" in thread_replies(slack, card)[0]
    assert "2 of 2 approvals" in approvals_shown(slack, job)


@pytest.mark.slow
@with_env(VOICEBOT_REQUIRED_APPROVALS="2")
async def test_fifty_concurrent_clicks_by_five_approvers_submit_once(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    await grant_flow_roles(driver)
    for user in APPROVERS[1:]:
        await grant_role(driver, user, "approver")
    job = metastudio.seed_job(voice_name="narrator")
    card = copy.deepcopy(await submit_job(driver, slack, job))

    results = await asyncio.gather(
        *(click_as_shown(driver, slack, APPROVERS[i % 5], card, APPROVE) for i in range(50))
    )
    assert all(r.acked for r in results)
    await replies_with(slack, card, "passed review")
    await nothing_more_happens()
    assert metastudio.commit_count(job) == 1
    assert "2 of 2 approvals" in approvals_shown(slack, job)
    assert sum("Approved by" in t for t in thread_replies(slack, card)) == 1


@with_env(VOICEBOT_REQUIRED_APPROVALS="2")
async def test_any_reject_ends_a_partly_approved_request(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    await grant_flow_roles(driver)
    await grant_role(driver, SECOND, "approver")
    job = metastudio.seed_job(voice_name="narrator")
    card = copy.deepcopy(await submit_job(driver, slack, job))
    await click_as_shown(driver, slack, APPROVER, card, APPROVE)
    await wait_until(lambda: "1 of 2 approvals" in approvals_shown(slack, job))

    await driver.block_action(SECOND, CHANNEL, card.ts, REJECT)
    modal = await slack.wait_for_async(
        lambda: [v for v in slack.views if v.callback_id == "approval_reject_reason"]
    )
    await driver.view_submission(SECOND, modal[0].id, {"reason": {"reason": "not yet"}})
    await replies_with(slack, card, "Rejected by")
    await nothing_more_happens()
    assert metastudio.commit_count(job) == 0


async def test_a_channel_policy_applies_to_new_requests_only(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    await grant_flow_roles(driver)
    await grant_role(driver, SECOND, "approver")
    before = copy.deepcopy(await submit_job(driver, slack, metastudio.seed_job(voice_name="a")))

    reply = await say(driver, slack, f"policy <#{CHANNEL}|voice> approvals=2", user=ADMIN)
    assert "2 approvals" in reply, reply
    shown = await say(driver, slack, "policy", user=ADMIN)
    assert f"<#{CHANNEL}>: 2 approval" in shown, shown
    refused = await say(driver, slack, f"policy <#{CHANNEL}|voice> approvals=3", user=APPROVER)
    assert "admin" in refused, refused

    job = metastudio.seed_job(voice_name="b")
    after = copy.deepcopy(await submit_job(driver, slack, job))
    assert "0 of 2 approvals" in block_text(after)
    await click_as_shown(driver, slack, APPROVER, after, APPROVE)
    await wait_until(lambda: "1 of 2 approvals" in approvals_shown(slack, job))
    assert metastudio.commit_count(job) == 0

    # The request made before the policy still needs one approval.
    await click_as_shown(driver, slack, APPROVER, before, APPROVE)
    await replies_with(slack, before, "passed review")

    await click_as_shown(driver, slack, SECOND, after, APPROVE)
    await replies_with(slack, after, "passed review")
    assert metastudio.commit_count(job) == 1
