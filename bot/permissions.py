"""Who may do what, and where: roles and channel guardrails in Redis. Deny by default.

A principal is a Slack user within a tenant (the Enterprise Grid id when there is one, else
the workspace id), keyed by immutable ids, never by names. Roles are independent, not a
ladder: an admin manages roles but must hold ``requester`` to submit, which keeps
"who may ask" and "who may approve" separate duties.

Keys (all under the configured prefix):

- ``roles:{tenant}:{user}``: set of role names the user holds;
- ``admins:{tenant}`` and ``members:{tenant}:{role}``: who holds a role, one lookup;
- ``channels:{tenant}:{action}``: where ``submit``/``approve`` may happen (absent = anywhere).

A role may also be granted to a Slack user group (an ``S...`` id, stored like a user): then
whoever is in the group now holds it, as the ``GroupDirectory`` reads it (cached briefly). A
membership that can't be read grants nothing (``GroupLookupFailed``). The admin role is
granted to people only: a group's membership is managed outside the bot.

Users listed in ``VOICEBOT_ADMINS`` (bootstrap admins) are admins in every tenant; that is
configuration, so the bot cannot revoke it. Every change is written together with its audit
record in one Lua script, so neither exists without the other.

Errors::

    PermissionsError
    ├── PermissionDenied            the actor lacks a role, or the channel is not allowed
    ├── LastAdminError              revoking would leave the tenant with no admin
    ├── BootstrapAdminError         the admin role comes from VOICEBOT_ADMINS
    ├── GroupLookupFailed           a group's members could not be read (fails closed)
    ├── GroupRoleRefused            the admin role is not granted to a group
    └── PermissionStoreUnavailable  Redis is down or slow (also a ``StoreUnavailable``)
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, cast

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from bot import lua
from bot.audit import LUA_AUDIT_APPEND, AuditAction, AuditEvent, AuditLog
from bot.redis import Keys, StoreUnavailable, unavailable_on_redis_errors


class Role(StrEnum):
    requester = "requester"
    approver = "approver"
    admin = "admin"


class Action(StrEnum):
    submit = "submit"
    approve = "approve"
    manage = "manage"
    view = "view"


REQUIRED_ROLE: dict[Action, Role | None] = {
    Action.submit: Role.requester,
    Action.approve: Role.approver,
    Action.manage: Role.admin,
    Action.view: None,
}

# Managing roles is never channel-bound, so a stale allow-list cannot lock admins out.
GUARDED_ACTIONS = frozenset({Action.submit, Action.approve})


class PermissionsError(Exception):
    """Base of the errors this module raises."""


class PermissionDenied(PermissionsError):
    def __init__(
        self,
        action: Action,
        missing_role: Role | None,
        grantors: Sequence[str],
        channel_blocked: bool = False,
        allowed_channels: Sequence[str] = (),
    ) -> None:
        self.action = action
        self.missing_role = missing_role
        self.grantors = tuple(grantors)
        self.channel_blocked = channel_blocked
        self.allowed_channels = tuple(allowed_channels)
        reason = f"requires role {missing_role}" if missing_role else "not allowed in this channel"
        super().__init__(f"{action}: {reason}")


class LastAdminError(PermissionsError):
    def __init__(self, tenant: str, user: str) -> None:
        self.tenant = tenant
        self.user = user
        super().__init__(f"{user} is the last admin of {tenant}")


class BootstrapAdminError(PermissionsError):
    def __init__(self, user: str) -> None:
        self.user = user
        super().__init__(f"{user} is an admin by VOICEBOT_ADMINS and cannot be revoked here")


class GroupLookupFailed(PermissionsError):
    """Slack did not say who is in ``group`` (``error`` is its code): no role comes from it."""

    def __init__(self, group: str, error: str) -> None:
        self.group = group
        self.error = error
        super().__init__(f"members of {group} could not be read: {error}")


class GroupRoleRefused(PermissionsError):
    def __init__(self, group: str, role: Role) -> None:
        self.group = group
        self.role = role
        super().__init__(f"{role} is not granted to a group ({group})")


class GroupDirectory(Protocol):
    """Who is in a user group now (``usergroups.users.list``, cached briefly)."""

    async def members(self, group: str) -> frozenset[str]:
        """The group's members; raises ``GroupLookupFailed`` when they can't be read."""


def is_group(target: str) -> bool:
    """Slack user group ids start with S; user ids with U or W."""
    return target.startswith("S")


# Roles a group may hold; admin stays with people.
GROUP_ROLES = frozenset({Role.requester, Role.approver})
DIRECT = "direct"


class PermissionStoreUnavailable(PermissionsError, StoreUnavailable):
    def __init__(self, message: str = "permission store unavailable") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Principal:
    tenant: str
    user: str

    @classmethod
    def from_ids(cls, enterprise_id: str | None, team_id: str | None, user_id: str) -> Principal:
        """Grid installs share roles across workspaces, so the enterprise wins over the team."""
        tenant = enterprise_id or team_id
        if not tenant or not user_id:
            raise ValueError("a principal needs a user id and an enterprise or team id")
        return cls(tenant=tenant, user=user_id)


@dataclass(frozen=True)
class AccessCheck:
    principal: Principal
    action: Action
    allowed: bool
    roles: frozenset[Role]
    missing_role: Role | None
    channel_blocked: bool
    allowed_channels: tuple[str, ...]
    grantors: tuple[str, ...]

    def denial(self) -> PermissionDenied | None:
        if self.allowed:
            return None
        return PermissionDenied(
            self.action,
            self.missing_role,
            self.grantors,
            channel_blocked=self.channel_blocked,
            allowed_channels=self.allowed_channels,
        )


def _script(name: str) -> str:
    """A permission script (``bot/lua``); the auditing ones get the audit writer and the admin
    check in front."""
    if name == "permission_check":
        return lua.source(lua.__name__, name)
    return LUA_AUDIT_APPEND + lua.source(lua.__name__, "is_admin") + lua.source(lua.__name__, name)


_ROLE_NAMES = frozenset(role.value for role in Role)


def _known_roles(names: Iterable[str]) -> frozenset[Role]:
    # A role name written by a newer release is ignored rather than failing every check.
    return frozenset(Role(name) for name in names if name in _ROLE_NAMES)


def _flag(value: bool) -> str:
    return "1" if value else "0"


class PermissionStore:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        bootstrap_admins: Iterable[str] = (),
        *,
        audit: AuditLog | None = None,
        groups: GroupDirectory | None = None,
    ) -> None:
        self._redis = redis
        self._groups = groups
        self._keys = Keys(prefix)
        self.bootstrap_admins: tuple[str, ...] = tuple(dict.fromkeys(bootstrap_admins))
        self._bootstrap = frozenset(self.bootstrap_admins)
        self.audit = audit or AuditLog(redis, prefix)
        self._check = redis.register_script(_script("permission_check"))
        self._grant = redis.register_script(_script("grant"))
        self._revoke = redis.register_script(_script("revoke"))
        self._set_channels = redis.register_script(_script("set_channels"))

    # Key names

    def roles_key(self, principal: Principal) -> str:
        return self._keys("roles", principal.tenant, principal.user)

    def admins_key(self, tenant: str) -> str:
        return self._keys("admins", tenant)

    def members_key(self, tenant: str, role: Role) -> str:
        if role is Role.admin:
            return self.admins_key(tenant)
        return self._keys("members", tenant, role)

    def channels_key(self, tenant: str, action: Action) -> str:
        return self._keys("channels", tenant, action)

    # Reads

    async def check(
        self, principal: Principal, action: Action, channel_id: str | None
    ) -> AccessCheck:
        """Decide in one Redis round trip; a channel of ``None`` fails any allow-list."""
        guarded = action in GUARDED_ACTIONS
        keys = [
            self.roles_key(principal),
            self.admins_key(principal.tenant),
            self.channels_key(principal.tenant, action),
        ]
        raw = await self._run(self._check, keys, [_flag(guarded), channel_id or ""])
        stored_roles, stored_admins, blocked, allowed_channels = raw
        roles = _known_roles(stored_roles)
        if principal.user in self._bootstrap:
            roles |= {Role.admin}
        required = REQUIRED_ROLE[action]
        if (
            required in GROUP_ROLES
            and required not in roles
            and await self._groups_granting(principal, required)
        ):
            roles |= {required}
        missing = required if required is not None and required not in roles else None
        channel_blocked = bool(blocked)
        return AccessCheck(
            principal=principal,
            action=action,
            allowed=missing is None and not channel_blocked,
            roles=roles,
            missing_role=missing,
            channel_blocked=channel_blocked,
            allowed_channels=tuple(sorted(allowed_channels)) if channel_blocked else (),
            grantors=self._grantors(stored_admins),
        )

    async def require(
        self, principal: Principal, action: Action, channel_id: str | None
    ) -> AccessCheck:
        """``check``, raising ``PermissionDenied`` unless allowed."""
        decision = await self.check(principal, action, channel_id)
        denial = decision.denial()
        if denial is not None:
            raise denial
        return decision

    async def roles(self, principal: Principal) -> frozenset[Role]:
        """Every role ``principal`` holds, directly or through a group they are in now."""
        return frozenset(await self.role_sources(principal))

    async def role_sources(self, principal: Principal) -> Mapping[Role, tuple[str, ...]]:
        """Each role held, with where it comes from: ``DIRECT`` and/or group ids."""
        with unavailable_on_redis_errors(PermissionStoreUnavailable):
            stored = await self._smembers(self.roles_key(principal))
        sources: dict[Role, tuple[str, ...]] = {role: (DIRECT,) for role in _known_roles(stored)}
        if principal.user in self._bootstrap:
            sources[Role.admin] = (DIRECT,)
        for role in sorted(GROUP_ROLES):
            groups = await self._groups_granting(principal, role)
            if groups:
                sources[role] = (*sources.get(role, ()), *groups)
        return sources

    async def _groups_granting(self, principal: Principal, role: Role) -> tuple[str, ...]:
        """The groups holding ``role`` that ``principal`` is in now."""
        if self._groups is None:
            return ()
        with unavailable_on_redis_errors(PermissionStoreUnavailable):
            holders = await self._smembers(self.members_key(principal.tenant, role))
        found: list[str] = []
        for group in sorted(h for h in holders if is_group(h)):
            if principal.user in await self._groups.members(group):
                found.append(group)
        return tuple(found)

    async def admins(self, tenant: str) -> list[str]:
        """Bootstrap admins first (in configured order), then the tenant's own, sorted."""
        with unavailable_on_redis_errors(PermissionStoreUnavailable):
            stored = await self._smembers(self.admins_key(tenant))
        return list(self._grantors(stored))

    async def members(self, tenant: str, role: Role) -> list[str]:
        if role is Role.admin:
            return await self.admins(tenant)
        with unavailable_on_redis_errors(PermissionStoreUnavailable):
            stored = await self._smembers(self.members_key(tenant, role))
        return sorted(stored)

    async def channels(self, tenant: str, action: Action) -> frozenset[str]:
        """Channels where ``action`` is allowed; empty means every channel."""
        with unavailable_on_redis_errors(PermissionStoreUnavailable):
            stored = await self._smembers(self.channels_key(tenant, action))
        return frozenset(stored)

    # Changes (admin only, each audited atomically)

    async def grant(
        self,
        actor: Principal,
        target: str,
        role: Role,
        *,
        channel_id: str | None,
        reason: str | None = None,
    ) -> bool:
        """Give ``target`` (a user or user group of the actor's tenant) ``role``; True if
        it changed."""
        if is_group(target) and role not in GROUP_ROLES:
            raise GroupRoleRefused(target, role)
        event = AuditEvent(
            actor=actor.user,
            action=AuditAction.grant,
            tenant=actor.tenant,
            channel=channel_id,
            target=target,
            role=role,
            detail=reason,
        )
        args = [
            actor.user,
            _flag(actor.user in self._bootstrap),
            target,
            role,
            _flag(role is Role.admin and target in self._bootstrap),
        ]
        result = await self._run_change(self._grant, actor, target, role, args, event)
        return bool(result[1])

    async def revoke(
        self,
        actor: Principal,
        target: str,
        role: Role,
        *,
        channel_id: str | None,
        reason: str | None = None,
    ) -> bool:
        """Take ``role`` from ``target``; True if it changed.

        Raises ``BootstrapAdminError`` for a VOICEBOT_ADMINS user's admin role and
        ``LastAdminError`` when no admin would be left.
        """
        event = AuditEvent(
            actor=actor.user,
            action=AuditAction.revoke,
            tenant=actor.tenant,
            channel=channel_id,
            target=target,
            role=role,
            detail=reason,
        )
        args = [
            actor.user,
            _flag(actor.user in self._bootstrap),
            target,
            role,
            _flag(role is Role.admin and target in self._bootstrap),
            _flag(bool(self._bootstrap)),
        ]
        result = await self._run_change(self._revoke, actor, target, role, args, event)
        if result[0] == "bootstrap":
            raise BootstrapAdminError(target)
        if result[0] == "last_admin":
            raise LastAdminError(actor.tenant, target)
        return bool(result[1])

    async def set_channels(
        self,
        actor: Principal,
        action: Action,
        channels: Iterable[str],
        *,
        channel_id: str | None,
    ) -> None:
        """Allow ``action`` only in ``channels`` (non-empty; use ``clear_channels`` to lift)."""
        allowed = sorted(set(channels))
        if not allowed:
            raise ValueError("an allow-list needs at least one channel; clear it instead")
        await self._write_channels(actor, action, allowed, channel_id)

    async def clear_channels(
        self, actor: Principal, action: Action, *, channel_id: str | None
    ) -> None:
        """Allow ``action`` in every channel again."""
        await self._write_channels(actor, action, [], channel_id)

    # Internals

    def _grantors(self, stored_admins: Iterable[str]) -> tuple[str, ...]:
        own = sorted(set(stored_admins) - self._bootstrap)
        return (*self.bootstrap_admins, *own)

    async def _write_channels(
        self, actor: Principal, action: Action, channels: list[str], channel_id: str | None
    ) -> None:
        if action not in GUARDED_ACTIONS:
            raise ValueError(f"{action} cannot be limited to channels")
        detail = f"{action}: {','.join(channels)}" if channels else f"{action}: every channel"
        event = AuditEvent(
            actor=actor.user,
            action=AuditAction.allowlist,
            tenant=actor.tenant,
            channel=channel_id,
            detail=detail,
        )
        keys = [
            self.admins_key(actor.tenant),
            self.channels_key(actor.tenant, action),
            *self.audit.script_keys(event),
        ]
        args = [
            actor.user,
            _flag(actor.user in self._bootstrap),
            str(len(channels)),
            *channels,
            *self.audit.script_args(event),
        ]
        result = await self._run(self._set_channels, keys, args)
        self._raise_if_denied(result)

    async def _run_change(
        self,
        script: AsyncScript,
        actor: Principal,
        target: str,
        role: Role,
        args: list[str],
        event: AuditEvent,
    ) -> list[Any]:
        keys = [
            self.roles_key(Principal(actor.tenant, target)),
            self.admins_key(actor.tenant),
            self.members_key(actor.tenant, role),
            *self.audit.script_keys(event),
        ]
        result = await self._run(script, keys, [*args, *self.audit.script_args(event)])
        self._raise_if_denied(result)
        return result

    def _raise_if_denied(self, result: list[Any]) -> None:
        if result[0] == "denied":
            raise PermissionDenied(Action.manage, Role.admin, self._grantors(result[1]))

    async def _smembers(self, key: str) -> set[str]:
        # redis-py types its set commands as "sync or async"; this client is always async.
        reply = self._redis.smembers(key)
        return await cast(Awaitable[set[str]], reply)

    async def _run(self, script: AsyncScript, keys: list[str], args: list[str]) -> list[Any]:
        with unavailable_on_redis_errors(PermissionStoreUnavailable):
            result = await script(keys=keys, args=args)
        return list(result)
