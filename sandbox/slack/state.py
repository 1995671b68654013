"""The local workspace: users, channels, messages with threads and edits, ephemerals, views,
trigger ids, response_urls and the record of every call.

The Web API server mutates it from the server thread while tests and the driver read it from
theirs, so every access goes through one lock. Rule violations raise ``SlackError`` carrying
the error code real Slack would answer with.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]

TRIGGER_TTL = 3.0
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL = 30 * 60.0
MAX_VIEW_STACK = 3


class SlackError(Exception):
    """A Slack error code (``channel_not_found``, ``expired_trigger_id``...) for the caller."""

    def __init__(self, code: str, detail: list[str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail or []


@dataclass
class User:
    id: str
    name: str
    real_name: str
    team_id: str
    is_admin: bool = False
    is_bot: bool = False
    # Slack's BCP 47-ish locale, as users.info reports it with include_locale=true.
    locale: str = "en-US"

    def to_api(self, *, include_locale: bool = False) -> JSON:
        user: JSON = {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "tz": "UTC",
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "team": self.team_id,
            },
        }
        if include_locale:
            user["locale"] = self.locale
        return user


@dataclass
class UserGroup:
    """A user group (``S...``): mentioned as ``<!subteam^ID|@handle>``."""

    id: str
    handle: str
    users: list[str]
    disabled: bool = False


@dataclass
class Channel:
    """A conversation. ``bot_member``: whether the bot was invited (``/invite @voicebot``)."""

    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    bot_member: bool = False

    @property
    def is_im(self) -> bool:
        return self.id.startswith("D")

    def to_api(self) -> JSON:
        is_im = self.id.startswith("D")
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not is_im and not self.is_private,
            "is_group": self.is_private,
            "is_im": is_im,
            "is_private": self.is_private or is_im,
            "is_archived": self.is_archived,
            "is_member": self.bot_member or is_im,
            "created": 1700000000,
        }


@dataclass
class MessageVersion:
    """A message's content before an edit (``chat.update`` or ``replace_original``)."""

    text: str
    blocks: list[JSON]
    replaced_at: float
    by: str


@dataclass
class Message:
    """A message as a channel shows it. Ephemerals carry ``ephemeral_for``; thread replies sit
    in their parent's ``replies`` (and, with ``reply_broadcast``, in the channel too)."""

    channel: str
    ts: str
    text: str
    blocks: list[JSON]
    user: str
    bot_id: str | None = None
    thread_ts: str | None = None
    replies: list[Message] = field(default_factory=list)
    edited: list[MessageVersion] = field(default_factory=list)
    ephemeral_for: str | None = None
    reply_broadcast: bool = False
    deleted: bool = False
    attachments: list[JSON] = field(default_factory=list)
    metadata: JSON | None = None
    via: str = "chat.postMessage"

    def to_api(self, team_id: str, app_id: str) -> JSON:
        body: JSON = {
            "type": "message",
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            "team": team_id,
        }
        if self.blocks:
            body["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            body["attachments"] = copy.deepcopy(self.attachments)
        if self.bot_id is not None:
            body["bot_id"] = self.bot_id
            body["app_id"] = app_id
        if self.thread_ts is not None:
            body["thread_ts"] = self.thread_ts
        elif self.replies:
            body["thread_ts"] = self.ts
            body["reply_count"] = len(self.replies)
            body["latest_reply"] = self.replies[-1].ts
        if self.edited:
            body["edited"] = {"user": self.edited[-1].by, "ts": self.ts}
        if self.metadata is not None:
            body["metadata"] = copy.deepcopy(self.metadata)
        return body


@dataclass
class Trigger:
    id: str
    user: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseUrl:
    """A ``response_url`` handed to the bot with one slash command or interaction."""

    id: str
    url: str
    kind: Literal["command", "interaction"]
    channel: str
    user: str
    created_at: float
    origin_ts: str | None = None
    origin_ephemeral: bool = False
    uses: int = 0


@dataclass
class ResponsePost:
    """One POST to a response_url (or an ack body that Slack shows as a message)."""

    url_id: str
    body: JSON
    at: float
    status_code: int
    outcome: str

    @property
    def response_type(self) -> str:
        return str(self.body.get("response_type", "ephemeral"))

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass
class OpenView:
    """A modal on a user's screen. ``view`` is the JSON Slack returns (id, hash, state...)."""

    id: str
    user: str
    view: JSON
    root_view_id: str
    previous_view_id: str | None = None
    closed: bool = False

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id", ""))

    @property
    def private_metadata(self) -> str:
        return str(self.view.get("private_metadata", ""))

    @property
    def hash(self) -> str:
        return str(self.view["hash"])

    @property
    def external_id(self) -> str | None:
        value = self.view.get("external_id")
        return str(value) if value else None

    @property
    def blocks(self) -> list[JSON]:
        return list(self.view.get("blocks", []))

    @property
    def values(self) -> JSON:
        """The current ``state.values``, as a ``view_submission`` carries them."""
        return dict(self.view.get("state", {}).get("values", {}))


@dataclass
class RecordedCall:
    """One Web API request: what arrived, whether its token was good, what was answered."""

    method: str
    params: JSON
    token_ok: bool
    at: float
    status_code: int
    response: JSON
    injected: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))


