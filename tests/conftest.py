"""Shared fixtures: a real Redis (own database, own key prefix) and settings for the bot.

Tests never flush: each test gets a unique key prefix and deletes only keys carrying it.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis.asyncio as aioredis

from bot.approvals import ApprovalRequest, ApprovalStore, RequestLimits
from bot.settings import Settings
from bot.web import build_web
from sandbox.localredis import LocalRedis, ensure_redis
from sandbox.metastudio import (
    LOCAL_AK,
    LOCAL_PROJECT_ID,
    LOCAL_SK,
    LocalMetaStudio,
    ReviewPlan,
)
from sandbox.serve import ServerThread
from sandbox.slack import LocalSlack, SlackDriver
from sandbox.slack.driver import DeliveryResult
from sandbox.slack.state import Message as SlackMessage

TEST_DB = int(os.environ.get("VOICEBOT_TEST_REDIS_DB", "11"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    server = ensure_redis(os.environ.get("REDIS_URL"))
    yield server
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    return f"vbtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> str:
    base = redis_server.url.rsplit("/", 1)[0]
    return f"{base}/{TEST_DB}"


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    keys = [key async for key in client.scan_iter(match=f"*{redis_prefix}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


# -- requests stored as the bot stores them ------------------------------------------------

NO_LIMITS = RequestLimits(max_open=1_000_000, per_window=1_000_000)


async def record_request(
    store: ApprovalStore, *, card_ts: str = "1700000000.000100", **fields: Any
) -> ApprovalRequest:
    """A request stored the way the bot stores one: drafted, its job held (one open request
    per job and workspace), its card at ``card_ts`` in its card channel. ``fields`` are
    ``ApprovalStore.draft``'s."""
    request = store.draft(**fields)
    await store.reserve(request, NO_LIMITS)
    return await store.create(request, card_channel=request.card_channel, card_ts=card_ts)


def pending_requests(
    count: int, *, channel: str, voice_name: str, required_approvals: int
) -> list[ApprovalRequest]:
    """``count`` pending requests as a Home tab lists them, each for a job of its own."""
    return [
        ApprovalRequest(
            id=f"r{i:012d}",
            tenant="T1",
            requester="UREQ",
            origin_channel=channel,
            card_channel=channel,
            card_ts=f"17000000{i:02d}.000100",
            job_id=f"job-{i:08d}",
            body={"voice_name": voice_name},
            payload_hash="ab" * 32,
            status="pending",
            created_at=1.0,
            expires_at=2e9,
            updated_at=1.0,
            required_approvals=required_approvals,
        )
        for i in range(count)
    ]


# -- the whole bot: local Slack, local MetaStudio, the web app, the worker ------------------


REPO = Path(__file__).resolve().parents[1]
ADMIN = "UADMIN0001"
REQUESTER = "UREQUEST01"
APPROVER = "UAPPROVE01"
OUTSIDER = "UOUTSIDE01"
CHANNEL = "CVOICE0001"
TEAM = "T0LOCAL"


@pytest.fixture
def metastudio() -> Iterator[LocalMetaStudio]:
    ms = LocalMetaStudio(review=ReviewPlan(system_delay=0.2, admin_delay=0.2))
    with ServerThread(ms.app, settle=0.0) as server:
        ms.url = server.url  # type: ignore[attr-defined]
        yield ms


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    local = LocalSlack()
    local.add_channel(CHANNEL, "voice")  # the channel the bot was invited to
    with local.serve():
        yield local
    assert local.validation_errors == [], local.validation_errors


def with_env(**env: str) -> pytest.MarkDecorator:
    """Run a test with these settings added to ``bot_env`` (before any bot process starts)."""
    return pytest.mark.parametrize("bot_env", [env], indirect=True, ids=["env"])


@pytest.fixture
def bot_env(
    redis_url: str,
    redis_prefix: str,
    redis_client: aioredis.Redis,
    metastudio: LocalMetaStudio,
    slack: LocalSlack,
    request: pytest.FixtureRequest,
) -> dict[str, str]:
    """The bot's environment for one test, plus what ``with_env`` adds; a test may extend it
    before the bot fixtures start."""
    return {**base_env(redis_url, redis_prefix, metastudio, slack), **getattr(request, "param", {})}


