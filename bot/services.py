"""The long-lived clients of one bot process, built once from one Settings object: Redis,
the arq queue, MetaStudio, the Slack Web API client and the services on top of them.

The web process adds the Bolt app on top (``bot.app``); the worker uses these alone, so it
never loads Bolt. Nothing here reads the environment: settings come in, objects go out.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import httpx
from redis.asyncio import Redis
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalStore, RequestLimits
from bot.audit import AuditLog
from bot.credentials import CredentialsBreaker, fingerprint
from bot.durability import ReplicaWait
from bot.metastudio import MetaStudioClient
from bot.metrics import Metrics
from bot.permissions import PermissionStore
from bot.policies import PolicyStore
from bot.queue import ArqQueue
from bot.redis_ha import RedisTarget
from bot.settings import Settings
from bot.slack.notify import Notifier
from bot.slack.usergroups import SlackGroupDirectory
from bot.submissions import SubmissionService


def slack_client(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """The Web API client; one shared aiohttp session saves a TLS handshake per call."""
    return AsyncWebClient(
        token=settings.secret("slack_bot_token"),
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
    policies: PolicyStore

    async def aclose(self) -> None:
        if self.slack.session is not None:
            await self.slack.session.close()
        await self.queue.aclose()
        await self.metastudio.aclose()
        await self.redis.aclose()


async def open_services(
    settings: Settings, *, metastudio_transport: httpx.AsyncBaseTransport | None = None
) -> Services:
    target = RedisTarget.from_settings(settings)
    redis = target.client()
    prefix = settings.redis_prefix
    audit = AuditLog(redis, prefix)
    slack = slack_client(settings, aiohttp.ClientSession())
    groups = SlackGroupDirectory(slack, settings.usergroup_cache_seconds)
    permissions = PermissionStore(redis, prefix, settings.admins, audit=audit, groups=groups)
    approvals = ApprovalStore(
        redis,
        prefix,
        ttl_seconds=settings.approval_ttl,
        allow_self_approval=settings.allow_self_approval,
        audit=audit,
        replicas=ReplicaWait(settings.redis_min_replicas, settings.redis_replica_timeout),
    )
    policies = PolicyStore(
        redis,
        prefix,
        default_approvals=settings.required_approvals,
        default_language=settings.language,
        permissions=permissions,
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
    queue = ArqQueue(
        target.arq_pool(settings.queue_name), prefix=prefix, queue_name=settings.queue_name
    )
    notifier = Notifier(slack, approvals, metastudio)
    submissions = SubmissionService(
        settings=settings,
        permissions=permissions,
        approvals=approvals,
        metastudio=metastudio,
        queue=queue,
        cards=notifier,
        limits=RequestLimits(
            max_open=settings.max_open_requests,
            per_window=settings.request_limit,
            window_seconds=settings.request_window,
        ),
        policies=policies,
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
        notifier=notifier,
        metrics=metrics,
        credentials=breaker,
        policies=policies,
    )
