"""Approval requests against a real Redis: binding, expiry, races between processes, audit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.approvals import (
    FIELD_CODES,
    MIN_HASH_PREFIX,
    TERMINAL_STATUSES,
    TRANSITIONS,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalStore,
    Decision,
    DecisionOutcome,
    allowed,
    payload_hash,
)
from bot.audit import AuditLog
from bot.redis import StoreUnavailable, connect
from tests.conftest import free_port, record_request

S = ApprovalStatus
TTL = 600.0
BODY = {"voice_name": "小晴", "sex": "female", "language": "CN", "tag": "LONG_AUDIO"}


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_client: aioredis.Redis, redis_prefix: str, clock: Clock) -> ApprovalStore:
    return ApprovalStore(
        redis_client, redis_prefix, ttl_seconds=TTL, allow_self_approval=False, clock=clock
    )


@pytest.fixture
async def second_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


async def new_request(
    store: ApprovalStore,
    *,
    job_id: str = "job-1",
    requester: str = "U_REQ",
    auto_approve: bool = False,
    app_user_id: str | None = None,
    **job: str | int,
) -> ApprovalRequest:
    return await record_request(
        store,
        tenant="T1",
        team_id="T1",
        enterprise_id=None,
        requester=requester,
        origin_channel="C_ORIGIN",
        card_channel="C_APPROVALS",
        job_id=job_id,
        body=BODY,
        app_user_id=app_user_id,
        auto_approve=auto_approve,
        **job,  # type: ignore[arg-type]
    )


async def click(
    store: ApprovalStore,
    request: ApprovalRequest,
    actor: str,
    *,
    approve: bool,
    reason: str | None = None,
) -> Decision:
    """``actor`` clicks Approve or Reject on ``request``'s card, in its own workspace and
    channel, with the hash its buttons carry."""
    return await store.decide(
        request.id,
        payload_hash=request.payload_hash,
        actor=actor,
        tenant="T1",
        channel="C_APPROVALS",
        approve=approve,
        reason=reason,
    )


async def audit_actions(client: aioredis.Redis, prefix: str, request_id: str) -> list[str]:
    entries = await client.xrange(f"{prefix}audit")
    return [v["action"] for _, v in entries if v.get("request_id") == request_id]


def test_payload_hash_is_the_canonical_json_sha256() -> None:
    canonical = json.dumps(
        {"job_id": "j", "body": BODY, "app_user_id": None},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert payload_hash("j", BODY, None) == expected
    assert payload_hash("j", dict(reversed(BODY.items())), None) == expected
    assert payload_hash("j", BODY, "app-user") != expected
    assert payload_hash("k", BODY, None) != expected
    assert payload_hash("j", {**BODY, "sex": "male"}, None) != expected


async def test_create_and_get_round_trip(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str, clock: Clock
) -> None:
    request = await new_request(store, app_user_id="app-7")

    assert request.id.startswith("r")
    assert len(request.id) == 13
    assert request.status is S.PENDING
    assert request.payload_hash == payload_hash("job-1", BODY, "app-7")
    assert request.expires_at == clock.now + TTL
    assert request.version == 0
    assert await store.get(request.id) == request
    assert await store.get("rnosuchrequest") is None

    key = f"{redis_prefix}approval:{request.id}"
    stored = await redis_client.hgetall(key)  # type: ignore[misc]
    assert {k: stored[f"b:{k}"] for k in BODY} == BODY
    assert stored[FIELD_CODES["status"]] == "pending"
    assert stored[FIELD_CODES["card_ts"]] == "1700000000.000100"
    assert await redis_client.object("encoding", key) == "listpack"
    # Kept for the retention window after expiry, never forever.
    assert 30 * 86400 < await redis_client.ttl(key) <= 30 * 86400 + TTL + 1
    assert await redis_client.zscore(f"{redis_prefix}approvals:expiry", request.id) == (
        request.expires_at
    )

    assert request.card_channel == "C_APPROVALS"
    assert request.card_ts == "1700000000.000100"
    assert await audit_actions(redis_client, redis_prefix, request.id) == ["requested"]


def test_every_field_has_its_own_short_code() -> None:
    assert set(FIELD_CODES) == set(ApprovalRequest.model_fields) - {"body"}
    assert len(set(FIELD_CODES.values())) == len(FIELD_CODES)
    assert all(len(code) <= 2 and ":" not in code for code in FIELD_CODES.values())


async def test_the_baseline_goes_once_the_submit_is_settled(store: ApprovalStore) -> None:
    request = await new_request(
        store,
        auto_approve=True,
        job_state="UPLOADING",
        job_reject_times=0,
        job_updated=1700000000000,
    )
    claimed = await store.claim_submit(request.id)
    assert claimed is not None
    assert (claimed.baseline_state, claimed.baseline_reject_times) == ("UPLOADING", 0)

    submitted = await store.transition(request.id, S.SUBMITTED, job_state="SYSTEM_AUDITING")

    assert submitted is not None
    assert submitted.baseline_state is None
    assert submitted.baseline_reject_times is None
    assert submitted.baseline_updated is None
    assert submitted.job_state == "SYSTEM_AUDITING"


async def test_ids_are_unique(store: ApprovalStore) -> None:
    requests = await asyncio.gather(*(new_request(store, job_id=f"job-{i}") for i in range(50)))
    assert len({r.id for r in requests}) == 50
    for i, request in enumerate(requests):
        assert [r.id for r in await store.for_job(f"job-{i}")] == [request.id]
    assert await store.for_job("job-other") == []


async def test_approve(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str, clock: Clock
) -> None:
    request = await new_request(store)
    clock.now += 5

    decision = await click(store, request, "U_BOSS", approve=True)

    assert decision.outcome is DecisionOutcome.APPROVED
    assert decision.decided
    assert decision.request is not None
    assert decision.request.status is S.APPROVED
    assert decision.request.decided_by == "U_BOSS"
    assert decision.request.decided_at == clock.now
    assert decision.request.version == 1
    assert decision.request == await store.get(request.id)
    assert await redis_client.zscore(f"{redis_prefix}approvals:expiry", request.id) is None

    entries = await redis_client.xrange(f"{redis_prefix}audit")
    approved = entries[-1][1]
    assert approved["action"] == "approved"
    assert approved["actor"] == "U_BOSS"
    assert approved["job_id"] == "job-1"
    assert approved["request_id"] == request.id
    assert approved["payload_hash"] == request.payload_hash


async def test_reject_with_reason(store: ApprovalStore, redis_client: aioredis.Redis) -> None:
    request = await new_request(store)

    decision = await store.decide(
        request.id,
        payload_hash=request.short_hash,
        actor="U_BOSS",
        tenant="T1",
        channel="C_APPROVALS",
        approve=False,
        reason="wrong voice name",
    )

    assert decision.outcome is DecisionOutcome.REJECTED
    assert decision.request is not None
    assert decision.request.status is S.REJECTED
    assert decision.request.reason == "wrong voice name"
    events = await store.audit.read(job_id="job-1")
    assert [e.action for e in events] == ["requested", "rejected"]
    assert events[-1].detail == "wrong voice name"
    assert events[-1].actor == "U_BOSS"
    # A rejected request can never be submitted.
    assert await store.claim_submit(request.id) is None


async def test_decision_is_bound_to_the_exact_payload(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    request = await new_request(store)
    other = payload_hash("job-1", {**BODY, "voice_name": "someone else"}, None)

    for wrong in (other, other[:MIN_HASH_PREFIX], request.payload_hash[: MIN_HASH_PREFIX - 1]):
        decision = await store.decide(
            request.id,
            payload_hash=wrong,
            actor="U_BOSS",
            tenant="T1",
            channel="C_APPROVALS",
            approve=True,
            reason=None,
        )
        assert decision.outcome is DecisionOutcome.HASH_MISMATCH
        assert decision.request is not None
        assert decision.request.status is S.PENDING

    missing = await store.decide(
        "rnosuchrequest",
        payload_hash=other,
        actor="U_BOSS",
        tenant="T1",
        channel="C_APPROVALS",
        approve=True,
        reason=None,
    )
    assert missing.outcome is DecisionOutcome.NOT_FOUND
    assert missing.request is None
    stored = await store.get(request.id)
    assert stored is not None
    assert stored.status is S.PENDING
    assert stored.version == 0
    assert await audit_actions(redis_client, redis_prefix, request.id) == [
        "requested",
        "decision_refused",
        "decision_refused",
        "decision_refused",
    ]


async def test_self_approval_refused_by_default(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    request = await new_request(store, requester="U_REQ")

    for approve in (True, False):
        decision = await click(store, request, "U_REQ", approve=approve)
        assert decision.outcome is DecisionOutcome.SELF_APPROVAL
        assert decision.request is not None
        assert decision.request.status is S.PENDING

    entries = await redis_client.xrange(f"{redis_prefix}audit")
    assert entries[-1][1]["detail"] == "self_approval"
    by_other = await click(store, request, "U_BOSS", approve=True)
    assert by_other.outcome is DecisionOutcome.APPROVED


async def test_self_approval_allowed_when_configured(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = ApprovalStore(redis_client, redis_prefix, ttl_seconds=TTL, allow_self_approval=True)
    request = await new_request(store, requester="U_REQ")

    decision = await click(store, request, "U_REQ", approve=True)

    assert decision.outcome is DecisionOutcome.APPROVED
    assert decision.request is not None
    assert decision.request.decided_by == "U_REQ"


async def test_click_after_expiry_expires_the_request(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str, clock: Clock
) -> None:
    request = await new_request(store)
    clock.now = request.expires_at

    decision = await click(store, request, "U_BOSS", approve=True)

    assert decision.outcome is DecisionOutcome.EXPIRED
    assert decision.request is not None
    assert decision.request.status is S.EXPIRED
    assert decision.request.version == 1
    assert await redis_client.zscore(f"{redis_prefix}approvals:expiry", request.id) is None
    again = await click(store, request, "U_BOSS", approve=False)
    assert again.outcome is DecisionOutcome.EXPIRED
    assert await audit_actions(redis_client, redis_prefix, request.id) == ["requested", "expired"]
    assert await store.claim_submit(request.id) is None


async def test_expire_due_sweeps_only_pending_requests_past_expiry(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str, clock: Clock
) -> None:
    early = [await new_request(store, job_id=f"job-early-{i}") for i in range(3)]
    decided = await new_request(store, job_id="job-decided")
    await click(store, decided, "U_BOSS", approve=True)
    clock.now += 60
    late = await new_request(store, job_id="job-late")
    auto = await new_request(store, job_id="job-auto", auto_approve=True)

    clock.now = early[0].expires_at - 1
    assert await store.expire_due() == []

    clock.now = early[0].expires_at
    swept = await store.expire_due(limit=2)
    swept += await store.expire_due(limit=2)
    assert sorted(r.id for r in swept) == sorted(r.id for r in early)
    assert all(r.status is S.EXPIRED for r in swept)
    assert await store.expire_due() == []

    for untouched, status in ((decided, S.APPROVED), (late, S.PENDING), (auto, S.AUTO_APPROVED)):
        current = await store.get(untouched.id)
        assert current is not None
        assert current.status is status
    assert await redis_client.zrange(f"{redis_prefix}approvals:expiry", 0, -1) == [late.id]
    expired_events = [
        v for _, v in await redis_client.xrange(f"{redis_prefix}audit") if v["action"] == "expired"
    ]
    assert sorted(v["request_id"] for v in expired_events) == sorted(r.id for r in early)
    assert {v["actor"] for v in expired_events} == {"voicebot"}

    late_click = await store.decide(
        early[0].id,
        payload_hash=early[0].payload_hash,
        actor="U_BOSS",
        tenant="T1",
        channel="C_APPROVALS",
        approve=True,
        reason=None,
    )
    assert late_click.outcome is DecisionOutcome.EXPIRED


async def test_hundred_concurrent_approvals_from_two_processes(
    redis_client: aioredis.Redis, second_client: aioredis.Redis, redis_prefix: str
) -> None:
    stores = [
        ApprovalStore(client, redis_prefix, ttl_seconds=TTL, allow_self_approval=False)
        for client in (redis_client, second_client)
    ]
    request = await new_request(stores[0])

    decisions = await asyncio.gather(
        *(click(stores[i % 2], request, f"U_APPROVER_{i}", approve=True) for i in range(100))
    )

    outcomes = [d.outcome for d in decisions]
    assert outcomes.count(DecisionOutcome.APPROVED) == 1
    assert outcomes.count(DecisionOutcome.ALREADY_DECIDED) == 99
    winner = next(d for d in decisions if d.decided)
    assert winner.request is not None
    for decision in decisions:
        assert decision.request is not None
        assert decision.request.decided_by == winner.request.decided_by
        assert decision.request.status is S.APPROVED
        assert decision.request.version == 1
    assert await audit_actions(redis_client, redis_prefix, request.id) == ["requested", "approved"]


async def test_simultaneous_approve_and_reject_make_one_decision(
    redis_client: aioredis.Redis, second_client: aioredis.Redis, redis_prefix: str
) -> None:
    approver, rejecter = (
        ApprovalStore(client, redis_prefix, ttl_seconds=TTL, allow_self_approval=False)
        for client in (redis_client, second_client)
    )
    requests = [await new_request(approver, job_id=f"job-{n}") for n in range(40)]

    rounds = await asyncio.gather(
        *(
            asyncio.gather(
                click(approver, r, "U_A", approve=True),
                click(rejecter, r, "U_B", approve=False, reason="no"),
            )
            for r in requests
        )
    )

    for request, pair in zip(requests, rounds, strict=True):
        made = [d for d in pair if d.decided]
        assert len(made) == 1
        lost = next(d for d in pair if not d.decided)
        assert lost.outcome is DecisionOutcome.ALREADY_DECIDED
        final = await approver.get(request.id)
        assert final is not None
        assert final.status.value == made[0].outcome.value
        actions = await audit_actions(redis_client, redis_prefix, request.id)
        assert actions == ["requested", made[0].outcome.value]


async def test_claim_submit_exactly_once_under_concurrency(
    redis_client: aioredis.Redis, second_client: aioredis.Redis, redis_prefix: str
) -> None:
    stores = [
        ApprovalStore(client, redis_prefix, ttl_seconds=TTL, allow_self_approval=False)
        for client in (redis_client, second_client)
    ]
    request = await new_request(stores[0])
    assert await stores[0].claim_submit(request.id) is None  # still pending
    await click(stores[0], request, "U_BOSS", approve=True)

    claims = await asyncio.gather(*(stores[i % 2].claim_submit(request.id) for i in range(50)))

    won = [c for c in claims if c is not None]
    assert len(won) == 1
    assert won[0].status is S.SUBMITTING
    assert won[0].version == 2
    assert await audit_actions(redis_client, redis_prefix, request.id) == [
        "requested",
        "approved",
    ]


async def test_auto_approved_request_skips_the_decision(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    request = await new_request(store, auto_approve=True)

    assert request.status is S.AUTO_APPROVED
    assert await redis_client.zscore(f"{redis_prefix}approvals:expiry", request.id) is None
    refused = await click(store, request, "U_BOSS", approve=False)
    assert refused.outcome is DecisionOutcome.ALREADY_DECIDED
    claimed = await store.claim_submit(request.id)
    assert claimed is not None
    assert claimed.status is S.SUBMITTING
    assert await audit_actions(redis_client, redis_prefix, request.id) == [
        "requested",
        "auto_approved",
    ]


async def test_tracked_index_follows_the_status(store: ApprovalStore) -> None:
    pending = await new_request(store, job_id="job-p")
    request = await new_request(store, job_id="job-1", auto_approve=True)

    async def index() -> tuple[list[str], dict[str, str]]:
        return await store.active_ids(), await store.under_review()

    # Pending is not tracked yet; approved needs a queue job of its own.
    assert await index() == ([request.id], {})
    await store.claim_submit(request.id)
    assert await index() == ([request.id], {})
    # Under review the review sweep has it, by its job.
    await store.transition(request.id, S.SUBMITTED)
    assert await index() == ([], {request.id: "job-1"})
    await store.transition(request.id, S.UNDER_REVIEW)
    assert await index() == ([], {request.id: "job-1"})
    # Training: its own queue job again; finished: not tracked at all.
    await store.transition(request.id, S.PASSED)
    assert await index() == ([request.id], {})
    await store.transition(request.id, S.SUCCEEDED)
    assert await index() == ([], {})
    await store.forget_active(pending.id)
    assert await index() == ([], {})


async def test_happy_path_through_review_with_audit_trail(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    request = await new_request(store)
    await click(store, request, "U_BOSS", approve=True, reason="ok")
    assert await store.claim_submit(request.id) is not None

    submitted = await store.transition(
        request.id, S.SUBMITTED, expected={S.SUBMITTING}, audit_action="submitted"
    )
    assert submitted is not None
    assert await store.transition(request.id, S.SUBMITTED, audit_action="submitted") is None
    noted = await store.update(request.id, job_state="SYSTEM_AUDITING")
    assert noted is not None
    assert noted.job_state == "SYSTEM_AUDITING"
    assert noted.version == submitted.version
    reviewing = await store.transition(request.id, S.UNDER_REVIEW, job_state="AUDITING")
    assert reviewing is not None
    assert reviewing.job_state == "AUDITING"
    passed = await store.transition(
        request.id, S.PASSED, audit_action="review_passed", job_state="WAITING"
    )
    assert passed is not None
    done = await store.transition(
        request.id,
        S.SUCCEEDED,
        audit_action="succeeded",
        outcome="training finished, asset a-1",
        job_state="SUCCEED",
    )

    assert done is not None
    assert done.terminal
    assert done.outcome == "training finished, asset a-1"
    assert done.version == 6
    assert await store.get(request.id) == done
    events = await AuditLog(redis_client, redis_prefix).read(job_id="job-1")
    assert [e.action for e in events] == [
        "requested",
        "approved",
        "submitted",
        "review_passed",
        "succeeded",
    ]
    assert events[-1].detail == "training finished, asset a-1"
    assert {e.request_id for e in events} == {request.id}
    assert {e.payload_hash for e in events} == {request.payload_hash}


async def test_submit_failure_records_the_error_and_is_terminal(store: ApprovalStore) -> None:
    request = await new_request(store, auto_approve=True)
    await store.claim_submit(request.id)

    failed = await store.transition(
        request.id,
        S.SUBMIT_FAILED,
        audit_action="submit_failed",
        submit_error="MSS.41000005: task state does not allow this operation",
    )

    assert failed is not None
    assert failed.terminal
    assert failed.submit_error is not None
    assert failed.submit_error.startswith("MSS.41000005")
    cleared = await store.update(request.id, submit_error=None)
    assert cleared is not None
    assert cleared.submit_error is None
    assert await store.transition(request.id, S.SUBMITTING) is None
    assert await store.claim_submit(request.id) is None


async def drive_to(store: ApprovalStore, status: ApprovalStatus) -> ApprovalRequest:
    """A fresh request (for a job of its own) brought to ``status`` by legal moves only."""
    request = await new_request(
        store, job_id=f"job-{uuid.uuid4().hex[:8]}", auto_approve=status is S.AUTO_APPROVED
    )
    if status in (S.PENDING, S.AUTO_APPROVED):
        return request
    if status in (S.APPROVED, S.REJECTED):
        decision = await click(store, request, "U_BOSS", approve=status is S.APPROVED)
        assert decision.request is not None
        return decision.request
    path = {
        S.EXPIRED: [S.EXPIRED],
        S.SUBMITTING: [S.APPROVED, S.SUBMITTING],
        S.SUBMITTED: [S.APPROVED, S.SUBMITTING, S.SUBMITTED],
        S.SUBMIT_FAILED: [S.APPROVED, S.SUBMITTING, S.SUBMIT_FAILED],
        S.UNDER_REVIEW: [S.APPROVED, S.SUBMITTING, S.SUBMITTED, S.UNDER_REVIEW],
        S.PASSED: [S.APPROVED, S.SUBMITTING, S.SUBMITTED, S.PASSED],
        S.FAILED: [S.APPROVED, S.SUBMITTING, S.SUBMITTED, S.FAILED],
        S.SUCCEEDED: [S.APPROVED, S.SUBMITTING, S.SUBMITTED, S.PASSED, S.SUCCEEDED],
        S.TRAINING_FAILED: [S.APPROVED, S.SUBMITTING, S.SUBMITTED, S.PASSED, S.TRAINING_FAILED],
    }[status]
    current: ApprovalRequest | None = request
    for step in path:
        if step is S.APPROVED:
            decision = await click(store, request, "U_BOSS", approve=True)
            current = decision.request
        else:
            current = await store.transition(request.id, step)
        assert current is not None
        assert current.status is step
    assert current is not None
    return current


async def test_transition_graph_is_enforced_for_every_pair(store: ApprovalStore) -> None:
    assert {
        S.REJECTED,
        S.EXPIRED,
        S.SUBMIT_FAILED,
        S.FAILED,
        S.SUCCEEDED,
        S.TRAINING_FAILED,
    } == TERMINAL_STATUSES
    checked = 0
    for source in S:
        for target in S:
            if target in (S.APPROVED, S.REJECTED):
                continue
            request = await drive_to(store, source)
            moved = await store.transition(request.id, target)
            legal = target in TRANSITIONS.get(source, frozenset())
            assert (moved is not None) == legal, (source, target)
            after = await store.get(request.id)
            assert after is not None
            assert after.status is (target if legal else source)
            assert after.version == request.version + (1 if legal else 0)
            checked += 1
    assert checked == len(S) * (len(S) - 2)


async def test_every_script_that_moves_a_request_checks_the_graph(
    store: ApprovalStore, clock: Clock
) -> None:
    """decide (approve, reject), expire and claim_submit move a request only along the graph,
    from every status; a refusal changes nothing."""
    moves = 0
    for source in S:
        for approve, target in ((True, S.APPROVED), (False, S.REJECTED)):
            request = await drive_to(store, source)
            decision = await click(store, request, "U_BOSS", approve=approve)
            after = await store.get(request.id)
            assert after is not None
            if allowed(source, target):
                assert decision.outcome == DecisionOutcome(str(target)), (source, target)
                assert after.status is target
                moves += 1
            else:
                assert not decision.decided, (source, target)
                assert (after.status, after.version) == (source, request.version)

        request = await drive_to(store, source)
        clock.now = request.expires_at + 1
        expired = [r.id for r in await store.expire_due(limit=1000)]
        after = await store.get(request.id)
        assert after is not None
        assert (request.id in expired) == allowed(source, S.EXPIRED), source
        assert after.status is (S.EXPIRED if allowed(source, S.EXPIRED) else source)
        moves += allowed(source, S.EXPIRED)
        clock.now = request.created_at

        request = await drive_to(store, source)
        claimed = await store.claim_submit(request.id)
        assert (claimed is not None) == allowed(source, S.SUBMITTING), source
        moves += claimed is not None
    # pending -> approved, rejected, expired; approved and auto_approved -> submitting
    assert moves == 5


async def test_transition_refuses_decisions_unknown_fields_and_wrong_expectations(
    store: ApprovalStore,
) -> None:
    request = await new_request(store)
    with pytest.raises(ValueError, match="decide"):
        await store.transition(request.id, S.APPROVED)
    bad_fields: dict[str, Any] = {"payload_hash": "0" * 64}
    with pytest.raises(ValueError, match="payload_hash"):
        await store.transition(request.id, S.EXPIRED, **bad_fields)
    with pytest.raises(ValueError, match="status"):
        await store.update(request.id, status="approved")
    assert await store.transition(request.id, S.EXPIRED, expected={S.APPROVED}) is None
    assert await store.transition("rnosuchrequest", S.EXPIRED) is None
    assert await store.update("rnosuchrequest", job_state="X") is None
    unchanged = await store.get(request.id)
    assert unchanged is not None
    assert unchanged.status is S.PENDING
    assert unchanged.version == 0


async def test_markers_live_in_the_request_hash(
    store: ApprovalStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    request = await new_request(store)

    assert await store.shown(request.id, ["decision", "submitted"]) == (
        None,
        {"decision": False, "submitted": False},
    )
    await store.mark(request.id, "decision")
    await store.set_shown_render(request.id, request.render_key)

    assert await store.shown(request.id, ["decision", "submitted"]) == (
        request.render_key,
        {"decision": True, "submitted": False},
    )
    # No key of its own: the markers expire with the request and cost no key each.
    assert await redis_client.keys(f"{redis_prefix}approval:{request.id}:*") == []
    assert await redis_client.hget(f"{redis_prefix}approval:{request.id}", "m:decision")  # type: ignore[misc]
    # The request reads back the same with its markers beside it.
    assert await store.get(request.id) == request
    # A request that is gone takes no marker (nothing is recreated without an expiry).
    await store.mark("rnosuchrequest", "decision")
    await store.set_shown_render("rnosuchrequest", "1:")
    assert await redis_client.exists(f"{redis_prefix}approval:rnosuchrequest") == 0
    assert await store.shown("rnosuchrequest", ["decision"]) == (None, {"decision": False})


async def test_redis_outage_is_store_unavailable(redis_prefix: str) -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/11")
    store = ApprovalStore(client, redis_prefix, ttl_seconds=TTL, allow_self_approval=False)
    try:
        with pytest.raises(StoreUnavailable):
            await store.get("rsomething")
        with pytest.raises(StoreUnavailable):
            await store.decide(
                "rsomething",
                payload_hash="0" * 64,
                actor="U",
                tenant="T1",
                channel="C_APPROVALS",
                approve=True,
                reason=None,
            )
    finally:
        await client.aclose()


async def test_with_self_approval_the_requester_counts_at_most_once(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = ApprovalStore(redis_client, redis_prefix, ttl_seconds=TTL, allow_self_approval=True)
    request = await new_request(store, requester="U_REQ", required_approvals=2)

    async def approve(actor: str) -> DecisionOutcome:
        decision = await click(store, request, actor, approve=True)
        return decision.outcome

    assert await approve("U_REQ") is DecisionOutcome.COUNTED
    assert await approve("U_REQ") is DecisionOutcome.ALREADY_APPROVED
    assert await approve("U_BOSS") is DecisionOutcome.APPROVED
    stored = await store.get(request.id)
    assert stored is not None
    assert stored.approver_ids == ("U_REQ", "U_BOSS")
    assert stored.decided_by == "U_BOSS"
    actions = await audit_actions(redis_client, redis_prefix, request.id)
    assert actions == ["requested", "approval_counted", "approved"]


async def test_without_self_approval_the_requester_never_counts(store: ApprovalStore) -> None:
    request = await new_request(store, requester="U_REQ", required_approvals=2)

    decision = await click(store, request, "U_REQ", approve=True)

    assert decision.outcome is DecisionOutcome.SELF_APPROVAL
    assert decision.request is not None
    assert decision.request.approver_ids == ()
