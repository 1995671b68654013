"""Follow one approved request: submit it once, then track the job through MetaStudio review.

``Tracker.step`` moves a request as far as MetaStudio's answers allow and says when to look
again. Everything it knows lives in Redis (the request's status, its last job state), so any
worker process can take the next step after a restart. Knows nothing of Slack or arq.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from bot.approvals import ApprovalRequest, ApprovalStatus, ApprovalStore
from bot.metastudio import (
    SUBMITTABLE_STATES,
    UNDER_REVIEW_STATES,
    APIError,
    CommitJobRequest,
    JobNotFound,
    JobNotSubmittable,
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
    """Where a request stands after one step, and when to take the next (None: never)."""

    request: ApprovalRequest | None
    job: TrainingJob | None = None
    next_poll: float | None = None
    fault: MetaStudioError | None = None


@dataclass(frozen=True)
class PollPolicy:
    """Steady polling while reviewed, exponential backoff with jitter after faults."""

    interval: float
    cap: float
    training_interval: float

    def review_delay(self, rng: random.Random) -> float:
        # Jitter only ever shortens the wait, so a state change is seen within one interval.
        return self.interval * rng.uniform(0.9, 1.0)

    def fault_delay(self, consecutive: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.interval * (2 ** min(consecutive, 16)))
        return rng.uniform(ceiling / 2, ceiling)


def _failure_text(error: APIError) -> str:
    return f"{error.error_code}: {error.error_msg}"


class Tracker:
    def __init__(
        self,
        approvals: ApprovalStore,
        metastudio: MetaStudioClient,
        policy: PollPolicy,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._approvals = approvals
        self._metastudio = metastudio
        self._policy = policy
        self._rng = rng or random.Random()

    async def step(self, request_id: str, *, faults: int = 0) -> Step:
        """Advance the request; ``faults`` counts the consecutive faulted steps before it."""
        request = await self._approvals.get(request_id)
        if request is None or request.status in FINISHED:
            return Step(request)
        try:
            return await self._advance(request)
        except TRANSIENT as fault:
            log.warning("request %s: MetaStudio fault, backing off: %s", request_id, fault)
            current = await self._approvals.get(request_id)
            return Step(current, next_poll=self._policy.fault_delay(faults, self._rng), fault=fault)

    async def _advance(self, request: ApprovalRequest) -> Step:
        resumed = request.status == S.SUBMITTING
        if request.status in (S.APPROVED, S.AUTO_APPROVED):
            claimed = await self._approvals.claim_submit(request.id)
            if claimed is None:
                current = await self._approvals.get(request.id)
                return Step(current, next_poll=0.0)
            request = claimed
        if request.status == S.SUBMITTING:
            request = await self._submit(request, resumed=resumed)
            if request.status != S.SUBMITTED:
                return Step(request)
            return Step(request, next_poll=self._policy.review_delay(self._rng))
        return await self._poll(request)

    async def _submit(self, request: ApprovalRequest, *, resumed: bool) -> ApprovalRequest:
        if resumed:
            # A previous attempt claimed the submit and may have sent it: read, never re-POST
            # blindly.
            job = await self._metastudio.show_job(request.job_id, request.app_user_id)
            if job.state not in SUBMITTABLE_STATES or job.state != request.job_state:
                return await self._submitted(request, job)
        try:
            result = await self._metastudio.commit_job(
                request.job_id, CommitJobRequest(**request.body), app_user_id=request.app_user_id
            )
        except JobNotSubmittable as error:
            job = await self._metastudio.show_job(request.job_id, request.app_user_id)
            if job.state in UNDER_REVIEW_STATES:
                return await self._submitted(request, job)
            return await self._submit_failed(request, _failure_text(error))
        except APIError as error:
            if isinstance(error, TRANSIENT):
                raise
            return await self._submit_failed(request, _failure_text(error))
        state = str(result.job.state) if result.job else str(JobState.SYSTEM_AUDITING)
        moved = await self._approvals.transition(
            request.id, S.SUBMITTED, expected={S.SUBMITTING}, audit_action="submitted",
            job_state=state,
        )
        return moved or await self._reload(request)

    async def _submitted(self, request: ApprovalRequest, job: TrainingJob) -> ApprovalRequest:
        moved = await self._approvals.transition(
            request.id, S.SUBMITTED, expected={S.SUBMITTING}, audit_action="submitted",
            audit_detail="confirmed by reading the job", job_state=str(job.state),
        )
        return moved or await self._reload(request)

    async def _submit_failed(self, request: ApprovalRequest, text: str) -> ApprovalRequest:
        moved = await self._approvals.transition(
            request.id, S.SUBMIT_FAILED, expected={S.SUBMITTING}, audit_action="submit_failed",
            submit_error=text,
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
        status = request.status
        if category == StateCategory.UNDER_REVIEW or category == StateCategory.PRE_SUBMIT:
            if status == S.SUBMITTED and category == StateCategory.UNDER_REVIEW:
                status = await self._move(request, S.UNDER_REVIEW, job, None)
            elif request.job_state != job.state:
                await self._approvals.update(request.id, job_state=str(job.state))
            return Step(await self._reload(request), job, self._policy.review_delay(self._rng))
        if category == StateCategory.REVIEW_FAILED:
            await self._move(request, S.FAILED, job, "review_failed")
            return Step(await self._reload(request), job)
        if status in (S.SUBMITTED, S.UNDER_REVIEW):
            if category == StateCategory.FAILED:
                await self._move(request, S.FAILED, job, "review_failed")
                return Step(await self._reload(request), job)
            status = await self._move(request, S.PASSED, job, "review_passed")
        if status == S.PASSED and category == StateCategory.SUCCEEDED:
            await self._move(request, S.SUCCEEDED, job, "succeeded")
            return Step(await self._reload(request), job)
        if status == S.PASSED and category == StateCategory.FAILED:
            await self._move(request, S.TRAINING_FAILED, job, "training_failed")
            return Step(await self._reload(request), job)
        if request.job_state != job.state:
            await self._approvals.update(request.id, job_state=str(job.state))
        return Step(
            await self._reload(request), job, self._policy.training_interval * self._rng.uniform(
                0.9, 1.0
            )
        )

    async def _move(
        self,
        request: ApprovalRequest,
        to: ApprovalStatus,
        job: TrainingJob,
        audit_action: str | None,
    ) -> ApprovalStatus:
        moved = await self._approvals.transition(
            request.id, to, audit_action=audit_action, job_state=str(job.state),
            outcome=job.job_failed_reason if to in (S.FAILED, S.TRAINING_FAILED) else None,
        )
        return moved.status if moved else (await self._reload(request)).status
