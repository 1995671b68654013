"""The local Slack behaves like Slack for everything the bot touches: Web API methods, error
and rate-limit answers, Block Kit validation, trigger ids, response_urls, signed HTTP delivery
and Socket Mode, checked with slack_sdk clients and small Bolt apps."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.serve import ServerThread
from sandbox.slack import LocalSlack, SlackDriver
from sandbox.slack.server import BOT_SCOPES

BOT_TOKEN = "xoxb-local"
CHANNEL = "C0APPROVALS"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def approve_buttons(value: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": "reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": value,
            },
        ],
    }


def voice_modal(title: str = "Submit a voice") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "voice_modal",
        "private_metadata": "job-42",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Submit"},
        "blocks": [
            {
                "type": "input",
                "block_id": "name",
                "label": {"type": "plain_text", "text": "Voice name"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": "sex",
                "label": {"type": "plain_text", "text": "Sex"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": [
                        {"text": {"type": "plain_text", "text": "Female"}, "value": "female"},
                        {"text": {"type": "plain_text", "text": "Male"}, "value": "male"},
                    ],
                },
            },
        ],
    }


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    local = LocalSlack()
    local.add_user("U1", "alice", "Alice Liddell", is_admin=True)
    local.users.add_user("U2", "bob", "Bob")
    local.add_channel(CHANNEL, "voice-approvals")
    with local.serve():
        yield local


@pytest.fixture
def client(slack: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)


# -- Web API ------------------------------------------------------------------------------


async def test_auth_test_tokens_and_unknown_methods(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    auth = await client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T0LOCAL", "U0BOT", "B0BOT")
    assert "chat:write" in auth.headers["x-oauth-scopes"]

    with pytest.raises(SlackApiError) as bad:
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
    assert bad.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as app_token_for_chat:
        await AsyncWebClient(token="xapp-local", base_url=slack.api_url).chat_postMessage(
            channel=CHANNEL, text="hi"
        )
    assert app_token_for_chat.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("chat.scheduleMessage", json={"channel": CHANNEL})
    assert unknown.value.response["error"] == "unknown_method"

    # A form-encoded call with the token as a parameter, as older clients send it.
    async with httpx.AsyncClient() as http:
        form = await http.post(
            f"{slack.api_url}chat.postMessage",
            data={
                "token": BOT_TOKEN,
                "channel": CHANNEL,
                "text": "form",
                "blocks": json.dumps([section("form *body*")]),
            },
        )
    assert form.json()["ok"] is True
    assert slack.messages(CHANNEL)[-1].blocks[0]["text"]["text"] == "form *body*"
    assert [c.token_ok for c in slack.calls("auth.test")] == [True, False]
    assert all("token" not in c.params for c in slack.calls())


async def test_messages_threads_edits_and_permalinks(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(
        channel=CHANNEL, text="Approval needed", blocks=[section("job 42"), approve_buttons("42")]
    )
    assert parent["message"]["bot_id"] == "B0BOT"
    reply = await client.chat_postMessage(channel=CHANNEL, text="submitted", thread_ts=parent["ts"])
    nested = await client.chat_postMessage(channel=CHANNEL, text="queued", thread_ts=reply["ts"])
    broadcast = await client.chat_postMessage(
        channel=CHANNEL, text="done", thread_ts=parent["ts"], reply_broadcast=True
    )
    stamps = [parent["ts"], reply["ts"], nested["ts"], broadcast["ts"]]
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 4

    assert [m.text for m in slack.messages(CHANNEL)] == ["Approval needed", "done"]
    thread = slack.thread(CHANNEL, parent["ts"])
    assert [m.text for m in thread] == ["Approval needed", "submitted", "queued", "done"]
    assert {m.thread_ts for m in thread[1:]} == {parent["ts"]}

    updated = await client.chat_update(
        channel=CHANNEL, ts=parent["ts"], text="Approved", blocks=[section("approved by <@U1>")]
    )
    assert updated["message"]["edited"]["user"] == "U0BOT"
    message = slack.message(CHANNEL, parent["ts"])
    assert (message.text, [v.text for v in message.edited]) == ("Approved", ["Approval needed"])

    link = await client.chat_getPermalink(channel=CHANNEL, message_ts=nested["ts"])
    assert link["permalink"].endswith(
        f"/archives/{CHANNEL}/p{nested['ts'].replace('.', '')}"
        f"?thread_ts={parent['ts']}&cid={CHANNEL}"
    )
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"
    assert slack.validation_errors == []


async def test_ephemerals_users_and_conversations(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postEphemeral(channel=CHANNEL, user="U2", text="only bob")
    assert posted["message_ts"]
    assert [m.text for m in slack.ephemerals(CHANNEL, user="U2")] == ["only bob"]
    assert slack.ephemerals(CHANNEL, user="U1") == []
    assert slack.messages(CHANNEL) == []

    alice = await client.users_info(user="U1")
    assert (alice["user"]["name"], alice["user"]["is_admin"]) == ("alice", True)
    with pytest.raises(SlackApiError) as nobody:
        await client.users_info(user="U404")
    assert nobody.value.response["error"] == "user_not_found"

    # The locale comes only when asked for, as in real Slack; it needs users:read.
    assert "locale" not in alice["user"]
    slack.users.set_locale("U1", "zh-CN")
    alice = await client.users_info(user="U1", include_locale=True)
    assert alice["user"]["locale"] == "zh-CN"
    slack.scopes = slack.scopes - {"users:read"}
    with pytest.raises(SlackApiError) as unscoped:
        await client.users_info(user="U1", include_locale=True)
    assert unscoped.value.response["error"] == "missing_scope"
    slack.scopes = slack.scopes | {"users:read"}

    info = await client.conversations_info(channel=CHANNEL)
    assert info["channel"]["name"] == "voice-approvals"
    dm = await client.chat_postMessage(channel="U1", text="direct")
    assert dm["channel"] == "D1"
    assert [m.text for m in slack.messages("U1")] == ["direct"]


async def test_views_and_trigger_ids(slack: LocalSlack, client: AsyncWebClient) -> None:
    trigger = slack.state.issue_trigger("U1")
    opened = await client.views_open(trigger_id=trigger.id, view=voice_modal())
    view = opened["view"]
    assert (view["callback_id"], view["private_metadata"]) == ("voice_modal", "job-42")
    assert [v.id for v in slack.views] == [view["id"]]

    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger.id, view=voice_modal())
    assert reused.value.response["error"] == "exchanged_trigger_id"
    with pytest.raises(SlackApiError) as forged:
        await client.views_open(trigger_id="123.456.abc", view=voice_modal())
    assert forged.value.response["error"] == "invalid_trigger_id"
    slack.state.trigger_ttl = 0.05
    stale = slack.state.issue_trigger("U1")
    await asyncio.sleep(0.06)
    with pytest.raises(SlackApiError) as expired:
        await client.views_open(trigger_id=stale.id, view=voice_modal())
    assert expired.value.response["error"] == "expired_trigger_id"
    slack.state.trigger_ttl = 3.0

    pushed = await client.views_push(
        trigger_id=slack.state.issue_trigger("U1").id, view=voice_modal("Confirm")
    )
    assert pushed["view"]["previous_view_id"] == view["id"]
    assert pushed["view"]["root_view_id"] == view["id"]

    with pytest.raises(SlackApiError) as conflict:
        await client.views_update(view_id=view["id"], hash="stale-hash", view=voice_modal())
    assert conflict.value.response["error"] == "hash_conflict"
    updated = await client.views_update(
        view_id=view["id"], hash=view["hash"], view=voice_modal("Submitted")
    )
    assert updated["view"]["title"]["text"] == "Submitted"
    assert slack.view(view["id"]).view["title"]["text"] == "Submitted"
    assert slack.validation_errors == []


# -- injected failures --------------------------------------------------------------------


async def test_fail_next_and_rate_limit(slack: LocalSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    slack.fail_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel=CHANNEL, text="lost")
    assert failed.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel=CHANNEL, text="kept"))["ok"]

    slack.rate_limit_next("chat.postMessage", retry_after=0)
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel=CHANNEL, text="limited")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "0"

    retrying = AsyncWebClient(
        token=BOT_TOKEN,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    slack.rate_limit_next("chat.postMessage", retry_after=0)
    assert (await retrying.chat_postMessage(channel=CHANNEL, text="after retry"))["ok"]
    assert [m.text for m in slack.messages(CHANNEL)] == ["kept", "after retry"]
    assert [c.status_code for c in slack.calls("chat.postMessage")] == [200, 200, 429, 429, 200]
    assert [c.injected for c in slack.calls("chat.postMessage")].count(True) == 3


# -- Block Kit validation -----------------------------------------------------------------


async def test_invalid_blocks_are_rejected_and_recorded(slack: LocalSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as unknown_type:
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=[{"type": "nonsense"}])
    assert unknown_type.value.response["error"] == "invalid_blocks"
    assert "unknown block type 'nonsense'" in unknown_type.value.response["errors"][0]

    with pytest.raises(SlackApiError) as too_many:
        await client.chat_postMessage(
            channel=CHANNEL, text="x", blocks=[section(str(i)) for i in range(51)]
        )
    assert "51 blocks, at most 50" in too_many.value.response["errors"][0]
    fifty = await client.chat_postMessage(
        channel=CHANNEL, text="x", blocks=[section(str(i)) for i in range(50)]
    )
    assert fifty["ok"]

    bad_fields = [
        section("x" * 3001),
        {"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "colour": "red"},
        {"type": "actions", "elements": [{"type": "bogus_button", "action_id": "a"}]},
    ]
    for block in bad_fields:
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel=CHANNEL, text="x", blocks=[block])
    with pytest.raises(SlackApiError) as long_title:
        await client.views_open(
            trigger_id=slack.state.issue_trigger("U1").id, view=voice_modal("x" * 25)
        )
    assert long_title.value.response["error"] == "invalid_arguments"

    errors = slack.validation_errors
    assert len(errors) == 6
    assert any("3000" in e for e in errors)
    assert any(".colour" in e for e in errors)
    assert any("bogus_button" in e for e in errors)
    assert any("title" in e for e in errors)
    assert [m.text for m in slack.messages(CHANNEL)] == ["x"]

    with pytest.warns(UserWarning, match="top-level"):
        await client.chat_postMessage(channel=CHANNEL, blocks=[section("no fallback")])
    assert any("without top-level text" in w for w in slack.warnings)


# -- response_url -------------------------------------------------------------------------


async def test_response_url_modes_and_limit(slack: LocalSlack, client: AsyncWebClient) -> None:
    origin = await client.chat_postMessage(
        channel=CHANNEL, text="Approve?", blocks=[approve_buttons("42")]
    )
    message = slack.message(CHANNEL, origin["ts"])
    record = slack.issue_response_url("interaction", CHANNEL, "U1", origin=message)
    async with httpx.AsyncClient() as http:
        statuses = []
        for body in (
            {"text": "just for you"},
            {"text": "for everyone", "response_type": "in_channel"},
            {"text": "Approved", "replace_original": True},
            {"blocks": [{"type": "nonsense"}], "text": "bad"},
            {"delete_original": True},
            {"text": "sixth"},
        ):
            response = await http.post(record.url, json=body)
            statuses.append((response.status_code, response.text))
    assert statuses[:5] == [
        (200, '{"ok":true}'),
        (200, '{"ok":true}'),
        (200, '{"ok":true}'),
        (400, "invalid_blocks"),
        (200, '{"ok":true}'),
    ]
    assert statuses[5] == (404, "used_url")
    assert [p.outcome for p in slack.responses] == [
        "ephemeral",
        "in_channel",
        "replaced",
        "invalid_blocks",
        "deleted",
        "used_url",
    ]
    assert [m.text for m in slack.ephemerals(CHANNEL, "U1")] == ["just for you"]
    assert [m.text for m in slack.messages(CHANNEL)] == ["for everyone"]
    assert [v.text for v in message.edited] == ["Approve?"]
    assert message.deleted
    assert len(slack.validation_errors) == 1


# -- delivery to a Bolt app ---------------------------------------------------------------


def build_bolt_app(slack: LocalSlack, client: AsyncWebClient) -> AsyncApp:
    app = AsyncApp(client=client, signing_secret=slack.signing_secret)

    @app.command("/voice")
    async def voice(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.chat_postMessage(
            channel=command["channel_id"],
            text=f"{command['user_id']} asked: {command['text']}",
            blocks=[section(command["text"]), approve_buttons("job-42")],
        )

    @app.command("/voice-form")
    async def voice_form(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await client.views_open(trigger_id=body["trigger_id"], view=voice_modal())
        await ack("opening the form")

    @app.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action = body["actions"][0]
        await respond(
            replace_original=True, text=f"approved {action['value']} by {body['user']['id']}"
        )

    @app.view("voice_modal")
    async def submitted(ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient) -> None:
        values = view["state"]["values"]
        if not values["name"]["value"]["value"]:
            await ack(response_action="errors", errors={"name": "Required"})
            return
        await ack()
        await client.chat_postMessage(
            channel=CHANNEL,
            text=f"{view['private_metadata']}: {values['name']['value']['value']}"
            f" ({values['sex']['value']['selected_option']['value']})",
        )

    return app


@pytest.fixture
def bot_url(slack: LocalSlack, client: AsyncWebClient) -> Iterator[str]:
    handler = AsyncSlackRequestHandler(build_bolt_app(slack, client))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    with ServerThread(Starlette(routes=[Route("/slack/events", events, methods=["POST"])])) as bot:
        yield f"{bot.url}/slack/events"


async def test_signed_http_delivery_to_bolt(slack: LocalSlack, bot_url: str) -> None:
    driver = SlackDriver(slack, bot_url=bot_url, signing_secret=slack.signing_secret)
    result = await driver.slash_command(
        "/voice", "submit abc voice_name=x", user="U1", channel=CHANNEL
    )
    assert result.acked
    assert result.elapsed < 3.0
    assert result.response_url
    assert result.trigger_id
    posted = await slack.wait_for_async(lambda: slack.messages(CHANNEL))
    assert posted[0].text == "U1 asked: submit abc voice_name=x"
    assert [c.method for c in slack.calls()][:2] == ["auth.test", "chat.postMessage"]

    clicked = await driver.block_action("U2", CHANNEL, posted[0].ts, "approve")
    assert clicked.payload["actions"][0]["value"] == "job-42"
    assert clicked.payload["container"]["message_ts"] == posted[0].ts
    await slack.wait_for_async(lambda: posted[0].edited)
    assert posted[0].text == "approved job-42 by U2"
    with pytest.raises(LookupError):
        await driver.block_action("U2", CHANNEL, posted[0].ts, "no-such-button")

    body = b"command=%2Fvoice&text=submit&user_id=U1&channel_id=C1&team_id=T0LOCAL"
    forged = await driver.send_raw(
        body, {**driver.sign(body), "X-Slack-Signature": "v0=" + "0" * 64}
    )
    stale = await driver.send_raw(body, driver.sign(body, timestamp=int(time.time()) - 600))
    unsigned = await driver.send_raw(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert [forged.status_code, stale.status_code, unsigned.status_code] == [401, 401, 401]
    assert slack.validation_errors == []


async def test_modal_round_trip_over_http(slack: LocalSlack, bot_url: str) -> None:
    driver = SlackDriver(slack, bot_url=bot_url)
    opened = await driver.slash_command("/voice-form", user="U1", channel=CHANNEL)
    assert opened.acked
    assert [m.text for m in slack.ephemerals(CHANNEL, "U1")] == ["opening the form"]
    (modal,) = slack.views
    assert (modal.user, modal.callback_id) == ("U1", "voice_modal")

    empty = await driver.view_submission("U1", modal.id, {"sex": {"value": "male"}})
    assert empty.json == {"response_action": "errors", "errors": {"name": "Required"}}
    assert not slack.view(modal.id).closed

    with pytest.raises(LookupError):
        await driver.view_submission("U1", modal.id, {"sex": {"value": "other"}})
    done = await driver.view_submission(
        "U1", modal.id, {"name": {"value": "narrator"}, "sex": {"value": "female"}}
    )
    assert done.acked
    sent = done.payload["view"]["state"]["values"]
    assert sent["sex"]["value"]["selected_option"]["text"]["text"] == "Female"
    assert sent["name"]["value"] == {"type": "plain_text_input", "value": "narrator"}
    assert slack.views == []
    posted = await slack.wait_for_async(lambda: slack.messages(CHANNEL))
    assert posted[0].text == "job-42: narrator (female)"


async def test_socket_mode_round_trip(slack: LocalSlack, client: AsyncWebClient) -> None:
    app = build_bolt_app(slack, client)
    handler = AsyncSocketModeHandler(app, app_token="xapp-local")
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await slack.wait_for_async(lambda: slack.socket.connection_count)
        driver = SlackDriver(slack, mode="socket")
        result = await driver.slash_command("/voice", "submit sock", user="U2", channel=CHANNEL)
        assert result.acked
        assert result.envelope_id
        posted = await slack.wait_for_async(lambda: slack.messages(CHANNEL))
        assert posted[0].text == "U2 asked: submit sock"

        form = await driver.slash_command("/voice-form", user="U2", channel=CHANNEL)
        assert form.json == {"text": "opening the form"}
        (modal,) = slack.views
        await driver.view_submission(
            "U2", modal.id, {"name": {"value": "sock"}, "sex": {"value": "male"}}
        )
        assert slack.views == []
        await slack.wait_for_async(lambda: len(slack.messages(CHANNEL)) == 2)
        assert slack.messages(CHANNEL)[1].text == "job-42: sock (male)"
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
    assert [c.method for c in slack.calls("apps.connections.open")] == ["apps.connections.open"]
    assert slack.validation_errors == []


async def test_socket_mode_unacked_envelope_times_out(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    app = AsyncApp(client=client)
    handler = AsyncSocketModeHandler(app, app_token="xapp-local")
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await slack.wait_for_async(lambda: slack.socket.connection_count)

        @app.command("/slow")
        async def never_acks(command: dict[str, Any]) -> None:
            return None

        driver = SlackDriver(slack, mode="socket", ack_timeout=0.3)
        result = await driver.slash_command("/slow", user="U1", channel=CHANNEL)
        assert result.timed_out
        assert not result.acked
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


def picker_modal(title: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "picker",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Next"},
        "blocks": [
            {
                "type": "input",
                "block_id": "voice",
                "label": {"type": "plain_text", "text": "Voice"},
                "element": {"type": "external_select", "action_id": "lookup"},
            },
            {
                "type": "actions",
                "block_id": "tools",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "refresh",
                        "text": {"type": "plain_text", "text": "Refresh"},
                    }
                ],
            },
        ],
    }


async def test_options_in_modal_actions_and_response_actions(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    app = AsyncApp(client=client, signing_secret=slack.signing_secret)

    @app.command("/pick")
    async def pick(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await client.views_open(trigger_id=body["trigger_id"], view=picker_modal("Pick"))
        await ack()

    @app.options("lookup")
    async def lookup(ack: AsyncAck, body: dict[str, Any]) -> None:
        typed = body["value"]
        await ack(options=[{"text": {"type": "plain_text", "text": typed}, "value": typed}])

    @app.action("refresh")
    async def refresh(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        view = body["view"]
        await client.views_update(view_id=view["id"], hash=view["hash"], view=picker_modal("Fresh"))

    @app.view("picker")
    async def step(ack: AsyncAck, view: dict[str, Any]) -> None:
        chosen = view["state"]["values"]["voice"]["lookup"]["selected_option"]["value"]
        if view["title"]["text"] == "Fresh":
            await ack(response_action="push", view=picker_modal(f"Confirm {chosen}"))
        else:
            await ack(response_action="clear")

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    with ServerThread(Starlette(routes=[Route("/slack/events", events, methods=["POST"])])) as bot:
        driver = SlackDriver(slack, bot_url=f"{bot.url}/slack/events")
        assert (await driver.slash_command("/pick", user="U1", channel=CHANNEL)).acked
        (modal,) = slack.views

        options = await driver.block_suggestion("U1", modal.id, "lookup", "nar")
        assert options.json == {
            "options": [{"text": {"type": "plain_text", "text": "nar"}, "value": "nar"}]
        }

        await driver.view_action("U1", modal.id, "refresh")
        await slack.wait_for_async(lambda: modal.view["title"]["text"] == "Fresh")

        pushed = await driver.view_submission("U1", modal.id, {"voice": {"lookup": "narrator"}})
        assert pushed.payload["view"]["state"]["values"]["voice"]["lookup"]["selected_option"] == {
            "text": {"type": "plain_text", "text": "narrator", "emoji": True},
            "value": "narrator",
        }
        assert [v.view["title"]["text"] for v in slack.views] == ["Fresh", "Confirm narrator"]

        top = slack.views[-1]
        assert top.previous_view_id == modal.id
        await driver.view_submission("U1", top.id, {"voice": {"lookup": "narrator"}})
        assert slack.views == []
    assert slack.validation_errors == []


async def test_socket_mode_client_reconnects_on_refresh(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    app = build_bolt_app(slack, client)
    handler = AsyncSocketModeHandler(app, app_token="xapp-local")
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await slack.wait_for_async(lambda: slack.socket.connection_count)
        assert await slack.socket.disconnect_all() == 1
        await slack.wait_for_async(
            lambda: slack.socket.connections_opened == 2 and slack.socket.connection_count == 1
        )
        driver = SlackDriver(slack, mode="socket")
        assert (await driver.slash_command("/voice", "again", user="U1", channel=CHANNEL)).acked
        await slack.wait_for_async(lambda: slack.messages(CHANNEL))
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
    assert len(slack.calls("apps.connections.open")) == 2


def manifest_bot_scopes(path: Path) -> list[str]:
    """The ``oauth_config.scopes.bot`` list of a manifest (plain YAML, read line by line)."""
    lines = path.read_text().splitlines()
    start = lines.index("    bot:") + 1
    scopes = []
    for line in lines[start:]:
        if not line.startswith("      - "):
            break
        scopes.append(line.removeprefix("      - ").strip())
    return scopes


def test_the_manifests_ask_for_what_the_local_slack_grants_and_no_more() -> None:
    """The local Slack refuses what the real one refuses with these scopes (for example a
    post in a channel the bot was not invited to, without chat:write.public)."""
    config = Path(__file__).resolve().parents[1] / "config"
    for name in ("slack-manifest.yaml", "slack-manifest.socket-mode.yaml"):
        assert sorted(manifest_bot_scopes(config / name)) == sorted(BOT_SCOPES), name
    assert "chat:write.public" not in BOT_SCOPES


@pytest.mark.parametrize("public_scope", [False, True], ids=["invited_only", "chat_write_public"])
async def test_the_bot_posts_only_where_slack_lets_it(public_scope: bool) -> None:
    scopes = (*BOT_SCOPES, "chat:write.public") if public_scope else BOT_SCOPES
    local = LocalSlack(scopes=scopes)
    local.add_channel("CINVITED01", "invited")
    local.add_channel("CPUBLIC001", "public", bot_member=False)
    local.add_channel("GPRIVATE01", "private", is_private=True, bot_member=False)
    local.add_channel("CARCHIVED1", "archived")
    local.archive("CARCHIVED1")
    local.add_user("U0PERSON1")
    with local.serve():
        client = AsyncWebClient(token="xoxb-local", base_url=local.api_url)

        async def error_of(method: str, **params: Any) -> str | None:
            try:
                await client.api_call(method, json=params)
            except SlackApiError as error:
                return str(error.response["error"])
            return None

        for method, extra in (
            ("chat.postMessage", {}),
            ("chat.postEphemeral", {"user": "U0PERSON1"}),
        ):
            assert await error_of(method, channel="CINVITED01", text="hi", **extra) is None
            assert await error_of(method, channel="CPUBLIC001", text="hi", **extra) == (
                None if public_scope else "not_in_channel"
            )
            assert await error_of(method, channel="GPRIVATE01", text="hi", **extra) == (
                "channel_not_found"
            )
            assert await error_of(method, channel="CARCHIVED1", text="hi", **extra) == (
                "is_archived"
            )
            assert await error_of(method, channel="CNOSUCH001", text="hi", **extra) == (
                "channel_not_found"
            )
        local.set_bot_member("CPUBLIC001", True)
        assert await error_of("chat.postMessage", channel="CPUBLIC001", text="hi") is None
