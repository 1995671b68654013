"""The playground in a real headless Chromium: a person submits through the modal, another
approves on the card, and both see the review outcome arrive in the thread.

The stack is the one ``python -m sandbox`` runs (``sandbox.dev.DevStack``), on the tests' Redis
and key prefix, with review delays cut to fractions of a second. Screenshots of the channel
and the threads go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from bot.settings import load_settings
from sandbox.dev import (
    DEMO_APPROVER,
    DEMO_REQUESTER,
    DEMO_ZH,
    DEV_CHANNEL_ZH,
    DEV_CHANNEL_ZH_NAME,
    DevStack,
    StackOptions,
    delete_run_keys,
    run_isolated,
)
from sandbox.metastudio import ReviewPlan

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install -e '.[test]')"
)

CHROMIUM = os.environ.get("VOICEBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_HAN = re.compile(r"[\u4e00-\u9fff]")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FAST_REVIEW = ReviewPlan(system_delay=0.3, admin_delay=0.3, wait_delay=0.2, train_delay=0.4)
UI_TIMEOUT_MS = 10_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(),
        reason="Debian's chromium is not installed (scripts/bootstrap installs it as root)",
    ),
]


@pytest.fixture
def stack(redis_url: str, redis_prefix: str, redis_client: aioredis.Redis) -> Iterator[DevStack]:
    settings = load_settings(allow_self_approval=False, require_approval=True)
    options = StackOptions(review=FAST_REVIEW, poll_interval=0.2, poll_max_interval=0.5)
    running = DevStack(settings, redis_url, redis_prefix, options).start()
    try:
        yield running
    finally:
        running.stop()
        # arq's cron jobs are keyed without our prefix; remove those still queued.
        run_isolated(delete_run_keys(redis_url, redis_prefix, running.settings.queue_name))
    assert running.slack.validation_errors == [], running.slack.validation_errors


@pytest.fixture
async def page(stack: DevStack) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        tab = await context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield tab
        finally:
            await browser.close()
        assert errors == [], errors


def _job_named(stack: DevStack, voice_name: str) -> str:
    return next(j for j in stack.job_ids if stack.metastudio.job(j)["voice_name"] == voice_name)


async def _act_as(page: Any, user_id: str) -> None:
    await page.select_option("#user-picker", user_id)
    await page.wait_for_function(
        "id => new URL(location.href).searchParams.get('as') === id", arg=user_id
    )


async def _approve_card(page: Any, card_ts: str) -> None:
    card = page.locator(f'#messages .msg[data-ts="{card_ts}"]')
    await card.locator("[data-testid=button-approval_approve]").click()
    confirm = page.locator("#confirm")
    await confirm.get_by_text("Submit to MetaStudio?").wait_for()
    await confirm.locator("[data-testid=confirm-ok]").click()


async def test_submit_through_the_modal_approve_and_see_the_outcome_in_the_thread(
    stack: DevStack, page: Any
) -> None:
    tab = page
    passing = _job_named(stack, "warm_female_cn_01")
    failing = _job_named(stack, "news_anchor_m_02")
    ARTIFACTS.mkdir(exist_ok=True)

    await tab.goto(f"{stack.url}/?as={DEMO_REQUESTER.id}")
    await tab.get_by_text("voicebot is connected").wait_for()

    # The requester opens the submit modal with the bare command.
    await tab.fill("#composer-input", "/voice submit")
    await tab.press("#composer-input", "Enter")
    modal = tab.locator("#modal")
    await modal.get_by_text("Submit voice training").wait_for()

    # Submitting it empty shows the bot's field errors on the fields.
    await modal.locator("[data-testid=modal-submit]").click()
    await modal.locator("[data-testid=error-job_id]").wait_for()
    await modal.locator("[data-testid=error-voice_name]").wait_for()

    # The job picker loads its options from the bot (block_suggestion) as the user types.
    await modal.locator("[data-testid=input-job_id]").click()
    await modal.locator("[data-testid=input-job_id]").press_sequentially("warm")
    options = modal.locator("[data-testid=options-job_id] .combo-option")
    await playwright_api.expect(options).to_have_count(1)
    await options.and_(modal.locator(f'[data-value="{passing}"]')).click()
    await modal.locator("[data-testid=input-voice_name]").fill("narrator")
    await modal.locator("[data-testid=input-sex]").select_option("FEMALE")
    await tab.screenshot(path=str(ARTIFACTS / "playground-modal.png"))
    await modal.locator("[data-testid=modal-submit]").click()
    await tab.locator("#modal-backdrop").wait_for(state="hidden")

    # The approval card is in the channel; the requester's confirmation is theirs alone.
    channel = tab.locator("#messages")
    await channel.get_by_text("Voice training submit request").wait_for()
    await channel.get_by_text("Only visible to you").first.wait_for()
    card = stack.slack.messages(stack.options.channel)[0]
    assert passing in card.text
    assert "Approval requested" in (await channel.inner_text())

    # The approver does not see the requester's ephemeral, and approves on the card.
    await _act_as(tab, DEMO_APPROVER.id)
    await channel.get_by_text("Only visible to you").wait_for(state="detached")
    await _approve_card(tab, card.ts)

    # The card is edited in place and the thread fills with the decision and the outcome.
    await channel.locator(f'.msg[data-ts="{card.ts}"] .edited').wait_for()
    await channel.locator(f'.msg[data-ts="{card.ts}"] [data-testid=open-thread]').click()
    thread = tab.locator("#thread-messages")
    replies = thread.locator(".msg:not(.thread-parent)")
    await replies.get_by_text("Approved by").wait_for()
    await replies.get_by_text("passed review at MetaStudio").wait_for()
    await replies.get_by_text("finished training").wait_for()
    assert await thread.locator(".mention", has_text="@Abe Approver").count() >= 1
    assert stack.metastudio.commit_count(passing) == 1
    await tab.locator("#channel-pane").screenshot(path=str(ARTIFACTS / "playground-channel.png"))
    await tab.screenshot(path=str(ARTIFACTS / "playground-thread.png"))

    # A job that fails review: submitted by command, approved, and the reasons are shown.
    await _act_as(tab, DEMO_REQUESTER.id)
    await tab.fill("#composer-input", f"/voice submit {failing} voice_name=anchor sex=male")
    await tab.press("#composer-input", "Enter")
    await channel.locator(".msg .b-header").nth(1).wait_for()
    second = next(m for m in stack.slack.messages(stack.options.channel) if failing in m.text)
    await _act_as(tab, DEMO_APPROVER.id)
    await _approve_card(tab, second.ts)
    await channel.locator(f'.msg[data-ts="{second.ts}"] [data-testid=open-thread]').click()
    await replies.get_by_text("did not pass review at MetaStudio").wait_for()
    await replies.get_by_text("The authorization letter is unsigned").wait_for()
    await replies.get_by_text("signal-to-noise ratio too low").wait_for()
    await replies.get_by_text("speech does not match the text").wait_for()
    reasons = await thread.inner_text()
    assert re.search(r"MSS\.12000103", reasons)
    assert stack.metastudio.commit_count(failing) == 1
    await tab.screenshot(path=str(ARTIFACTS / "playground-failed-thread.png"))


def test_state_and_act_endpoints_refuse_what_slack_would_not_deliver(stack: DevStack) -> None:
    state = httpx.get(f"{stack.url}/playground/state", params={"user": DEMO_REQUESTER.id})
    assert state.status_code == 200
    body = state.json()
    assert body["connected"] is True
    assert [u["id"] for u in body["demo_users"]][:2] == [DEMO_REQUESTER.id, DEMO_APPROVER.id]
    assert body["messages"] == []
    assert body["view"] is None

    unknown = httpx.post(
        f"{stack.url}/playground/act",
        json={
            "kind": "action",
            "user": DEMO_APPROVER.id,
            "channel": stack.options.channel,
            "ts": "1.000001",
            "action_id": "approval_approve",
        },
    )
    assert unknown.status_code == 409
    assert "no message" in unknown.json()["error"]

    malformed = httpx.post(f"{stack.url}/playground/act", json={"kind": "dance", "user": "U1"})
    assert malformed.status_code == 400

    not_a_command = httpx.post(
        f"{stack.url}/playground/act",
        json={
            "kind": "command",
            "user": DEMO_REQUESTER.id,
            "channel": stack.options.channel,
            "text": "hello",
        },
    )
    assert not_a_command.status_code == 409

    page_html = httpx.get(f"{stack.url}/")
    assert page_html.status_code == 200
    assert "/playground/static/playground.js" in page_html.text
    script = httpx.get(f"{stack.url}/playground/static/playground.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{stack.url}/playground/static/..%2Fserver.py").status_code == 404


RICH_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "Release notes :tada:"}},
    {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": (
                f"*bold* _italic_ ~gone~ `inline code` for <@{DEMO_REQUESTER.id}>\n"
                "<https://example.invalid/docs|the docs> and 1 &lt; 2 &amp; 3\n"
                "> a quoted line\n"
                "• first item\n• second item\n"
                "```line one\nline <two>```"
            ),
        },
    },
    {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*Voice name*\nnarrator"},
            {"type": "mrkdwn", "text": "*Sex*\nFEMALE"},
        ],
    },
    {"type": "divider"},
    {"type": "image", "image_url": "https://example.invalid/chart.png", "alt_text": "a chart"},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "small print"}]},
    {
        "type": "actions",
        "block_id": "demo_actions",
        "elements": [
            {
                "type": "button",
                "action_id": "demo_go",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Go"},
                "value": "go",
            },
            {
                "type": "button",
                "action_id": "demo_stop",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Stop"},
                "value": "stop",
                "confirm": {
                    "title": {"type": "plain_text", "text": "Really stop?"},
                    "text": {"type": "mrkdwn", "text": "This *cannot* be undone."},
                    "confirm": {"type": "plain_text", "text": "Stop it"},
                    "deny": {"type": "plain_text", "text": "Keep going"},
                    "style": "danger",
                },
            },
        ],
    },
]


def _web_api(stack: DevStack, method: str, **body: Any) -> dict[str, Any]:
    reply = httpx.post(
        f"{stack.slack.api_url}{method}",
        json=body,
        headers={"Authorization": f"Bearer {stack.settings.secret('slack_bot_token')}"},
    )
    data: dict[str, Any] = reply.json()
    assert data["ok"], data
    return data


async def test_blocks_render_as_slack_shows_them_and_edits_and_ephemerals_follow_live(
    stack: DevStack, page: Any
) -> None:
    channel_id = stack.options.channel
    posted = _web_api(
        stack, "chat.postMessage", channel=channel_id, text="notes", blocks=RICH_BLOCKS
    )
    _web_api(
        stack,
        "chat.postEphemeral",
        channel=channel_id,
        user=DEMO_APPROVER.id,
        text="only for *Abe*",
    )
    await page.goto(f"{stack.url}/?as={DEMO_REQUESTER.id}")
    message = page.locator(f'#messages .msg[data-ts="{posted["ts"]}"]')
    await message.wait_for()

    assert await message.locator(".b-header").inner_text() == "Release notes 🎉"
    text = message.locator(".b-section .mrkdwn").first
    assert await text.locator("b").first.inner_text() == "bold"
    assert await text.locator("i").inner_text() == "italic"
    assert await text.locator("s").inner_text() == "gone"
    assert await text.locator("code").inner_text() == "inline code"
    assert await text.locator(".mention.me").inner_text() == "@Rin Requester"
    link = text.locator("a")
    assert await link.inner_text() == "the docs"
    assert await link.get_attribute("href") == "https://example.invalid/docs"
    assert "1 < 2 & 3" in await text.inner_text()
    assert await text.locator("blockquote").inner_text() == "a quoted line"
    assert await text.locator(".li").count() == 2
    assert await text.locator("pre").inner_text() == "line one\nline <two>"
    assert await message.locator(".b-fields > div").count() == 2
    assert await message.locator("hr.b-divider").count() == 1
    assert await message.locator(".b-context").inner_text() == "small print"
    # Images from other hosts are not fetched: the alt text stands in, linked to the image.
    chart = message.locator(".b-image a", has_text="a chart")
    assert await chart.get_attribute("href") == "https://example.invalid/chart.png"
    assert "btn-primary" in (
        await message.locator("[data-testid=button-demo_go]").get_attribute("class") or ""
    )
    assert "btn-danger" in (
        await message.locator("[data-testid=button-demo_stop]").get_attribute("class") or ""
    )

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "playground-blocks.png"))

    # A confirm dialog stands between the click and the request; "Keep going" sends nothing.
    await message.locator("[data-testid=button-demo_stop]").click()
    confirm = page.locator("#confirm")
    await confirm.get_by_text("Really stop?").wait_for()
    assert await confirm.locator("b").inner_text() == "cannot"
    await confirm.get_by_text("Keep going").click()
    await page.locator("#confirm-backdrop").wait_for(state="hidden")

    # Another user's ephemeral is not shown; an edit appears in place without a reload.
    assert await page.get_by_text("only for").count() == 0
    _web_api(
        stack,
        "chat.update",
        channel=channel_id,
        ts=posted["ts"],
        text="notes v2",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*Edited* text"}}],
    )
    await message.locator(".edited").wait_for()
    await message.locator("b", has_text="Edited").wait_for()
    assert await page.locator(f'#messages .msg[data-ts="{posted["ts"]}"]').count() == 1
    await _act_as(page, DEMO_APPROVER.id)
    await page.get_by_text("only for").wait_for()
    assert await page.get_by_text("Only visible to you").count() == 1


# The seeded jobs that show each thing the card marks, by voice name.
CARD_DEMOS = {
    "clean": "warm_female_cn_01",
    "snr-reverb": "news_anchor_m_02",
    "no-quota": "storyteller_f_03",
    "no-letter": "live_host_f_04",
    "rejected-twice": "teacher_m_05",
}


async def test_the_demo_cards_show_what_decides_the_review(stack: DevStack, page: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.goto(f"{stack.url}/?as={DEMO_REQUESTER.id}")
    await page.get_by_text("voicebot is connected").wait_for()
    channel = page.locator("#messages")
    expected = {
        "clean": "Nothing MetaStudio reports stands in the way of review",
        "snr-reverb": "Signal-to-noise ratio: 18.7 (expected >=35 dB)",
        "no-quota": "no ADVANCE trainings left",
        "no-letter": "no authorization letter",
        "rejected-twice": "failed review 2 times before",
    }
    for index, (demo, voice_name) in enumerate(CARD_DEMOS.items()):
        job = _job_named(stack, voice_name)
        await page.fill("#composer-input", f"/voice submit {job} voice_name={voice_name}")
        await page.press("#composer-input", "Enter")
        await channel.locator(".msg .b-header").nth(index).wait_for()
        card = next(m for m in stack.slack.messages(stack.options.channel) if job in m.text)
        shown = channel.locator(f'.msg[data-ts="{card.ts}"]')
        await shown.get_by_text(expected[demo]).first.wait_for()
        await shown.scroll_into_view_if_needed()
        await shown.screenshot(path=str(ARTIFACTS / f"playground-card-{demo}.png"))
    await page.locator("#channel-pane").screenshot(path=str(ARTIFACTS / "playground-cards.png"))


async def test_the_home_tab_shows_what_waits_and_approves_from_it(
    stack: DevStack, page: Any
) -> None:
    tab = page
    job = _job_named(stack, "warm_female_cn_01")
    await tab.goto(f"{stack.url}/?as={DEMO_REQUESTER.id}")
    await tab.get_by_text("voicebot is connected").wait_for()
    await tab.fill("#composer-input", f"/voice submit {job} voice_name=narrator sex=female")
    await tab.press("#composer-input", "Enter")
    await tab.locator("#messages").get_by_text("Voice training submit request").wait_for()

    await _act_as(tab, DEMO_APPROVER.id)
    await tab.locator("[data-testid=home-link]").click()
    home = tab.locator("[data-testid=home]")
    await home.get_by_text("Waiting for your approval").wait_for()
    await home.get_by_text(job).wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(ARTIFACTS / "playground-home.png"))
    await home.locator("[data-testid=button-home_approve]").click()
    await tab.locator("#confirm [data-testid=confirm-ok]").click()
    await home.get_by_text("Nothing waits for you.").wait_for()
    card = stack.slack.messages(stack.options.channel)[0]
    assert job in card.text
    await stack.slack.wait_for_async(lambda: stack.metastudio.commit_count(job) == 1, timeout=15)


async def test_a_chinese_user_submits_in_the_chinese_channel_and_sees_a_chinese_card(
    stack: DevStack, page: Any
) -> None:
    """李娜 reads Slack in Chinese and submits in #voice-training-zh, whose language is zh."""
    tab = page
    job = _job_named(stack, "news_anchor_m_02")
    await tab.goto(f"{stack.url}/?as={DEMO_ZH.id}")
    await tab.get_by_text("voicebot is connected").wait_for()
    await tab.locator("#channel-list li").get_by_text(DEV_CHANNEL_ZH_NAME).click()
    await tab.fill("#composer-input", f"/voice submit {job} voice_name=新闻主播 sex=男")
    await tab.press("#composer-input", "Enter")
    card = await stack.slack.wait_for_async(
        lambda: next((m for m in stack.slack.messages(DEV_CHANNEL_ZH) if job in m.text), None),
        timeout=10,
    )
    assert card is not None
    shown = tab.locator(f'#messages .msg[data-ts="{card.ts}"]')
    header = shown.locator(".b-header").first
    await header.wait_for()
    assert _HAN.search(await header.inner_text())
    # MetaStudio's own suggestion, in the Chinese it wrote it in.
    assert _HAN.search(await shown.inner_text())
    assert "Signal-to-noise" not in await shown.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await shown.scroll_into_view_if_needed()
    await shown.screenshot(path=str(ARTIFACTS / "playground-card-zh.png"))

    await _act_as(tab, DEMO_APPROVER.id)
    await tab.locator("#channel-list li").get_by_text(DEV_CHANNEL_ZH_NAME).click()
    await shown.locator("[data-testid=button-approval_approve]").click()
    await tab.locator("#confirm [data-testid=confirm-ok]").click()
    await stack.slack.wait_for_async(lambda: stack.metastudio.commit_count(job) == 1, timeout=15)
    replies = await stack.slack.wait_for_async(
        lambda: stack.slack.thread(DEV_CHANNEL_ZH, card.ts)[1:], timeout=10
    )
    assert all(_HAN.search(reply.text) for reply in replies)
    await tab.locator("#channel-pane").screenshot(path=str(ARTIFACTS / "playground-channel-zh.png"))
