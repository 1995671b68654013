"""The local run (``python -m sandbox``): the whole bot on one machine, no Slack or cloud account.

``DevStack`` starts, in this process, the local MetaStudio (seeded from
``config/sandbox-jobs.json`` with short review delays), the local Slack with its playground
page, the bot's web app and the review worker (its own thread and event loop), all on
loopback, and maps demo users to roles in Redis. ``run_dev`` adds a Redis (found or started),
a key prefix of its own, one printed URL and a clean stop on Ctrl-C or SIGTERM that removes
every key the run wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import signal
import threading
from collections.abc import Coroutine, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import SecretStr
from redis.exceptions import RedisError

from bot.audit import AuditLog
from bot.permissions import PermissionStore, Principal, Role
from bot.policies import PolicyStore
from bot.redis import connect
from bot.settings import Settings
from bot.web import build_web
from bot.worker import WorkerSupervisor
from sandbox.localredis import ensure_redis
from sandbox.metastudio import (
    LOCAL_AK,
    LOCAL_PROJECT_ID,
    LOCAL_SK,
    LocalMetaStudio,
    ReviewPlan,
)
from sandbox.serve import ServerThread
from sandbox.slack import LocalSlack
from sandbox.slack.playground import PlaygroundUser

log = logging.getLogger("sandbox.dev")
T = TypeVar("T")

SEED_FILE = Path(__file__).resolve().parents[1] / "config" / "sandbox-jobs.json"
# Review and training take days in MetaStudio; here the whole story fits in well under a minute.
DEV_REVIEW = ReviewPlan(system_delay=4.0, admin_delay=5.0, wait_delay=2.0, train_delay=6.0)
DEV_CHANNEL = "C0VOICEDEV"
DEV_CHANNEL_NAME = "voice-training"
# A second channel whose cards and threads are in Chinese (``/voice policy ... language=zh``).
DEV_CHANNEL_ZH = "C0VOICEZH1"
DEV_CHANNEL_ZH_NAME = "voice-training-zh"
KEY_PREFIX_ROOT = "voicebot-dev"
DEFAULT_PREFIX: str = Settings.model_fields["redis_prefix"].default
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
ARQ_KEY_PREFIXES = ("arq:job:", "arq:in-progress:", "arq:retry:", "arq:result:")


@dataclass(frozen=True)
class DemoUser:
    """A member of the local workspace and the roles the local run gives them."""

    id: str
    name: str
    real_name: str
    label: str
    roles: tuple[Role, ...] = ()
    # Their Slack language: what only they see (replies, the form, Home) follows it.
    locale: str = "en-US"

    def playground_user(self) -> PlaygroundUser:
        return PlaygroundUser(
            id=self.id, name=self.name, real_name=self.real_name, label=self.label
        )


DEMO_ADMIN = DemoUser("U0DEVADMIN", "ada", "Ada Admin", "admin")
DEMO_REQUESTER = DemoUser("U0DEVREQST", "rin", "Rin Requester", "requester", (Role.requester,))
DEMO_APPROVER = DemoUser("U0DEVAPPRV", "abe", "Abe Approver", "approver", (Role.approver,))
DEMO_ZH = DemoUser(
    "U0DEVZHCN1",
    "lina",
    "李娜 Li Na",
    "requester, approver · zh-CN",
    (Role.requester, Role.approver),
    locale="zh-CN",
)
DEMO_USERS: tuple[DemoUser, ...] = (DEMO_REQUESTER, DEMO_APPROVER, DEMO_ADMIN, DEMO_ZH)

# Used only when the seed file is missing (an installed package without the repository).
FALLBACK_SEED: dict[str, object] = {
    "jobs": [
        {"voice_name": "warm_female_cn_01", "tag": "CUSTOMER", "outcome": "pass"},
        {
            "voice_name": "news_anchor_m_02",
            "sex": "MALE",
            "tag": "NEWS",
            "outcome": "fail",
            "failure": {
                "stage": "system",
                "errors": [
                    {
                        "audio_name": "audio_3.wav",
                        "text_name": "text_3.txt",
                        "error_code": "MSS.12000103",
                        "error_message": "signal-to-noise ratio too low",
                    }
                ],
            },
        },
    ]
}


@dataclass(frozen=True)
class StackOptions:
    """How fast the local run moves, and where the playground listens (0: any free port)."""

    review: ReviewPlan = DEV_REVIEW
    poll_interval: float = 1.0
    poll_max_interval: float = 3.0
    port: int = 0
    seed: Path | None = SEED_FILE
    users: tuple[DemoUser, ...] = DEMO_USERS
    channel: str = DEV_CHANNEL
    channel_name: str = DEV_CHANNEL_NAME
    chinese_channel: str | None = DEV_CHANNEL_ZH
    chinese_channel_name: str = DEV_CHANNEL_ZH_NAME


# -- deciding whether to run locally at all ---------------------------------------------------


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def has_real_slack(settings: Settings) -> bool:
    """A bot token for a Slack that is not this machine's sandbox."""
    return settings.slack_bot_token is not None and not _is_loopback(settings.slack_api_url)


