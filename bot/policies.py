"""Approval policies: how many distinct approvers a request needs, for the workspace
(``VOICEBOT_REQUIRED_APPROVALS``) or per channel, set by admins and audited.

A request takes the policy in force when it is made (``ApprovalRequest.required_approvals``),
so changing a policy never alters a request already open.

Keys (under the store's prefix):
    policy:{tenant}    hash: channel id -> required approvals
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.audit import AuditAction, AuditEvent, AuditLog
from bot.permissions import Action, PermissionStore, Principal
from bot.redis import Keys, StoreUnavailable, unavailable_on_redis_errors

# More approvers than this is a typing mistake, not a policy.
MAX_REQUIRED_APPROVALS = 10


@dataclass(frozen=True)
class Policies:
    """The policies in force in a workspace: the default and each channel's override."""

    default: int
    channels: Mapping[str, int]


class PolicyStore:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        default_approvals: int,
        permissions: PermissionStore,
        audit: AuditLog,
    ) -> None:
        self._redis = redis
        self._keys = Keys(prefix)
        self._default = default_approvals
        self._permissions = permissions
        self._audit = audit

    @property
    def default_approvals(self) -> int:
        return self._default

    def key(self, tenant: str) -> str:
        return self._keys("policy", tenant)

    async def required_approvals(self, tenant: str, channel_id: str) -> int:
        """The number of approvals a request made in ``channel_id`` needs now."""
        with unavailable_on_redis_errors(StoreUnavailable):
            value = await self._redis.hget(self.key(tenant), channel_id)  # type: ignore[misc]
        return int(value) if value else self._default

    async def policies(self, tenant: str) -> Policies:
        with unavailable_on_redis_errors(StoreUnavailable):
            stored = await self._redis.hgetall(self.key(tenant))  # type: ignore[misc]
        return Policies(self._default, {str(k): int(v) for k, v in sorted(stored.items())})

    async def set_approvals(
        self, principal: Principal, channel_id: str, target_channel: str, approvals: int
    ) -> None:
        """Set ``target_channel``'s required approvals (an admin only), audited with the
        change in one transaction. Kept even when equal to the default, which may change."""
        await self._permissions.require(principal, Action.manage, channel_id)
        if not 1 <= approvals <= MAX_REQUIRED_APPROVALS:
            raise ValueError(f"approvals must be 1 to {MAX_REQUIRED_APPROVALS}")
        event = AuditEvent(
            actor=principal.user,
            action=AuditAction.policy,
            tenant=principal.tenant,
            channel=target_channel,
            detail=f"approvals={approvals}",
        )
        with unavailable_on_redis_errors(StoreUnavailable):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self.key(principal.tenant), target_channel, str(approvals))
                await self._audit.queue(pipe, event)
                await pipe.execute()
