"""The Slack side of a conversation: what a user's click or command makes Slack send to the bot.

``SlackDriver`` builds slash command, ``block_actions``, ``view_submission`` and
``block_suggestion`` payloads shaped like Slack's, issues their trigger ids and response_urls
in the local Slack, and delivers them either over HTTP (form-encoded, signed with the signing
secret) or over the Socket Mode WebSocket. It then does what Slack does with the ack: shows a
slash command's ack body as a message and applies a view submission's ``response_action``.
"""

from __future__ import annotations

import copy
import json
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from sandbox.slack.server import LocalSlack
from sandbox.slack.state import JSON, Message, OpenView, ResponseUrl, SlackError
from sandbox.slack.validation import check_view

# One TLS context for every delivery: each delivery opens a client of its own, as Slack does,
# and building a context (loading the CA bundle) costs more CPU than the delivery itself.
_TLS = ssl.create_default_context()

ACK_DEADLINE = 3.0
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


@dataclass
class DeliveryResult:
    """What came back from the bot for one delivery.

    ``status_code`` is the HTTP status (Socket Mode: 200 once acked); ``None`` with
    ``timed_out`` when no ack came within the deadline, which a user sees as a timeout.
    """

    status_code: int | None
    body: str
    payload: JSON
    elapsed: float
    content_type: str = ""
    response_url: str | None = None
    trigger_id: str | None = None
    envelope_id: str | None = None
    timed_out: bool = False

    @property
    def acked(self) -> bool:
        return self.status_code == 200 and not self.timed_out

    @property
    def json(self) -> JSON | None:
        """The ack body as Slack reads it: JSON, or plain text as ``{"text": ...}``."""
        if not self.body:
            return None
        if self.content_type.startswith("application/json") or self.body.lstrip().startswith("{"):
            try:
                parsed = json.loads(self.body)
            except json.JSONDecodeError:
                return {"text": self.body}
            return parsed if isinstance(parsed, dict) else None
        return {"text": self.body}


def _option_text(option: Mapping[str, Any]) -> str:
    text = option.get("text")
    return str(text.get("text", "")) if isinstance(text, Mapping) else str(text or "")


def _all_options(element: Mapping[str, Any]) -> list[JSON]:
    options = [dict(o) for o in element.get("options", [])]
    for group in element.get("option_groups", []):
        options.extend(dict(o) for o in group.get("options", []))
    return options


def _pick_option(element: Mapping[str, Any], value: Any) -> JSON:
    if isinstance(value, Mapping):
        return dict(value)
    for option in _all_options(element):
        if option.get("value") == value:
            return option
    if element.get("type", "").startswith(("external_select", "multi_external_select")):
        label, option_value = value if isinstance(value, tuple) else (value, value)
        return {
            "text": {"type": "plain_text", "text": str(label), "emoji": True},
            "value": option_value,
        }
    raise LookupError(
        f"{element.get('action_id')!r} has no option with value {value!r}; "
        f"options: {[o.get('value') for o in _all_options(element)]}"
    )


def element_value(element: Mapping[str, Any], value: Any) -> JSON:
    """The typed state entry Slack reports for ``element`` holding ``value``."""
    kind = str(element.get("type"))
    if isinstance(value, Mapping) and "type" in value:
        return dict(value)
    entry: JSON = {"type": kind}
    if kind in {"static_select", "external_select", "radio_buttons", "overflow"}:
        entry["selected_option"] = None if value is None else _pick_option(element, value)
    elif kind in {"multi_static_select", "multi_external_select", "checkboxes"}:
        entry["selected_options"] = [_pick_option(element, v) for v in (value or [])]
    elif kind == "users_select":
        entry["selected_user"] = value
    elif kind == "multi_users_select":
        entry["selected_users"] = list(value or [])
    elif kind == "conversations_select":
        entry["selected_conversation"] = value
    elif kind == "channels_select":
        entry["selected_channel"] = value
    elif kind == "datepicker":
        entry["selected_date"] = value
    elif kind == "timepicker":
        entry["selected_time"] = value
    else:
        entry["value"] = value
    return entry


