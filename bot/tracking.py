"""Follow one approved request: submit it once, then track the job through MetaStudio review.

``Tracker.step`` moves a request as far as MetaStudio's answers allow and says when to look
again. Everything it knows lives in Redis (the request's status, its last job state), so any
worker process can take the next step after a restart. Knows nothing of Slack or arq.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.approvals import ApprovalRequest, ApprovalStatus, ApprovalStore
from bot.metastudio import (
    SUBMITTABLE_STATES,
    APIError,
    CommitJobRequest,
    JobNotFound,
    JobState,
    MetaStudioClient,
    MetaStudioError,
    ServerError,
    SignatureRejected,
    StateCategory,
    SubmitOutcomeUnknown,
    Throttled,
    TokenExpired,
    TrainingJob,
    TransportError,
)
from bot.metastudio.client import submit_took_effect

log = logging.getLogger("bot.tracking")

S = ApprovalStatus

# Statuses whose step is done: nothing more to ask MetaStudio.
FINISHED = frozenset({S.PENDING, S.REJECTED, S.EXPIRED, S.SUBMIT_FAILED, S.FAILED,
                      S.SUCCEEDED, S.TRAINING_FAILED})
# Errors worth waiting out: the next step tries again after a backoff.
TRANSIENT = (TransportError, ServerError, Throttled, SubmitOutcomeUnknown, TokenExpired,
             SignatureRejected)


@dataclass(frozen=True)
class Step:
    """Where a request stands after one step, and when to take the next.

    ``next_poll`` is None when no step of the request's own is due: it is finished, or its
    job is under review and watched by the review sweep, which starts the next step.
    """

    request: ApprovalRequest | None
    job: TrainingJob | None = None
    next_poll: float | None = None
    fault: MetaStudioError | None = None


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait before the next look at a job.

    While a review runs, the wait grows with the time nothing has changed (a quarter of it,
    between ``interval`` and ``cap``), so a short review is seen promptly and a review that
    takes days costs a few hundred reads, not thousands. Faults back off exponentially.
    Jitter spreads the workers' reads and only ever shortens a wait.
    """

    interval: float
    cap: float
    training_interval: float
    growth: float = 0.25

    def review_delay(self, rng: random.Random, unchanged_for: float = 0.0) -> float:
        base = min(self.cap, max(self.interval, unchanged_for * self.growth))
        return base * rng.uniform(0.9, 1.0)

    def fault_delay(self, consecutive: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.interval * (2 ** min(consecutive, 16)))
        return rng.uniform(ceiling / 2, ceiling)


def _failure_text(error: APIError) -> str:
    return f"{error.error_code}: {error.error_msg}"


def baseline(request: ApprovalRequest) -> TrainingJob | None:
    """The job as it was when the request was made, as far as the request recorded it."""
    state = request.baseline_state or request.job_state
    if state is None:
        return None
    return TrainingJob(
        job_id=request.job_id,
        state=JobState(state),
        reject_times=request.baseline_reject_times,
        lastupdate_time=request.baseline_updated,
    )


