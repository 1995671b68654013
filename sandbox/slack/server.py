"""The local Slack's HTTP face: Web API methods at ``/api/<method>``, response_urls at
``/response/<id>``, Socket Mode at ``/socket`` and the playground page at ``/``, plus the
``LocalSlack`` object that tests hold to inspect what the bot did and to inject failures.

Requests are decoded the way slack_sdk sends them: query parameters (``params=``), form
bodies (``data=``) or JSON bodies (``json=``, used for ``chat.*`` and ``views.*``), with the
token in ``Authorization: Bearer`` or a ``token`` parameter.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from sandbox.serve import ServerThread
from sandbox.slack.playground import Playground
from sandbox.slack.socket import SocketHub
from sandbox.slack.state import (
    JSON,
    Message,
    OpenView,
    RecordedCall,
    ResponsePost,
    ResponseUrl,
    SlackError,
    SlackState,
    User,
)
from sandbox.slack.validation import Verdict, check_message, check_view, decode_json_field

T = TypeVar("T")
TokenKind = Literal["bot", "app"]
Handler = Callable[[JSON], JSON]

# What the manifests in config/ ask for. ``chat:write.public`` would let the bot post in
# public channels it was never invited to; a LocalSlack given it behaves that way.
BOT_SCOPES = ("commands", "chat:write", "usergroups:read", "users:read")


@dataclass
class _Fault:
    error: str
    status_code: int = 200
    retry_after: int | None = None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in {"1", "true", "yes"}
    return bool(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class LocalSlack:
    """A Slack workspace on loopback for the bot to talk to, and for tests to look into."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-local",  # noqa: S107 - a loopback fake's token
        app_token: str = "xapp-local",  # noqa: S107
        signing_secret: str = "local-signing-secret",  # noqa: S107
        team_id: str = "T0LOCAL",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0LOCAL",
        team_name: str = "Local Workspace",
        team_domain: str = "local",
        trigger_ttl: float = 3.0,
        response_url_max_uses: int = 5,
        response_url_ttl: float = 30 * 60.0,
        scopes: tuple[str, ...] = BOT_SCOPES,
    ) -> None:
        self.scopes = frozenset(scopes)
        self._bot_token = bot_token
        self._app_token = app_token
        self._signing_secret = signing_secret
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.verification_token = "local-verification-token"  # noqa: S105 - deprecated, sent for shape
        self.state = SlackState(
            team_id=team_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            trigger_ttl=trigger_ttl,
            response_url_max_uses=response_url_max_uses,
            response_url_ttl=response_url_ttl,
        )
        self.socket = SocketHub(app_id)
        self.base_url: str | None = None
        self._faults: dict[str, deque[_Fault]] = {}
        self._methods: dict[str, tuple[TokenKind, Handler]] = {
            "auth.test": ("bot", self._auth_test),
            "chat.postMessage": ("bot", self._chat_post_message),
            "chat.update": ("bot", self._chat_update),
            "chat.delete": ("bot", self._chat_delete),
            "chat.postEphemeral": ("bot", self._chat_post_ephemeral),
            "chat.getPermalink": ("bot", self._chat_get_permalink),
            "views.open": ("bot", self._views_open),
            "views.push": ("bot", self._views_push),
            "views.update": ("bot", self._views_update),
            "views.publish": ("bot", self._views_publish),
            "users.info": ("bot", self._users_info),
            "conversations.info": ("bot", self._conversations_info),
            "usergroups.users.list": ("bot", self._usergroups_users_list),
            "apps.connections.open": ("app", self._apps_connections_open),
        }
        self.playground = Playground(self)
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/response/{url_id}", self._response_url, methods=["POST"]),
                Route("/healthz", self._healthz, methods=["GET"]),
                WebSocketRoute("/socket", self.socket.endpoint),
                *self.playground.routes,
            ]
        )

    def __repr__(self) -> str:
        return f"LocalSlack(team_id={self.team_id!r}, base_url={self.base_url!r})"

    # -- serving --------------------------------------------------------------------------

    @property
    def signing_secret(self) -> str:
        return self._signing_secret

    @property
    def api_url(self) -> str:
        """The ``base_url`` for ``AsyncWebClient``."""
        return f"{self._require_base_url()}/api/"

    def _require_base_url(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the local Slack is not served yet: use `with slack.serve():`")
        return self.base_url

    @contextmanager
    def serve(self) -> Iterator[ServerThread]:
        """Run the app on a loopback port and remember its URL for response_urls. It runs
        nothing apart from its requests, so it stops without a pause."""
        with ServerThread(self.app, settle=0.0) as server:
            self.base_url = server.url
            yield server

    # -- test-facing view of the workspace ------------------------------------------------

    @property
    def users(self) -> UserDirectory:
        return UserDirectory(self.state)

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        real_name: str | None = None,
        is_admin: bool = False,
        locale: str = "en-US",
    ) -> User:
        return self.state.add_user(user_id, name, real_name, is_admin=is_admin, locale=locale)

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        is_private: bool = False,
        *,
        bot_member: bool = True,
    ) -> None:
        """A channel; the bot is in it (invited) unless ``bot_member=False``."""
        self.state.add_channel(channel_id, name, is_private=is_private, bot_member=bot_member)

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> None:
        """A user group of ``users``, mentioned as ``<!subteam^{group_id}|@{handle}>``."""
        self.state.add_usergroup(group_id, handle, users)

    def set_usergroup_users(self, group_id: str, users: list[str]) -> None:
        """Change who is in a group (what ``usergroups.users.update`` does)."""
        self.state.set_usergroup_users(group_id, users)

    def set_bot_member(self, channel_id: str, member: bool) -> None:
        """``/invite @voicebot`` (True) or removing the bot from the channel (False)."""
        with self.state.lock:
            self.state.channel(channel_id).bot_member = member

    def archive(self, channel_id: str) -> None:
        with self.state.lock:
            self.state.channel(channel_id).is_archived = True

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        with self.state.lock:
            return [c for c in self.state.calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[Message]:
        return self.state.messages(self.state.resolve_channel(channel))

    def message(self, channel: str, ts: str) -> Message:
        return self.state.find(self.state.resolve_channel(channel), ts)

    def thread(self, channel: str, ts: str) -> list[Message]:
        return self.state.thread(self.state.resolve_channel(channel), ts)

    def ephemerals(self, channel: str, user: str | None = None) -> list[Message]:
        return self.state.ephemerals(self.state.resolve_channel(channel), user)

    @property
    def responses(self) -> list[ResponsePost]:
        with self.state.lock:
            return list(self.state.responses)

    @property
    def views(self) -> list[OpenView]:
        return self.state.open_views()

    def view(self, view_id: str) -> OpenView:
        return self.state.view(view_id)

    @property
    def validation_errors(self) -> list[str]:
        with self.state.lock:
            return list(self.state.validation_errors)

    @property
    def warnings(self) -> list[str]:
        with self.state.lock:
            return list(self.state.warnings)

    # -- fault injection --------------------------------------------------------------------

    def fail_next(self, method: str, error: str = "internal_error", times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        with self.state.lock:
            self._faults.setdefault(method, deque()).extend(_Fault(error) for _ in range(times))

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP 429 with ``Retry-After``."""
        with self.state.lock:
            self._faults.setdefault(method, deque()).extend(
                _Fault("ratelimited", 429, retry_after) for _ in range(times)
            )

    def _take_fault(self, method: str) -> _Fault | None:
        with self.state.lock:
            queue = self._faults.get(method)
            return queue.popleft() if queue else None

    # -- waiting --------------------------------------------------------------------------

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01
    ) -> T:
        """Poll until ``predicate()`` is truthy and return it; else ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"local Slack: condition not met within {timeout} s")
            time.sleep(interval)

    async def wait_for_async(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109 - mirrors wait_for; a deadline, not a cancel
        interval: float = 0.01,
    ) -> T:
        """``wait_for`` that yields to the event loop between polls."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"local Slack: condition not met within {timeout} s")
            await asyncio.sleep(interval)

    # -- what the driver needs -----------------------------------------------------------

    def issue_response_url(
        self,
        kind: Literal["command", "interaction"],
        channel: str,
        user: str,
        origin: Message | None = None,
    ) -> ResponseUrl:
        return self.state.issue_response_url(
            self._require_base_url(),
            kind=kind,
            channel=channel,
            user=user,
            origin_ts=origin.ts if origin is not None else None,
            origin_ephemeral=origin is not None and origin.ephemeral_for is not None,
        )

    def apply_ack_response(self, record: ResponseUrl, body: Mapping[str, Any]) -> ResponsePost:
        """A slash command's ack body shows like a response_url post, without using it up."""
        return self._respond(record, dict(body), counted=False)

    def record_verdict(self, verdict: Verdict) -> None:
        self.state.record_validation(verdict.errors, verdict.warnings)

    # -- HTTP routes ------------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def _api(self, request: Request) -> Response:
        if self.base_url is None:
            self.base_url = str(request.base_url).rstrip("/")
        method = request.path_params["method"]
        try:
            params = await _read_params(request)
        except ValueError:
            params = {"_unparsed": (await request.body()).decode(errors="replace")}
        token = params.pop("token", None)
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        kind: TokenKind | None = (
            "bot" if token == self._bot_token else "app" if token == self._app_token else None
        )
        status_code = 200
        headers: dict[str, str] = {}
        injected = False
        entry = self._methods.get(method)
        fault = self._take_fault(method) if entry is not None else None
        if entry is None:
            body: JSON = {"ok": False, "error": "unknown_method"}
        elif fault is not None:
            injected = True
            body = {"ok": False, "error": fault.error}
            status_code = fault.status_code
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
        elif not token:
            body = {"ok": False, "error": "not_authed"}
        elif kind is None:
            body = {"ok": False, "error": "invalid_auth"}
        elif kind != entry[0]:
            body = {"ok": False, "error": "not_allowed_token_type"}
        else:
            try:
                body = entry[1](params)
            except SlackError as exc:
                body = {"ok": False, "error": exc.code}
                if exc.detail:
                    body["errors"] = exc.detail
                    body["response_metadata"] = {"messages": [f"[ERROR] {d}" for d in exc.detail]}
        if method == "auth.test":
            headers["x-oauth-scopes"] = ",".join(sorted(self.scopes))
        self.state.record_call(
            RecordedCall(
                method=method,
                params=params,
                token_ok=kind is not None,
                at=time.time(),
                status_code=status_code,
                response=copy.deepcopy(body),
                injected=injected,
            )
        )
        return JSONResponse(body, status_code=status_code, headers=headers)

    async def _response_url(self, request: Request) -> Response:
        url_id = request.path_params["url_id"]
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = dict(parse_qsl(raw.decode(), keep_blank_values=True))
            if "payload" in body:
                body = json.loads(body["payload"])
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", status_code=400)
        try:
            record = self.state.use_response_url(url_id)
        except SlackError as exc:
            self._record_post(url_id, body, 404, exc.code)
            return PlainTextResponse(exc.code, status_code=404)
        post = self._respond(record, body, counted=True)
        if post.status_code != 200:
            return PlainTextResponse(post.outcome, status_code=post.status_code)
        return JSONResponse({"ok": True})

    def _respond(self, record: ResponseUrl, body: JSON, *, counted: bool) -> ResponsePost:
        source = "response_url" if counted else "ack"
        if not body.get("delete_original"):
            verdict = check_message(
                body.get("text"),
                body.get("blocks"),
                attachments=body.get("attachments"),
                source=source,
            )
            self.record_verdict(verdict)
            if not verdict.ok:
                return self._record_post(record.id, body, 400, "invalid_blocks")
            body["blocks"] = decode_json_field(body.get("blocks"), "blocks", Verdict())
        try:
            outcome = self.state.apply_response(record, body)
        except SlackError as exc:
            return self._record_post(record.id, body, 404, exc.code)
        return self._record_post(record.id, body, 200, outcome if counted else f"ack:{outcome}")

    def _record_post(self, url_id: str, body: JSON, status_code: int, outcome: str) -> ResponsePost:
        post = ResponsePost(url_id, copy.deepcopy(body), time.time(), status_code, outcome)
        with self.state.lock:
            self.state.responses.append(post)
        return post

    # -- Web API methods ------------------------------------------------------------------

    def _auth_test(self, params: JSON) -> JSON:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.state.user(self.bot_user_id).name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _check_message(self, params: JSON, method: str) -> JSON:
        """Validated ``blocks`` (decoded) or a ``SlackError`` like real Slack's."""
        verdict = check_message(
            params.get("text"),
            params.get("blocks"),
            attachments=params.get("attachments"),
            source=method,
        )
        self.record_verdict(verdict)
        if not verdict.ok:
            no_content = not params.get("text") and not params.get("blocks")
            raise SlackError("no_text" if no_content else "invalid_blocks", verdict.errors)
        decoded = Verdict()
        return {
            "blocks": decode_json_field(params.get("blocks"), "blocks", decoded),
            "attachments": decode_json_field(params.get("attachments"), "attachments", decoded),
            "metadata": decode_json_field(params.get("metadata"), "metadata", decoded),
        }

    def _message_body(self, message: Message) -> JSON:
        return message.to_api(self.team_id, self.app_id)

    def _chat_post_message(self, params: JSON) -> JSON:
        channel = _text(params.get("channel"))
        self.state.check_bot_can_post(channel, self.scopes)
        decoded = self._check_message(params, "chat.postMessage")
        message = self.state.post(
            channel,
            text=_text(params.get("text")),
            blocks=decoded["blocks"] or [],
            user=self.bot_user_id,
            thread_ts=_text(params.get("thread_ts")) or None,
            reply_broadcast=_truthy(params.get("reply_broadcast")),
            attachments=decoded["attachments"],
            metadata=decoded["metadata"],
        )
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "message": self._message_body(message),
        }

    def _chat_update(self, params: JSON) -> JSON:
        channel = self.state.resolve_channel(_text(params.get("channel")))
        message = self.state.find(channel, _text(params.get("ts")))
        if message.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        if params.get("text") is None and params.get("blocks") is None:
            raise SlackError("no_text")
        decoded = self._check_message(params, "chat.update")
        self.state.update(
            message,
            text=_text(params["text"]) if params.get("text") is not None else None,
            blocks=decoded["blocks"],
            by=self.bot_user_id,
        )
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_body(message),
        }

    def _chat_delete(self, params: JSON) -> JSON:
        channel = self.state.resolve_channel(_text(params.get("channel")))
        message = self.state.find(channel, _text(params.get("ts")))
        if message.user != self.bot_user_id:
            raise SlackError("cant_delete_message")
        self.state.delete(message)
        return {"ok": True, "channel": channel, "ts": message.ts}

    def _chat_post_ephemeral(self, params: JSON) -> JSON:
        user = _text(params.get("user"))
        self.state.user(user)
        self.state.check_bot_can_post(_text(params.get("channel")), self.scopes)
        decoded = self._check_message(params, "chat.postEphemeral")
        message = self.state.post_ephemeral(
            _text(params.get("channel")),
            user=user,
            text=_text(params.get("text")),
            blocks=decoded["blocks"] or [],
            thread_ts=_text(params.get("thread_ts")) or None,
        )
        return {"ok": True, "message_ts": message.ts}

    def _chat_get_permalink(self, params: JSON) -> JSON:
        channel = self.state.resolve_channel(_text(params.get("channel")))
        message = self.state.find(channel, _text(params.get("message_ts")))
        archive = f"https://{self.team_domain}.slack.com/archives/{channel}"
        link = f"{archive}/p{message.ts.replace('.', '')}"
        if message.thread_ts is not None:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _check_view(self, params: JSON, method: str) -> JSON:
        verdict = check_view(params.get("view"), source=method)
        self.record_verdict(verdict)
        if not verdict.ok:
            raise SlackError("invalid_arguments", verdict.errors)
        view = decode_json_field(params.get("view"), "view", Verdict())
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", [f"{method}: view must be an object"])
        return view

    def _views_open(self, params: JSON) -> JSON:
        view = self._check_view(params, "views.open")
        trigger = self.state.exchange_trigger(_text(params.get("trigger_id")))
        return {"ok": True, "view": copy.deepcopy(self.state.open_view(trigger.user, view).view)}

    def _views_push(self, params: JSON) -> JSON:
        view = self._check_view(params, "views.push")
        trigger = self.state.exchange_trigger(_text(params.get("trigger_id")))
        return {"ok": True, "view": copy.deepcopy(self.state.push_view(trigger.user, view).view)}

    def _views_update(self, params: JSON) -> JSON:
        view_id = _text(params.get("view_id")) or None
        external_id = _text(params.get("external_id")) or None
        if view_id is None and external_id is None:
            raise SlackError(
                "invalid_arguments", ["views.update: view_id or external_id is required"]
            )
        view = self._check_view(params, "views.update")
        opened = self.state.find_view(view_id, external_id)
        updated = self.state.update_view(opened, view, _text(params.get("hash")) or None)
        return {"ok": True, "view": copy.deepcopy(updated.view)}

    def _views_publish(self, params: JSON) -> JSON:
        view = self._check_view(params, "views.publish")
        user = _text(params.get("user_id"))
        if not user:
            raise SlackError("invalid_arguments", ["views.publish: user_id is required"])
        return {"ok": True, "view": copy.deepcopy(self.state.publish_home(user, view))}

    def home(self, user: str) -> JSON | None:
        """The Home tab ``user`` sees: the view last published for them."""
        with self.state.lock:
            found = self.state.home_views.get(user)
            return copy.deepcopy(found) if found is not None else None

    def home_publishes(self, user: str) -> int:
        with self.state.lock:
            return self.state.home_publishes.get(user, 0)

    def _users_info(self, params: JSON) -> JSON:
        # Real Slack: needs users:read; the locale comes only when asked for.
        if "users:read" not in self.scopes:
            raise SlackError("missing_scope")
        user = self.state.user(_text(params.get("user")))
        return {
            "ok": True,
            "user": user.to_api(include_locale=_truthy(params.get("include_locale"))),
        }

    def _conversations_info(self, params: JSON) -> JSON:
        channel = self.state.resolve_channel(_text(params.get("channel")))
        return {"ok": True, "channel": self.state.channel(channel).to_api()}

    def _usergroups_users_list(self, params: JSON) -> JSON:
        # Real Slack: needs usergroups:read; a disabled group lists no one unless asked to.
        if "usergroups:read" not in self.scopes:
            raise SlackError("missing_scope")
        group_id = _text(params.get("usergroup"))
        if not group_id:
            raise SlackError("invalid_arguments", ["usergroups.users.list: usergroup is required"])
        with self.state.lock:
            group = self.state.usergroup(group_id)
            if group.disabled and not _truthy(params.get("include_disabled")):
                return {"ok": True, "users": []}
            return {"ok": True, "users": list(group.users)}

    def _apps_connections_open(self, params: JSON) -> JSON:
        return {"ok": True, "url": self.socket.issue_url(self._require_base_url())}


class UserDirectory:
    """``slack.users``: the workspace members ``users.info`` answers for."""

    def __init__(self, state: SlackState) -> None:
        self._state = state

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        real_name: str | None = None,
        is_admin: bool = False,
        locale: str = "en-US",
    ) -> User:
        return self._state.add_user(user_id, name, real_name, is_admin=is_admin, locale=locale)

    def set_locale(self, user_id: str, locale: str) -> None:
        """The user changes their Slack language (Preferences > Language & region)."""
        with self._state.lock:
            self._state.user(user_id).locale = locale

    def get(self, user_id: str) -> User | None:
        with self._state.lock:
            return self._state.users.get(user_id)

    def __contains__(self, user_id: object) -> bool:
        with self._state.lock:
            return user_id in self._state.users

    def all(self) -> list[User]:
        with self._state.lock:
            return list(self._state.users.values())


async def _read_params(request: Request) -> JSON:
    params: JSON = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return params
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = json.loads(raw)
        if isinstance(body, dict):
            params.update(body)
    else:
        params.update(parse_qsl(raw.decode(), keep_blank_values=True))
    return params