def has_real_metastudio(settings: Settings) -> bool:
    """Credentials for a MetaStudio that is not this machine's sandbox."""
    has_keys = settings.has_metastudio_credentials and (
        settings.huaweicloud_sdk_ak is None
        or settings.huaweicloud_sdk_ak.get_secret_value() != LOCAL_AK
    )
    has_iam = bool(settings.iam_user and settings.iam_password)
    return (has_keys or has_iam) and not _is_loopback(settings.metastudio_endpoint)


def real_run_instructions(settings: Settings) -> str | None:
    """What to run instead when the environment points at real Slack or real MetaStudio."""
    found = [
        name
        for name, present in (
            ("a Slack bot token", has_real_slack(settings)),
            ("Huawei Cloud credentials", has_real_metastudio(settings)),
        )
        if present
    ]
    if not found:
        return None
    transport = (
        "python -m bot socket     # Socket Mode: no public URL needed"
        if settings.slack_app_token is not None
        else "python -m bot serve      # HTTP: Slack posts to https://<your host>/slack/events"
    )
    return "\n".join(
        [
            f"voicebot: the environment has {' and '.join(found)}, so `dev` does not start the "
            "local sandboxes.",
            "Run the bot against the real services instead, in two terminals:",
            f"  {transport}",
            "  python -m bot worker     # tracks approved submits through review",
            "To try the local playground, unset SLACK_BOT_TOKEN, SLACK_API_URL, "
            "HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK and METASTUDIO_ENDPOINT.",
        ]
    )


# -- building blocks ----------------------------------------------------------------------------


