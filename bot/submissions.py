"""Submit requests and their approval: who may ask, who may decide, what gets enqueued.

Knows nothing of Slack: it takes principals, channel ids and validated submit requests,
and returns domain results that the Slack edge renders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from bot.approvals import ApprovalRequest, ApprovalStore, Decision, DecisionOutcome
from bot.metastudio import (
    SUBMITTABLE_STATES,
    CommitJobRequest,
    MetaStudioClient,
    PreparedCall,
    TrainingJob,
)
from bot.permissions import Action, PermissionStore, Principal
from bot.queue import Enqueuer
from bot.redis import StoreUnavailable
from bot.settings import Settings

log = logging.getLogger("bot.submissions")

# How long the worker leaves a rejection or an expiry to the web process that saw the click.
FOLLOW_UP_DEFER = 2.0


class JobNotReady(Exception):
    """The job exists but its state does not accept a submit."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job
        super().__init__(f"job {job.job_id} is {job.state}")


@dataclass(frozen=True)
class SubmitIntent:
    """A validated ``/voice submit``: where it came from and what it would send."""

    principal: Principal
    team_id: str | None
    enterprise_id: str | None
    channel_id: str
    job_id: str
    request: CommitJobRequest

    @property
    def app_user_id(self) -> str | None:
        # X-App-UserId follows the body's app_user_id; jobs created without one are
        # looked up without the header, so the bot never invents a third-party id.
        return self.request.app_user_id


@dataclass(frozen=True)
class Requested:
    request: ApprovalRequest
    job: TrainingJob


class SubmissionService:
    def __init__(
        self,
        *,
        settings: Settings,
        permissions: PermissionStore,
        approvals: ApprovalStore,
        metastudio: MetaStudioClient,
        queue: Enqueuer,
    ) -> None:
        self._settings = settings
        self._permissions = permissions
        self._approvals = approvals
        self._metastudio = metastudio
        self._queue = queue

    def card_channel(self, origin_channel: str) -> str:
        return self._settings.approval_channel or origin_channel

    async def authorize_submit(self, intent: SubmitIntent) -> None:
        await self._permissions.require(intent.principal, Action.submit, intent.channel_id)

    async def check_job(self, intent: SubmitIntent) -> TrainingJob:
        job = await self._metastudio.show_job(intent.job_id, intent.app_user_id)
        if job.state not in SUBMITTABLE_STATES:
            raise JobNotReady(job)
        return job

    def dry_run(self, intent: SubmitIntent) -> PreparedCall:
        return self._metastudio.describe_commit(intent.job_id, intent.request, intent.app_user_id)

    async def request(self, intent: SubmitIntent, job: TrainingJob) -> Requested:
        """Record the request (pending, or auto-approved when approval is switched off)."""
        auto = not self._settings.require_approval
        request = await self._approvals.create(
            tenant=intent.principal.tenant,
            team_id=intent.team_id,
            enterprise_id=intent.enterprise_id,
            requester=intent.principal.user,
            origin_channel=intent.channel_id,
            card_channel=self.card_channel(intent.channel_id),
            job_id=intent.job_id,
            body=intent.request.body(),
            app_user_id=intent.app_user_id,
            auto_approve=auto,
            job_state=str(job.state),
            job_reject_times=job.reject_times,
            job_updated=job.lastupdate_time,
        )
        return Requested(request=request, job=job)

    async def card_posted(self, request: ApprovalRequest, channel: str, ts: str) -> ApprovalRequest:
        """Record the card posted for ``request`` (rendered from exactly that version)."""
        attached = await self._approvals.attach_card(request.id, channel, ts)
        await self._approvals.set_shown_render(request.id, request.render_key)
        updated = attached or request
        if updated.status == "auto_approved":
            await self._enqueue(updated.id)
        return updated

    async def _enqueue(self, request_id: str, *, defer: float | None = None) -> None:
        # The decision is already stored; a failed enqueue must not undo it or tell the user
        # it failed. The worker's sweep re-enqueues every active request without a job.
        try:
            await self._queue.enqueue_tracking(request_id, defer=defer)
        except (StoreUnavailable, OSError, RedisError) as error:
            log.warning("request %s: enqueue failed (%s); the sweep will pick it up",
                        request_id, type(error).__name__)

    async def decide(
        self,
        principal: Principal,
        channel_id: str | None,
        request_id: str,
        payload_hash: str,
        *,
        approve: bool,
        reason: str | None = None,
    ) -> Decision:
        """Check the approver role, then make the one atomic decision; enqueue on approval."""
        await self._permissions.require(principal, Action.approve, channel_id)
        decision = await self._approvals.decide(
            request_id,
            payload_hash=payload_hash,
            actor=principal.user,
            approve=approve,
            reason=reason,
        )
        if decision.request is None:
            return decision
        if decision.outcome == DecisionOutcome.APPROVED:
            await self._enqueue(decision.request.id)
        elif decision.outcome in (DecisionOutcome.REJECTED, DecisionOutcome.EXPIRED):
            # The web process updates the card and the thread right after this; should it die
            # first, the worker's job does it (a no-op when it finds everything posted).
            await self._enqueue(decision.request.id, defer=FOLLOW_UP_DEFER)
        return decision