def initial_value(element: Mapping[str, Any]) -> Any:
    """What an untouched input holds: its ``initial_*`` value, as a raw value."""
    for key in (
        "initial_value",
        "initial_user",
        "initial_conversation",
        "initial_channel",
        "initial_date",
        "initial_time",
        "initial_users",
    ):
        if key in element:
            return element[key]
    if "initial_option" in element:
        return dict(element["initial_option"])
    if "initial_options" in element:
        return [dict(o) for o in element["initial_options"]]
    return None


def interactive_elements(blocks: list[JSON]) -> list[tuple[str, JSON, bool]]:
    """``(block_id, element, is_input)`` for every interactive element in ``blocks``."""
    found: list[tuple[str, JSON, bool]] = []
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        kind = block.get("type")
        if kind == "actions":
            found.extend((block_id, dict(e), False) for e in block.get("elements", []))
        elif kind == "section" and isinstance(block.get("accessory"), Mapping):
            found.append((block_id, dict(block["accessory"]), False))
        elif kind == "input" and isinstance(block.get("element"), Mapping):
            found.append((block_id, dict(block["element"]), True))
    return found


def find_element(
    blocks: list[JSON], action_id: str, block_id: str | None = None
) -> tuple[str, JSON]:
    for found_block_id, element, _ in interactive_elements(blocks):
        if element.get("action_id") == action_id and block_id in (None, found_block_id):
            return found_block_id, element
    known = [(b, e.get("action_id")) for b, e, _ in interactive_elements(blocks)]
    raise LookupError(f"no element with action_id {action_id!r} (block {block_id!r}); have {known}")


