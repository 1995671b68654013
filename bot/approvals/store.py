"""Approval requests in Redis: every state change is one atomic, audited Lua script.

Keys (under the store's prefix):
    approval:{id}                hash, flat fields (``encoding``), and what has been posted
                                 for it (``m:{marker}``); expires ``retention`` after expiry
    approvals:expiry             zset of pending ids scored by ``expires_at``
    approvals:tracked            hash of the ids a worker must still track (``ACTIVE_STATUSES``):
                                 id -> job id while under review (``REVIEWING_STATUSES``), else ""
    approval:{id}:notify         the notify lease: who is updating the card and the thread
    requests:{tenant}:{user}     a requester's recent requests (their limits)
    job:{job_id}                 the job's index: its request ids, audit entries, open request
    audit                        the audit stream (see ``bot.audit``)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from bot.approvals.encoding import (
    BASELINE_FIELDS,
    FIELD_CODES,
    MARKER_PREFIX,
    MIN_HASH_PREFIX,
    MUTABLE_FIELDS,
    SHOWN_FIELD,
    ApprovalRequest,
    _encode,
    _stamp,
    new_request_id,
    payload_hash,
)
from bot.approvals.model import (
    ACTIVE_STATUSES,
    RESUMABLE_STATUSES,
    REVIEWING_STATUSES,
    TRANSITIONS,
    ApprovalStatus,
    DecisionOutcome,
)
from bot.approvals.scripts import build_sources
from bot.audit import AUDIT_FIELDS, AuditLog, index_request_ids
from bot.durability import ReplicaWait
from bot.i18n import Language
from bot.redis import Keys, StoreUnavailable, unavailable_on_redis_errors

S = ApprovalStatus
SYSTEM_ACTOR = "voicebot"
DEFAULT_RETENTION = 30 * 86400
_DETAIL_FIELDS = ("submit_error", "outcome", "job_state", "reason")
_DECISIONS = frozenset({S.APPROVED, S.REJECTED})


def _marker_field(marker: str) -> str:
    return MARKER_PREFIX + marker


@dataclass(frozen=True, slots=True)
class Decision:
    """What a click did; ``request`` is the state after it (``None`` only for NOT_FOUND)."""

    outcome: DecisionOutcome
    request: ApprovalRequest | None

    @property
    def decided(self) -> bool:
        """True when this click made the decision (approved or rejected)."""
        return self.outcome in (DecisionOutcome.APPROVED, DecisionOutcome.REJECTED)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[object]) -> dict[str, str]:
    items = [_text(v) for v in flat]
    return dict(zip(items[0::2], items[1::2], strict=True))


def _script_list(reply: object) -> list[object]:
    """A Lua script's array reply (a type check that stays under ``python -O``)."""
    if not isinstance(reply, list):
        raise TypeError(f"an approval script replied {type(reply).__name__}, not an array")
    return reply


def _parse(reply: object) -> ApprovalRequest | None:
    if not reply:
        return None
    return ApprovalRequest.from_stored(_pairs(_script_list(reply)))


def _field_values(fields: Mapping[str, object]) -> dict[str, str | None]:
    unknown = set(fields) - MUTABLE_FIELDS
    if unknown:
        raise ValueError(f"not mutable approval fields: {sorted(unknown)}")
    return {name: None if v is None else _encode(v) for name, v in fields.items()}


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """How many pending requests a requester may have, and how many they may make per
    window. ``hold_seconds``: how long a job stays reserved while its card is posted."""

    max_open: int = 5
    per_window: int = 10
    window_seconds: float = 3600.0
    hold_seconds: float = 30.0


class RequestRefused(Exception):
    """A new request was not made; the subclass says why."""


class OpenRequestExists(RequestRefused):
    """The job already has an open request in this workspace (``request``, if readable)."""

    def __init__(self, request: ApprovalRequest | None, request_id: str) -> None:
        self.request = request
        self.request_id = request_id
        super().__init__(f"job has an open request {request_id}")


