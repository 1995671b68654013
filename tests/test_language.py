"""The bot speaks its users' language: what one user sees follows their Slack locale
(``users.info`` with ``include_locale``), what a channel sees follows the channel's language
(``VOICEBOT_LANGUAGE``, or ``/voice policy #channel language=zh``). Commands stay ASCII;
enum values may be typed in Chinese."""

from __future__ import annotations

import asyncio
import copy
import json
import re

from bot.i18n import _, speaking
from bot.slack import messages
from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    ADMIN,
    APPROVE,
    APPROVER,
    CHANNEL,
    REQUESTER,
    WorkerProcess,
    block_text,
    click_as_shown,
    ephemeral_texts,
    grant_flow_roles,
    replies_with,
    say,
    submit_job,
    thread_replies,
    wait_until,
    with_env,
)

ZH_USER = "UZHCN00001"
LOCALE_CACHE_SECONDS = 3
TW_USER = "UZHTW00001"
_HAN = re.compile(r"[\u4e00-\u9fff]")


def han(text: str) -> int:
    """How many Chinese characters ``text`` has."""
    return len(_HAN.findall(text))


def in_chinese(render: object, *args: object) -> str:
    with speaking("zh"):
        return str(render(*args))  # type: ignore[operator]


def in_english(render: object, *args: object) -> str:
    with speaking("en"):
        return str(render(*args))  # type: ignore[operator]