class Tracker:
    def __init__(
        self,
        approvals: ApprovalStore,
        metastudio: MetaStudioClient,
        policy: PollPolicy,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        review_sweep: bool = False,
    ) -> None:
        self._review_sweep = review_sweep
        self._approvals = approvals
        self._metastudio = metastudio
        self._policy = policy
        self._rng = rng or random.Random()
        self._clock = clock

    async def step(self, request_id: str, *, faults: int = 0) -> Step:
        """Advance the request; ``faults`` counts the consecutive faulted steps before it."""
        request = await self._approvals.get(request_id)
        if request is None or request.status in FINISHED:
            return Step(request)
        try:
            return await self._advance(request)
        except TRANSIENT as fault:
            log.warning("request %s: MetaStudio fault, backing off: %s", request_id, fault)
            delay = self._policy.fault_delay(faults, self._rng)
            if isinstance(fault, Throttled) and fault.retry_after is not None:
                delay = max(delay, fault.retry_after)
            current = await self._approvals.get(request_id)
            return Step(current, next_poll=delay, fault=fault)

    async def _advance(self, request: ApprovalRequest) -> Step:
        if request.status in (S.APPROVED, S.AUTO_APPROVED):
            claimed = await self._approvals.claim_submit(request.id)
            if claimed is None:
                current = await self._approvals.get(request.id)
                return Step(current, next_poll=0.0)
            return await self._submit(claimed, resumed=False)
        if request.status == S.SUBMITTING:
            return await self._submit(request, resumed=True)
        return await self._poll(request)

    async def _submit(self, request: ApprovalRequest, *, resumed: bool) -> Step:
        """POST the submit once. A resumed submit (an earlier step claimed it and may have
        sent it) first reads the job and compares it with the request's baseline: the POST
        is sent again only when that read proves the earlier one did not land."""
        if resumed:
            job = await self._metastudio.show_job(request.job_id, request.app_user_id)
            before = baseline(request)
            landed = (job.state not in SUBMITTABLE_STATES if before is None
                      else submit_took_effect(before, job))
            if landed is True:
                confirmed = await self._submitted(request, job, "confirmed by reading the job")
                return await self._review_step(confirmed, job)
            if landed is None:
                failed = await self._submit_failed(
                    request,
                    "the job's state does not show whether an earlier attempt went through",
                    "Check the job with `/voice status` before submitting again.",
                )
                return Step(failed, job)
            if not await self._approvals.claim_holds(request.id):
                # The claim was lost (a failover): the request is claimed afresh, confirmed.
                return Step(await self._reload(request), next_poll=0.0)
        try:
            result = await self._metastudio.commit_job(
                request.job_id, CommitJobRequest(**request.body), app_user_id=request.app_user_id
            )
        except APIError as error:
            if isinstance(error, TRANSIENT):
                raise
            # A definite refusal: nothing of ours landed (a resumed submit checked first).
            return Step(await self._submit_failed(request, _failure_text(error), error.hint))
        state = result.job.state if result.job else JobState.SYSTEM_AUDITING
        detail = "confirmed by reading the job" if result.verified_by_read else None
        moved = await self._approvals.transition(
            request.id, S.SUBMITTED, expected={S.SUBMITTING}, audit_action="submitted",
            audit_detail=detail, job_state=str(state),
        )
        return await self._review_step(moved or await self._reload(request), result.job)

    async def _review_step(self, request: ApprovalRequest, job: TrainingJob | None) -> Step:
        if request.status != S.SUBMITTED:
            return Step(request, job)
        return Step(request, job, next_poll=self._next_review_poll())

    def _next_review_poll(self, unchanged_for: float = 0.0) -> float | None:
        """When to read the job again while its review runs; ``None`` when a review sweep
        runs (``bot.review_sweep``): it starts the next step as soon as the review ends."""
        if self._review_sweep:
            return None
        return self._policy.review_delay(self._rng, unchanged_for)

    async def _submitted(
        self, request: ApprovalRequest, job: TrainingJob, detail: str
    ) -> ApprovalRequest:
        moved = await self._approvals.transition(
            request.id, S.SUBMITTED, expected={S.SUBMITTING}, audit_action="submitted",
            audit_detail=detail, job_state=str(job.state),
        )
        return moved or await self._reload(request)

    async def _submit_failed(
        self, request: ApprovalRequest, text: str, hint: str | None = None
    ) -> ApprovalRequest:
        moved = await self._approvals.transition(
            request.id, S.SUBMIT_FAILED, expected={S.SUBMITTING}, audit_action="submit_failed",
            submit_error=text, submit_hint=hint,
        )
        return moved or await self._reload(request)

    async def _reload(self, request: ApprovalRequest) -> ApprovalRequest:
        return await self._approvals.get(request.id) or request

    async def _poll(self, request: ApprovalRequest) -> Step:
        try:
            job = await self._metastudio.show_job(request.job_id, request.app_user_id)
        except JobNotFound:
            target = S.TRAINING_FAILED if request.status == S.PASSED else S.FAILED
            moved = await self._approvals.transition(
                request.id, target, audit_action="review_failed" if target == S.FAILED else None,
                outcome="the job no longer exists in MetaStudio",
            )
            return Step(moved or await self._reload(request))
        category = job.category
        if category in (StateCategory.UNDER_REVIEW, StateCategory.PRE_SUBMIT):
            if request.status == S.SUBMITTED and category == StateCategory.UNDER_REVIEW:
                request = await self._move(request, S.UNDER_REVIEW, job, None)
            else:
                request = await self._note_state(request, job)
            unchanged_for = max(0.0, self._clock() - request.updated_at)
            return Step(request, job, self._next_review_poll(unchanged_for))
        if request.status in (S.SUBMITTED, S.UNDER_REVIEW):
            # AUDIT_FAILED is the one rejection state; every other state a job reaches from
            # review (FAILED and SPLIT_FAILED included) comes after the review passed.
            if category == StateCategory.REVIEW_FAILED:
                return Step(await self._move(request, S.FAILED, job, "review_failed"), job)
            request = await self._move(request, S.PASSED, job, "review_passed")
        if request.status == S.PASSED and category == StateCategory.SUCCEEDED:
            return Step(await self._move(request, S.SUCCEEDED, job, "succeeded"), job)
        if request.status == S.PASSED and category == StateCategory.FAILED:
            return Step(await self._move(request, S.TRAINING_FAILED, job, "training_failed"), job)
        request = await self._note_state(request, job)
        delay = self._policy.training_interval * self._rng.uniform(0.9, 1.0)
        return Step(request, job, delay)

    async def _note_state(self, request: ApprovalRequest, job: TrainingJob) -> ApprovalRequest:
        """Record the job's state on the request when it changed (the card shows it)."""
        if request.job_state == job.state:
            return request
        return await self._approvals.update(request.id, job_state=str(job.state)) or request

    async def _move(
        self,
        request: ApprovalRequest,
        to: ApprovalStatus,
        job: TrainingJob,
        audit_action: str | None,
    ) -> ApprovalRequest:
        """The request after the transition (or as it now is, if another step won)."""
        moved = await self._approvals.transition(
            request.id, to, audit_action=audit_action, job_state=str(job.state),
            outcome=job.job_failed_reason if to in (S.FAILED, S.TRAINING_FAILED) else None,
        )
        return moved or await self._reload(request)
