"""How fast `/voice submit` is acknowledged, against a bare Bolt app on the same stack.

Sends signed ``/voice submit <job> voice_name=x`` slash commands over HTTP, at 1 and at 50
concurrent clients, to (a) the real bot (``build_web`` with a real Redis, the local Slack and
the local MetaStudio; the sender holds the requester role, so every command goes on to post
an approval card) and (b) a bare Bolt ``AsyncApp`` whose ``/voice`` handler only acks, behind
the same Starlette handler on the same uvicorn ``ServerThread``. Prints p50/p99 of the time
to the HTTP response (the ack) for each, and the ratios bot/bare.

Targets: p50 within 1.25x of the bare app; p99 under 300 ms at 50 concurrent clients.

    .venv/bin/python -m bench.bench_ack [-n 500] [--concurrency 1 50]

Redis keys go under a fresh ``vbbench:...:`` prefix and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode

import aiohttp
import redis
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.settings import Settings
from bot.web import build_web
from sandbox.localredis import ensure_redis
from sandbox.metastudio import LOCAL_AK, LOCAL_PROJECT_ID, LOCAL_SK, LocalMetaStudio
from sandbox.serve import ServerThread
from sandbox.slack import LocalSlack

SIGNING_SECRET = "local-signing-secret"
ADMIN = "UADMIN0001"
REQUESTER = "UREQUEST01"
CHANNEL = "CVOICE0001"
TEAM = "T0LOCAL"
REDIS_DB = 11
P50_RATIO_TARGET = 1.25
P99_TARGET = 0.300
WARM_UP = 10
ROUNDS = 5


@dataclass(frozen=True)
class Figures:
    p50: float
    p99: float
    count: int
    failures: int

    @classmethod
    def of(cls, samples: Sequence[float], failures: int) -> Figures:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return cls(statistics.median(ordered), p99, len(ordered), failures)


def bare_app(slack_api_url: str) -> Starlette:
    """The least a Bolt app can do with `/voice`: verify, route, ack."""
    client = AsyncWebClient(token="xoxb-local", base_url=slack_api_url)
    app = AsyncApp(client=client, signing_secret=SIGNING_SECRET, process_before_response=False)

    @app.command("/voice")
    async def voice(ack: AsyncAck) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])


# Where a submit's text takes a fresh job id.
JOB_SLOT = "{job}"


def command_body(slack: LocalSlack, text: str, user: str) -> bytes:
    """A slash command form as Slack posts it, with a live response_url and trigger id."""
    return urlencode(
        {
            "token": slack.verification_token,
            "team_id": TEAM,
            "team_domain": slack.team_domain,
            "channel_id": CHANNEL,
            "channel_name": "voice",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/voice",
            "text": text,
            "api_app_id": slack.app_id,
            "is_enterprise_install": "false",
            "response_url": slack.issue_response_url("command", CHANNEL, user).url,
            "trigger_id": slack.state.issue_trigger(user).id,
        }
    ).encode()


async def _send_all(url: str, bodies: Sequence[bytes], concurrency: int) -> list[tuple[float, int]]:
    verifier = SignatureVerifier(SIGNING_SECRET)
    results: list[tuple[float, int]] = []
    # aiohttp, not httpx: httpx's pool costs the client more than the servers at 50 clients.
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        queue = iter(bodies)

        async def client() -> None:
            for body in queue:
                stamp = str(int(time.time()))
                headers = {
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": verifier.generate_signature(timestamp=stamp, body=body)
                    or "",
                    "Content-Type": "application/x-www-form-urlencoded",
                }
                started = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                results.append((time.perf_counter() - started, response.status))

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return results


def send_all(url: str, bodies: Sequence[bytes], concurrency: int) -> list[tuple[float, int]]:
    """Runs in a separate process, so the clients do not share the servers' interpreter."""
    return asyncio.run(_send_all(url, bodies, concurrency))


