"""Submit requests and their approval: who may ask, who may decide, what gets enqueued.

Knows nothing of Slack: it takes principals, channel ids and validated submit requests,
and returns domain results that the Slack edge renders.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisError

from bot.approvals import (
    ApprovalRequest,
    ApprovalStore,
    Decision,
    DecisionOutcome,
    RequestLimits,
)
from bot.durability import NotReplicated
from bot.metastudio import (
    SUBMITTABLE_STATES,
    CommitJobRequest,
    MetaStudioClient,
    PreparedCall,
    TrainingJob,
)
from bot.metastudio.models import TrainingQuotas
from bot.permissions import Action, PermissionStore, Principal
from bot.policies import PolicyStore
from bot.queue import Enqueuer
from bot.readiness import QuotaReader, Readiness
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


class SubmitBlocked(Exception):
    """A setting refuses jobs like this one: no authorization letter
    (``VOICEBOT_BLOCK_WITHOUT_AUTHORIZATION``) or audio out of range
    (``VOICEBOT_BLOCK_FAILED_ASSESSMENT``). ``readiness`` says what is wrong."""

    def __init__(
        self, job: TrainingJob, readiness: Readiness, *, authorization: bool, assessment: bool
    ) -> None:
        self.job = job
        self.readiness = readiness
        self.authorization = authorization
        self.assessment = assessment
        super().__init__(f"job {job.job_id} may not be requested")


class NoRoleHeld(Exception):
    """The caller holds no role at all, and the command is for anyone with one; ``admins``
    can grant one."""

    def __init__(self, admins: list[str]) -> None:
        self.admins = admins
        super().__init__("no role held")


class CardNotPosted(Exception):
    """Slack refused the approval card (``error`` is Slack's code), so no request was made.

    ``configured`` is True when the card was meant for ``VOICEBOT_APPROVAL_CHANNEL`` rather
    than the channel the requester typed in.
    """

    def __init__(self, channel: str, error: str, *, configured: bool = False) -> None:
        self.channel = channel
        self.error = error
        self.configured = configured
        super().__init__(f"the approval card could not be posted in {channel}: {error}")


class RequestUnconfirmed(Exception):
    """The card was posted but Redis did not confirm the request was stored: the card stays,
    and it shows whether the request exists (a click says so if it does not)."""

    def __init__(self, channel: str, ts: str) -> None:
        self.channel = channel
        self.ts = ts
        super().__init__(f"request behind the card {ts} in {channel} not confirmed")


class CardPoster(Protocol):
    """Posts a request's approval card, and takes it back when the request can't be stored."""

    async def post_card(
        self, request: ApprovalRequest, readiness: Readiness | None = None
    ) -> tuple[str, str]:
        """Post the card (with the job's risks, when known); return its (channel, ts), or
        raise ``CardNotPosted``."""

    async def withdraw_card(self, channel: str, ts: str) -> None:
        """Remove a card whose request could not be stored (best effort)."""


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
        cards: CardPoster,
        limits: RequestLimits,
        policies: PolicyStore,
    ) -> None:
        self._settings = settings
        self._permissions = permissions
        self._approvals = approvals
        self._metastudio = metastudio
        self._queue = queue
        self._cards = cards
        self._limits = limits
        self._quotas = QuotaReader(
            metastudio, ttl=settings.quota_cache_ttl, timeout=settings.quota_timeout
        )
        self._policies = policies

    def card_channel(self, origin_channel: str) -> str:
        return self._settings.approval_channel or origin_channel

    async def may_submit(self, principal: Principal, channel_id: str) -> None:
        """Raise ``PermissionDenied`` unless ``principal`` may ask for submits here."""
        await self._permissions.require(principal, Action.submit, channel_id)

    async def authorize_submit(self, intent: SubmitIntent) -> None:
        await self.may_submit(intent.principal, intent.channel_id)

    async def check_job(self, intent: SubmitIntent) -> TrainingJob:
        """The job, if it may be asked for: raise ``JobNotReady`` when its state takes no
        submit, ``SubmitBlocked`` when a setting refuses it."""
        job = await self._metastudio.show_job(intent.job_id, intent.app_user_id)
        if job.state not in SUBMITTABLE_STATES:
            raise JobNotReady(job)
        found = Readiness.of(job)
        authorization = self._settings.block_without_authorization and not found.authorization
        assessment = self._settings.block_failed_assessment and bool(found.failed_checks)
        if authorization or assessment:
            raise SubmitBlocked(job, found, authorization=authorization, assessment=assessment)
        return job

    async def readiness(self, job: TrainingJob) -> Readiness:
        """The job's risks, with the trainings left of its type when the quota read (cached,
        time-boxed) answers."""
        quotas = await self._quotas.read()
        return Readiness.of(job, quotas, quota_unread=quotas is None)

    async def training_quotas(self, principal: Principal) -> TrainingQuotas | None:
        """The quota table, for anyone holding a role (``NoRoleHeld`` otherwise); None when
        MetaStudio did not answer in time."""
        if not await self._permissions.roles(principal):
            raise NoRoleHeld(await self._permissions.admins(principal.tenant))
        return await self._quotas.read()

    def dry_run(self, intent: SubmitIntent) -> PreparedCall:
        return self._metastudio.describe_commit(intent.job_id, intent.request, intent.app_user_id)

    async def submit(self, intent: SubmitIntent) -> Requested:
        """The whole request: check the role and the job, hold the job (one open request
        per job and workspace, within the requester's limits), post the card, and only
        then store the request (pending, or auto-approved and enqueued when approval is
        off). A request never exists without its card: if Slack refuses the card, nothing
        is stored (``CardNotPosted``); if the request can't be stored, the card goes."""
        await self.authorize_submit(intent)
        job = await self.check_job(intent)
        required = await self._policies.required_approvals(
            intent.principal.tenant, intent.channel_id
        )
        card_channel = self.card_channel(intent.channel_id)
        language = await self._policies.channel_language(intent.principal.tenant, card_channel)
        request = self._approvals.draft(
            tenant=intent.principal.tenant,
            team_id=intent.team_id,
            enterprise_id=intent.enterprise_id,
            requester=intent.principal.user,
            origin_channel=intent.channel_id,
            card_channel=card_channel,
            job_id=intent.job_id,
            body=intent.request.body(),
            app_user_id=intent.app_user_id,
            auto_approve=not self._settings.require_approval,
            required_approvals=required,
            language=language,
            job_state=str(job.state),
            job_reject_times=job.reject_times,
            job_updated=job.lastupdate_time,
        )
        readiness = await self.readiness(job)
        try:
            await self._approvals.reserve(request, self._limits)
        except StoreUnavailable:
            # The reservation may have been taken with its reply lost: give it back, so the
            # next try is not told a card is on its way (it lapses by itself otherwise).
            with contextlib.suppress(StoreUnavailable):
                await self._approvals.unreserve(request)
            raise
        try:
            channel, ts = await self._cards.post_card(request, readiness)
        except BaseException:
            # Unstored, the reservation also lapses by itself after its hold.
            with contextlib.suppress(StoreUnavailable):
                await self._approvals.unreserve(request)
            raise
        try:
            stored = await self._approvals.create(request, card_channel=channel, card_ts=ts)
        except StoreUnavailable:
            # The script may have run with its reply lost: the card goes only when a read
            # shows the request is not there. A card without a request says so when
            # clicked; a request without its card is what must never be.
            try:
                found = await self._approvals.get(request.id)
            except StoreUnavailable:
                raise RequestUnconfirmed(channel, ts) from None
            if found is None:
                await self._cards.withdraw_card(channel, ts)
                raise
            stored = found
        except BaseException:
            await self._cards.withdraw_card(channel, ts)
            raise
        with contextlib.suppress(StoreUnavailable):
            # Only saves the notifier an update of a card that is already right.
            await self._approvals.set_shown_render(stored.id, stored.render_key)
        if stored.status == "auto_approved":
            await self._enqueue(stored.id)
        return Requested(request=stored, job=job)

    async def _enqueue(self, request_id: str, *, defer: float | None = None) -> None:
        # The decision is already stored; a failed enqueue must not undo it or tell the user
        # it failed. The worker's sweep re-enqueues every active request without a job.
        try:
            await self._queue.enqueue_tracking(request_id, defer=defer)
        except (StoreUnavailable, OSError, RedisError) as error:
            log.warning(
                "request %s: enqueue failed (%s); the sweep will pick it up",
                request_id,
                type(error).__name__,
            )

    async def may_decide(
        self, principal: Principal, channel_id: str, request_id: str
    ) -> DecisionOutcome | None:
        """Before a reject form opens: check the approver role (raising ``PermissionDenied``)
        and that the request is this workspace's, clicked in its card's channel. ``None``
        when the form may open, else the outcome ``decide`` would give. ``decide`` checks
        all of it again, atomically."""
        await self._permissions.require(principal, Action.approve, channel_id)
        request = await self._approvals.get(request_id)
        if request is None:
            return DecisionOutcome.NOT_FOUND
        if request.tenant != principal.tenant:
            return DecisionOutcome.WRONG_WORKSPACE
        if request.card_channel != channel_id:
            return DecisionOutcome.WRONG_CHANNEL
        return None

    async def decide(
        self,
        principal: Principal,
        channel_id: str,
        request_id: str,
        payload_hash: str,
        *,
        approve: bool,
        reason: str | None = None,
    ) -> Decision:
        """Check the approver role, then make the one atomic decision (which also checks
        that the click came from the request's workspace and its card's channel); enqueue
        on approval."""
        await self._permissions.require(principal, Action.approve, channel_id)
        try:
            decision = await self._approvals.decide(
                request_id,
                payload_hash=payload_hash,
                actor=principal.user,
                tenant=principal.tenant,
                channel=channel_id,
                approve=approve,
                reason=reason,
            )
        except NotReplicated:
            # The decision is on the primary and may hold: its step carries it on if it does
            # (and finds the request pending, doing nothing, if it was lost).
            await self._enqueue(request_id, defer=FOLLOW_UP_DEFER)
            raise
        if decision.request is None:
            return decision
        if decision.outcome == DecisionOutcome.APPROVED:
            await self._enqueue(decision.request.id)
        elif decision.outcome in (DecisionOutcome.REJECTED, DecisionOutcome.EXPIRED):
            # The web process updates the card and the thread right after this; should it die
            # first, the worker's job does it (a no-op when it finds everything posted).
            await self._enqueue(decision.request.id, defer=FOLLOW_UP_DEFER)
        return decision
