"""The same `/voice` flows over Socket Mode: the bot connects to the local Slack's WebSocket
with ``bot.web.socket_mode`` and acks envelopes instead of HTTP requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.metastudio.models import JobState
from bot.slack import modal
from bot.web import socket_mode
from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    ACK_DEADLINE,
    ADMIN,
    CHANNEL,
    OUTSIDER,
    REQUESTER,
    answer,
    grant,
    say,
    settings_from,
)


@pytest.fixture
async def socket_driver(slack: LocalSlack, bot_env: dict[str, str]) -> AsyncIterator[SlackDriver]:
    settings = settings_from({**bot_env, "SLACK_APP_TOKEN": "xapp-local"})
    async with socket_mode(settings):
        await slack.wait_for_async(lambda: slack.socket.connection_count)
        yield SlackDriver(slack, mode="socket")


async def test_commands_over_socket_mode(
    socket_driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    driver = socket_driver
    usage = await say(driver, slack, "help", user=OUTSIDER)
    assert "/voice status" in usage
    assert "*Needs the admin role* (you don't have it" in usage
    typo = await say(driver, slack, "stauts", user=OUTSIDER)
    assert "Did you mean `status`?" in typo

    denied = await say(driver, slack, f"grant <@{OUTSIDER}> admin", user=OUTSIDER)
    assert f"You need the *admin* role to manage roles. Ask an admin: <@{ADMIN}>." in denied
    await grant(driver, slack, REQUESTER, "requester")
    assert f"<@{REQUESTER}> has: *requester*" in await say(
        driver, slack, f"roles <@{REQUESTER}|req>", user=ADMIN
    )
    (entry,) = await redis_client.xrange(f"{redis_prefix}audit")
    assert entry[1]["action"] == "grant"
    assert entry[1]["target"] == REQUESTER

    invalid = await driver.slash_command(
        "/voice", "submit abc voice_name=v sex=fmale", user=REQUESTER, channel=CHANNEL
    )
    assert invalid.json is not None
    assert "is not a job id" in invalid.json["text"]
    assert "Did you mean `female`?" in invalid.json["text"]

    job = metastudio.seed_job(voice_name="narrator", state=JobState.AUDIT_FAILED)
    status = await say(driver, slack, f"status {job}", user=OUTSIDER)
    assert "review failed" in status
    submitted = await say(driver, slack, f"submit {job} voice_name=v", user=REQUESTER)
    assert "Approval requested" in submitted
    assert len(slack.messages(CHANNEL)) == 1


async def test_modal_round_trip_over_socket_mode(
    socket_driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    driver = socket_driver
    await grant(driver, slack, REQUESTER, "requester")
    ready = metastudio.seed_job(voice_name="narrator")
    metastudio.seed_job(voice_name="busy", state=JobState.SYSTEM_AUDITING)

    opened = await driver.slash_command("/voice", "submit", user=REQUESTER, channel=CHANNEL)
    assert opened.acked
    assert opened.elapsed < ACK_DEADLINE
    (form,) = await slack.wait_for_async(lambda: slack.views)
    options = await driver.block_suggestion(REQUESTER, form.id, modal.ACTION_JOB, "")
    assert [o["value"] for o in (options.json or {})["options"]] == [ready]

    bad = await driver.view_submission(
        REQUESTER,
        form.id,
        {modal.BLOCK_JOB: {modal.ACTION_JOB: (ready, ready)}, "phone": {"phone": "x"}},
    )
    errors = (bad.json or {}).get("errors", {})
    assert set(errors) == {"voice_name", "phone"}
    assert not slack.view(form.id).closed

    good = await driver.view_submission(
        REQUESTER,
        form.id,
        {modal.BLOCK_JOB: {modal.ACTION_JOB: (ready, ready)}, "voice_name": {"voice_name": "v"}},
    )
    assert good.acked
    assert slack.view(form.id).closed
    await slack.wait_for_async(lambda: slack.messages(CHANNEL))
    note = await slack.wait_for_async(lambda: slack.ephemerals(CHANNEL, REQUESTER))
    assert "Approval requested" in note[-1].text

    denied = await driver.slash_command("/voice", "submit", user=OUTSIDER, channel=CHANNEL)
    assert "You need the *requester* role" in await answer(slack, denied)
