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

from bot.approvals import (
    STEP_DONE_STATUSES,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalStore,
)
from bot.backoff import backoff
from bot.i18n import N_
from bot.metastudio import (
    SUBMITTABLE_STATES,
    APIError,
    CommitJobRequest,
    CredentialsHeld,
    CredentialsRejected,
    JobNotFound,
    JobNotSubmittable,
    JobState,
    MetaStudioClient,
    MetaStudioError,
    ServerError,
    StateCategory,
    SubmitOutcomeUnknown,
    Throttled,
    TrainingJob,
    TransportError,
)
from bot.metastudio.client import CommitResult, submit_took_effect

log = logging.getLogger("bot.tracking")

S = ApprovalStatus

# Errors worth waiting out: the next step tries again after a backoff.
TRANSIENT = (TransportError, ServerError, Throttled, SubmitOutcomeUnknown)
# MetaStudio refused the bot's credentials: nothing is sent until they work again (see
# ``bot.credentials``); a submit waiting for that is held, neither failed nor lost.
REFUSED = (CredentialsRejected, CredentialsHeld)
# Statuses whose submit has not been sent yet (or was refused outright): these are held.
_HOLDABLE = frozenset({S.APPROVED, S.AUTO_APPROVED, S.SUBMITTING})

# The bot's own sentences stored on a request (its submit error and hint, its outcome, the
# audit detail) are stored in English, their message ids, and translated where shown;
# MetaStudio's text is stored as it wrote it.
CONFIRMED_BY_READ = N_("confirmed by reading the job")
SUBMIT_UNCLEAR = N_("the job's state does not show whether an earlier attempt went through")
SUBMIT_UNCLEAR_HINT = N_("Check the job with `/voice status` before submitting again.")
JOB_GONE = N_("the job no longer exists in MetaStudio")


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
        return backoff(consecutive, base=self.interval, cap=self.cap, draw=rng.random)


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
        submit_settle: float = 0.0,
    ) -> None:
        self._review_sweep = review_sweep
        self._settle = submit_settle
        self._approvals = approvals
        self._metastudio = metastudio
        self._policy = policy
        self._rng = rng or random.Random()
        self._clock = clock

    async def step(self, request_id: str, *, faults: int = 0) -> Step:
        """Advance the request; ``faults`` counts the consecutive faulted steps before it."""
        request = await self._approvals.get(request_id)
        if request is None or request.status in STEP_DONE_STATUSES:
            return Step(request)
        try:
            return await self._advance(request)
        except REFUSED as refusal:
            return await self._held(request_id, refusal)
        except TRANSIENT as fault:
            log.warning("request %s: MetaStudio fault, backing off: %s", request_id, fault)
            delay = self._policy.fault_delay(faults, self._rng)
            if isinstance(fault, Throttled) and fault.retry_after is not None:
                delay = max(delay, fault.retry_after)
            current = await self._approvals.get(request_id)
            return Step(current, next_poll=delay, fault=fault)

    async def _held(self, request_id: str, refusal: MetaStudioError) -> Step:
        """Wait for the credentials to work again. A submit not yet sent is marked held
        (its card and thread say so once); it is sent when the breaker closes, after a read
        like any resumed submit. An authentication refusal means nothing landed."""
        kind = refusal.kind if isinstance(refusal, CredentialsRejected | CredentialsHeld) else ""
        log.warning(
            "request %s: MetaStudio refuses the bot's credentials (%s); held", request_id, kind
        )
        current = await self._approvals.get(request_id)
        if current is not None and current.status in _HOLDABLE and current.held != kind:
            current = await self._approvals.update(request_id, held=kind) or current
        wait = refusal.retry_in if isinstance(refusal, CredentialsHeld) else None
        # Looking again costs one Redis read, not a MetaStudio call; the probe, when due,
        # is sent by whichever step comes first.
        delay = min(self._policy.cap, max(self._policy.interval, wait or self._policy.cap))
        return Step(current, next_poll=delay * self._rng.uniform(0.9, 1.0), fault=refusal)

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
        is sent again only when that read proves the earlier one did not land.

        A POST whose answer did not tell (502, 504, a timeout, a connection lost after
        sending) may still be on its way to MetaStudio's backend: until ``submit_settle``
        seconds after it, nothing is sent, not even read; after that a read decides. If a
        POST after such a failure is refused for the job's state, a read decides too: a job
        now under review was submitted by the earlier POST."""
        if resumed:
            job = await self._metastudio.show_job(request.job_id, request.app_user_id)
            landed = self._landed(request, job)
            if landed is True:
                confirmed = await self._submitted(request, str(job.state), CONFIRMED_BY_READ)
                return await self._review_step(confirmed, job)
            settling = self._settling(request)
            if settling > 0:
                # The earlier POST may still land: keep reading, send nothing yet.
                look = self._policy.interval * self._rng.uniform(0.9, 1.0)
                return Step(request, job, next_poll=min(settling, look))
            if landed is None:
                failed = await self._submit_failed(request, SUBMIT_UNCLEAR, SUBMIT_UNCLEAR_HINT)
                return Step(failed, job)
            if not await self._approvals.claim_holds(request.id):
                # The claim was lost (a failover): the request is claimed afresh, confirmed.
                return Step(await self._reload(request), next_poll=0.0)
        try:
            result = await self._commit(request)
        except SubmitOutcomeUnknown as unclear:
            # Only a POST that may still be on its way keeps the window; after a finished
            # exchange (a 500, say) a read that shows nothing is proof enough.
            sent_at = self._clock() if unclear.in_flight else None
            log.warning(
                "request %s: submit outcome unknown (%s): %s",
                request.id,
                "may still land" if unclear.in_flight else "did not land",
                unclear,
            )
            marked = await self._approvals.update(request.id, submit_sent_at=sent_at)
            return Step(
                marked or await self._reload(request),
                next_poll=self._policy.fault_delay(0, self._rng),
                fault=unclear,
            )
        except JobNotSubmittable as refusal:
            if resumed:
                job = await self._metastudio.show_job(request.job_id, request.app_user_id)
                if self._landed(request, job) is True:
                    confirmed = await self._submitted(request, str(job.state), CONFIRMED_BY_READ)
                    return await self._review_step(confirmed, job)
            return Step(await self._submit_failed(request, _failure_text(refusal), refusal.hint_en))
        except APIError as error:
            if isinstance(error, (*TRANSIENT, *REFUSED)):
                raise
            # A definite refusal: nothing of ours landed (a resumed submit checked first).
            return Step(await self._submit_failed(request, _failure_text(error), error.hint_en))
        state = result.job.state if result.job else JobState.SYSTEM_AUDITING
        detail = CONFIRMED_BY_READ if result.verified_by_read else ""
        submitted = await self._submitted(request, str(state), detail)
        return await self._review_step(submitted, result.job)

    async def _commit(self, request: ApprovalRequest) -> CommitResult:
        """``commit_job``, with the time of each POST kept on the request until its outcome
        is known, so a worker that dies mid-POST leaves the settle window behind it."""
        posted = False

        async def sending() -> None:
            nonlocal posted
            posted = True
            await self._approvals.update(request.id, submit_sent_at=self._clock())

        try:
            return await self._metastudio.commit_job(
                request.job_id,
                CommitJobRequest(**request.body),
                app_user_id=request.app_user_id,
                before_post=sending,
            )
        except (TransportError, ServerError, Throttled, *REFUSED):
            # commit_job raises these only when nothing of ours can be on its way (an
            # answer that left it unclear becomes SubmitOutcomeUnknown).
            if posted:
                await self._approvals.update(request.id, submit_sent_at=None)
            raise

    def _landed(self, request: ApprovalRequest, job: TrainingJob) -> bool | None:
        """Whether a submit of ours shows in ``job``, read after an earlier attempt."""
        before = baseline(request)
        if before is None:
            return job.state not in SUBMITTABLE_STATES
        return submit_took_effect(before, job)

    def _settling(self, request: ApprovalRequest) -> float:
        """Seconds until a POST whose outcome is unknown can no longer be landing."""
        if request.submit_sent_at is None:
            return 0.0
        left = request.submit_sent_at + self._settle - self._clock()
        return left if left > 0 else 0.0

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
        self, request: ApprovalRequest, job_state: str, detail: str
    ) -> ApprovalRequest:
        """The request moved to ``submitted`` (or as it now is, if another step won);
        ``detail`` says how the submit is known to have landed ("" for a plain 200)."""
        moved = await self._approvals.transition(
            request.id,
            S.SUBMITTED,
            expected={S.SUBMITTING},
            audit_action="submitted",
            audit_detail=detail or None,
            job_state=job_state,
            held=None,
            submit_sent_at=None,
        )
        return moved or await self._reload(request)

    async def _submit_failed(
        self, request: ApprovalRequest, text: str, hint: str | None = None
    ) -> ApprovalRequest:
        moved = await self._approvals.transition(
            request.id,
            S.SUBMIT_FAILED,
            expected={S.SUBMITTING},
            audit_action="submit_failed",
            submit_error=text,
            submit_hint=hint,
            held=None,
            submit_sent_at=None,
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
                request.id,
                target,
                audit_action="review_failed" if target == S.FAILED else None,
                outcome=JOB_GONE,
            )
            return Step(moved or await self._reload(request))
        category = job.category
        if category == StateCategory.UNKNOWN:
            # A state newer than the bot: not a review that ended, not an outcome. Watch it
            # at the slow pace until it turns into a state the bot knows.
            request = await self._note_state(request, job)
            delay = self._policy.training_interval * self._rng.uniform(0.9, 1.0)
            return Step(request, job, delay)
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
            request.id,
            to,
            audit_action=audit_action,
            job_state=str(job.state),
            outcome=job.job_failed_reason if to in (S.FAILED, S.TRAINING_FAILED) else None,
        )
        return moved or await self._reload(request)
