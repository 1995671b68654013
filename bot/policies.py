"""Channel policies: how many distinct approvers a request needs, and the language the bot
posts in, for the workspace (``VOICEBOT_REQUIRED_APPROVALS``, ``VOICEBOT_LANGUAGE``) or per
channel, set by admins and audited.

A request takes the policy in force when it is made (``ApprovalRequest.required_approvals``
and ``.language``), so changing a policy never alters a request already open.

Keys (under the store's prefix):
    policy:{tenant}         hash: channel id -> required approvals
    policy-lang:{tenant}    hash: channel id -> language (en, zh)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bot.audit import AuditAction, AuditEvent, AuditLog
from bot.i18n import Language, is_language
from bot.permissions import Action, PermissionStore, Principal
from bot.redis import Keys, StoreUnavailable, unavailable_on_redis_errors

# More approvers than this is a typing mistake, not a policy.
MAX_REQUIRED_APPROVALS = 10


@dataclass(frozen=True)
class Policies:
    """The policies in force in a workspace: the defaults and each channel's overrides."""

    default: int
    channels: Mapping[str, int]
    default_language: Language = "en"
    languages: Mapping[str, Language] = field(default_factory=dict)


class PolicyStore:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        default_approvals: int,
        default_language: Language = "en",
        permissions: PermissionStore,
        audit: AuditLog,
    ) -> None:
        self._redis = redis
        self._keys = Keys(prefix)
        self._default = default_approvals
        self._default_language: Language = default_language
        self._permissions = permissions
        self._audit = audit

    @property
    def default_approvals(self) -> int:
        return self._default

    def key(self, tenant: str) -> str:
        return self._keys("policy", tenant)

    def language_key(self, tenant: str) -> str:
        return self._keys("policy-lang", tenant)

    async def required_approvals(self, tenant: str, channel_id: str) -> int:
        """The number of approvals a request made in ``channel_id`` needs now."""
        with unavailable_on_redis_errors(StoreUnavailable):
            value = await self._redis.hget(self.key(tenant), channel_id)  # type: ignore[misc]
        return int(value) if value else self._default

    async def channel_language(self, tenant: str, channel_id: str) -> Language:
        """The language the bot posts in ``channel_id`` now."""
        with unavailable_on_redis_errors(StoreUnavailable):
            value = await self._redis.hget(self.language_key(tenant), channel_id)  # type: ignore[misc]
        return value if is_language(value) else self._default_language

    async def policies(self, tenant: str) -> Policies:
        with unavailable_on_redis_errors(StoreUnavailable):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.key(tenant))
                pipe.hgetall(self.language_key(tenant))
                stored, languages = await pipe.execute()
        return Policies(
            self._default,
            {str(k): int(v) for k, v in sorted(stored.items())},
            self._default_language,
            {str(k): v for k, v in sorted(languages.items()) if is_language(v)},
        )

    async def set_policy(
        self,
        principal: Principal,
        channel_id: str,
        target_channel: str,
        *,
        approvals: int | None = None,
        language: Language | None = None,
    ) -> None:
        """Set ``target_channel``'s required approvals and/or language (an admin only),
        audited with the change in one transaction. Kept even when equal to the default,
        which may change."""
        await self._permissions.require(principal, Action.manage, channel_id)
        if approvals is None and language is None:
            raise ValueError("nothing to set")
        if approvals is not None and not 1 <= approvals <= MAX_REQUIRED_APPROVALS:
            raise ValueError(f"approvals must be 1 to {MAX_REQUIRED_APPROVALS}")
        changes = [f"approvals={approvals}"] if approvals is not None else []
        changes += [f"language={language}"] if language is not None else []
        event = AuditEvent(
            actor=principal.user,
            action=AuditAction.policy,
            tenant=principal.tenant,
            channel=target_channel,
            detail=" ".join(changes),
        )
        with unavailable_on_redis_errors(StoreUnavailable):
            async with self._redis.pipeline(transaction=True) as pipe:
                if approvals is not None:
                    pipe.hset(self.key(principal.tenant), target_channel, str(approvals))
                if language is not None:
                    pipe.hset(self.language_key(principal.tenant), target_channel, language)
                await self._audit.queue(pipe, event)
                await pipe.execute()