def run_isolated(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a private loop, leaving the thread's current loop (if any) alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    finally:
        loop.close()


def new_key_prefix(base: str = DEFAULT_PREFIX) -> str:
    """A prefix no other run uses, so a shared Redis keeps every run's keys apart; a prefix
    chosen in VOICEBOT_REDIS_PREFIX stays at its start."""
    root = f"{KEY_PREFIX_ROOT}:" if base == DEFAULT_PREFIX else f"{base}dev:"
    return f"{root}{secrets.token_hex(4)}:"


def local_settings(
    settings: Settings,
    *,
    redis_url: str,
    prefix: str,
    slack: LocalSlack,
    bot_token: str,
    metastudio_url: str,
    options: StackOptions,
) -> Settings:
    """The given settings rewired to the local services, with their credentials (which exist
    only for this run); the bot's policy knobs are kept."""
    return settings.model_copy(
        update={
            "slack_bot_token": SecretStr(bot_token),
            "slack_signing_secret": SecretStr(slack.signing_secret),
            "slack_app_token": None,
            "slack_api_url": slack.api_url,
            "redis_url": redis_url,
            "redis_prefix": prefix,
            "queue_name": f"{prefix}arq",
            "huaweicloud_sdk_ak": SecretStr(LOCAL_AK),
            "huaweicloud_sdk_sk": SecretStr(LOCAL_SK),
            "huaweicloud_sdk_project_id": LOCAL_PROJECT_ID,
            "metastudio_endpoint_override": metastudio_url,
            "iam_endpoint": None,
            "iam_user": None,
            "iam_password": None,
            "iam_domain": None,
            "admins": tuple(u.id for u in options.users if u.label == "admin"),
            "poll_interval": options.poll_interval,
            "poll_max_interval": options.poll_max_interval,
            "metastudio_timeout": 5.0,
        }
    )


def seed_metastudio(metastudio: LocalMetaStudio, options: StackOptions) -> list[str]:
    """Seed the jobs, then apply the local run's review delays over the seed file's."""
    if options.seed is not None and options.seed.is_file():
        job_ids = metastudio.load_seed(options.seed)
    else:
        log.warning("seed file %s not found; seeding two demo jobs", options.seed)
        job_ids = metastudio.load_seed(FALLBACK_SEED)
    metastudio.review = options.review
    return job_ids


async def grant_demo_roles(settings: Settings, team_id: str, users: Sequence[DemoUser]) -> None:
    """Give each demo user their roles, granted by the bootstrap admin as ``/voice grant`` would."""
    if not settings.admins:
        return
    client = connect(settings.redis_url)
    try:
        store = PermissionStore(client, settings.redis_prefix, settings.admins)
        admin = Principal.from_ids(None, team_id, settings.admins[0])
        for user in users:
            for role in user.roles:
                await store.grant(
                    admin, user.id, role, channel_id=None, reason="local run demo user"
                )
    finally:
        await client.aclose()


async def speak_chinese_in(settings: Settings, team_id: str, channel: str) -> None:
    """Set ``channel``'s language to Chinese, as ``/voice policy #channel language=zh`` would."""
    if not settings.admins:
        return
    client = connect(settings.redis_url)
    try:
        prefix = settings.redis_prefix
        audit = AuditLog(client, prefix)
        permissions = PermissionStore(client, prefix, settings.admins, audit=audit)
        policies = PolicyStore(
            client,
            prefix,
            default_approvals=settings.required_approvals,
            default_language=settings.language,
            permissions=permissions,
            audit=audit,
        )
        admin = Principal.from_ids(None, team_id, settings.admins[0])
        await policies.set_policy(admin, channel, channel, language="zh")
    finally:
        await client.aclose()


async def delete_run_keys(redis_url: str, prefix: str, queue_name: str) -> int:
    """Delete the keys this run wrote: those carrying its prefix, and the arq bookkeeping of
    jobs still in its queue (cron job ids carry no prefix of ours)."""
    client = connect(redis_url)
    try:
        job_ids = await client.zrange(queue_name, 0, -1)
        keys = {f"{kind}{job_id}" for job_id in job_ids for kind in ARQ_KEY_PREFIXES}
        keys.update([key async for key in client.scan_iter(match=f"*{prefix}*", count=500)])
        return int(await client.delete(*keys)) if keys else 0
    finally:
        await client.aclose()


class WorkerThread:
    """The supervised review worker on its own thread and event loop; ``stop`` finishes it
    like SIGTERM."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: WorkerSupervisor | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="voicebot-worker", daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:
            self._error = error
            self._ready.set()
            raise
        finally:
            loop.close()

    async def _serve(self) -> None:
        # Signals belong to the main thread; it stops this worker through ``stop``.
        supervisor = WorkerSupervisor(self._settings)
        self._supervisor = supervisor
        running = asyncio.ensure_future(supervisor.run())
        self._ready.set()
        await running

    def start(self) -> WorkerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError("the review worker did not start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        supervisor, loop = self._supervisor, self._loop
        if supervisor is not None and loop is not None and not loop.is_closed():
            # The loop may close between the check and the call; then the worker is done.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(supervisor.stop, signal.SIGTERM)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def _serve(app: object, port: int) -> ServerThread:
    """``ServerThread`` on ``port`` if it is free, else on any free port."""
    if port:
        try:
            return ServerThread(app, port=port)  # type: ignore[arg-type]
        except OSError:
            log.info("port %d is taken; using a free one", port)
    return ServerThread(app)  # type: ignore[arg-type]


@dataclass
class DevStack:
    """Local MetaStudio, local Slack with the playground, the web app and the worker."""

    base_settings: Settings
    redis_url: str
    prefix: str
    options: StackOptions = field(default_factory=StackOptions)
    slack: LocalSlack = field(init=False)
    metastudio: LocalMetaStudio = field(init=False)
    settings: Settings = field(init=False)
    job_ids: list[str] = field(init=False, default_factory=list)
    url: str = field(init=False, default="")
    bot_url: str = field(init=False, default="")
    _exits: ExitStack = field(init=False, default_factory=ExitStack)

    def start(self) -> DevStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        options = self.options
        self.metastudio = LocalMetaStudio(review=options.review)
        self.job_ids = seed_metastudio(self.metastudio, options)
        ms_server = self._exits.enter_context(ServerThread(self.metastudio.app))
        log.info("local MetaStudio on %s (%d jobs)", ms_server.url, len(self.job_ids))

        bot_token = f"xoxb-local-{secrets.token_hex(8)}"
        self.slack = LocalSlack(bot_token=bot_token, signing_secret=secrets.token_hex(16))
        self.slack.add_channel(options.channel, options.channel_name)
        if options.chinese_channel is not None:
            self.slack.add_channel(options.chinese_channel, options.chinese_channel_name)
        for user in options.users:
            self.slack.add_user(
                user.id,
                user.name,
                user.real_name,
                is_admin=user.label == "admin",
                locale=user.locale,
            )
        slack_server = self._exits.enter_context(_serve(self.slack.app, options.port))
        self.slack.base_url = slack_server.url
        self.url = slack_server.url
        log.info("local Slack on %s", slack_server.url)

        self.settings = local_settings(
            self.base_settings,
            redis_url=self.redis_url,
            prefix=self.prefix,
            slack=self.slack,
            bot_token=bot_token,
            metastudio_url=ms_server.url,
            options=options,
        )
        run_isolated(grant_demo_roles(self.settings, self.slack.team_id, options.users))
        if options.chinese_channel is not None:
            run_isolated(
                speak_chinese_in(self.settings, self.slack.team_id, options.chinese_channel)
            )
        web = self._exits.enter_context(ServerThread(build_web(self.settings)))
        self.bot_url = f"{web.url}/slack/events"
        log.info("bot web app on %s", web.url)

        worker = WorkerThread(self.settings).start()
        self._exits.callback(worker.stop)
        log.info("review worker running (queue %s)", self.settings.queue_name)

        self.slack.playground.configure(
            bot_url=self.bot_url,
            channel=options.channel,
            users=[u.playground_user() for u in options.users],
            jobs=self.job_ids,
        )

    def stop(self) -> None:
        self._exits.close()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- python -m sandbox ------------------------------------------------------------------------


def _redis_location(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or ''}"


def run_dev(settings: Settings) -> None:
    """Run everything locally until Ctrl-C or SIGTERM; print the playground URL once."""
    instructions = real_run_instructions(settings)
    if instructions is not None:
        print(instructions, flush=True)
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    logging.getLogger("arq").setLevel(logging.WARNING)
    local_redis = ensure_redis(settings.redis_url)
    prefix = new_key_prefix(settings.redis_prefix)
    where = "started here" if local_redis.started_here else "shared"
    log.info("Redis at %s (%s), keys under %s", _redis_location(local_redis.url), where, prefix)
    options = StackOptions(port=settings.port)
    queue_name = f"{prefix}arq"
    try:
        with DevStack(settings, local_redis.url, prefix, options) as stack:
            if not stop.is_set():
                print(f"voicebot playground: {stack.url}/", flush=True)
                log.info(
                    "demo users: %s", ", ".join(f"{u.real_name} ({u.label})" for u in options.users)
                )
                log.info(
                    "try `/voice submit` as %s, then Approve as %s; Ctrl-C stops",
                    DEMO_REQUESTER.real_name,
                    DEMO_APPROVER.real_name,
                )
            while not stop.wait(0.5):
                pass
            log.info("stopping")
    finally:
        try:
            removed = run_isolated(delete_run_keys(local_redis.url, prefix, queue_name))
            log.info("removed %d Redis keys", removed)
        except RedisError as error:
            log.warning("could not remove the run's Redis keys (%s)", type(error).__name__)
        local_redis.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