def base_env(
    redis_url: str, redis_prefix: str, metastudio: LocalMetaStudio, slack: LocalSlack
) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-local",
        "SLACK_SIGNING_SECRET": "local-signing-secret",
        "SLACK_API_URL": slack.api_url,
        "REDIS_URL": redis_url,
        "VOICEBOT_REDIS_PREFIX": redis_prefix,
        "VOICEBOT_QUEUE_NAME": f"{redis_prefix}queue",
        "HUAWEICLOUD_SDK_AK": LOCAL_AK,
        "HUAWEICLOUD_SDK_SK": LOCAL_SK,
        "HUAWEICLOUD_SDK_PROJECT_ID": LOCAL_PROJECT_ID,
        "METASTUDIO_ENDPOINT": metastudio.url,  # type: ignore[attr-defined]
        "VOICEBOT_METASTUDIO_TIMEOUT": "2",
        "VOICEBOT_ADMINS": ADMIN,
        "VOICEBOT_POLL_INTERVAL": "0.2",
        "VOICEBOT_POLL_MAX_INTERVAL": "1",
        "VOICEBOT_JOB_TIMEOUT": "10",
        # Most tests make many requests as one requester; the limits have tests of their own.
        "VOICEBOT_MAX_OPEN_REQUESTS": "1000",
        "VOICEBOT_REQUEST_LIMIT": "1000",
    }


def settings_from(env: dict[str, str]) -> Settings:
    return Settings(**env)  # type: ignore[arg-type]


@pytest.fixture
def bot_web(bot_env: dict[str, str]) -> Iterator[ServerThread]:
    with ServerThread(build_web(settings_from(bot_env))) as server:
        yield server


@pytest.fixture
def driver(slack: LocalSlack, bot_web: ServerThread) -> SlackDriver:
    return SlackDriver(slack, f"{bot_web.url}/slack/events", "local-signing-secret")


def free_port() -> int:
    """A loopback port nothing listens on (free when asked; tests bind it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerProcess:
    """``python -m bot <command>`` (the worker unless told) as a process of its own; its
    output goes to ``log`` when given."""

    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    command: str = "worker"
    log: Path | None = None

    def start(self) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VOICEBOT_"))}
        env.update(self.env)
        env["PYTHONPATH"] = str(REPO)
        with self.log.open("ab") if self.log is not None else open(os.devnull, "wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "bot", self.command],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def exit_code(self) -> int | None:
        """None while it runs."""
        assert self.process is not None
        return self.process.poll()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


@pytest.fixture
def worker(bot_env: dict[str, str]) -> Iterator[WorkerProcess]:
    process = WorkerProcess(bot_env).start()
    yield process
    process.stop()


NOTHING_MORE_WAIT = 0.6


async def nothing_more_happens(within: float = NOTHING_MORE_WAIT) -> None:
    """Give something that must not happen (a second post, a second submit) the time to show
    up, before asserting that it did not. There is no event to wait for, so this is a plain
    bounded wait: use it only after a barrier that shows the bot has done everything it was
    going to do (the outcome posted, the card updated), never instead of one."""
    await asyncio.sleep(within)


async def wait_until(predicate: object, within: float = 10.0, interval: float = 0.05) -> None:
    """Poll an (async or sync) predicate until it is truthy, or fail the test."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()  # type: ignore[operator]
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


ACK_DEADLINE = 3.0
INTERNAL_ERROR = "Something went wrong on my side"
STORE_DOWN = "permission store is unavailable"


# -- what a user types in Slack and is shown ------------------------------------------------


def readable(body: Mapping[str, Any]) -> str:
    """A message's fallback text and the text of its blocks, as a user would read them."""
    parts = [str(body.get("text") or "")]
    for block in body.get("blocks") or []:
        section = block.get("text") or {}
        parts.append(str(section.get("text", "")) if isinstance(section, Mapping) else "")
        for field in block.get("fields") or []:
            parts.append(str(field.get("text", "")))
    return "\n".join(p for p in parts if p)


