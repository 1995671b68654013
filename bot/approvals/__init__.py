"""Approval requests and their state machine, as one unit: ``model`` (statuses, the one
transition graph, the sets derived from it), ``encoding`` (how a request is stored),
``store`` (the requests in Redis, every change one atomic script) and ``scripts`` with
``lua/`` (the scripts themselves).

A request binds one approval to one exact submit call (job id, body, app user id) through
``payload_hash``. Every status change checks the graph inside Redis, writes the new state
and appends the audit record together, so racing clicks, workers and sweepers in separate
processes see exactly one winner.
"""

from __future__ import annotations

from bot.approvals.encoding import (
    BASELINE_FIELDS,
    BODY_FIELD,
    FIELD_CODES,
    IMPLIED,
    MARKER_PREFIX,
    MIN_HASH_PREFIX,
    MUTABLE_FIELDS,
    SHOWN_FIELD,
    ApprovalRequest,
    new_request_id,
    payload_hash,
)
from bot.approvals.model import (
    ACTIVE_STATUSES,
    AFTER_AUTO_APPROVAL,
    RESUMABLE_STATUSES,
    REVIEWING_STATUSES,
    STEP_DONE_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    ApprovalStatus,
    DecisionOutcome,
    allowed,
    reachable_from,
)
from bot.approvals.store import (
    DEFAULT_RETENTION,
    SYSTEM_ACTOR,
    ApprovalStore,
    Decision,
    OpenRequestExists,
    RequestInProgress,
    RequestLimits,
    RequestRateLimited,
    RequestRefused,
    TooManyOpenRequests,
)

__all__ = [
    "ACTIVE_STATUSES",
    "AFTER_AUTO_APPROVAL",
    "BASELINE_FIELDS",
    "BODY_FIELD",
    "DEFAULT_RETENTION",
    "FIELD_CODES",
    "IMPLIED",
    "MARKER_PREFIX",
    "MIN_HASH_PREFIX",
    "MUTABLE_FIELDS",
    "RESUMABLE_STATUSES",
    "REVIEWING_STATUSES",
    "SHOWN_FIELD",
    "STEP_DONE_STATUSES",
    "SYSTEM_ACTOR",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "ApprovalRequest",
    "ApprovalStatus",
    "ApprovalStore",
    "Decision",
    "DecisionOutcome",
    "OpenRequestExists",
    "RequestInProgress",
    "RequestLimits",
    "RequestRateLimited",
    "RequestRefused",
    "TooManyOpenRequests",
    "allowed",
    "new_request_id",
    "payload_hash",
    "reachable_from",
]