class Fakes:
    """The local Slack and the local MetaStudio, served from a process of their own.

    Slack and MetaStudio are remote services for a deployed bot: their work must not take
    the interpreter the measured servers run in. The parent asks for slash command bodies
    (issued response_urls and trigger ids) and for what was answered, over a pipe.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_fakes, args=(child,), daemon=True)
        self._process.start()
        ready = self._conn.recv()
        self.slack_api_url: str = ready["slack_api_url"]
        self.metastudio_url: str = ready["metastudio_url"]
        self.job: str = ready["job"]

    def _ask(self, *request: object) -> Any:
        self._conn.send(request)
        return self._conn.recv()

    def bodies(self, text: str, user: str, count: int) -> list[bytes]:
        return list(self._ask("bodies", text, user, count))

    def replies(self) -> list[str]:
        """The text of every answer shown to a user so far (ack bodies and response_urls)."""
        return list(self._ask("replies"))

    def cards(self) -> int:
        return int(self._ask("cards"))

    def close(self) -> None:
        self._conn.send(("stop",))
        self._process.join(10)


def _serve_fakes(conn: Connection) -> None:
    # Remote services take no CPU from a deployed bot; on a small machine the fakes must yield.
    os.nice(19)
    slack = LocalSlack()
    slack.add_channel(CHANNEL, "voice")
    metastudio = LocalMetaStudio()
    with slack.serve(), ServerThread(metastudio.app) as ms:
        job = metastudio.seed_job(voice_name="bench")
        conn.send({"slack_api_url": slack.api_url, "metastudio_url": ms.url, "job": job})
        while True:
            kind, *args = conn.recv()
            if kind == "bodies":
                # A job has one open request at a time: each submit names a job of its own.
                text, user, count = args
                conn.send(
                    [
                        command_body(slack, text.replace(JOB_SLOT, metastudio.seed_job()), user)
                        for _ in range(count)
                    ]
                )
            elif kind == "replies":
                conn.send([p.text for p in slack.responses if p.status_code == 200])
            elif kind == "cards":
                conn.send(len(slack.messages(CHANNEL)))
            else:
                return


async def measure(
    pool: ProcessPoolExecutor, fakes: Fakes, url: str, text: str, count: int, clients: int
) -> list[tuple[float, int]]:
    # Bodies (with their response_urls and trigger ids) are made before the clock starts.
    bodies = fakes.bodies(text, REQUESTER, count)
    return await asyncio.get_running_loop().run_in_executor(pool, send_all, url, bodies, clients)


async def compare(
    pool: ProcessPoolExecutor,
    fakes: Fakes,
    urls: tuple[str, str],
    text: str,
    total: int,
    clients: int,
    answered_before: int,
) -> tuple[Figures, Figures, int]:
    """Bare and bot in alternating rounds, so drift on a shared machine hits both alike.

    Each round waits for the bot's replies to be posted before the next round starts.
    """
    samples: tuple[list[tuple[float, int]], list[tuple[float, int]]] = ([], [])
    expected = answered_before
    for _ in range(ROUNDS):
        for url, kept in zip(urls, samples, strict=True):
            await measure(pool, fakes, url, text, WARM_UP, 1)  # unmeasured: warm pools
            kept.extend(await measure(pool, fakes, url, text, total // ROUNDS, clients))
        expected += WARM_UP + total // ROUNDS
        await wait_for(lambda: answered(fakes) >= expected, 60, "the bot's replies")  # noqa: B023
    bare, bot = (
        Figures.of([r[0] for r in kept], sum(r[1] != 200 for r in kept)) for kept in samples
    )
    return bare, bot, expected


def bot_settings(fakes: Fakes, redis_url: str, prefix: str) -> Settings:
    return Settings(
        SLACK_BOT_TOKEN="xoxb-local",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fakes.slack_api_url,
        REDIS_URL=redis_url,
        VOICEBOT_REDIS_PREFIX=prefix,
        VOICEBOT_QUEUE_NAME=f"{prefix}queue",
        HUAWEICLOUD_SDK_AK=LOCAL_AK,
        HUAWEICLOUD_SDK_SK=LOCAL_SK,
        HUAWEICLOUD_SDK_PROJECT_ID=LOCAL_PROJECT_ID,
        METASTUDIO_ENDPOINT=fakes.metastudio_url,
        VOICEBOT_ADMINS=ADMIN,
        # One requester submits thousands of times here; the limits are not what is measured.
        VOICEBOT_MAX_OPEN_REQUESTS=1_000_000,
        VOICEBOT_REQUEST_LIMIT=1_000_000,
    )


@contextmanager
def environment(redis_url: str, prefix: str) -> Iterator[tuple[Fakes, str, str]]:
    """The fakes (own process), the bot and the bare app (ServerThreads, this process)."""
    fakes = Fakes()
    try:
        settings = bot_settings(fakes, redis_url, prefix)
        with (
            ServerThread(build_web(settings)) as bot,
            ServerThread(bare_app(fakes.slack_api_url)) as bare,
        ):
            yield fakes, f"{bot.url}/slack/events", f"{bare.url}/slack/events"
    finally:
        fakes.close()


async def wait_for(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def grant_requester(fakes: Fakes, bot_url: str, pool: ProcessPoolExecutor) -> None:
    (body,) = fakes.bodies(f"grant <@{REQUESTER}> requester", ADMIN, 1)
    await asyncio.get_running_loop().run_in_executor(pool, send_all, bot_url, [body], 1)
    await wait_for(lambda: any("requester" in t for t in fakes.replies()), 5, "the grant")


def answered(fakes: Fakes) -> int:
    """How many submits the bot has fully answered (card posted and the requester told)."""
    return sum("Approval requested" in text for text in fakes.replies())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


async def run(total: int, levels: Sequence[int]) -> bool:
    server = ensure_redis()
    redis_url = f"{server.url.rsplit('/', 1)[0]}/{REDIS_DB}"
    prefix = f"vbbench:{uuid.uuid4().hex[:12]}:"
    ok = True
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        with environment(redis_url, prefix) as (fakes, bot_url, bare_url):
            await grant_requester(fakes, bot_url, pool)
            text = f"submit {JOB_SLOT} voice_name=x"
            print(f"/voice {text!r}: {total} signed requests per level, ack = HTTP response")
            print(f"{'clients':>7}  {'app':<5} {'p50':>10} {'p99':>10}  failures")
            posted = 0
            for concurrency in levels:
                bare, bot, posted = await compare(
                    pool, fakes, (bare_url, bot_url), text, total, concurrency, posted
                )
                for name, f in (("bare", bare), ("bot", bot)):
                    print(f"{concurrency:>7}  {name:<5} {_ms(f.p50)} {_ms(f.p99)}  {f.failures}")
                p50_ratio, p99_ratio = bot.p50 / bare.p50, bot.p99 / bare.p99
                print(f"{concurrency:>7}  bot/bare: p50 {p50_ratio:.2f}x, p99 {p99_ratio:.2f}x")
                ok &= p50_ratio <= P50_RATIO_TARGET and bot.failures == 0
                if concurrency >= 50:
                    ok &= bot.p99 < P99_TARGET
            print(f"approval cards posted by the bot: {fakes.cards()} (expected {posted})")
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        server.stop()
        pool.shutdown()
    print(
        f"targets (p50 <= {P50_RATIO_TARGET}x bare, p99 < 300 ms at 50): "
        f"{'met' if ok else 'MISSED'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500, help="requests per level and app")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    args = parser.parse_args()
    ok = asyncio.run(run(args.n, args.concurrency))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