def shown(slack: LocalSlack, result: DeliveryResult) -> list[str]:
    """Every text the user was shown for ``result``: the ack body, then response_url posts."""
    if result.response_url is None:
        return []
    url_id = result.response_url.rsplit("/", 1)[-1]
    return [
        readable(p.body) for p in slack.responses if p.url_id == url_id and p.status_code == 200
    ]


async def answer(slack: LocalSlack, result: DeliveryResult, within: float = 5.0) -> str:
    """What the user was shown for one command, waiting for the response_url post if needed."""
    assert result.acked, result
    assert result.elapsed < ACK_DEADLINE, result.elapsed
    found = await slack.wait_for_async(lambda: shown(slack, result), timeout=within)
    return "\n".join(found)


async def say(
    driver: SlackDriver, slack: LocalSlack, text: str, *, user: str, channel: str = CHANNEL
) -> str:
    """Type ``/voice {text}`` as ``user`` and return what they are shown."""
    result = await driver.slash_command("/voice", text, user=user, channel=channel)
    return await answer(slack, result)


async def grant(driver: SlackDriver, slack: LocalSlack, user: str, role: str) -> None:
    reply = await say(driver, slack, f"grant <@{user}> {role}", user=ADMIN)
    assert f"<@{user}> now has the *{role}* role" in reply, reply


async def prefixed_keys(redis_client: aioredis.Redis, prefix: str) -> list[str]:
    """The bot's keys, less the delivery log (``seen:``) every delivery writes to and the
    cache of users' Slack locales (``locale:``) every first command of a user writes to."""
    found = [k async for k in redis_client.scan_iter(match=f"{prefix}*", count=500)]
    caches = (f"{prefix}seen:", f"{prefix}locale:")
    return sorted(k for k in found if not k.startswith(caches))


# -- approval flow helpers: what a user does, and what Slack, MetaStudio and Redis show -----

APPROVE = "approval_approve"
REJECT = "approval_reject"


@pytest.fixture
def second_web(bot_env: dict[str, str], slack: LocalSlack) -> Iterator[SlackDriver]:
    """A driver for a second web process with the same settings (bot_web is the first)."""
    with ServerThread(build_web(settings_from(bot_env))) as server:
        yield SlackDriver(slack, f"{server.url}/slack/events", "local-signing-secret")


async def grant_role(driver: SlackDriver, user: str, role: str) -> None:
    result = await driver.slash_command(
        "/voice", f"grant <@{user}> {role}", user=ADMIN, channel=CHANNEL
    )
    assert result.acked


async def grant_flow_roles(driver: SlackDriver) -> None:
    """REQUESTER may submit, APPROVER may approve."""
    await grant_role(driver, REQUESTER, "requester")
    await grant_role(driver, APPROVER, "approver")


def card_of(slack: LocalSlack, job: str) -> SlackMessage | None:
    """The newest approval card for ``job`` in CHANNEL."""
    found = [m for m in slack.messages(CHANNEL) if job in m.text]
    return found[-1] if found else None


async def submit_job(
    driver: SlackDriver, slack: LocalSlack, job: str, extra: str = "", user: str = REQUESTER
) -> SlackMessage:
    """``/voice submit`` for ``job``; returns the approval card it posted. The local Slack
    edits messages in place: deepcopy the result to keep the card as first shown."""
    result = await driver.slash_command(
        "/voice",
        f"submit {job} voice_name=narrator sex=female {extra}".strip(),
        user=user,
        channel=CHANNEL,
    )
    assert result.acked
    posted = await slack.wait_for_async(lambda: card_of(slack, job), timeout=10)
    assert posted is not None
    return posted


def thread_replies(slack: LocalSlack, card: SlackMessage) -> list[str]:
    return [m.text for m in slack.thread(CHANNEL, card.ts)[1:]]


