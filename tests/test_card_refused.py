"""When Slack refuses the approval card, there is no request: nothing stored, nothing
submitted, and the requester is told what to do.

The local Slack refuses posts as real Slack does: a bot posts only where it was invited
(``not_in_channel``), a private channel it is not in does not exist for it
(``channel_not_found``), an archived channel takes no posts (``is_archived``), and a
revoked token is ``invalid_auth``. The answer goes through the command's response_url,
which works where the bot is not a member.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.approvals import ApprovalStore
from bot.slack import modal
from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    CHANNEL,
    REQUESTER,
    WorkerProcess,
    answer,
    card_of,
    grant_flow_roles,
    say,
    submit_job,
    wait_until,
    with_env,
)

NOT_INVITED = "CNOBOT0001"
PRIVATE = "GSECRET001"
ARCHIVED = "CARCHIVE01"
APPROVALS = "CAPPROVE02"


async def stored_for(redis_client: aioredis.Redis, prefix: str, job: str) -> list[str]:
    store = ApprovalStore(redis_client, prefix, ttl_seconds=60, allow_self_approval=False)
    return [request.id for request in await store.for_job(job)]


def cards_posted(slack: LocalSlack) -> int:
    return sum(call.method == "chat.postMessage" and call.ok for call in slack.calls())


@pytest.mark.parametrize(
    ("where", "fault", "expected"),
    [
        (NOT_INVITED, None, "I'm not a member. Invite me with `/invite @voicebot`, then submit"),
        (PRIVATE, None, "it is private and I'm not in it, or it doesn't exist"),
        (ARCHIVED, None, "the channel is archived"),
        (CHANNEL, "invalid_auth", "Ask an operator to check `SLACK_BOT_TOKEN`"),
    ],
    ids=["not_in_channel", "channel_not_found", "is_archived", "invalid_auth"],
)
async def test_a_refused_card_leaves_no_request(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    where: str,
    fault: str | None,
    expected: str,
) -> None:
    slack.add_channel(PRIVATE, "secret", is_private=True, bot_member=False)
    slack.add_channel(ARCHIVED, "old")
    slack.archive(ARCHIVED)
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    if fault is not None:
        slack.fail_next("chat.postMessage", fault)

    reply = await say(
        driver, slack, f"submit {job} voice_name=narrator", user=REQUESTER, channel=where
    )

    assert expected in reply
    assert "Nothing was requested." in reply
    assert "Something went wrong" not in reply
    assert cards_posted(slack) == 0
    assert await stored_for(redis_client, redis_prefix, job) == []
    assert await redis_client.hlen(f"{redis_prefix}approvals:tracked") == 0  # type: ignore[misc]
    # The job is not held by the request that never was: once Slack takes the card, it works.
    if where == NOT_INVITED:
        slack.set_bot_member(NOT_INVITED, True)
    posted = await say(
        driver, slack, f"submit {job} voice_name=narrator", user=REQUESTER, channel=CHANNEL
    )
    assert "Approval requested" in posted
    assert len(await stored_for(redis_client, redis_prefix, job)) == 1


@with_env(VOICEBOT_APPROVAL_CHANNEL=APPROVALS)
async def test_an_approval_channel_the_bot_was_not_invited_to_names_the_setting(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    slack.add_channel(APPROVALS, "voice-approvals", bot_member=False)
    await grant_flow_roles(driver)
    job = metastudio.seed_job()

    reply = await say(driver, slack, f"submit {job} voice_name=v", user=REQUESTER)

    assert f"I can't post the approval card in the approval channel <#{APPROVALS}>" in reply
    assert "`VOICEBOT_APPROVAL_CHANNEL`" in reply
    assert "`/invite @voicebot`" in reply
    assert await stored_for(redis_client, redis_prefix, job) == []


@with_env(VOICEBOT_REQUIRE_APPROVAL="false")
async def test_without_approval_a_refused_card_submits_nothing(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    worker: WorkerProcess,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant_flow_roles(driver)
    refused = metastudio.seed_job()
    reply = await say(
        driver, slack, f"submit {refused} voice_name=v", user=REQUESTER, channel=NOT_INVITED
    )
    assert "I'm not a member" in reply
    assert await stored_for(redis_client, redis_prefix, refused) == []

    # A restarted worker revives every tracked request at start-up: still nothing to submit.
    worker.stop()
    worker.start()
    accepted = metastudio.seed_job()
    await submit_job(driver, slack, accepted)
    await wait_until(lambda: metastudio.commit_count(accepted) == 1, within=15)
    assert metastudio.commit_count(refused) == 0


async def test_the_form_answers_through_the_commands_response_url(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """An ephemeral can't be posted where the bot is not a member; the response_url of the
    command that opened the form can."""
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    opened = await driver.slash_command("/voice", "submit", user=REQUESTER, channel=NOT_INVITED)
    assert opened.acked
    form = await slack.wait_for_async(
        lambda: [v for v in slack.views if v.callback_id == modal.CALLBACK_ID]
    )
    submitted = await driver.view_submission(
        REQUESTER,
        form[0].id,
        {modal.BLOCK_JOB: {modal.ACTION_JOB: (job, job)}, "voice_name": {"voice_name": "v"}},
    )
    assert submitted.acked

    reply = await answer(slack, opened)
    assert "I'm not a member. Invite me with `/invite @voicebot`" in reply
    assert await stored_for(redis_client, redis_prefix, job) == []
    assert card_of(slack, job) is None
