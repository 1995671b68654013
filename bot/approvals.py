"""Approval requests and their atomic state transitions in Redis.

A request binds one approval to one exact submit call (job id, body, app user id) through
``payload_hash``. Every status change runs as a single Lua script that checks the allowed
transition graph, writes the new state and appends the audit record together, so racing
clicks, workers and sweepers in separate processes see exactly one winner.

Keys (under the store's prefix):
    approval:{id}                hash, flat fields, body as JSON, and what has been posted
                                 for it (``m:{marker}``); expires ``retention`` after expiry
    approvals:expiry             zset of pending ids scored by ``expires_at``
    approvals:tracked            hash of the ids a worker must still track (``ACTIVE_STATUSES``):
                                 id -> job id while under review (``REVIEWING_STATUSES``), else ""
    approval:{id}:notify         the notify lease: who is updating the card and the thread
    job:{job_id}                 the job's index: its request ids and audit entries
    audit                        the audit stream (see ``bot.audit``)
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from bot.approval_scripts import build_sources
from bot.audit import AUDIT_FIELDS, AuditLog, index_request_ids
from bot.durability import ReplicaWait
from bot.redis import Keys, StoreUnavailable, unavailable_on_redis_errors

SYSTEM_ACTOR = "voicebot"
DEFAULT_RETENTION = 30 * 86400
# A button value may carry a shortened hash; anything shorter would be guessable.
MIN_HASH_PREFIX = 16


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    AUTO_APPROVED = "auto_approved"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    SUBMIT_FAILED = "submit_failed"
    UNDER_REVIEW = "under_review"
    PASSED = "passed"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    TRAINING_FAILED = "training_failed"


S = ApprovalStatus
TRANSITIONS: Mapping[ApprovalStatus, frozenset[ApprovalStatus]] = {
    S.PENDING: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED}),
    S.APPROVED: frozenset({S.SUBMITTING}),
    S.AUTO_APPROVED: frozenset({S.SUBMITTING}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.SUBMIT_FAILED}),
    S.SUBMITTED: frozenset({S.UNDER_REVIEW, S.PASSED, S.FAILED}),
    S.UNDER_REVIEW: frozenset({S.PASSED, S.FAILED}),
    S.PASSED: frozenset({S.SUCCEEDED, S.TRAINING_FAILED}),
}
"""The one transition graph; statuses with no entry are terminal. Enforced in Lua."""

TERMINAL_STATUSES: frozenset[ApprovalStatus] = frozenset(s for s in S if s not in TRANSITIONS)
# Statuses in which a submit may still have to be sent or resumed (the baseline is kept).
RESUMABLE_STATUSES: frozenset[ApprovalStatus] = frozenset(
    {S.PENDING, S.APPROVED, S.AUTO_APPROVED, S.SUBMITTING}
)
# Decided for submission and not finished: each is tracked, by a queue job of its own or,
# while MetaStudio reviews the job, by the review sweep.
ACTIVE_STATUSES: frozenset[ApprovalStatus] = frozenset(TRANSITIONS) - {S.PENDING}
REVIEWING_STATUSES: frozenset[ApprovalStatus] = frozenset({S.SUBMITTED, S.UNDER_REVIEW})

# Fields a transition (or ``update``) may set; identity and binding fields never change.
MUTABLE_FIELDS: frozenset[str] = frozenset(
    {"decided_by", "decided_at", "reason", "submit_error", "submit_hint", "job_state", "outcome",
     "held", "submit_sent_at"}
)
_DETAIL_FIELDS = ("submit_error", "outcome", "job_state", "reason")
_DECISIONS = frozenset({S.APPROVED, S.REJECTED})
# Markers live in the request's own hash, so they go when it goes and cost no key each.
MARKER_PREFIX = "m:"
SHOWN_FIELD = MARKER_PREFIX + "card"


def _marker_field(marker: str) -> str:
    return MARKER_PREFIX + marker


def payload_hash(job_id: str, body: Mapping[str, str], app_user_id: str | None) -> str:
    """sha256 hex of the canonical JSON of exactly what will be submitted."""
    canonical = json.dumps(
        {"job_id": job_id, "body": dict(body), "app_user_id": app_user_id},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def new_request_id() -> str:
    """``r`` + 12 lowercase base32 characters (60 random bits): short and safe in a URL."""
    return "r" + base64.b32encode(secrets.token_bytes(8)).decode("ascii")[:12].lower()


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    tenant: str
    team_id: str | None = None
    enterprise_id: str | None = None
    requester: str
    origin_channel: str
    card_channel: str
    card_ts: str | None = None
    job_id: str
    body: dict[str, str]
    app_user_id: str | None = None
    payload_hash: str
    status: ApprovalStatus
    created_at: float
    expires_at: float
    decided_by: str | None = None
    decided_at: float | None = None
    reason: str | None = None
    submit_error: str | None = None
    submit_hint: str | None = None
    job_state: str | None = None
    # The job as read when the request was made: the baseline a resumed submit compares a
    # fresh read with, to tell whether an earlier attempt landed (``submit_took_effect``).
    baseline_state: str | None = None
    baseline_reject_times: int | None = None
    baseline_updated: int | None = None
    outcome: str | None = None
    # Why an approved submit waits instead of being sent: the kind of credentials failure
    # (``bot.metastudio.errors.CREDENTIAL_KINDS``) while MetaStudio refuses the bot's keys.
    held: str | None = None
    # When the last submit POST was sent whose answer did not say whether it landed: no
    # submit is sent again until ``VOICEBOT_SUBMIT_SETTLE`` seconds after it.
    submit_sent_at: float | None = None
    updated_at: float
    version: int = 0

    @property
    def short_hash(self) -> str:
        """The hash prefix a button value carries; ``decide`` accepts it."""
        return self.payload_hash[:MIN_HASH_PREFIX]

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def render_key(self) -> str:
        """Changes whenever what the card shows changes (the status, the job's state, or
        the submit being held)."""
        held = f":held:{self.held}" if self.held else ""
        return f"{self.version}:{self.job_state or ''}{held}"

    def as_fields(self) -> dict[str, str]:
        """Flat string fields by name, stored under ``FIELD_CODES``: ``None`` fields and
        fields equal to their default (``IMPLIED``) are left out, and each body field is one
        ``b:{name}`` field."""
        out: dict[str, str] = {}
        values = self.model_dump(mode="python")
        for name, value in values.items():
            if name == "body":
                out.update({BODY_FIELD + key: item for key, item in value.items()})
            elif value is not None and value != values.get(IMPLIED.get(name, "")):
                out[name] = _encode(value)
        return out

    @classmethod
    def from_stored(cls, flat: Mapping[str, str]) -> ApprovalRequest:
        """The request from its hash as stored: fields under their codes, markers ignored."""
        data: dict[str, Any] = {"body": {}}
        for code, value in flat.items():
            if code.startswith(BODY_FIELD):
                data["body"][code.removeprefix(BODY_FIELD)] = value
            elif code in _NAMES:
                data[_NAMES[code]] = value
        for name, default in IMPLIED.items():
            if name not in data and default in data:
                data[name] = data[default]
        return cls.model_validate(data)


# A request is one small hash, which Redis keeps in its compact listpack encoding only while
# every value is at most 64 bytes: so each body field is a field of its own (``b:{name}``)
# rather than one JSON value, and every other field is stored under a short code (the long
# names were a third of the hash). Markers (``m:...``) are left alone.
BODY_FIELD = "b:"
FIELD_CODES: Mapping[str, str] = {
    "id": "i", "tenant": "t", "team_id": "tm", "enterprise_id": "e", "requester": "q",
    "origin_channel": "oc", "card_channel": "cc", "card_ts": "ct", "job_id": "j",
    "app_user_id": "u", "payload_hash": "h", "status": "s",
    "created_at": "ca", "expires_at": "xa", "decided_by": "db", "decided_at": "da",
    "reason": "r", "submit_error": "se", "submit_hint": "sh", "job_state": "js",
    "baseline_state": "bs", "baseline_reject_times": "br", "baseline_updated": "bu",
    "outcome": "o", "updated_at": "ua", "version": "v", "held": "hd",
    "submit_sent_at": "ss",
}
_NAMES: Mapping[str, str] = {code: name for name, code in FIELD_CODES.items()}
# Fields not stored when equal to another (the usual case): read back as that one.
IMPLIED: Mapping[str, str] = {"tenant": "team_id", "card_channel": "origin_channel"}
# Kept only while a submit may have to be resumed; dropped once its outcome is known.
BASELINE_FIELDS = ("baseline_state", "baseline_reject_times", "baseline_updated")


def _stamp(seconds: float) -> float:
    """A stored time: to the millisecond, which is all any reader needs."""
    return round(float(seconds), 3)


def _encode(value: object) -> str:
    if isinstance(value, float):
        # repr round-trips a float exactly, so stored timestamps compare equal after a read.
        return repr(value)
    return str(value)


class DecisionOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    HASH_MISMATCH = "hash_mismatch"
    EXPIRED = "expired"
    ALREADY_DECIDED = "already_decided"
    SELF_APPROVAL = "self_approval"
    WRONG_WORKSPACE = "wrong_workspace"
    WRONG_CHANNEL = "wrong_channel"


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
        self._audit_args = [
            self.audit.job_index_key(""),
            str(self.audit.maxlen),
            str(self.audit.job_maxlen),
            str(retention_seconds),
        ]
        graph = {str(k): sorted(str(v) for v in vs) for k, vs in TRANSITIONS.items()}
        sources = build_sources(
            graph, AUDIT_FIELDS, sorted(str(s) for s in ACTIVE_STATUSES),
            sorted(str(s) for s in REVIEWING_STATUSES), FIELD_CODES,
            [str(s) for s in RESUMABLE_STATUSES], BASELINE_FIELDS,
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

    def _script_keys(self, request_id: str) -> list[str]:
        return [self.key(request_id), self.expiry_key, self.audit.stream_key, self.tracked_key]

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
                keys=[self.job_key(request.job_id),
                      self.requests_key(request.tenant, request.requester)],
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
                keys=[self.job_key(request.job_id),
                      self.requests_key(request.tenant, request.requester)],
                args=[self._open_field(request.tenant), request.id],
            )

    async def create(
        self, request: ApprovalRequest, *, card_channel: str, card_ts: str
    ) -> ApprovalRequest:
        """Store ``request`` (reserved with ``reserve``) with the card posted for it."""
        stored = request.model_copy(update={"card_channel": card_channel, "card_ts": card_ts})
        with unavailable_on_redis_errors(StoreUnavailable):
            created = await self._create(
                keys=[*self._script_keys(stored.id), self.job_key(stored.job_id)],
                args=[
                    *self._audit_args,
                    json.dumps(stored.as_fields(), ensure_ascii=False),
                    self._open_field(stored.tenant),
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
        single decision and the self-approval rule.
        """
        with unavailable_on_redis_errors(StoreUnavailable):
            reply = await self._durably(
                self._decide,
                keys=self._script_keys(request_id),
                args=[
                    *self._audit_args,
                    payload_hash,
                    actor,
                    "1" if approve else "0",
                    reason or "",
                    self._now(),
                    "1" if self._allow_self else "0",
                    str(MIN_HASH_PREFIX),
                    tenant,
                    channel,
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
                    *self._audit_args,
                    str(to),
                    "" if expected is None else json.dumps(sorted(str(s) for s in expected)),
                    actor,
                    audit_action or "",
                    audit_detail,
                    self._now(),
                    json.dumps(values, ensure_ascii=False),
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
                    args=[*self._audit_args, request_id, now],
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