def block_text(message: SlackMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def has_buttons(message: SlackMessage) -> bool:
    return any(block.get("type") == "actions" for block in message.blocks)


def ephemeral_texts(slack: LocalSlack, user: str) -> list[str]:
    return [m.text for m in slack.ephemerals(CHANNEL, user)]


def metastudio_posts(metastudio: LocalMetaStudio) -> list[str]:
    """Paths of every POST (submit) MetaStudio received."""
    return [r.path for r in metastudio.requests if r.method == "POST"]


async def replies_with(
    slack: LocalSlack, card: SlackMessage, needle: str, n: int = 1, within: float = 15.0
) -> None:
    """Wait until at least ``n`` thread replies contain ``needle``."""
    await wait_until(
        lambda: sum(needle in t for t in thread_replies(slack, card)) >= n, within=within
    )


async def click_as_shown(
    driver: SlackDriver,
    slack: LocalSlack,
    user: str,
    card: SlackMessage,
    action_id: str,
    *,
    team: str | None = None,
    channel: str = CHANNEL,
) -> DeliveryResult:
    """A click on a button of ``card`` as it looked when captured. A Slack client that has
    not refreshed still shows buttons the bot already took away, and Slack retries and many
    users send the same click: the bot must cope with any of them arriving at any time.
    ``team`` and ``channel`` say where the click came from (a Slack Connect channel shows
    a card to users of other workspaces; a message can be seen from another channel)."""
    team = team or slack.team_id
    actions = [b for b in card.blocks if b.get("type") == "actions"]
    block, element = next(
        (b, e) for b in actions for e in b["elements"] if e.get("action_id") == action_id
    )
    name = slack.state.ensure_user(user).name
    record = slack.issue_response_url("interaction", channel, user, origin=card)
    trigger = slack.state.issue_trigger(user)
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": name, "name": name, "team_id": team},
        "api_app_id": slack.app_id,
        "token": slack.verification_token,
        "team": {"id": team, "domain": slack.team_domain},
        "container": {
            "type": "message",
            "message_ts": card.ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger.id,
        "channel": {"id": channel, "name": slack.state.channel(channel).name},
        "message": {
            "type": "message",
            "ts": card.ts,
            "text": card.text,
            "blocks": copy.deepcopy(card.blocks),
        },
        "state": {"values": {}},
        "response_url": record.url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block["block_id"],
                "type": "button",
                "text": element["text"],
                "value": element["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {**driver.sign(body), "Content-Type": "application/x-www-form-urlencoded"}
    return await driver.send_raw(body, headers)


# Bot processes of their own (``python -m bot serve`` and ``worker``), for the tests that
# take Redis away under them.
START_DEADLINE = 20.0


@dataclass
class Processes:
    web: WorkerProcess
    worker: WorkerProcess
    web_url: str
    logs: tuple[Path, Path]

    def running(self) -> bool:
        return self.web.exit_code is None and self.worker.exit_code is None

    def report(self) -> str:
        codes = f"web exit {self.web.exit_code}, worker exit {self.worker.exit_code}"
        return "\n".join([codes, *(f"--- {log.name}\n{log.read_text()}" for log in self.logs)])


@pytest.fixture
async def start_processes(
    bot_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Callable[[], Awaitable[Processes]]]:
    """Starts the web app and the worker; returns once the web app answers ``/healthz``."""
    started: list[Processes] = []

    async def start() -> Processes:
        port = free_port()
        logs = (tmp_path / "web.log", tmp_path / "worker.log")
        web = WorkerProcess({**bot_env, "PORT": str(port)}, command="serve", log=logs[0])
        worker = WorkerProcess(bot_env, log=logs[1])
        processes = Processes(web.start(), worker.start(), f"http://127.0.0.1:{port}", logs)
        started.append(processes)
        await wait_until(
            lambda: answers(processes.web_url, "/healthz", 200), within=START_DEADLINE, interval=0.2
        )
        return processes

    yield start
    for processes in started:
        processes.web.stop()
        processes.worker.stop()


async def answers(web_url: str, path: str, status: int) -> bool:
    async with httpx.AsyncClient(base_url=web_url, timeout=5) as http:
        try:
            return (await http.get(path)).status_code == status
        except httpx.TransportError:
            return False


async def ready(web_url: str) -> bool:
    return await answers(web_url, "/readyz", 200)


async def not_ready(web_url: str) -> bool:
    return await answers(web_url, "/readyz", 503)


async def stops_cleanly(worker: WorkerProcess, processes: Processes) -> None:
    assert worker.process is not None
    worker.process.terminate()
    assert worker.process.wait(30) == 0, processes.report()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: handed out to the workers from the start (``scripts/test`` has
    them take two tests at a time), they no longer leave one worker finishing a long test
    alone at the end of the run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