def _random_id(prefix: str, length: int = 10) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def with_block_ids(blocks: list[JSON]) -> list[JSON]:
    """A copy of ``blocks`` with a ``block_id`` on every block, as Slack stores them."""
    filled = copy.deepcopy(blocks)
    for block in filled:
        if isinstance(block, dict) and not block.get("block_id"):
            block["block_id"] = secrets.token_urlsafe(4)
    return filled


class SlackState:
    """Everything the local workspace holds, behind one lock."""

    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        trigger_ttl: float = TRIGGER_TTL,
        response_url_max_uses: int = RESPONSE_URL_MAX_USES,
        response_url_ttl: float = RESPONSE_URL_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.trigger_ttl = trigger_ttl
        self.response_url_max_uses = response_url_max_uses
        self.response_url_ttl = response_url_ttl
        self.clock = clock
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, UserGroup] = {}
        # Each user's Home tab as last published (views.publish), and how often it was.
        self.home_views: dict[str, JSON] = {}
        self.home_publishes: dict[str, int] = {}
        self._channel_messages: dict[str, list[Message]] = {}
        self._ephemerals: dict[str, list[Message]] = {}
        self._by_ts: dict[tuple[str, str], Message] = {}
        self._views: dict[str, OpenView] = {}
        self._stacks: dict[str, list[str]] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self.responses: list[ResponsePost] = []
        self.calls: list[RecordedCall] = []
        self.validation_errors: list[str] = []
        self.warnings: list[str] = []
        self._last_ts_micros = 0
        self.add_user(bot_user_id, "voicebot", "voicebot", is_bot=True)

    # -- directory ----------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        real_name: str | None = None,
        *,
        is_admin: bool = False,
        is_bot: bool = False,
        locale: str = "en-US",
    ) -> User:
        with self.lock:
            user = User(
                id=user_id,
                name=name or user_id.lower(),
                real_name=real_name or name or user_id,
                team_id=self.team_id,
                is_admin=is_admin,
                is_bot=is_bot,
                locale=locale,
            )
            self.users[user_id] = user
            return user

    def user(self, user_id: str) -> User:
        with self.lock:
            if user_id not in self.users:
                raise SlackError("user_not_found")
            return self.users[user_id]

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> UserGroup:
        with self.lock:
            for user in users:
                self.ensure_user(user)
            group = UserGroup(id=group_id, handle=handle, users=list(users))
            self.usergroups[group_id] = group
            return group

    def set_usergroup_users(self, group_id: str, users: list[str]) -> None:
        """``usergroups.users.update``: the group's members become exactly ``users``."""
        with self.lock:
            for user in users:
                self.ensure_user(user)
            self.usergroup(group_id).users = list(users)

    def usergroup(self, group_id: str) -> UserGroup:
        with self.lock:
            if group_id not in self.usergroups:
                raise SlackError("no_such_subteam")
            return self.usergroups[group_id]

    def ensure_user(self, user_id: str) -> User:
        with self.lock:
            return self.users.get(user_id) or self.add_user(user_id)

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        is_private: bool = False,
        bot_member: bool = False,
    ) -> Channel:
        with self.lock:
            channel = Channel(
                channel_id, name or channel_id.lower(), is_private, bot_member=bot_member
            )
            self.channels[channel_id] = channel
            return channel

    def resolve_channel(self, channel: str) -> str:
        """A user id as channel means that user's DM with the bot, as in real Slack. A
        channel a user acts in exists; the bot is not in it until someone invites it."""
        if not channel:
            raise SlackError("channel_not_found")
        if channel[0] in "UW":
            channel = "D" + channel[1:]
        with self.lock:
            if channel not in self.channels:
                self.add_channel(channel)
        return channel

    def check_bot_can_post(self, channel_id: str, scopes: frozenset[str]) -> None:
        """Raise the ``SlackError`` real Slack answers when the bot posts where it can't.

        A bot posts in its DMs and in the channels it is a member of; in other public
        channels only with ``chat:write.public``; a private channel it is not in does not
        exist as far as it can tell.
        """
        if not channel_id:
            raise SlackError("channel_not_found")
        if channel_id[0] in "UW":
            return
        with self.lock:
            channel = self.channels.get(channel_id)
            if channel is None:
                raise SlackError("channel_not_found")
            if channel.is_im:
                return
            if channel.is_private and not channel.bot_member:
                raise SlackError("channel_not_found")
            if channel.is_archived:
                raise SlackError("is_archived")
            if not channel.bot_member and "chat:write.public" not in scopes:
                raise SlackError("not_in_channel")

    def channel(self, channel_id: str) -> Channel:
        with self.lock:
            if channel_id not in self.channels:
                raise SlackError("channel_not_found")
            return self.channels[channel_id]

    # -- messages -----------------------------------------------------------------------

    def next_ts(self) -> str:
        with self.lock:
            micros = max(int(self.clock() * 1_000_000), self._last_ts_micros + 1)
            self._last_ts_micros = micros
            return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def find(self, channel: str, ts: str) -> Message:
        with self.lock:
            message = self._by_ts.get((channel, ts))
            if message is None or message.deleted:
                raise SlackError("message_not_found")
            return message

    def find_any(self, channel: str, ts: str) -> Message:
        """A message or an ephemeral by ts (interactions can come from either)."""
        with self.lock:
            try:
                return self.find(channel, ts)
            except SlackError:
                for message in self._ephemerals.get(channel, []):
                    if message.ts == ts and not message.deleted:
                        return message
                raise

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[JSON],
        user: str,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
        via: str = "chat.postMessage",
    ) -> Message:
        with self.lock:
            channel = self.resolve_channel(channel)
            parent: Message | None = None
            if thread_ts:
                parent = self.find(channel, thread_ts)
                # Replying to a reply lands in the same thread, under its parent.
                if parent.thread_ts is not None and parent.thread_ts != parent.ts:
                    parent = self.find(channel, parent.thread_ts)
            message = Message(
                channel=channel,
                ts=self.next_ts(),
                text=text,
                blocks=with_block_ids(blocks),
                user=user,
                bot_id=self.bot_id if user == self.bot_user_id else None,
                thread_ts=parent.ts if parent is not None else None,
                reply_broadcast=reply_broadcast and parent is not None,
                attachments=copy.deepcopy(attachments or []),
                metadata=copy.deepcopy(metadata),
                via=via,
            )
            self._by_ts[(channel, message.ts)] = message
            if parent is None:
                self._channel_messages.setdefault(channel, []).append(message)
            else:
                parent.replies.append(message)
                if message.reply_broadcast:
                    self._channel_messages.setdefault(channel, []).append(message)
            return message

    def post_ephemeral(
        self,
        channel: str,
        *,
        user: str,
        text: str,
        blocks: list[JSON],
        thread_ts: str | None = None,
        via: str = "chat.postEphemeral",
    ) -> Message:
        with self.lock:
            channel = self.resolve_channel(channel)
            message = Message(
                channel=channel,
                ts=self.next_ts(),
                text=text,
                blocks=with_block_ids(blocks),
                user=self.bot_user_id,
                bot_id=self.bot_id,
                thread_ts=thread_ts,
                ephemeral_for=user,
                via=via,
            )
            self._ephemerals.setdefault(channel, []).append(message)
            return message

    def update(
        self, message: Message, *, text: str | None, blocks: list[JSON] | None, by: str
    ) -> Message:
        with self.lock:
            message.edited.append(
                MessageVersion(message.text, message.blocks, replaced_at=self.clock(), by=by)
            )
            if text is not None:
                message.text = text
            if blocks is not None:
                message.blocks = with_block_ids(blocks)
            return message

    def delete(self, message: Message) -> None:
        with self.lock:
            message.deleted = True

    def messages(self, channel: str) -> list[Message]:
        with self.lock:
            return [m for m in self._channel_messages.get(channel, []) if not m.deleted]

    def thread(self, channel: str, ts: str) -> list[Message]:
        with self.lock:
            parent = self.find(channel, ts)
            return [parent, *(m for m in parent.replies if not m.deleted)]

    def ephemerals(self, channel: str, user: str | None = None) -> list[Message]:
        with self.lock:
            return [
                m
                for m in self._ephemerals.get(channel, [])
                if not m.deleted and (user is None or m.ephemeral_for == user)
            ]

    def all_channels(self) -> list[str]:
        with self.lock:
            return sorted(set(self._channel_messages) | set(self._ephemerals))

    # -- triggers and response_urls -----------------------------------------------------

    def issue_trigger(self, user: str) -> Trigger:
        with self.lock:
            trigger = Trigger(
                id=f"{int(self.clock())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}",
                user=user,
                issued_at=self.clock(),
            )
            self._triggers[trigger.id] = trigger
            return trigger

    def exchange_trigger(self, trigger_id: str) -> Trigger:
        with self.lock:
            trigger = self._triggers.get(trigger_id)
            if trigger is None:
                raise SlackError("invalid_trigger_id")
            if trigger.used:
                raise SlackError("exchanged_trigger_id")
            if self.clock() - trigger.issued_at > self.trigger_ttl:
                raise SlackError("expired_trigger_id")
            trigger.used = True
            return trigger

    def issue_response_url(
        self,
        base_url: str,
        *,
        kind: Literal["command", "interaction"],
        channel: str,
        user: str,
        origin_ts: str | None = None,
        origin_ephemeral: bool = False,
    ) -> ResponseUrl:
        with self.lock:
            url_id = secrets.token_urlsafe(18)
            record = ResponseUrl(
                id=url_id,
                url=f"{base_url.rstrip('/')}/response/{url_id}",
                kind=kind,
                channel=channel,
                user=user,
                created_at=self.clock(),
                origin_ts=origin_ts,
                origin_ephemeral=origin_ephemeral,
            )
            self._response_urls[url_id] = record
            return record

    def response_url(self, url_id: str) -> ResponseUrl | None:
        with self.lock:
            return self._response_urls.get(url_id)

    def use_response_url(self, url_id: str) -> ResponseUrl:
        with self.lock:
            record = self._response_urls.get(url_id)
            if record is None:
                raise SlackError("no_service")
            if self.clock() - record.created_at > self.response_url_ttl:
                raise SlackError("expired_url")
            if record.uses >= self.response_url_max_uses:
                raise SlackError("used_url")
            record.uses += 1
            return record

    def apply_response(self, record: ResponseUrl, body: Mapping[str, Any]) -> str:
        """Do what Slack does with a response_url body; returns what happened."""
        text = str(body.get("text") or "")
        blocks = list(body.get("blocks") or [])
        with self.lock:
            origin: Message | None = None
            if record.origin_ts is not None:
                try:
                    origin = self.find_any(record.channel, record.origin_ts)
                except SlackError:
                    origin = None
            if body.get("delete_original"):
                if origin is None:
                    raise SlackError("message_not_found")
                self.delete(origin)
                return "deleted"
            if body.get("replace_original"):
                if origin is None:
                    raise SlackError("message_not_found")
                self.update(origin, text=text, blocks=blocks, by=self.bot_user_id)
                return "replaced"
            thread_ts = body.get("thread_ts")
            if body.get("response_type") == "in_channel":
                self.post(
                    record.channel,
                    text=text,
                    blocks=blocks,
                    user=self.bot_user_id,
                    thread_ts=str(thread_ts) if thread_ts else None,
                    via="response_url",
                )
                return "in_channel"
            self.post_ephemeral(
                record.channel,
                user=record.user,
                text=text,
                blocks=blocks,
                thread_ts=str(thread_ts) if thread_ts else None,
                via="response_url",
            )
            return "ephemeral"

    # -- views --------------------------------------------------------------------------

    def publish_home(self, user: str, view: Mapping[str, Any]) -> JSON:
        """``views.publish``: the user's Home tab becomes ``view`` (one per user and app)."""
        with self.lock:
            self.user(user)
            if view.get("type") != "home":
                raise SlackError("invalid_arguments", ["views.publish: view.type must be home"])
            previous = self.home_views.get(user)
            view_id = previous["id"] if previous else _random_id("V")
            rendered = self._render_view(view_id, view, None, view_id)
            self.home_views[user] = rendered
            self.home_publishes[user] = self.home_publishes.get(user, 0) + 1
            return rendered

    def _render_view(
        self,
        view_id: str,
        view: Mapping[str, Any],
        previous: OpenView | None,
        root_view_id: str | None,
    ) -> JSON:
        rendered: JSON = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "blocks": with_block_ids(list(view.get("blocks", []))),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self.clock())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(view.get("title")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": previous.id if previous is not None else None,
            "root_view_id": root_view_id or view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return rendered

    def open_view(self, user: str, view: Mapping[str, Any]) -> OpenView:
        with self.lock:
            self._check_external_id(view)
            for old in self._stacks.pop(user, []):
                self._views[old].closed = True
            view_id = _random_id("V")
            opened = OpenView(view_id, user, self._render_view(view_id, view, None, None), view_id)
            self._views[view_id] = opened
            self._stacks[user] = [view_id]
            return opened

    def push_view(self, user: str, view: Mapping[str, Any]) -> OpenView:
        with self.lock:
            stack = self._stacks.get(user, [])
            if not stack:
                raise SlackError("not_found")
            if len(stack) >= MAX_VIEW_STACK:
                raise SlackError("push_limit_reached")
            self._check_external_id(view)
            previous = self._views[stack[-1]]
            view_id = _random_id("V")
            rendered = self._render_view(view_id, view, previous, previous.root_view_id)
            opened = OpenView(view_id, user, rendered, previous.root_view_id, previous.id)
            self._views[view_id] = opened
            stack.append(view_id)
            return opened

    def _check_external_id(self, view: Mapping[str, Any], replacing: str | None = None) -> None:
        external_id = view.get("external_id")
        if not external_id:
            return
        for other in self._views.values():
            if other.id != replacing and not other.closed and other.external_id == external_id:
                raise SlackError("duplicate_external_id")

    def find_view(self, view_id: str | None = None, external_id: str | None = None) -> OpenView:
        with self.lock:
            for view in self._views.values():
                if view.closed:
                    continue
                if (view_id and view.id == view_id) or (
                    external_id and view.external_id == external_id
                ):
                    return view
            raise SlackError("not_found")

    def update_view(self, opened: OpenView, view: Mapping[str, Any], hash_: str | None) -> OpenView:
        with self.lock:
            if hash_ and hash_ != opened.hash:
                raise SlackError("hash_conflict")
            self._check_external_id(view, replacing=opened.id)
            previous = self._views.get(opened.previous_view_id or "")
            rendered = self._render_view(opened.id, view, previous, opened.root_view_id)
            opened.view = rendered
            return opened

    def set_view_values(self, opened: OpenView, values: Mapping[str, Any]) -> None:
        with self.lock:
            opened.view["state"] = {"values": copy.deepcopy(dict(values))}

    def close_view(self, opened: OpenView, *, clear: bool = False) -> None:
        """Close one view (returning to the one under it) or, with ``clear``, its whole stack."""
        with self.lock:
            stack = self._stacks.get(opened.user, [])
            closing = list(stack) if clear else [opened.id]
            for view_id in closing:
                self._views[view_id].closed = True
                if view_id in stack:
                    stack.remove(view_id)
            if not stack:
                self._stacks.pop(opened.user, None)

    def open_views(self) -> list[OpenView]:
        with self.lock:
            return [view for view in self._views.values() if not view.closed]

    def view(self, view_id: str) -> OpenView:
        with self.lock:
            if view_id not in self._views:
                raise SlackError("not_found")
            return self._views[view_id]

    # -- records ------------------------------------------------------------------------

    def record_call(self, call: RecordedCall) -> None:
        with self.lock:
            self.calls.append(call)

    def record_validation(self, errors: list[str], warnings: list[str]) -> None:
        with self.lock:
            self.validation_errors.extend(errors)
            self.warnings.extend(warnings)
