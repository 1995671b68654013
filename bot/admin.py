"""The admin commands as a service: roles, grants, revocations and the audit trail, each
checking the caller's permission itself.

Knows nothing of Slack: it takes principals and ids and returns what the Slack edge renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.audit import AuditEvent, AuditLog
from bot.i18n import Language
from bot.permissions import (
    DIRECT,
    Action,
    GroupLookupFailed,
    PermissionStore,
    Principal,
    Role,
)
from bot.policies import Policies, PolicyStore
from bot.redis import StoreUnavailable


@dataclass(frozen=True)
class UserRoles:
    """The roles one user holds."""

    user: str
    roles: tuple[str, ...]
    # Where each role comes from: "direct" and/or the user groups that give it.
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class RoleHolders:
    """Everyone who holds a role, by role."""

    members: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Standing:
    """What ``help`` tells a caller: the roles they hold (None when they could not be read)
    and who can grant the others."""

    roles: frozenset[str] | None
    admins: tuple[str, ...]


class AdminService:
    def __init__(
        self, permissions: PermissionStore, audit: AuditLog, policies: PolicyStore
    ) -> None:
        self._permissions = permissions
        self._audit = audit
        self._policies = policies

    async def policies(self, principal: Principal) -> Policies:
        """The approval policies in force in the caller's workspace (anyone may see them)."""
        return await self._policies.policies(principal.tenant)

    async def set_policy(
        self,
        principal: Principal,
        channel_id: str,
        target_channel: str,
        *,
        approvals: int | None = None,
        language: Language | None = None,
    ) -> None:
        """Set a channel's required approvals and/or language (the store checks the admin)."""
        await self._policies.set_policy(
            principal, channel_id, target_channel, approvals=approvals, language=language
        )

    async def standing(self, principal: Principal) -> Standing:
        try:
            roles = await self._permissions.roles(principal)
            admins = await self._permissions.admins(principal.tenant)
        except (StoreUnavailable, GroupLookupFailed):
            return Standing(None, ())
        return Standing(frozenset(str(role) for role in roles), tuple(admins))

    async def roles(
        self, principal: Principal, channel_id: str, user_id: str | None
    ) -> UserRoles | RoleHolders:
        """Anyone may see their own roles (``user_id`` None or themselves); an admin may name
        anyone, and an admin's bare ``roles`` lists every role's holders."""
        if user_id is None or user_id == principal.user:
            own = await self._user_roles(principal)
            if user_id is not None or Role.admin not in own.roles:
                return own
        await self._permissions.require(principal, Action.manage, channel_id)
        if user_id is not None:
            return await self._user_roles(Principal(principal.tenant, user_id))
        return RoleHolders(
            {str(role): await self._permissions.members(principal.tenant, role) for role in Role}
        )

    async def _user_roles(self, principal: Principal) -> UserRoles:
        sources = await self._permissions.role_sources(principal)
        return UserRoles(
            principal.user,
            tuple(sorted(map(str, sources))),
            {str(role): where for role, where in sources.items() if where != (DIRECT,)},
        )

    async def grant(self, principal: Principal, channel_id: str, user_id: str, role: Role) -> bool:
        """True if ``user_id`` did not hold ``role`` before (the store checks the admin)."""
        return await self._permissions.grant(principal, user_id, role, channel_id=channel_id)

    async def revoke(self, principal: Principal, channel_id: str, user_id: str, role: Role) -> bool:
        """True if ``user_id`` held ``role`` (the store checks the admin)."""
        return await self._permissions.revoke(principal, user_id, role, channel_id=channel_id)

    async def audit_trail(
        self, principal: Principal, channel_id: str, job_id: str | None, limit: int = 50
    ) -> list[AuditEvent]:
        await self._permissions.require(principal, Action.manage, channel_id)
        # Roles are per workspace: its admins see its own trail, nobody else's.
        return await self._audit.read(job_id=job_id, tenant=principal.tenant, limit=limit)