async def test_a_chinese_user_reads_help_errors_and_denials_in_chinese(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    slack.add_user(ZH_USER, "li", "Li Na", locale="zh-CN")
    heading = in_chinese(messages.usage_text, None).splitlines()[0]
    assert heading != in_english(messages.usage_text, None).splitlines()[0]

    help_text = await say(driver, slack, "help", user=ZH_USER)
    assert heading in help_text
    assert "Usage of" not in help_text
    # Subcommands stay ASCII in the Chinese help.
    assert "`/voice submit" in help_text

    bad = await say(driver, slack, "submit job-12345678 voice_name=x sex=robot", user=ZH_USER)
    expected = in_chinese(messages.bad_enum, "sex", "robot", ["female", "male"], None)
    assert han(expected) > 0
    assert expected in bad, bad

    denied = await say(driver, slack, "submit job-12345678 voice_name=x sex=female", user=ZH_USER)
    assert "*requester*" in denied
    assert f"<@{ADMIN}>" in denied
    assert han(denied) > 5
    assert "You need the" not in denied


async def test_an_english_user_reads_the_same_in_english(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    slack.add_user(REQUESTER, locale="en-US")
    help_text = await say(driver, slack, "help", user=REQUESTER)
    assert in_english(messages.usage_text, None).splitlines()[0] in help_text
    bad = await say(driver, slack, "submit job-12345678 voice_name=x sex=robot", user=REQUESTER)
    assert in_english(messages.bad_enum, "sex", "robot", ["female", "male"], None) in bad
    denied = await say(driver, slack, "submit job-12345678 voice_name=x sex=female", user=REQUESTER)
    assert "You need the *requester* role" in denied
    assert han(help_text + bad + denied) == 0


async def test_traditional_chinese_locales_read_chinese_and_others_english(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    slack.add_user(TW_USER, locale="zh-TW")
    slack.add_user("UFRENCH001", locale="fr-FR")
    heading = in_chinese(messages.usage_text, None).splitlines()[0]
    assert heading in await say(driver, slack, "help", user=TW_USER)
    assert han(await say(driver, slack, "help", user="UFRENCH001")) == 0


@with_env(VOICEBOT_USER_LOCALE_CACHE_SECONDS=str(LOCALE_CACHE_SECONDS))
async def test_the_locale_is_read_once_and_a_change_shows_after_the_cache(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    slack.add_user(ZH_USER, locale="zh-CN")
    for _n in range(3):
        assert han(await say(driver, slack, "help", user=ZH_USER)) > 0
    lookups = slack.calls("users.info")
    assert len(lookups) == 1
    assert lookups[0].params.get("include_locale") in (True, "true", "1")

    slack.users.set_locale(ZH_USER, "en-US")
    assert han(await say(driver, slack, "help", user=ZH_USER)) > 0  # still cached
    # Both caches (Redis, shared; the process's own) run out.
    await asyncio.sleep(LOCALE_CACHE_SECONDS + 0.2)
    assert han(await say(driver, slack, "help", user=ZH_USER)) == 0


async def test_without_users_read_everyone_reads_english(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    slack.scopes = slack.scopes - {"users:read"}
    slack.add_user(ZH_USER, locale="zh-CN")
    help_text = await say(driver, slack, "help", user=ZH_USER)
    assert "Usage of" in help_text
    assert han(help_text) == 0


async def test_the_submit_form_is_in_the_users_language(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    slack.add_user(REQUESTER, locale="zh-CN")
    await grant_flow_roles(driver)
    opened = await driver.slash_command("/voice", "submit", user=REQUESTER, channel=CHANNEL)
    assert opened.acked
    (form,) = await slack.wait_for_async(lambda: slack.views)
    title = form.view["title"]["text"]
    with speaking("zh"):
        assert title == _(messages.MODAL_TITLE)
    assert han(title) > 0
    assert han(json.dumps(form.view["blocks"], ensure_ascii=False)) > 10


async def test_the_home_tab_is_in_the_users_language(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    slack.add_user(APPROVER, locale="zh-CN")
    slack.add_user(REQUESTER, locale="en-US")
    await grant_flow_roles(driver)
    for user in (APPROVER, REQUESTER):
        opened = await driver.open_home(user)
        assert opened.acked
    await wait_until(lambda: slack.home(APPROVER) and slack.home(REQUESTER))
    zh_home, en_home = slack.home(APPROVER), slack.home(REQUESTER)
    assert zh_home is not None
    assert en_home is not None
    assert han(json.dumps(zh_home["blocks"], ensure_ascii=False)) > 5
    assert han(json.dumps(en_home["blocks"], ensure_ascii=False)) == 0


async def test_a_chinese_channel_gets_a_chinese_card_and_thread(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    # The requester and the approver read English; the channel is set to Chinese.
    await grant_flow_roles(driver)
    set_reply = await say(driver, slack, f"policy <#{CHANNEL}|voice> language=zh", user=ADMIN)
    assert f"<#{CHANNEL}>" in set_reply
    assert han(set_reply) == 0  # the admin reads English
    shown = await say(driver, slack, "policy", user=ADMIN)
    assert f"<#{CHANNEL}>" in shown

    job = metastudio.seed_job(voice_name="narrator")
    card = copy.deepcopy(await submit_job(driver, slack, job))
    assert han(block_text(card)) > 10
    assert han(card.text) > 0
    assert job in block_text(card)
    await click_as_shown(driver, slack, APPROVER, card, APPROVE)
    approved = in_chinese(messages.approved_by_all, [APPROVER])
    await replies_with(slack, card, approved)
    await wait_until(lambda: len(thread_replies(slack, card)) >= 3, within=15)
    replies = thread_replies(slack, card)
    # Every thread post is Chinese, past the requester's mention.
    for reply in replies:
        assert han(reply) > 0, reply
    assert metastudio.commit_count(job) == 1
    # What only the requester sees stays in their own language.
    assert all(han(t) == 0 for t in ephemeral_texts(slack, REQUESTER))


@with_env(VOICEBOT_LANGUAGE="zh")
async def test_the_workspace_language_applies_where_no_channel_sets_one(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    card = await submit_job(driver, slack, job)
    assert han(block_text(card)) > 10
    # A channel set back to English overrides the workspace's Chinese.
    await say(driver, slack, f"policy <#{CHANNEL}|voice> language=en", user=ADMIN)
    other = metastudio.seed_job(voice_name="second")
    card = await submit_job(driver, slack, other)
    assert han(block_text(card)) == 0


async def test_chinese_enum_values_are_accepted(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    result = await driver.slash_command(
        "/voice",
        f"submit {job} voice_name=旁白 sex=女 language=中文 tag=客服",
        user=REQUESTER,
        channel=CHANNEL,
    )
    assert result.acked
    card = await slack.wait_for_async(
        lambda: next((m for m in slack.messages(CHANNEL) if job in m.text), None), timeout=10
    )
    assert card is not None
    await click_as_shown(driver, slack, APPROVER, copy.deepcopy(card), APPROVE)
    await wait_until(lambda: metastudio.commit_count(job) == 1, within=15)
    # The stand-in applies a commit before it answers, and records the request as it answers.
    await wait_until(lambda: [r for r in metastudio.requests if r.method == "POST"])
    (sent,) = [r for r in metastudio.requests if r.method == "POST" and job in r.path]
    body = json.loads(sent.body)
    assert (body["sex"], body["language"], body["tag"]) == ("FEMALE", "CN", "CUSTOMER")
    assert body["voice_name"] == "旁白"


async def test_policy_language_accepts_chinese_and_refuses_other_languages(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    ok = await say(driver, slack, f"policy <#{CHANNEL}|voice> language=中文", user=ADMIN)
    assert f"<#{CHANNEL}>" in ok
    refused = await say(driver, slack, f"policy <#{CHANNEL}|voice> language=fr", user=ADMIN)
    assert in_english(messages.bad_policy_language, "fr") in refused
    assert "`en`" in refused
    assert "`zh`" in refused
    not_admin = await say(driver, slack, f"policy <#{CHANNEL}|voice> language=en", user=APPROVER)
    assert "*admin*" in not_admin
    # Neither the refused language nor the approver's attempt changed the channel's.
    shown = await say(driver, slack, "policy", user=ADMIN)
    assert f"<#{CHANNEL}>: Simplified Chinese" in shown
