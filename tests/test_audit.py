"""The audit stream: records keep their shape, carry server time, and are found by job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from bot.approvals import payload_hash
from bot.audit import (
    AUDIT_FIELDS,
    LUA_AUDIT_APPEND,
    AuditAction,
    AuditEvent,
    AuditLog,
)
from bot.redis import StoreUnavailable, connect
from sandbox.localredis import _free_port


@pytest.fixture
def audit(redis_client: aioredis.Redis, redis_prefix: str) -> AuditLog:
    return AuditLog(redis_client, redis_prefix)


async def test_append_stores_every_field_with_server_time(audit: AuditLog) -> None:
    event = AuditEvent(
        actor="U1",
        action=AuditAction.approved,
        tenant="E1",
        channel="C1",
        target="U2",
        role="approver",
        job_id="job-1",
        request_id="req-1",
        payload_hash=payload_hash("job-1", {"voice_name": "Ann"}, None),
        detail="looks right",
    )
    before = datetime.now(UTC) - timedelta(seconds=5)

    entry_id = await audit.append(event)

    [stored] = await audit.read()
    assert stored.id == entry_id
    assert stored.model_dump(exclude={"id", "ts"}) == event.model_dump(exclude={"id", "ts"})
    assert stored.ts is not None
    assert before < stored.ts < datetime.now(UTC) + timedelta(seconds=5)


async def test_unset_fields_are_left_out_of_the_entry(
    audit: AuditLog, redis_client: aioredis.Redis
) -> None:
    entry_id = await audit.append(AuditEvent(actor="U1", action="expired", job_id="j"))

    [(raw_id, raw)] = await redis_client.xrange(audit.stream_key)
    assert raw_id == entry_id
    # Every field is stored, empty when unset, so entries share their field names.
    assert raw == {name: "" for name in AUDIT_FIELDS} | {
        "actor": "U1",
        "action": "expired",
        "job_id": "j",
    }


async def test_read_by_job_uses_the_job_index_and_keeps_ids(
    audit: AuditLog, redis_client: aioredis.Redis
) -> None:
    ids = {}
    for n, (job, action) in enumerate(
        [("A", "requested"), ("B", "requested"), ("A", "approved"), ("A", "submitted")]
    ):
        ids[n] = await audit.append(AuditEvent(actor=f"U{n}", action=action, job_id=job))
    await audit.append(AuditEvent(actor="U9", action="grant", target="U8", role="requester"))

    job_a = await audit.read(job_id="A")

    assert [e.action for e in job_a] == ["requested", "approved", "submitted"]
    assert [e.id for e in job_a] == [ids[0], ids[2], ids[3]]
    assert sorted(await redis_client.hkeys(audit.job_index_key("A"))) == sorted(  # type: ignore[misc]
        f"a:{ids[n]}" for n in (0, 2, 3)
    )
    assert await redis_client.object("encoding", audit.job_index_key("A")) == "listpack"
    assert await redis_client.ttl(audit.job_index_key("A")) > 0
    assert await redis_client.xlen(audit.stream_key) == 5


async def test_job_index_keeps_the_newest_ids(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    audit = AuditLog(redis_client, redis_prefix, job_maxlen=20)
    ids = [
        await audit.append(AuditEvent(actor="U1", action="requested", job_id="A", detail=str(n)))
        for n in range(50)
    ]

    kept = sorted(await redis_client.hkeys(audit.job_index_key("A")))  # type: ignore[misc]
    # Past the cap it drops down to a tenth below it: 18, then grows again to 20.
    assert 18 <= len(kept) <= 20
    assert kept == sorted(f"a:{i}" for i in ids[-len(kept) :])
    details = [e.detail for e in await audit.read(job_id="A")]
    assert details == [str(n) for n in range(50 - len(kept), 50)]


async def test_read_returns_the_newest_events_oldest_first(audit: AuditLog) -> None:
    for n in range(8):
        await audit.append(AuditEvent(actor="U1", action="requested", detail=str(n)))

    assert [e.detail for e in await audit.read(limit=3)] == ["5", "6", "7"]
    assert await audit.read(limit=0) == []


async def test_read_by_request_with_and_without_job(audit: AuditLog) -> None:
    for n in range(30):
        await audit.append(
            AuditEvent(actor="U1", action="requested", job_id=f"j{n % 3}", request_id=f"r{n % 5}")
        )

    by_request = await audit.read(request_id="r2")
    assert len(by_request) == 6
    assert {e.request_id for e in by_request} == {"r2"}
    assert [e.id for e in by_request] == sorted(e.id for e in by_request if e.id)

    both = await audit.read(job_id="j1", request_id="r2")
    assert {(e.job_id, e.request_id) for e in both} == {("j1", "r2")}
    assert len(both) == 2

    newest_two = await audit.read(request_id="r2", limit=2, scan_limit=1_000)
    assert newest_two == by_request[-2:]


async def test_stream_is_trimmed_near_maxlen(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    small = AuditLog(redis_client, redis_prefix, maxlen=10)
    for n in range(250):
        await small.append(AuditEvent(actor="U1", action="requested", detail=str(n)))

    length = await redis_client.xlen(small.stream_key)
    # Approximate trimming drops whole stream nodes (100 entries each by default).
    assert 10 <= length <= 150
    assert (await small.read(limit=1))[0].detail == "249"


async def test_queue_writes_atomically_inside_a_multi(
    audit: AuditLog, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    state_key = f"{redis_prefix}request:r1"
    async with redis_client.pipeline(transaction=True) as pipe:
        pipe.set(state_key, "approved")
        event = AuditEvent(actor="U2", action="approved", job_id="J", request_id="r1")
        await audit.queue(pipe, event)
        await pipe.execute()

    assert await redis_client.get(state_key) == "approved"
    [event] = await audit.read(job_id="J")
    assert (event.actor, event.action, event.request_id) == ("U2", "approved", "r1")
    assert [e.actor for e in await audit.read()] == ["U2"]


async def test_lua_helper_records_in_the_callers_script(
    audit: AuditLog, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    state_key = f"{redis_prefix}request:r2"
    script = redis_client.register_script(
        LUA_AUDIT_APPEND + "redis.call('SET', KEYS[1], ARGV[1])\nreturn audit_append(2, 2)"
    )
    event = AuditEvent(actor="U3", action="rejected", job_id="J2", request_id="r2")

    entry_id = await script(
        keys=[state_key, *audit.script_keys(event)],
        args=["rejected", *audit.script_args(event)],
    )

    assert await redis_client.get(state_key) == "rejected"
    [stored] = await audit.read(job_id="J2")
    assert stored.id == entry_id
    assert (stored.actor, stored.action) == ("U3", "rejected")


async def test_unreachable_redis_is_store_unavailable(redis_prefix: str) -> None:
    client = connect(f"redis://127.0.0.1:{_free_port()}/0")
    try:
        log = AuditLog(client, redis_prefix)
        with pytest.raises(StoreUnavailable):
            await log.append(AuditEvent(actor="U1", action="requested"))
        with pytest.raises(StoreUnavailable):
            await log.read()
    finally:
        await client.aclose()
