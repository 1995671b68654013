"""Whatever text follows `/voice`, the bot answers: HTTP 200 inside Slack's 3 s, then usage or a
specific sentence (ack body or response_url post) or the submit form; never a 5xx, a stack
trace, an internal-error reply or silence. One running bot serves every example.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.commands import SUBCOMMAND_NAMES, SUBMIT_KEYS
from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    ACK_DEADLINE,
    ADMIN,
    CHANNEL,
    INTERNAL_ERROR,
    OUTSIDER,
    REQUESTER,
    grant,
    shown,
)

_words = st.one_of(
    st.sampled_from([*SUBCOMMAND_NAMES, "--dry-run", "<@U0ALICE1|alice>", "@alice", "requester"]),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(SUBMIT_KEYS), st.text(max_size=20)),
    st.from_regex(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}", fullmatch=True),
    st.text(max_size=15),
)
command_texts = st.one_of(
    st.text(max_size=200),
    st.lists(_words, max_size=6).map(" ".join),
)


@pytest.fixture
def requester_granted(driver: SlackDriver, slack: LocalSlack) -> None:
    asyncio.run(grant(driver, slack, REQUESTER, "requester"))


@pytest.mark.slow
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=command_texts, user=st.sampled_from([ADMIN, REQUESTER, OUTSIDER]))
def test_any_command_text_gets_an_answer(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    requester_granted: None,
    text: str,
    user: str,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_answered(driver, slack, text, user))
    finally:
        loop.close()


async def _answered(driver: SlackDriver, slack: LocalSlack, text: str, user: str) -> None:
    views_before = len(slack.calls("views.open"))
    result = await driver.slash_command("/voice", text, user=user, channel=CHANNEL)
    assert result.status_code == 200, (text, result.status_code, result.body)
    assert result.elapsed < ACK_DEADLINE, (text, result.elapsed)

    def answered() -> list[str] | bool:
        return shown(slack, result) or len(slack.calls("views.open")) > views_before

    await slack.wait_for_async(answered, timeout=5.0)
    for reply in shown(slack, result):
        assert reply.strip(), text
        assert INTERNAL_ERROR not in reply, (text, reply)
        assert "Traceback" not in reply
        assert "local-signing-secret" not in reply
