"""What the bot posts about a request after the click: the card, kept current, and the
thread replies for each outcome, each posted once.

Which replies are due is derived from the request's status and per-reply markers in Redis,
so a reply that failed to post (Slack 429, ``ok: false``) is posted by the next attempt,
and one that did post is never posted again.

The web process (right after a click) and the worker (after each step) both flush the same
request. A lease in Redis lets one of them at a time update the card and post replies: the
holder re-reads the request before each round and gives the lease back only if nothing
changed meanwhile, so an older rendering never lands on the card after a newer one and two
processes never post the same reply. Whoever finds the lease taken gets ``NotifyBusy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import AFTER_AUTO_APPROVAL, ApprovalRequest, ApprovalStatus, ApprovalStore
from bot.i18n import _, speaking
from bot.metastudio import (
    CommitJobRequest,
    MetaStudioClient,
    MetaStudioError,
    OperationLogList,
    TrainingJob,
)
from bot.metastudio.errors import credentials_hint
from bot.readiness import Readiness
from bot.redis import StoreUnavailable
from bot.slack import blocks, messages
from bot.slack.blocks import ApprovalCard, OutgoingMessage
from bot.submissions import CardNotPosted

log = logging.getLogger("bot.slack.notify")

S = ApprovalStatus
DECISION = "decision"
HELD = "held"
# Renewed before each Slack call, which must then end (its retries included) this long
# before the lease would run out: a call still running then is cut off and retried later,
# so no other process can take the lease and post the same reply meanwhile.
LEASE_MS = 20_000
LEASE_MARGIN_S = 1.0
# How long a card update waits for the job's risks before it goes without them.
READ_TIMEOUT = 3.0

# The thread replies a status implies, in the order they happened.
DUE_REPLIES: dict[ApprovalStatus, tuple[ApprovalStatus, ...]] = {
    S.SUBMITTED: (S.SUBMITTED,),
    S.UNDER_REVIEW: (S.SUBMITTED,),
    S.PASSED: (S.SUBMITTED, S.PASSED),
    S.FAILED: (S.SUBMITTED, S.FAILED),
    S.SUCCEEDED: (S.SUBMITTED, S.PASSED, S.SUCCEEDED),
    S.TRAINING_FAILED: (S.SUBMITTED, S.PASSED, S.TRAINING_FAILED),
    S.SUBMIT_FAILED: (S.SUBMIT_FAILED,),
    S.EXPIRED: (S.EXPIRED,),
}


@dataclass(slots=True)
class _Lease:
    """A held notify lease: whose, its token, and when it was taken or last renewed."""

    request_id: str
    token: str
    since: float


class NotifyBusy(Exception):
    """Another process holds the request's notify lease; it (or a retry) posts what is due."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"request {request_id}: card and thread are being updated elsewhere")


# Statuses in which a submit may be held for refused credentials; the reply saying so stays
# due (once) for the rest of the request's life, so it is never posted a second time.
_HELD_REPLY_AFTER = frozenset(
    {
        S.APPROVED,
        S.AUTO_APPROVED,
        S.SUBMITTING,
        S.SUBMITTED,
        S.UNDER_REVIEW,
        S.PASSED,
        S.FAILED,
        S.SUCCEEDED,
        S.TRAINING_FAILED,
        S.SUBMIT_FAILED,
    }
)


def due_markers(request: ApprovalRequest) -> list[str]:
    """The replies ``request`` implies, as markers, in thread order."""
    due = [DECISION] if request.decided_by else []
    if request.held and request.status in _HELD_REPLY_AFTER:
        due.append(HELD)
    due += [str(status) for status in DUE_REPLIES.get(request.status, ())]
    return due


def card_message(
    request: ApprovalRequest, *, note: str | None = None, readiness: Readiness | None = None
) -> OutgoingMessage:
    """The card of ``request``; ``readiness`` is the job's risks as just read (None when
    MetaStudio did not answer: the card then says so). In the request's language."""
    with speaking(request.language):
        return _card(request, note, readiness)


def _card(
    request: ApprovalRequest, note: str | None, readiness: Readiness | None
) -> OutgoingMessage:
    if note is None and request.held:
        note = messages.held_note(request.held)
    if note is None and request.decided_by is None and request.status in AFTER_AUTO_APPROVAL:
        note = messages.auto_approved()
    card = ApprovalCard(
        request_id=request.id,
        requester_id=request.requester,
        job_id=request.job_id,
        request=CommitJobRequest(**request.body),
        payload_hash=request.short_hash,
        status=str(request.status),
        job_name=request.body.get("voice_name"),
        job_state=request.job_state,
        decided_by=request.decided_by,
        reason=request.reason or _stored(request.submit_error) or _stored(request.outcome),
        expires_at=request.expires_at if request.status == S.PENDING else None,
        note=note,
        readiness=readiness,
        required_approvals=request.required_approvals,
        approvers=request.approver_ids,
    )
    return blocks.approval_card(card)


