"""What waits for one user, as the App Home tab shows it: the requests an approver may decide
now, a requester's open and recent requests, and, for admins, the policies and role holders.

Knows nothing of Slack: it reads the stores and returns plain data the Slack edge renders.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bot.approvals import ApprovalRequest, ApprovalStore
from bot.approvals.model import ApprovalStatus
from bot.permissions import GroupLookupFailed, PermissionStore, Principal, Role
from bot.policies import Policies, PolicyStore
from bot.redis import StoreUnavailable, unavailable_on_redis_errors

# Enough for any page of the Home tab; the pending set is read in full only up to this many.
MAX_PENDING_SCAN = 500
RECENT_REQUESTS = 20


@dataclass(frozen=True)
class Inbox:
    """One user's view of the bot. ``waiting`` is None unless they hold the approver role;
    ``policies`` and ``holders`` are None unless they are an admin."""

    user: str
    roles: frozenset[Role]
    waiting: Sequence[ApprovalRequest] | None
    mine: Sequence[ApprovalRequest]
    policies: Policies | None = None
    holders: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # Why a part could not be read (a group lookup that failed), if one could not.
    problem: str | None = None


class InboxService:
    def __init__(
        self,
        redis: Redis,
        *,
        permissions: PermissionStore,
        approvals: ApprovalStore,
        policies: PolicyStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._permissions = permissions
        self._approvals = approvals
        self._policies = policies
        self._clock = clock

    async def inbox(self, principal: Principal) -> Inbox:
        problem: str | None = None
        try:
            roles = await self._permissions.roles(principal)
        except GroupLookupFailed as error:
            # Fail closed: only the roles held directly count while a group can't be read.
            roles = frozenset()
            problem = error.group
        waiting = await self.waiting_for(principal) if Role.approver in roles else None
        mine = await self.requests_of(principal)
        if Role.admin not in roles:
            return Inbox(principal.user, roles, waiting, mine, problem=problem)
        holders = {
            str(role): await self._permissions.members(principal.tenant, role) for role in Role
        }
        policies = await self._policies.policies(principal.tenant)
        return Inbox(principal.user, roles, waiting, mine, policies, holders, problem)

    async def waiting_for(self, principal: Principal) -> list[ApprovalRequest]:
        """Pending requests of the user's workspace that their approval would count for,
        oldest first."""
        with unavailable_on_redis_errors(StoreUnavailable):
            ids = await self._redis.zrange(self._approvals.expiry_key, 0, MAX_PENDING_SCAN - 1)
        now = self._clock()
        found: list[ApprovalRequest] = []
        for request_id in ids:
            request = await self._approvals.get(str(request_id))
            if request is None or request.status != ApprovalStatus.PENDING:
                continue
            if request.tenant != principal.tenant or request.expires_at <= now:
                continue
            if principal.user in request.approver_ids:
                continue
            if request.requester == principal.user and not self._approvals.allow_self_approval:
                continue
            found.append(request)
        return found

    async def requests_of(self, principal: Principal) -> list[ApprovalRequest]:
        """The user's own recent requests, newest first."""
        key = self._approvals.requests_key(principal.tenant, principal.user)
        with unavailable_on_redis_errors(StoreUnavailable):
            ids = await self._redis.zrevrange(key, 0, RECENT_REQUESTS - 1)
        found = [await self._approvals.get(str(i)) for i in ids]
        return [r for r in found if r is not None]
