"""Wiring: build the services from one Settings object, and the Bolt app on top of them.

``open_services`` creates every long-lived client once (Redis, the arq queue, MetaStudio,
the Slack Web API client); ``build_app`` registers the Slack listeners. Nothing here reads
the environment: settings come in, objects go out.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import httpx
from redis.asyncio import Redis
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalStore
from bot.audit import AuditLog
from bot.credentials import CredentialsBreaker, fingerprint
from bot.metastudio import MetaStudioClient
from bot.metrics import Metrics
from bot.permissions import PermissionStore
from bot.queue import ArqQueue
from bot.redis import connect
from bot.settings import Settings
from bot.slack.listeners import Listeners
from bot.slack.notify import Notifier
from bot.submissions import SubmissionService


def slack_client(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """The Web API client; one shared aiohttp session saves a TLS handshake per call."""
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        session=session,
        timeout=10,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


@dataclass
class Services:
    settings: Settings
    redis: Redis
    audit: AuditLog
    permissions: PermissionStore
    approvals: ApprovalStore
    metastudio: MetaStudioClient
    queue: ArqQueue
    submissions: SubmissionService
    slack: AsyncWebClient
    notifier: Notifier
    metrics: Metrics
    credentials: CredentialsBreaker

    async def aclose(self) -> None:
        if self.slack.session is not None:
            await self.slack.session.close()
        await self.queue.aclose()
        await self.metastudio.aclose()
        await self.redis.aclose()


async def open_services(
    settings: Settings, *, metastudio_transport: httpx.AsyncBaseTransport | None = None
) -> Services:
    redis = connect(settings.redis_url)
    prefix = settings.redis_prefix
    audit = AuditLog(redis, prefix)
    permissions = PermissionStore(redis, prefix, settings.admins, audit=audit)
    approvals = ApprovalStore(
        redis,
        prefix,
        ttl_seconds=settings.approval_ttl,
        allow_self_approval=settings.allow_self_approval,
        audit=audit,
    )
    breaker = CredentialsBreaker(
        redis, prefix, fingerprint(settings), probe_after=settings.metastudio_auth_probe_after
    )
    metastudio = MetaStudioClient.from_settings(
        settings, transport=metastudio_transport, guard=breaker
    )
    metrics = Metrics()
    metrics.watch_credentials(breaker)
    queue = await ArqQueue.connect(
        settings.redis_url, prefix=prefix, queue_name=settings.queue_name
    )
    slack = slack_client(settings, aiohttp.ClientSession())
    submissions = SubmissionService(
        settings=settings,
        permissions=permissions,
        approvals=approvals,
        metastudio=metastudio,
        queue=queue,
    )
    return Services(
        settings=settings,
        redis=redis,
        audit=audit,
        permissions=permissions,
        approvals=approvals,
        metastudio=metastudio,
        queue=queue,
        submissions=submissions,
        slack=slack,
        notifier=Notifier(slack, approvals, metastudio),
        metrics=metrics,
        credentials=breaker,
    )


def build_app(settings: Settings, services: Services) -> AsyncApp:
    app = AsyncApp(
        client=services.slack,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        process_before_response=False,
    )
    Listeners(services).register(app)
    return app