def addressed(message: OutgoingMessage, user_id: str) -> OutgoingMessage:
    """The same message, its first section starting with a mention of ``user_id``."""
    out = copy.deepcopy(message.blocks)
    for block in out:
        if block.get("type") == "section" and isinstance(block.get("text"), dict):
            block["text"]["text"] = f"{messages.mention(user_id)} {block['text']['text']}"
            break
    return OutgoingMessage(text=f"{messages.mention(user_id)} {message.text}", blocks=out)


def _stored(text: str | None) -> str | None:
    """A text stored on the request, in the language spoken now: the bot's own sentences
    are stored in English (their message ids, see ``bot.tracking``); MetaStudio's text has
    no translation and stays as MetaStudio wrote it."""
    return _(text) if text else text


def _admin_reason(logs: OperationLogList) -> str | None:
    for entry in reversed(logs.operations):
        info = entry.external_info
        if entry.action == "AUDIT_NOT_PASS" and info is not None:
            return info.admin_audit_failure_reason or info.algorithm_failure_reason
    return None


class Notifier:
    def __init__(
        self,
        client: AsyncWebClient,
        approvals: ApprovalStore,
        metastudio: MetaStudioClient,
        *,
        lease_ms: int = LEASE_MS,
    ) -> None:
        self._client = client
        self._approvals = approvals
        self._metastudio = metastudio
        self._lease_ms = lease_ms

    async def post_card(
        self, request: ApprovalRequest, readiness: Readiness | None = None
    ) -> tuple[str, str]:
        """Post the approval card of a request not stored yet; its (channel, ts)."""
        try:
            posted = await self._client.chat_postMessage(
                channel=request.card_channel,
                unfurl_links=False,
                unfurl_media=False,
                **card_message(request, readiness=readiness).as_kwargs(),
            )
        except SlackApiError as error:
            raise CardNotPosted(
                request.card_channel,
                str(error.response.get("error") or "unknown_error"),
                configured=request.card_channel != request.origin_channel,
            ) from None
        except (SlackClientError, aiohttp.ClientError, OSError):  # OSError: TimeoutError too
            # No answer: the card may or may not be there. Were it posted, it names a
            # request that does not exist, and a click on it says so.
            raise CardNotPosted(request.card_channel, "no_answer") from None
        return str(posted["channel"]), str(posted["ts"])

    async def withdraw_card(self, channel: str, ts: str) -> None:
        try:
            await self._client.chat_delete(channel=channel, ts=ts)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, OSError):
            log.warning("could not remove the card %s in %s of a request not stored", ts, channel)

    async def update_card(
        self, request: ApprovalRequest, *, note: str | None = None, job: TrainingJob | None = None
    ) -> None:
        if request.card_ts is None:
            return
        card = card_message(request, note=note, readiness=await self._readiness(request, job))
        await self._client.chat_update(
            channel=request.card_channel, ts=request.card_ts, **card.as_kwargs()
        )

    async def _readiness(
        self, request: ApprovalRequest, job: TrainingJob | None
    ) -> Readiness | None:
        """The job's risks for a card update. They are for the approver, so only a card
        still waiting for a decision shows them; nothing of them is stored on the request,
        so such a card reads the job again (or takes the caller's read). A decided card
        makes no MetaStudio call for them: its calls would count against the bot's
        credentials while a submit is held. None when not shown or not read in time."""
        if request.status != S.PENDING:
            return None
        if job is None:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    job = await self._metastudio.show_job(request.job_id, request.app_user_id)
            except (TimeoutError, MetaStudioError) as error:
                log.warning(
                    "request %s: job not read for its card (%s)", request.id, type(error).__name__
                )
                return None
        return Readiness.of(job)

    async def reply(self, request: ApprovalRequest, message: OutgoingMessage) -> None:
        await self._client.chat_postMessage(
            channel=request.card_channel,
            thread_ts=request.card_ts,
            unfurl_links=False,
            **message.as_kwargs(),
        )

    async def settled(self, request: ApprovalRequest) -> bool:
        """True when the card shows ``request`` and every reply it implies is posted."""
        if request.card_ts is None:
            return True
        card, done = await self._approvals.shown(request.id, due_markers(request))
        return card == request.render_key and all(done.values())

    async def flush(self, request: ApprovalRequest, job: TrainingJob | None = None) -> int:
        """Bring the card and the thread up to the request's newest state; returns the number
        of replies posted. ``job`` is the job as just read, if the caller has it.

        Raises ``NotifyBusy`` when another process is at it, and whatever Slack, Redis or
        MetaStudio raised; what was not posted stays due for the next flush.
        """
        if await self.settled(request):
            return 0
        lease = _Lease(request.id, secrets.token_hex(8), time.monotonic())
        if not await self._approvals.notify_lease(request.id, lease.token, self._lease_ms):
            raise NotifyBusy(request.id)
        try:
            return await self._catch_up(lease, job)
        except BaseException:
            # Redis may be what failed; then the lease runs out on its own.
            with contextlib.suppress(StoreUnavailable):
                await self._approvals.notify_release(request.id, lease.token, None)
            raise

    @contextlib.asynccontextmanager
    async def _holding(self, lease: _Lease) -> AsyncIterator[None]:
        """Run one Slack call under the lease: renewed unless it was taken or renewed within
        the last quarter of its length, and the call cut off before the lease runs out."""
        now = time.monotonic()
        if now - lease.since >= self._lease_ms / 1000 / 4:
            if not await self._approvals.notify_renew(
                lease.request_id, lease.token, self._lease_ms
            ):
                raise NotifyBusy(lease.request_id)
            lease.since = now
        left = lease.since + self._lease_ms / 1000 - LEASE_MARGIN_S - time.monotonic()
        async with asyncio.timeout(max(left, 0.0)):
            yield

    async def _catch_up(self, lease: _Lease, job: TrainingJob | None) -> int:
        request_id, token = lease.request_id, lease.token
        posted = 0
        while True:
            current = await self._approvals.get(request_id)
            if current is None or current.card_ts is None:
                # Nothing to update or reply under; the card may be posted later by the web.
                await self._approvals.notify_release(request_id, token, None)
                return posted
            due = due_markers(current)
            card, done = await self._approvals.shown(request_id, due)
            if card != current.render_key:
                async with self._holding(lease):
                    await self.update_card(current, job=job)
                await self._approvals.set_shown_render(request_id, current.render_key)
            seen = job if job is not None and str(job.state) == current.job_state else None
            for marker in due:
                if done[marker]:
                    continue
                message = await self._message_for(current, marker, seen)
                async with self._holding(lease):
                    await self.reply(current, message)
                await self._approvals.mark(request_id, marker)
                posted += 1
            released = await self._approvals.notify_release(request_id, token, current.render_key)
            if released == 1:
                return posted
            if released == -1:
                raise NotifyBusy(request_id)

    async def _message_for(
        self, request: ApprovalRequest, marker: str, job: TrainingJob | None
    ) -> OutgoingMessage:
        with speaking(request.language):
            return await self._in_language(request, marker, job)

    async def _in_language(
        self, request: ApprovalRequest, marker: str, job: TrainingJob | None
    ) -> OutgoingMessage:
        if marker == DECISION:
            return decision_reply(request)
        if marker == HELD:
            kind = request.held or ""
            text = messages.submit_held(request.job_id, kind, credentials_hint(kind))
            return addressed(blocks.text_message(text), request.requester)
        status = ApprovalStatus(marker)
        return addressed(await self._reply_for(request, status, job), request.requester)

    async def _reply_for(
        self, request: ApprovalRequest, status: ApprovalStatus, job: TrainingJob | None
    ) -> OutgoingMessage:
        name = request.body.get("voice_name")
        if status == S.SUBMITTED:
            return blocks.text_message(messages.submit_accepted(request.job_id))
        if status == S.PASSED:
            return blocks.review_passed_message(request.job_id, name, request.job_state)
        if status == S.FAILED:
            audit = await self._metastudio.audit_result(request.job_id)
            logs = await self._metastudio.operation_logs(request.job_id)
            reject_times = job.reject_times if job else None
            return blocks.review_failed_message(
                request.job_id,
                name,
                audit,
                reason=_admin_reason(logs) or _stored(request.outcome),
                reject_times=reject_times,
            )
        if status in (S.SUCCEEDED, S.TRAINING_FAILED):
            current = job or await self._metastudio.show_job(request.job_id, request.app_user_id)
            return blocks.training_outcome_message(current)
        if status == S.SUBMIT_FAILED:
            code, sep, text = (request.submit_error or "").partition(": ")
            if not sep:
                # No MetaStudio code: the bot's own sentence.
                code, text = "", _stored(code) or ""
            return blocks.submit_failed_message(
                request.job_id, code or None, text or None, _stored(request.submit_hint)
            )
        return blocks.text_message(messages.request_expired(request.id))


def decision_reply(request: ApprovalRequest) -> OutgoingMessage:
    """The thread reply for an approve or reject click, in the request's language."""
    with speaking(request.language):
        return _decision(request)


def _decision(request: ApprovalRequest) -> OutgoingMessage:
    decider = request.decided_by or "?"
    if request.status == S.REJECTED:
        # The reason is the approver's own words: shown as typed, below the sentence.
        message = blocks.quoting(
            messages.rejected_by(decider, None),
            request.reason,
            messages.rejected_by(decider, request.reason),
        )
    else:
        approvers = request.approver_ids or (decider,)
        message = blocks.text_message(messages.approved_by_all(approvers))
    return addressed(message, request.requester)
