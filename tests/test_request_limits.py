"""One open request per job and workspace, each requester within limits, and a Slack
delivery that arrives twice does its work once.

Real Slack lets anyone type `/voice submit` for the same job again (or a thousand times),
and a signed request can be sent again unchanged within the signature window.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import redis.asyncio as aioredis

from bot.approvals import ApprovalStore
from bot.slack import modal
from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    APPROVER,
    CHANNEL,
    REJECT,
    REQUESTER,
    card_of,
    grant_flow_roles,
    say,
    submit_job,
    with_env,
)


def cards_for(slack: LocalSlack, job: str) -> int:
    return sum(job in m.text for m in slack.messages(CHANNEL))


async def reject(driver: SlackDriver, slack: LocalSlack, job: str) -> None:
    card = card_of(slack, job)
    assert card is not None
    await driver.block_action(APPROVER, CHANNEL, card.ts, REJECT)
    form = await slack.wait_for_async(
        lambda: [v for v in slack.views if v.callback_id == modal.REJECT_CALLBACK_ID]
    )
    await driver.view_submission(APPROVER, form[-1].id)
    await slack.wait_for_async(lambda: "Rejected" in slack.message(CHANNEL, card.ts).text)


async def test_a_second_request_for_a_job_links_to_the_open_card(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    card = await submit_job(driver, slack, job)

    again = await say(driver, slack, f"submit {job} voice_name=other", user=REQUESTER)

    assert f"Job `{job}` already has an open request" in again
    assert f"/archives/{CHANNEL}/p{card.ts.replace('.', '')}" in again  # the card's permalink
    assert cards_for(slack, job) == 1
    # Once that request ends, the job can be asked for again.
    await reject(driver, slack, job)
    third = await say(driver, slack, f"submit {job} voice_name=other", user=REQUESTER)
    assert "Approval requested" in third
    assert cards_for(slack, job) == 2


async def test_many_requests_for_one_job_at_once_give_one_card(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job()

    replies = await asyncio.gather(
        *(say(driver, slack, f"submit {job} voice_name=v{n}", user=REQUESTER) for n in range(12))
    )

    assert sum("Approval requested" in r for r in replies) == 1
    assert all(
        "Approval requested" in r
        or "already has an open request" in r
        or "is being made right now" in r
        for r in replies
    ), replies
    assert cards_for(slack, job) == 1
    store = ApprovalStore(redis_client, redis_prefix, ttl_seconds=60, allow_self_approval=False)
    assert len(await store.for_job(job)) == 1


async def test_a_replayed_slash_command_does_nothing_twice(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    """The same signed body again (an attacker's replay, or a redelivery marked with
    X-Slack-Retry-Num) is acknowledged and dropped: one card, one answer."""
    await grant_flow_roles(driver)
    job = metastudio.seed_job()
    first = await driver.slash_command(
        "/voice", f"submit {job} voice_name=v", user=REQUESTER, channel=CHANNEL
    )
    assert first.acked
    await slack.wait_for_async(lambda: card_of(slack, job), timeout=10)
    # A second job's card afterwards shows when everything before it is done.
    body = urlencode(first.payload).encode()
    for retry in ({}, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}):
        headers = {
            **driver.sign(body),
            "Content-Type": "application/x-www-form-urlencoded",
            **retry,
        }
        replayed = await driver.send_raw(body, headers)
        assert replayed.status_code == 200
        assert replayed.body == ""
    later = metastudio.seed_job()
    await submit_job(driver, slack, later)

    assert cards_for(slack, job) == 1
    assert first.response_url is not None
    url_id = first.response_url.rsplit("/", 1)[-1]
    assert len([r for r in slack.responses if r.url_id == url_id]) == 1


@with_env(VOICEBOT_MAX_OPEN_REQUESTS="2")
async def test_open_requests_per_requester_are_limited(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant_flow_roles(driver)
    first, second, third = (metastudio.seed_job() for _ in range(3))
    await submit_job(driver, slack, first)
    await submit_job(driver, slack, second)

    refused = await say(driver, slack, f"submit {third} voice_name=v", user=REQUESTER)

    assert "You already have 2 requests waiting for approval, the most allowed." in refused
    assert "Try again when one is decided, or in 24 hours, when the oldest expires." in refused
    assert card_of(slack, third) is None
    await reject(driver, slack, first)
    accepted = await say(driver, slack, f"submit {third} voice_name=v", user=REQUESTER)
    assert "Approval requested" in accepted


@with_env(VOICEBOT_REQUEST_LIMIT="2", VOICEBOT_REQUEST_WINDOW="120")
async def test_requests_per_requester_are_rate_limited(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant_flow_roles(driver)
    jobs = [metastudio.seed_job() for _ in range(3)]
    for job in jobs[:2]:
        await submit_job(driver, slack, job)
        await reject(driver, slack, job)  # decided: only the rate counts now

    refused = await say(driver, slack, f"submit {jobs[2]} voice_name=v", user=REQUESTER)

    assert "You have made 2 requests in the last 2 minutes, the most allowed." in refused
    assert "Try again in 2 minutes." in refused  # what is left of the window, rounded up
    assert card_of(slack, jobs[2]) is None
    # Another requester is not held back by this one.
    await driver.slash_command(
        "/voice", f"grant <@{APPROVER}> requester", user="UADMIN0001", channel=CHANNEL
    )
    other = await say(driver, slack, f"submit {jobs[2]} voice_name=v", user=APPROVER)
    assert "Approval requested" in other