class RequestInProgress(RequestRefused):
    """Another request for the job is being made right now (its card is being posted)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"a request for job {job_id} is being made")


class TooManyOpenRequests(RequestRefused):
    """The requester has ``open`` pending requests; the soonest expires in ``retry_after``."""

    def __init__(self, open_count: int, retry_after: float) -> None:
        self.open_count = open_count
        self.retry_after = retry_after
        super().__init__(f"{open_count} open requests")


class RequestRateLimited(RequestRefused):
    """The requester made ``limit`` requests in ``window`` seconds; one more fits in
    ``retry_after``."""

    def __init__(self, limit: int, window: float, retry_after: float) -> None:
        self.limit = limit
        self.window = window
        self.retry_after = retry_after
        super().__init__(f"more than {limit} requests in the window")


class ApprovalStore:
    """Approval requests in Redis; every state change is one atomic, audited Lua script.

    Redis outages surface as ``StoreUnavailable``. A script whose reply was lost may still
    have run, so after one, re-read with ``get`` rather than repeat a decision.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        ttl_seconds: float,
        allow_self_approval: bool,
        clock: Callable[[], float] = time.time,
        retention_seconds: int = DEFAULT_RETENTION,
        audit: AuditLog | None = None,
        replicas: ReplicaWait | None = None,
    ) -> None:
        self._redis = redis
        self._replicas = replicas or ReplicaWait()
        self._keys = Keys(prefix)
        self._ttl = float(ttl_seconds)
        self._allow_self = allow_self_approval
        self._clock = clock
        self._retention = retention_seconds
        self.audit = audit if audit is not None else AuditLog(redis, prefix)
        # What auditing needs, after each script's own arguments (see lua/prelude.lua).
        self._audit_args = [
            self.audit.job_index_key(""),
            str(self.audit.maxlen),
            str(self.audit.job_maxlen),
        ]
        graph = {str(k): sorted(str(v) for v in vs) for k, vs in TRANSITIONS.items()}
        sources = build_sources(
            graph,
            AUDIT_FIELDS,
            sorted(str(s) for s in ACTIVE_STATUSES),
            sorted(str(s) for s in REVIEWING_STATUSES),
            FIELD_CODES,
            [str(s) for s in RESUMABLE_STATUSES],
            BASELINE_FIELDS,
            retention_seconds,
        )
        self._create: AsyncScript = redis.register_script(sources.create)
        self._update: AsyncScript = redis.register_script(sources.update)
        self._decide: AsyncScript = redis.register_script(sources.decide)
        self._transition: AsyncScript = redis.register_script(sources.transition)
        self._expire: AsyncScript = redis.register_script(sources.expire)
        self._renew: AsyncScript = redis.register_script(sources.renew)
        self._release: AsyncScript = redis.register_script(sources.release)
        self._mark: AsyncScript = redis.register_script(sources.mark)
        self._reserve: AsyncScript = redis.register_script(sources.reserve)
        self._unreserve: AsyncScript = redis.register_script(sources.unreserve)

    @property
    def allow_self_approval(self) -> bool:
        return self._allow_self

    def key(self, request_id: str) -> str:
        return self._keys("approval", request_id)

    @property
    def expiry_key(self) -> str:
        return self._keys("approvals", "expiry")

    @property
    def tracked_key(self) -> str:
        return self._keys("approvals", "tracked")

    def notify_key(self, request_id: str) -> str:
        return self._keys("approval", request_id, "notify")

    def job_key(self, job_id: str) -> str:
        return self.audit.job_index_key(job_id)

    def _now(self) -> str:
        return repr(_stamp(self._clock()))

    def _script_keys(self, request_id: str, *own: str) -> list[str]:
        """A request script's keys: its own (the request, expiry, tracked index, then
        ``own``), and the audit stream last."""
        return [
            self.key(request_id),
            self.expiry_key,
            self.tracked_key,
            *own,
            self.audit.stream_key,
        ]

    def draft(
        self,
        *,
        tenant: str,
        team_id: str | None,
        enterprise_id: str | None,
        requester: str,
        origin_channel: str,
        card_channel: str,
        job_id: str,
        body: Mapping[str, str],
        app_user_id: str | None,
        auto_approve: bool,
        required_approvals: int = 1,
        language: Language = "en",
        job_state: str | None = None,
        job_reject_times: int | None = None,
        job_updated: int | None = None,
    ) -> ApprovalRequest:
        """A new request, not stored yet: ``pending``, or ``auto_approved`` when approval is
        off. It is stored by ``create`` once its card is posted (a request never exists
        without its card). ``job_*`` describe the job as read for it: its baseline."""
        now = _stamp(self._clock())
        return ApprovalRequest(
            id=new_request_id(),
            tenant=tenant,
            team_id=team_id,
            enterprise_id=enterprise_id,
            requester=requester,
            origin_channel=origin_channel,
            card_channel=card_channel,
            job_id=job_id,
            body=dict(body),
            app_user_id=app_user_id,
            payload_hash=payload_hash(job_id, body, app_user_id),
            status=S.AUTO_APPROVED if auto_approve else S.PENDING,
            required_approvals=required_approvals,
            language=language,
            job_state=job_state,
            baseline_state=job_state,
            baseline_reject_times=job_reject_times,
            baseline_updated=job_updated,
            created_at=now,
            expires_at=_stamp(now + self._ttl),
            updated_at=now,
            version=0,
        )

    def requests_key(self, tenant: str, user: str) -> str:
        """A requester's recent requests (for the open-request and rate limits)."""
        return self._keys("requests", tenant, user)

    @staticmethod
    def _open_field(tenant: str) -> str:
        return "o:" + tenant

    async def reserve(self, request: ApprovalRequest, limits: RequestLimits) -> None:
        """Hold the job for ``request`` while its card is posted, within the requester's
        limits; raise ``OpenRequestExists``, ``RequestInProgress``, ``TooManyOpenRequests``
        or ``RequestRateLimited`` instead."""
        now_ms = round(self._clock() * 1000)
        with unavailable_on_redis_errors(StoreUnavailable):
            reply = await self._reserve(
                keys=[
                    self.job_key(request.job_id),
                    self.requests_key(request.tenant, request.requester),
                ],
                args=[
                    self._open_field(request.tenant),
                    request.id,
                    str(now_ms),
                    str(round(limits.hold_seconds * 1000)),
                    self._keys("approval", ""),
                    str(limits.max_open),
                    str(limits.per_window),
                    str(round(limits.window_seconds * 1000)),
                    str(round((self._ttl + limits.window_seconds) * 1000)),
                ],
            )
        outcome, *rest = [_text(part) for part in _script_list(reply)]
        if outcome == "ok":
            return
        if outcome == "open":
            raise OpenRequestExists(await self.get(rest[0]), rest[0])
        if outcome == "busy":
            raise RequestInProgress(request.job_id)
        if outcome == "too_many":
            raise TooManyOpenRequests(int(rest[0]), max(0.0, int(rest[1]) / 1000 - now_ms / 1000))
        raise RequestRateLimited(
            limits.per_window, limits.window_seconds, max(0.0, int(rest[0]) / 1000 - now_ms / 1000)
        )

    async def unreserve(self, request: ApprovalRequest) -> None:
        """Give the job back: the card could not be posted, so the request never was."""
        with unavailable_on_redis_errors(StoreUnavailable):
            await self._unreserve(
                keys=[
                    self.job_key(request.job_id),
                    self.requests_key(request.tenant, request.requester),
                ],
                args=[self._open_field(request.tenant), request.id],
            )

    async def create(
        self, request: ApprovalRequest, *, card_channel: str, card_ts: str
    ) -> ApprovalRequest:
        """Store ``request`` (reserved with ``reserve``) with the card posted for it."""
        stored = request.model_copy(update={"card_channel": card_channel, "card_ts": card_ts})
        with unavailable_on_redis_errors(StoreUnavailable):
            created = await self._create(
                keys=self._script_keys(stored.id, self.job_key(stored.job_id)),
                args=[
                    json.dumps(stored.as_fields(), ensure_ascii=False),
                    self._open_field(stored.tenant),
                    *self._audit_args,
                ],
            )
        if created != 1:
            # The reservation lapsed (the card took longer than its hold) and another
            # request holds the job, or (all but impossibly) the id was taken.
            raise RequestInProgress(stored.job_id)
        return stored

    async def update(self, request_id: str, **fields: str | float | None) -> ApprovalRequest | None:
        """Set ``MUTABLE_FIELDS`` without a status change (e.g. the last seen ``job_state``)."""
        values = _field_values(fields)
        with unavailable_on_redis_errors(StoreUnavailable):
            reply = await self._update(
                keys=[self.key(request_id)],
                args=[json.dumps(values, ensure_ascii=False), self._now()],
            )
        return _parse(reply)

    async def _durably(
        self, script: AsyncScript, *, keys: list[str], args: list[str], durable: bool = True
    ) -> object:
        """Run ``script``; with replicas required and ``durable``, on one connection followed
        by ``WAIT`` (``bot.durability``)."""
        if not durable or not self._replicas.enabled:
            return await script(keys=keys, args=args)
        async with self._replicas.pinned(self._redis) as pinned:
            reply = await script(keys=keys, args=args, client=pinned)
            await self._replicas.confirm(pinned)
        return reply

    async def get(self, request_id: str) -> ApprovalRequest | None:
        with unavailable_on_redis_errors(StoreUnavailable):
            flat = await self._redis.hgetall(self.key(request_id))  # type: ignore[misc]
        if not flat:
            return None
        return ApprovalRequest.from_stored({_text(k): _text(v) for k, v in flat.items()})

    async def decide(
        self,
        request_id: str,
        *,
        payload_hash: str,
        actor: str,
        tenant: str,
        channel: str,
        approve: bool,
        reason: str | None,
    ) -> Decision:
        """Approve or reject a pending request, once, bound to its exact payload.

        ``payload_hash`` may be the full hash or a prefix of at least ``MIN_HASH_PREFIX``
        characters. ``tenant`` is the actor's workspace (or Grid org) and ``channel`` where
        they clicked: only the request's own workspace decides, from the card's channel.
        The approver's role is the caller's concern; this enforces the binding, expiry, the
        single decision, the self-approval rule, and the request's number of distinct
        approvers (an approval short of it is ``COUNTED``, a repeat ``ALREADY_APPROVED``).
        """
        with unavailable_on_redis_errors(StoreUnavailable):
            reply = await self._durably(
                self._decide,
                keys=self._script_keys(request_id),
                args=[
                    payload_hash,
                    actor,
                    "1" if approve else "0",
                    reason or "",
                    self._now(),
                    "1" if self._allow_self else "0",
                    str(MIN_HASH_PREFIX),
                    tenant,
                    channel,
                    *self._audit_args,
                ],
            )
        parts = _script_list(reply)
        outcome = DecisionOutcome(_text(parts[0]))
        request = _parse(parts[1]) if len(parts) > 1 else None
        return Decision(outcome, request)

    async def claim_submit(self, request_id: str) -> ApprovalRequest | None:
        """Move an approved request to ``submitting``; ``None`` if another process won.

        Not audited: the trail goes from the decision to what the submit did (``submitted``
        or ``submit_failed``), which is what a reader of it needs.
        """
        return await self.transition(
            request_id, S.SUBMITTING, expected={S.APPROVED, S.AUTO_APPROVED}, durable=True
        )

    async def claim_holds(self, request_id: str) -> bool:
        """Before a resumed submit is sent again: whether the request is still ``submitting``
        on the primary and, when replicas are required, on them too. The status is read
        before a marker is written and ``WAIT`` sent on the same connection: replication
        keeps the primary's order, so replicas that hold the marker hold the claim."""
        field = FIELD_CODES["status"]
        with unavailable_on_redis_errors(StoreUnavailable):
            if not self._replicas.enabled:
                status = await self._redis.hget(self.key(request_id), field)  # type: ignore[misc]
            else:
                async with self._replicas.pinned(self._redis) as pinned:
                    status = await pinned.hget(self.key(request_id), field)  # type: ignore[misc]
                    await pinned.set(self._keys("replicated"), self._now(), px=60_000)
                    await self._replicas.confirm(pinned)
        return status is not None and _text(status) == str(S.SUBMITTING)

    async def transition(
        self,
        request_id: str,
        to: ApprovalStatus,
        *,
        expected: set[ApprovalStatus] | None = None,
        actor: str = SYSTEM_ACTOR,
        audit_action: str | None = None,
        audit_detail: str | None = None,
        durable: bool = False,
        **fields: str | float | None,
    ) -> ApprovalRequest | None:
        """Compare-and-set along ``TRANSITIONS``; ``None`` when not allowed from the current status.

        ``durable``: confirmed on the replicas before returning (``NotReplicated`` if not).

        ``fields`` (from ``MUTABLE_FIELDS``; ``None`` clears) are written in the same step.
        The audit detail defaults to the first of submit_error, outcome, job_state, reason.
        """
        if to in _DECISIONS:
            raise ValueError("approve or reject through decide(), which checks the binding")
        values = _field_values(fields)
        if audit_detail is None:
            audit_detail = next((v for k in _DETAIL_FIELDS if (v := values.get(k))), "")
        with unavailable_on_redis_errors(StoreUnavailable):
            reply = await self._durably(
                self._transition,
                durable=durable,
                keys=self._script_keys(request_id),
                args=[
                    str(to),
                    "" if expected is None else json.dumps(sorted(str(s) for s in expected)),
                    actor,
                    audit_action or "",
                    audit_detail,
                    self._now(),
                    json.dumps(values, ensure_ascii=False),
                    *self._audit_args,
                ],
            )
        return _parse(reply)

    async def expire_due(self, limit: int = 100) -> list[ApprovalRequest]:
        """Expire up to ``limit`` pending requests whose time ran out (for a periodic sweep)."""
        now = self._now()
        expired: list[ApprovalRequest] = []
        with unavailable_on_redis_errors(StoreUnavailable):
            due = await self._redis.zrangebyscore(self.expiry_key, "-inf", now, start=0, num=limit)
            for raw_id in due:
                request_id = _text(raw_id)
                reply = await self._expire(
                    keys=self._script_keys(request_id),
                    args=[request_id, now, *self._audit_args],
                )
                request = _parse(reply)
                if request is not None:
                    expired.append(request)
        return expired

    async def for_job(self, job_id: str) -> list[ApprovalRequest]:
        """Every stored request for ``job_id``, oldest first."""
        with unavailable_on_redis_errors(StoreUnavailable):
            fields = await self._redis.hkeys(self.job_key(job_id))  # type: ignore[misc]
        found = [await self.get(i) for i in index_request_ids([_text(f) for f in fields])]
        return sorted((r for r in found if r is not None), key=lambda r: (r.created_at, r.id))

    async def _tracked(self) -> dict[str, str]:
        with unavailable_on_redis_errors(StoreUnavailable):
            found = await self._redis.hgetall(self.tracked_key)  # type: ignore[misc]
        return {_text(k): _text(v) for k, v in found.items()}

    async def active_ids(self) -> list[str]:
        """Ids of the requests a worker must track with a queue job of their own (every
        active request but those under review)."""
        return sorted(request for request, job in (await self._tracked()).items() if not job)

    async def under_review(self) -> dict[str, str]:
        """request id -> job id of every request whose job is under review (two requests
        may follow one job: one stranded by an outage, and the resubmit after it)."""
        return {request: job for request, job in (await self._tracked()).items() if job}

    async def forget_active(self, request_id: str) -> None:
        """Drop an index entry whose request is gone (its retention ran out)."""
        with unavailable_on_redis_errors(StoreUnavailable):
            await self._redis.hdel(self.tracked_key, request_id)  # type: ignore[misc]

    # -- the notify lease and what has been shown -------------------------------------------

    async def notify_lease(self, request_id: str, token: str, lease_ms: int) -> bool:
        """Take the lease on a request's card and thread; False while another holds it."""
        with unavailable_on_redis_errors(StoreUnavailable):
            won = await self._redis.set(self.notify_key(request_id), token, nx=True, px=lease_ms)
        return bool(won)

    async def notify_renew(self, request_id: str, token: str, lease_ms: int) -> bool:
        """Extend the lease; False when it ran out and may be someone else's now."""
        with unavailable_on_redis_errors(StoreUnavailable):
            kept = await self._renew(keys=[self.notify_key(request_id)], args=[token, lease_ms])
        return bool(kept == 1)

    async def notify_release(self, request_id: str, token: str, render_key: str | None) -> int:
        """Give the lease back if the request still renders as ``render_key``.

        1: released. 0: the request changed since (the lease is kept; catch up and try
        again). -1: the lease was not ours any more. ``render_key=None`` releases regardless.
        """
        with unavailable_on_redis_errors(StoreUnavailable):
            result = await self._release(
                keys=[self.notify_key(request_id), self.key(request_id)],
                args=[token, "*" if render_key is None else render_key],
            )
        return int(result)

    async def set_shown_render(self, request_id: str, render_key: str) -> None:
        with unavailable_on_redis_errors(StoreUnavailable):
            await self._mark(keys=[self.key(request_id)], args=[SHOWN_FIELD, render_key])

    async def mark(self, request_id: str, marker: str) -> None:
        """Record that the work ``marker`` names is done (see ``shown``); a request that is
        gone takes no marker."""
        with unavailable_on_redis_errors(StoreUnavailable):
            await self._mark(keys=[self.key(request_id)], args=[_marker_field(marker), "1"])

    async def shown(
        self, request_id: str, names: Sequence[str]
    ) -> tuple[str | None, dict[str, bool]]:
        """What has been shown for a request, in one round trip: the ``render_key`` its card
        was last updated to, and which of the markers ``names`` are set."""
        fields = [SHOWN_FIELD, *(_marker_field(name) for name in names)]
        with unavailable_on_redis_errors(StoreUnavailable):
            found = await self._redis.hmget(self.key(request_id), fields)  # type: ignore[misc]
        card = None if found[0] is None else _text(found[0])
        return card, {name: hit is not None for name, hit in zip(names, found[1:], strict=True)}
