"""The approval state machine: the statuses, the one transition graph, and every status set
derived from it. The Lua scripts (``lua/*.lua``) get the graph and the sets rendered in, so
Redis enforces exactly this graph; nothing else in the bot spells a status set out.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


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


def reachable_from(status: ApprovalStatus) -> frozenset[ApprovalStatus]:
    """``status`` and every status the graph can lead to from it."""
    seen = {status}
    todo = [status]
    while todo:
        for nxt in TRANSITIONS.get(todo.pop(), frozenset()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


def allowed(source: ApprovalStatus, target: ApprovalStatus) -> bool:
    return target in TRANSITIONS.get(source, frozenset())


# A request whose tracking step has nothing more to ask MetaStudio: it ended, or it waits for
# a click rather than for MetaStudio.
STEP_DONE_STATUSES: frozenset[ApprovalStatus] = TERMINAL_STATUSES | {S.PENDING}
# Where a request goes when approval is switched off: reached without anyone's click.
AFTER_AUTO_APPROVAL: frozenset[ApprovalStatus] = reachable_from(S.AUTO_APPROVED)


class DecisionOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    # An approval counted towards the request's required number, which it did not reach yet.
    COUNTED = "counted"
    ALREADY_APPROVED = "already_approved"
    NOT_FOUND = "not_found"
    HASH_MISMATCH = "hash_mismatch"
    EXPIRED = "expired"
    ALREADY_DECIDED = "already_decided"
    SELF_APPROVAL = "self_approval"
    WRONG_WORKSPACE = "wrong_workspace"
    WRONG_CHANNEL = "wrong_channel"
