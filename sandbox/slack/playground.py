"""The playground: a browser page on the local Slack that shows a channel the way Slack would
and lets a person act in it as one of the demo users.

The page (``/``) polls ``GET /playground/state`` for what the workspace holds as seen by one
user (channel messages with their threads and edits, that user's ephemerals, their open
modal) and sends what the user does to ``POST /playground/act``, which turns it into the
signed slash command, ``block_actions``, ``block_suggestion`` or ``view_submission`` that
Slack would deliver, through ``SlackDriver``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.slack.state import JSON, Message, OpenView, SlackError

if TYPE_CHECKING:
    from sandbox.slack.driver import DeliveryResult, SlackDriver
    from sandbox.slack.server import LocalSlack

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES: dict[str, str] = {
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class PlaygroundUser:
    """A person the page lets you act as; ``label`` says what they may do (their role)."""

    id: str
    name: str
    real_name: str
    label: str = ""


class _Act(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=64)


class CommandAct(_Act):
    kind: Literal["command"]
    channel: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=4000)


class ActionAct(_Act):
    kind: Literal["action"]
    channel: str = Field(min_length=1, max_length=64)
    ts: str
    action_id: str
    block_id: str | None = None
    value: Any = None


class ViewActionAct(_Act):
    kind: Literal["view_action"]
    view_id: str
    action_id: str
    block_id: str | None = None
    value: Any = None


class SuggestAct(_Act):
    kind: Literal["suggest"]
    view_id: str
    action_id: str
    block_id: str | None = None
    value: str = ""


class SubmitAct(_Act):
    kind: Literal["submit"]
    view_id: str
    values: dict[str, dict[str, Any]] = {}


class CloseAct(_Act):
    kind: Literal["close"]
    view_id: str


class HomeOpenAct(_Act):
    kind: Literal["home_open"]


class HomeActionAct(_Act):
    kind: Literal["home_action"]
    action_id: str
    block_id: str | None = None
    value: Any = None


Act = Annotated[
    CommandAct
    | ActionAct
    | ViewActionAct
    | SuggestAct
    | SubmitAct
    | CloseAct
    | HomeOpenAct
    | HomeActionAct,
    Field(discriminator="kind"),
]
_ACT = TypeAdapter(Act)


class ActRefused(Exception):
    """The act cannot happen (no bot connected, unknown message or view); the page says why."""


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


class Playground:
    """The page, its state endpoint and its act endpoint, for one ``LocalSlack``."""

    def __init__(self, slack: LocalSlack) -> None:
        self.slack = slack
        self.channel: str | None = None
        self.users: list[PlaygroundUser] = []
        self.jobs: list[str] = []
        self._driver: SlackDriver | None = None

    def __repr__(self) -> str:
        return f"Playground(channel={self.channel!r}, connected={self._driver is not None})"

    def configure(
        self,
        *,
        bot_url: str | None = None,
        channel: str | None = None,
        users: list[PlaygroundUser] | None = None,
        jobs: list[str] | None = None,
    ) -> None:
        """Point the page at the bot's request URL and say whom and what it shows."""
        if bot_url is not None:
            # Imported here: the driver module imports the server, which imports this one.
            from sandbox.slack.driver import SlackDriver

            self._driver = SlackDriver(self.slack, bot_url, self.slack.signing_secret)
        if channel is not None:
            self.channel = self.slack.state.resolve_channel(channel)
        if users is not None:
            self.users = list(users)
            for user in self.users:
                if self.slack.users.get(user.id) is None:
                    self.slack.add_user(user.id, user.name, user.real_name)
        if jobs is not None:
            self.jobs = list(jobs)

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self._page, methods=["GET"]),
            Route("/playground/static/{name}", self._static, methods=["GET"]),
            Route("/playground/state", self._state, methods=["GET"]),
            Route("/playground/act", self._act, methods=["POST"]),
        ]

    # -- page and assets ------------------------------------------------------------------

    async def _page(self, request: Request) -> Response:
        html = (STATIC_DIR / "playground.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html; charset=utf-8", headers=NO_STORE)

    async def _static(self, request: Request) -> Response:
        name = request.path_params["name"]
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            return Response("not found", status_code=404, media_type="text/plain")
        body = (STATIC_DIR / name).read_bytes()
        return Response(body, media_type=media_type, headers=NO_STORE)

    # -- state ----------------------------------------------------------------------------

    async def _state(self, request: Request) -> Response:
        viewer = request.query_params.get("user") or (self.users[0].id if self.users else "")
        channel = request.query_params.get("channel") or self.channel
        return JSONResponse(self.snapshot(viewer, channel), headers=NO_STORE)

    def snapshot(self, viewer: str, channel: str | None) -> JSON:
        """What ``viewer`` sees: the channel, its threads, their ephemerals, their modal."""
        state = self.slack.state
        with state.lock:
            channels = [
                {"id": c.id, "name": c.name, "is_im": c.id.startswith("D")}
                for c in state.channels.values()
            ]
            messages: list[JSON] = []
            if channel:
                channel = state.resolve_channel(channel)
                ephemerals = state.ephemerals(channel, viewer) if viewer else []
                by_thread: dict[str, list[JSON]] = {}
                for ephemeral in ephemerals:
                    if ephemeral.thread_ts:
                        by_thread.setdefault(ephemeral.thread_ts, []).append(
                            _message_json(ephemeral)
                        )
                for message in state.messages(channel):
                    item = _message_json(message)
                    replies = [_message_json(r) for r in message.replies if not r.deleted]
                    replies += by_thread.get(message.ts, [])
                    item["replies"] = sorted(replies, key=lambda m: float(m["ts"]))
                    messages.append(item)
                messages += [_message_json(e) for e in ephemerals if not e.thread_ts]
                messages.sort(key=lambda m: float(m["ts"]))
            users = {
                u.id: {"name": u.name, "real_name": u.real_name, "is_bot": u.is_bot}
                for u in state.users.values()
            }
            view = _top_view(state.open_views(), viewer)
            home = state.home_views.get(viewer)
        return {
            "workspace": {
                "team_id": self.slack.team_id,
                "name": self.slack.team_name,
                "bot_user_id": self.slack.bot_user_id,
            },
            "connected": self._driver is not None,
            "viewer": viewer,
            "channel": channel,
            "channels": channels,
            "demo_users": [u.__dict__ for u in self.users],
            "users": users,
            "jobs": self.jobs,
            "messages": messages,
            "view": view,
            "home": {"id": home["id"], "blocks": home.get("blocks", [])} if home else None,
        }

    # -- acting -----------------------------------------------------------------------------

    async def _act(self, request: Request) -> Response:
        try:
            act = _ACT.validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            return _error(f"bad request: {where}: {first['msg']}")
        if self._driver is None:
            return _error("no bot is connected to this playground", 503)
        try:
            return JSONResponse(await self._perform(self._driver, act))
        except ActRefused as refused:
            return _error(str(refused), 409)

    async def _perform(self, driver: SlackDriver, act: Act) -> JSON:
        state = self.slack.state
        if isinstance(act, CommandAct):
            return await self._command(driver, act)
        try:
            if isinstance(act, HomeOpenAct):
                result = await driver.open_home(act.user)
            elif isinstance(act, HomeActionAct):
                result = await driver.home_action(
                    act.user, act.action_id, act.value, block_id=act.block_id
                )
            elif isinstance(act, ActionAct):
                result = await driver.block_action(
                    act.user,
                    act.channel,
                    act.ts,
                    act.action_id,
                    act.value,
                    block_id=act.block_id,
                )
            elif isinstance(act, ViewActionAct):
                result = await driver.view_action(
                    act.user, act.view_id, act.action_id, act.value, block_id=act.block_id
                )
            elif isinstance(act, SuggestAct):
                result = await driver.block_suggestion(
                    act.user, act.view_id, act.action_id, act.value, block_id=act.block_id
                )
            elif isinstance(act, SubmitAct):
                result = await driver.view_submission(act.user, act.view_id, act.values)
            else:
                opened = state.view(act.view_id)
                if opened.user != act.user:
                    raise ActRefused(f"view {act.view_id} is not open for {act.user}")
                state.close_view(opened)
                return {"ok": True}
        except (LookupError, SlackError) as exc:
            raise ActRefused(str(exc)) from None
        return _delivery_json(result)

    async def _command(self, driver: SlackDriver, act: CommandAct) -> JSON:
        line = act.text.strip()
        command, _, text = line.partition(" ")
        if not command.startswith("/") or len(command) < 2:
            raise ActRefused("type a slash command, like /voice help")
        result = await driver.slash_command(
            command, text.strip(), user=act.user, channel=act.channel
        )
        if not result.acked:
            # What Slack shows the user when an app does not ack its command in time.
            error = "operation_timeout" if result.timed_out else "dispatch_failed"
            self.slack.state.post_ephemeral(
                act.channel,
                user=act.user,
                text=f'{command} failed with the error "{error}"',
                blocks=[],
                via="slack",
            )
        return _delivery_json(result)


def _delivery_json(result: DeliveryResult) -> JSON:
    return {
        "ok": result.acked,
        "status": result.status_code,
        "timed_out": result.timed_out,
        "ack": result.json if result.acked else None,
    }


def _message_json(message: Message) -> JSON:
    return {
        "ts": message.ts,
        "user": message.user,
        "text": message.text,
        "blocks": message.blocks,
        "attachments": message.attachments,
        "thread_ts": message.thread_ts,
        "edited": len(message.edited),
        "ephemeral": message.ephemeral_for is not None,
        "via": message.via,
        "broadcast": message.reply_broadcast,
    }


def _top_view(views: list[OpenView], viewer: str) -> JSON | None:
    """The modal on top of ``viewer``'s stack: the last one opened and still open."""
    mine = [v for v in views if v.user == viewer]
    if not mine:
        return None
    top = mine[-1]
    view = top.view
    return {
        "id": top.id,
        "hash": top.hash,
        "callback_id": top.callback_id,
        "title": view.get("title"),
        "submit": view.get("submit"),
        "close": view.get("close"),
        "blocks": view.get("blocks", []),
        "stacked": len(mine),
    }