class SlackDriver:
    """Sends what Slack would send to the bot, over HTTP or Socket Mode."""

    def __init__(
        self,
        slack: LocalSlack,
        bot_url: str | None = None,
        signing_secret: str | None = None,
        *,
        mode: Literal["http", "socket"] = "http",
        ack_timeout: float = ACK_DEADLINE,
    ) -> None:
        if mode == "http" and not bot_url:
            raise ValueError("HTTP mode needs the bot's request URL")
        self.slack = slack
        self.bot_url = bot_url
        self.mode = mode
        self.ack_timeout = ack_timeout
        self._verifier = SignatureVerifier(signing_secret or slack.signing_secret)

    def __repr__(self) -> str:
        return f"SlackDriver(mode={self.mode!r}, bot_url={self.bot_url!r})"

    # -- signing and raw delivery -----------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers Slack puts on a request: timestamp and ``v0=`` HMAC-SHA256 signature."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._verifier.generate_signature(timestamp=stamp, body=body) or ""
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}

    async def send_raw(self, body: bytes, headers: Mapping[str, str]) -> DeliveryResult:
        """POST ``body`` with exactly ``headers`` (for forged, stale or unsigned requests)."""
        if self.bot_url is None:
            raise ValueError("send_raw needs the bot's request URL")
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=self.ack_timeout, verify=_TLS) as http:
            try:
                response = await http.post(self.bot_url, content=body, headers=dict(headers))
            except httpx.TimeoutException:
                return DeliveryResult(None, "", {}, time.monotonic() - started, timed_out=True)
        return DeliveryResult(
            response.status_code,
            response.text,
            {},
            time.monotonic() - started,
            content_type=response.headers.get("content-type", ""),
        )

    async def _deliver(
        self, envelope_type: str, payload: JSON, form: Mapping[str, str]
    ) -> DeliveryResult:
        if self.mode == "socket":
            started = time.monotonic()
            envelope_id, ack = await self.slack.socket.deliver(
                envelope_type, payload, self.ack_timeout
            )
            elapsed = time.monotonic() - started
            if ack is None:
                return DeliveryResult(
                    None, "", payload, elapsed, envelope_id=envelope_id, timed_out=True
                )
            ack_payload = ack.get("payload")
            return DeliveryResult(
                200,
                json.dumps(ack_payload) if ack_payload else "",
                payload,
                elapsed,
                content_type="application/json" if ack_payload else "",
                envelope_id=envelope_id,
            )
        body = urlencode(form).encode()
        headers = {
            **self.sign(body),
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
        }
        result = await self.send_raw(body, headers)
        result.payload = payload
        return result

    # -- who is acting ----------------------------------------------------------------------

    def _user(self, user: str, team: str) -> JSON:
        name = self.slack.state.ensure_user(user).name
        return {"id": user, "username": name, "name": name, "team_id": team}

    def _team(self, team: str) -> JSON:
        return {"id": team, "domain": self.slack.team_domain}

    def _common(self, user: str, team: str | None, enterprise: str | None) -> JSON:
        team = team or self.slack.team_id
        return {
            "user": self._user(user, team),
            "api_app_id": self.slack.app_id,
            "token": self.slack.verification_token,
            "team": self._team(team),
            "enterprise": {"id": enterprise, "name": enterprise} if enterprise else None,
            "is_enterprise_install": False,
        }

    # -- slash commands ---------------------------------------------------------------------

    async def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user: str,
        channel: str,
        team: str | None = None,
        enterprise: str | None = None,
        channel_name: str | None = None,
    ) -> DeliveryResult:
        """A user typing ``{command} {text}`` in ``channel``."""
        team = team or self.slack.team_id
        channel = self.slack.state.resolve_channel(channel)
        name = self.slack.state.ensure_user(user).name
        record = self.slack.issue_response_url("command", channel, user)
        trigger = self.slack.state.issue_trigger(user)
        form: dict[str, str] = {
            "token": self.slack.verification_token,
            "team_id": team,
            "team_domain": self.slack.team_domain,
        }
        if enterprise:
            form["enterprise_id"] = enterprise
            form["enterprise_name"] = enterprise
        form.update(
            {
                "channel_id": channel,
                "channel_name": channel_name or self.slack.state.channel(channel).name,
                "user_id": user,
                "user_name": name,
                "command": command,
                "text": text,
                "api_app_id": self.slack.app_id,
                "is_enterprise_install": "false",
                "response_url": record.url,
                "trigger_id": trigger.id,
            }
        )
        result = await self._deliver("slash_commands", dict(form), form)
        result.response_url = record.url
        result.trigger_id = trigger.id
        ack = result.json if result.acked else None
        if ack and (ack.get("text") or ack.get("blocks")):
            self.slack.apply_ack_response(record, ack)
        return result

    # -- block actions --------------------------------------------------------------------

    def _action(self, block_id: str, element: JSON, value: Any) -> JSON:
        action: JSON = {
            "action_id": element.get("action_id"),
            "block_id": block_id,
            "action_ts": f"{time.time():.6f}",
        }
        if element.get("type") == "button":
            action.update(
                {
                    "type": "button",
                    "text": copy.deepcopy(element.get("text")),
                    "value": element.get("value") if value is None else value,
                }
            )
            if "style" in element:
                action["style"] = element["style"]
        else:
            action.update(element_value(element, value))
        return action

    async def block_action(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: Any = None,
        *,
        block_id: str | None = None,
        team: str | None = None,
        enterprise: str | None = None,
    ) -> DeliveryResult:
        """A user clicking (or choosing in) element ``action_id`` of a message.

        ``value`` defaults to the button's own value; for selects it is the option value.
        Raises ``LookupError`` when the message has no such element, as a user could not click it.
        """
        channel = self.slack.state.resolve_channel(channel)
        try:
            message: Message = self.slack.state.find_any(channel, message_ts)
        except SlackError as exc:
            raise LookupError(f"no message {message_ts} in {channel}") from exc
        found_block_id, element = find_element(message.blocks, action_id, block_id)
        record = self.slack.issue_response_url("interaction", channel, user, origin=message)
        trigger = self.slack.state.issue_trigger(user)
        container: JSON = {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel,
            "is_ephemeral": message.ephemeral_for is not None,
        }
        if message.thread_ts is not None:
            container["thread_ts"] = message.thread_ts
        payload: JSON = {"type": "block_actions", **self._common(user, team, enterprise)}
        payload.update(
            {
                "container": container,
                "trigger_id": trigger.id,
                "channel": {"id": channel, "name": self.slack.state.channel(channel).name},
                "state": {"values": {}},
                "response_url": record.url,
                "actions": [self._action(found_block_id, element, value)],
            }
        )
        # Slack leaves the message out for ephemerals: the bot never stored them.
        if message.ephemeral_for is None:
            payload["message"] = message.to_api(self.slack.team_id, self.slack.app_id)
        result = await self._deliver("interactive", payload, {"payload": json.dumps(payload)})
        result.response_url = record.url
        result.trigger_id = trigger.id
        return result

    # -- Events API and the Home tab -----------------------------------------------------

    async def event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        team: str | None = None,
    ) -> DeliveryResult:
        """An Events API ``event_callback`` (JSON, signed). A retry (``retry_num``) is what
        Slack sends when it thinks a delivery was lost: the same ``event_id`` again, with
        ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``."""
        team = team or self.slack.team_id
        event_id = event_id or "Ev" + uuid.uuid4().hex[:10].upper()
        envelope: JSON = {
            "token": self.slack.verification_token,
            "team_id": team,
            "api_app_id": self.slack.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team,
                    "user_id": self.slack.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        if self.mode == "socket":
            started = time.monotonic()
            envelope_id, ack = await self.slack.socket.deliver(
                "events_api", envelope, self.ack_timeout, retry_attempt=retry_num
            )
            return DeliveryResult(
                200 if ack is not None else None,
                "",
                envelope,
                time.monotonic() - started,
                envelope_id=envelope_id,
                timed_out=ack is None,
            )
        body = json.dumps(envelope).encode()
        headers = {**self.sign(body), "Content-Type": "application/json", "User-Agent": USER_AGENT}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        result = await self.send_raw(body, headers)
        result.payload = envelope
        return result

    async def open_home(
        self, user: str, *, event_id: str | None = None, retry_num: int | None = None
    ) -> DeliveryResult:
        """The user opens the app's Home tab: ``app_home_opened``, with the view they have."""
        self.slack.state.ensure_user(user)
        event: JSON = {
            "type": "app_home_opened",
            "user": user,
            "channel": "D" + user[1:],
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        shown = self.slack.home(user)
        if shown is not None:
            event["view"] = shown
        return await self.event(event, event_id=event_id, retry_num=retry_num)

    async def home_action(
        self, user: str, action_id: str, value: Any = None, *, block_id: str | None = None
    ) -> DeliveryResult:
        """A click on element ``action_id`` of the user's Home tab as last published."""
        view = self.slack.home(user)
        if view is None:
            raise LookupError(f"{user} has no Home tab published")
        found_block_id, element = find_element(view["blocks"], action_id, block_id)
        trigger = self.slack.state.issue_trigger(user)
        payload: JSON = {"type": "block_actions", **self._common(user, None, None)}
        payload.update(
            {
                "container": {"type": "view", "view_id": view["id"]},
                "trigger_id": trigger.id,
                "view": view,
                "actions": [self._action(found_block_id, element, value)],
            }
        )
        result = await self._deliver("interactive", payload, {"payload": json.dumps(payload)})
        result.trigger_id = trigger.id
        return result

    def _open_view(self, view_id: str, user: str) -> OpenView:
        try:
            opened = self.slack.state.view(view_id)
        except SlackError as exc:
            raise LookupError(f"no view {view_id}") from exc
        if opened.closed:
            raise LookupError(f"view {view_id} is closed")
        if opened.user != user:
            raise LookupError(f"view {view_id} is open for {opened.user}, not {user}")
        return opened

    async def view_action(
        self,
        user: str,
        view_id: str,
        action_id: str,
        value: Any = None,
        *,
        block_id: str | None = None,
        team: str | None = None,
    ) -> DeliveryResult:
        """A user clicking (or choosing in) an element inside an open modal."""
        opened = self._open_view(view_id, user)
        found_block_id, element = find_element(opened.blocks, action_id, block_id)
        trigger = self.slack.state.issue_trigger(user)
        payload: JSON = {"type": "block_actions", **self._common(user, team, None)}
        payload.update(
            {
                "container": {"type": "view", "view_id": view_id},
                "trigger_id": trigger.id,
                "view": copy.deepcopy(opened.view),
                "actions": [self._action(found_block_id, element, value)],
            }
        )
        result = await self._deliver("interactive", payload, {"payload": json.dumps(payload)})
        result.trigger_id = trigger.id
        return result

    # -- modals ---------------------------------------------------------------------------

    def state_values(
        self, opened: OpenView, values: Mapping[str, Mapping[str, Any]] | None
    ) -> JSON:
        """``state.values`` for every input of the view: what the user typed, else the initial."""
        given = {block: dict(actions) for block, actions in (values or {}).items()}
        state: JSON = {}
        for block_id, element, is_input in interactive_elements(opened.blocks):
            action_id = str(element.get("action_id"))
            if block_id in given and action_id in given[block_id]:
                raw = given[block_id].pop(action_id)
            elif is_input:
                raw = initial_value(element)
            else:
                continue
            state.setdefault(block_id, {})[action_id] = element_value(element, raw)
        leftovers = {b: list(a) for b, a in given.items() if a}
        if leftovers:
            raise LookupError(f"view {opened.id} has no input for {leftovers}")
        return state

    async def view_submission(
        self,
        user: str,
        view_id: str,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        team: str | None = None,
        enterprise: str | None = None,
    ) -> DeliveryResult:
        """A user pressing Submit on an open modal.

        ``values`` is ``{block_id: {action_id: value}}`` with raw values (text, an option
        value, a user id...) or full typed entries; inputs left out keep their initial value.
        """
        opened = self._open_view(view_id, user)
        self.slack.state.set_view_values(opened, self.state_values(opened, values))
        trigger = self.slack.state.issue_trigger(user)
        payload: JSON = {"type": "view_submission", **self._common(user, team, enterprise)}
        payload.update(
            {
                "trigger_id": trigger.id,
                "view": copy.deepcopy(opened.view),
                "response_urls": [],
            }
        )
        result = await self._deliver("interactive", payload, {"payload": json.dumps(payload)})
        result.trigger_id = trigger.id
        if result.acked:
            self._apply_view_ack(opened, result.json or {})
        return result

    def _apply_view_ack(self, opened: OpenView, ack: Mapping[str, Any]) -> None:
        action = ack.get("response_action")
        if action == "errors":
            return
        if action in {"update", "push"}:
            verdict = check_view(ack.get("view"), source=f"view_submission ack ({action})")
            self.slack.record_verdict(verdict)
            if not verdict.ok:
                return
            view = dict(ack["view"])
            if action == "update":
                self.slack.state.update_view(opened, view, None)
            else:
                self.slack.state.push_view(opened.user, view)
            return
        self.slack.state.close_view(opened, clear=action == "clear")

    async def block_suggestion(
        self,
        user: str,
        view_id: str,
        action_id: str,
        value: str,
        *,
        block_id: str | None = None,
        team: str | None = None,
    ) -> DeliveryResult:
        """A user typing ``value`` into an external select of an open modal (an options load)."""
        opened = self._open_view(view_id, user)
        found_block_id, _ = find_element(opened.blocks, action_id, block_id)
        payload: JSON = {"type": "block_suggestion", **self._common(user, team, None)}
        payload.update(
            {
                "container": {"type": "view", "view_id": view_id},
                "action_id": action_id,
                "block_id": found_block_id,
                "value": value,
                "view": copy.deepcopy(opened.view),
            }
        )
        return await self._deliver("interactive", payload, {"payload": json.dumps(payload)})

    def response_url_record(self, result: DeliveryResult) -> ResponseUrl | None:
        """The local record behind a result's ``response_url`` (uses so far, origin...)."""
        if result.response_url is None:
            return None
        return self.slack.state.response_url(result.response_url.rsplit("/", 1)[-1])
