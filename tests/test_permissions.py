"""Roles and channel guardrails: deny by default, audited changes, never lose the last admin."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from bot.audit import AuditLog
from bot.permissions import (
    REQUIRED_ROLE,
    AccessCheck,
    Action,
    BootstrapAdminError,
    LastAdminError,
    PermissionDenied,
    PermissionStore,
    PermissionStoreUnavailable,
    Principal,
    Role,
)
from bot.redis import connect
from sandbox.localredis import LocalRedis, start_redis_server

TENANT = "E100"
BOOT = "UBOOT"
CHANNEL = "C1"


def who(user: str, tenant: str = TENANT) -> Principal:
    return Principal(tenant, user)


@pytest.fixture
def store(redis_client: aioredis.Redis, redis_prefix: str) -> PermissionStore:
    return PermissionStore(redis_client, redis_prefix, bootstrap_admins=[BOOT])


@pytest.fixture
def store_without_bootstrap(redis_client: aioredis.Redis, redis_prefix: str) -> PermissionStore:
    """The same data once VOICEBOT_ADMINS is emptied: only stored admins remain."""
    return PermissionStore(redis_client, redis_prefix, bootstrap_admins=[])


async def make_admins(store: PermissionStore, users: Iterable[str]) -> None:
    for user in users:
        assert await store.grant(who(BOOT), user, Role.admin, channel_id=CHANNEL)


def test_principal_uses_the_enterprise_when_there_is_one() -> None:
    assert Principal.from_ids("E1", "T1", "U1") == Principal("E1", "U1")
    assert Principal.from_ids(None, "T1", "U1") == Principal("T1", "U1")
    with pytest.raises(ValueError, match="enterprise or team"):
        Principal.from_ids(None, None, "U1")


async def test_a_stranger_may_only_view(store: PermissionStore) -> None:
    for action in (Action.submit, Action.approve, Action.manage):
        decision = await store.check(who("U1"), action, CHANNEL)
        assert not decision.allowed
        assert decision.missing_role is REQUIRED_ROLE[action]
        assert decision.roles == frozenset()
        assert decision.grantors == (BOOT,)
        assert not decision.channel_blocked

    view = await store.check(who("U1"), Action.view, CHANNEL)
    assert view.allowed
    assert view.missing_role is None


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.requester, {Action.submit, Action.view}),
        (Role.approver, {Action.approve, Action.view}),
        (Role.admin, {Action.manage, Action.view}),
    ],
)
async def test_each_role_grants_exactly_its_actions(
    store: PermissionStore, role: Role, allowed: set[Action]
) -> None:
    await store.grant(who(BOOT), "U1", role, channel_id=CHANNEL)

    decisions = {action: await store.check(who("U1"), action, CHANNEL) for action in Action}

    assert {action for action, d in decisions.items() if d.allowed} == allowed
    assert all(d.roles == {role} for d in decisions.values())
    # Roles are per tenant: the same user elsewhere holds nothing.
    other = await store.check(who("U1", "T-other"), Action.submit, CHANNEL)
    assert other.roles == frozenset()


async def test_require_raises_a_denial_carrying_its_data(store: PermissionStore) -> None:
    await make_admins(store, ["UA"])

    with pytest.raises(PermissionDenied) as denied:
        await store.require(who("U1"), Action.approve, CHANNEL)

    assert denied.value.action is Action.approve
    assert denied.value.missing_role is Role.approver
    assert denied.value.grantors == (BOOT, "UA")
    assert not denied.value.channel_blocked

    await store.grant(who("UA"), "U1", Role.approver, channel_id=CHANNEL)
    decision = await store.require(who("U1"), Action.approve, CHANNEL)
    assert isinstance(decision, AccessCheck)
    assert decision.allowed


async def test_bootstrap_admins_are_admins_everywhere_and_cannot_be_revoked(
    store: PermissionStore,
) -> None:
    for tenant in ("E100", "T200"):
        assert await store.roles(who(BOOT, tenant)) == {Role.admin}
        assert await store.grant(who(BOOT, tenant), "U1", Role.requester, channel_id=CHANNEL)
        assert await store.admins(tenant) == [BOOT]

    await make_admins(store, ["UA"])
    with pytest.raises(BootstrapAdminError) as error:
        await store.revoke(who("UA"), BOOT, Role.admin, channel_id=CHANNEL)
    assert error.value.user == BOOT
    assert "VOICEBOT_ADMINS" in str(error.value)
    assert await store.roles(who(BOOT)) == {Role.admin}

    # Already an admin by configuration: nothing is stored, nothing to audit.
    assert not await store.grant(who("UA"), BOOT, Role.admin, channel_id=CHANNEL)
    # Other roles are ordinary and can be granted to a bootstrap admin.
    assert await store.grant(who("UA"), BOOT, Role.requester, channel_id=CHANNEL)
    assert (await store.check(who(BOOT), Action.submit, CHANNEL)).allowed


async def test_grant_and_revoke_are_audited(
    store: PermissionStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    await make_admins(store, ["UA"])
    audit = AuditLog(redis_client, redis_prefix)

    assert await store.grant(who("UA"), "U1", Role.requester, channel_id="C9", reason="voice team")
    assert not await store.grant(who("UA"), "U1", Role.requester, channel_id="C9")
    assert await store.members(TENANT, Role.requester) == ["U1"]
    assert await store.revoke(who("UA"), "U1", Role.requester, channel_id="C8")
    assert not await store.revoke(who("UA"), "U1", Role.requester, channel_id="C8")

    events = await audit.read()
    assert [(e.actor, e.action, e.target, e.role) for e in events] == [
        (BOOT, "grant", "UA", "admin"),
        ("UA", "grant", "U1", "requester"),
        ("UA", "revoke", "U1", "requester"),
    ]
    granted, revoked = events[1], events[2]
    assert (granted.tenant, granted.channel, granted.detail) == (TENANT, "C9", "voice team")
    assert (revoked.tenant, revoked.channel) == (TENANT, "C8")
    assert granted.ts is not None
    assert revoked.ts is not None
    assert granted.ts <= revoked.ts
    assert await store.roles(who("U1")) == frozenset()
    assert await store.members(TENANT, Role.requester) == []


async def test_non_admin_cannot_grant_and_is_told_who_can(
    store: PermissionStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    await make_admins(store, ["UZ", "UA"])
    await store.grant(who(BOOT), "U1", Role.approver, channel_id=CHANNEL)

    with pytest.raises(PermissionDenied) as denied:
        await store.grant(who("U1"), "U1", Role.requester, channel_id=CHANNEL)
    with pytest.raises(PermissionDenied):
        await store.revoke(who("U1"), "UA", Role.admin, channel_id=CHANNEL)

    assert denied.value.action is Action.manage
    assert denied.value.missing_role is Role.admin
    assert denied.value.grantors == (BOOT, "UA", "UZ")
    assert await store.roles(who("U1")) == {Role.approver}
    assert await store.admins(TENANT) == [BOOT, "UA", "UZ"]
    audited = [(e.action, e.target) for e in await AuditLog(redis_client, redis_prefix).read()]
    assert audited == [
        ("grant", "UZ"),
        ("grant", "UA"),
        ("grant", "U1"),
    ]


async def test_last_admin_cannot_be_revoked_without_bootstrap_admins(
    store: PermissionStore, store_without_bootstrap: PermissionStore
) -> None:
    await make_admins(store, ["UA", "UB"])
    solo = store_without_bootstrap

    assert await solo.revoke(who("UA"), "UB", Role.admin, channel_id=CHANNEL)
    with pytest.raises(LastAdminError) as error:
        await solo.revoke(who("UA"), "UA", Role.admin, channel_id=CHANNEL)

    assert (error.value.tenant, error.value.user) == (TENANT, "UA")
    assert await solo.admins(TENANT) == ["UA"]
    assert await solo.roles(who("UA")) == {Role.admin}
    # With a bootstrap admin configured, the tenant is never left without one.
    assert await store.revoke(who("UA"), "UA", Role.admin, channel_id=CHANNEL)
    assert await store.admins(TENANT) == [BOOT]


async def test_twenty_concurrent_self_revokes_leave_exactly_one_admin(
    store: PermissionStore, store_without_bootstrap: PermissionStore
) -> None:
    admins = [f"UA{n:02d}" for n in range(20)]
    await make_admins(store, admins)
    solo = store_without_bootstrap

    outcomes = await asyncio.gather(
        *(solo.revoke(who(user), user, Role.admin, channel_id=CHANNEL) for user in admins),
        return_exceptions=True,
    )

    assert outcomes.count(True) == 19
    assert [type(o) for o in outcomes if o is not True] == [LastAdminError]
    [survivor] = await solo.admins(TENANT)
    assert await solo.roles(who(survivor)) == {Role.admin}
    for user in set(admins) - {survivor}:
        assert await solo.roles(who(user)) == frozenset()


async def test_two_admins_revoking_each_other_concurrently_keep_one(
    store: PermissionStore, store_without_bootstrap: PermissionStore
) -> None:
    await make_admins(store, ["UA", "UB"])
    solo = store_without_bootstrap
    attempts = [
        solo.revoke(who(actor), target, Role.admin, channel_id=CHANNEL)
        for _ in range(10)
        for actor, target in (("UA", "UB"), ("UB", "UA"))
    ]

    outcomes = await asyncio.gather(*attempts, return_exceptions=True)

    assert outcomes.count(True) == 1
    assert all(
        isinstance(o, LastAdminError | PermissionDenied) or o is False
        for o in outcomes
        if o is not True
    )
    assert len(await solo.admins(TENANT)) == 1


async def test_channel_allow_list_limits_where_a_role_applies(
    store: PermissionStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    await store.grant(who(BOOT), "UAPP", Role.approver, channel_id=CHANNEL)
    await store.grant(who(BOOT), "UREQ", Role.requester, channel_id=CHANNEL)

    await store.set_channels(who(BOOT), Action.approve, ["C-approvals", "C-ops"], channel_id="C0")

    assert (await store.check(who("UAPP"), Action.approve, "C-ops")).allowed
    elsewhere = await store.check(who("UAPP"), Action.approve, "C-random")
    assert not elsewhere.allowed
    assert elsewhere.channel_blocked
    assert elsewhere.missing_role is None
    assert elsewhere.allowed_channels == ("C-approvals", "C-ops")
    assert elsewhere.denial() is not None
    no_channel = await store.check(who("UAPP"), Action.approve, None)
    assert no_channel.channel_blocked
    # The list is per action: submitting is still allowed anywhere.
    assert (await store.check(who("UREQ"), Action.submit, "C-random")).allowed
    # A listed channel does not stand in for a missing role.
    stranger = await store.check(who("U1"), Action.approve, "C-ops")
    assert stranger.missing_role is Role.approver
    assert not stranger.channel_blocked
    assert await store.channels(TENANT, Action.approve) == {"C-approvals", "C-ops"}

    await store.clear_channels(who(BOOT), Action.approve, channel_id="C0")

    assert (await store.check(who("UAPP"), Action.approve, "C-random")).allowed
    assert await store.channels(TENANT, Action.approve) == frozenset()
    events = await AuditLog(redis_client, redis_prefix).read()
    assert [(e.action, e.actor, e.channel, e.detail) for e in events[-2:]] == [
        ("allowlist", BOOT, "C0", "approve: C-approvals,C-ops"),
        ("allowlist", BOOT, "C0", "approve: every channel"),
    ]


async def test_allow_list_changes_are_admin_only_and_validated(store: PermissionStore) -> None:
    await store.grant(who(BOOT), "UAPP", Role.approver, channel_id=CHANNEL)

    with pytest.raises(PermissionDenied) as denied:
        await store.set_channels(who("UAPP"), Action.approve, ["C1"], channel_id=CHANNEL)
    assert denied.value.missing_role is Role.admin
    with pytest.raises(ValueError, match="cannot be limited"):
        await store.set_channels(who(BOOT), Action.manage, ["C1"], channel_id=CHANNEL)
    with pytest.raises(ValueError, match="at least one channel"):
        await store.set_channels(who(BOOT), Action.approve, [], channel_id=CHANNEL)
    assert await store.channels(TENANT, Action.approve) == frozenset()


class CountingConnection(Connection):
    """Counts the packets a client writes: each is one request/reply round trip."""

    writes: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        await super().send_packed_command(command, check_health)


async def test_check_costs_one_round_trip(
    redis_url: str, redis_prefix: str, store: PermissionStore
) -> None:
    await store.grant(who(BOOT), "U1", Role.requester, channel_id=CHANNEL)
    await store.set_channels(who(BOOT), Action.submit, ["C1"], channel_id=CHANNEL)
    client = connect(redis_url, connection_class=CountingConnection)
    try:
        counted = PermissionStore(client, redis_prefix, bootstrap_admins=[BOOT])
        # Warm up: the handshake, the first health check and loading the script.
        await counted.check(who("U1"), Action.submit, "C1")

        calls: list[Callable[[], Awaitable[AccessCheck]]] = [
            lambda: counted.check(who("U1"), Action.submit, "C1"),
            lambda: counted.check(who("U1"), Action.submit, "C2"),
            lambda: counted.check(who("U2"), Action.approve, "C1"),
            lambda: counted.check(who(BOOT), Action.manage, "C1"),
        ]
        for call in calls:
            before = CountingConnection.writes
            await call()
            assert CountingConnection.writes - before == 1
    finally:
        await client.aclose()


async def test_connect_sets_short_timeouts_and_str_replies(
    redis_url: str, redis_prefix: str
) -> None:
    client = connect(redis_url)
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1.0, 2.0)
        assert kwargs["health_check_interval"] > 0
        await client.set(f"{redis_prefix}probe", "ok", ex=60)
        assert await client.get(f"{redis_prefix}probe") == "ok"
    finally:
        await client.aclose()


@pytest.fixture
async def private_redis() -> AsyncIterator[list[LocalRedis]]:
    """A Redis of our own to stop and restart; the list holds whichever one is current."""
    servers = [start_redis_server()]
    yield servers
    for server in servers:
        server.stop()


async def poll_until_available(store: PermissionStore, principal: Principal) -> AccessCheck:
    deadline = time.monotonic() + 10
    while True:
        try:
            return await store.check(principal, Action.submit, CHANNEL)
        except PermissionStoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_outage_fails_closed_and_recovers_without_a_new_store(
    private_redis: list[LocalRedis], redis_prefix: str
) -> None:
    server = private_redis[0]
    assert server.process is not None
    client = connect(server.url, socket_timeout=0.3)
    store = PermissionStore(client, redis_prefix, bootstrap_admins=[BOOT])
    try:
        await store.grant(who(BOOT), "U1", Role.requester, channel_id=CHANNEL)
        assert (await store.check(who("U1"), Action.submit, CHANNEL)).allowed

        # A stalled server: the operation times out.
        server.process.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(PermissionStoreUnavailable) as stalled:
                await store.check(who("U1"), Action.submit, CHANNEL)
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert "permission store unavailable" in str(stalled.value)
        assert (await poll_until_available(store, who("U1"))).allowed

        # A dead server: every operation is refused, then a new one takes its port.
        port = urlsplit(server.url).port
        server.stop()
        with pytest.raises(PermissionStoreUnavailable):
            await store.check(who("U1"), Action.submit, CHANNEL)
        with pytest.raises(PermissionStoreUnavailable):
            await store.grant(who(BOOT), "U1", Role.requester, channel_id=CHANNEL)
        with pytest.raises(PermissionStoreUnavailable):
            await store.roles(who("U1"))

        private_redis.append(start_redis_server(port=port))

        # The new server is empty (nothing persisted), so the role is gone: deny, don't fail.
        decision = await poll_until_available(store, who("U1"))
        assert not decision.allowed
        assert decision.missing_role is Role.requester
        assert await store.grant(who(BOOT), "U1", Role.requester, channel_id=CHANNEL)
        assert (await store.check(who("U1"), Action.submit, CHANNEL)).allowed
    finally:
        await client.aclose()
