"""What the bot posts about a request after the click: the card, kept current, and the
thread replies for each outcome, each posted once.

Which replies are due is derived from the request's status and per-status markers in
Redis, so a reply that failed to post (Slack 429, ``ok: false``) is posted by the next
attempt, and one that did post is never posted again.
"""

from __future__ import annotations

import copy
import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalRequest, ApprovalStatus, ApprovalStore
from bot.metastudio import CommitJobRequest, MetaStudioClient, OperationLogList, TrainingJob
from bot.slack import blocks, messages
from bot.slack.blocks import ApprovalCard, Message

log = logging.getLogger("bot.slack.notify")

S = ApprovalStatus
DECISION = "posted:decision"

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


def card_message(request: ApprovalRequest, *, note: str | None = None) -> Message:
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
        reason=request.reason or request.submit_error or request.outcome,
        expires_at=request.expires_at if request.status == S.PENDING else None,
        note=note,
    )
    return blocks.approval_card(card)


def addressed(message: Message, user_id: str) -> Message:
    """The same message, its first section starting with a mention of ``user_id``."""
    out = copy.deepcopy(message.blocks)
    for block in out:
        if block.get("type") == "section" and isinstance(block.get("text"), dict):
            block["text"]["text"] = f"{messages.mention(user_id)} {block['text']['text']}"
            break
    return Message(text=f"{messages.mention(user_id)} {message.text}", blocks=out)


def _admin_reason(logs: OperationLogList) -> str | None:
    for entry in reversed(logs.operations):
        info = entry.external_info
        if entry.action == "AUDIT_NOT_PASS" and info is not None:
            return info.admin_audit_failure_reason or info.algorithm_failure_reason
    return None


class Notifier:
    def __init__(
        self, client: AsyncWebClient, approvals: ApprovalStore, metastudio: MetaStudioClient
    ) -> None:
        self._client = client
        self._approvals = approvals
        self._metastudio = metastudio

    async def update_card(self, request: ApprovalRequest, *, note: str | None = None) -> None:
        if request.card_ts is None:
            return
        card = card_message(request, note=note)
        await self._client.chat_update(channel=request.card_channel, ts=request.card_ts,
                                       **card.as_kwargs())

    async def reply(self, request: ApprovalRequest, message: Message) -> None:
        await self._client.chat_postMessage(
            channel=request.card_channel,
            thread_ts=request.card_ts,
            unfurl_links=False,
            **message.as_kwargs(),
        )

    async def flush(self, request: ApprovalRequest, job: TrainingJob | None = None) -> int:
        """Post every reply the status implies that has not been posted; update the card."""
        posted = 0
        card_marker = f"card:{request.status}:{request.version}"
        if await self._approvals.claim_once(request.id, card_marker):
            try:
                await self.update_card(request)
            except Exception:
                await self._approvals.release_once(request.id, card_marker)
                raise
        if request.decided_by and not await self._approvals.has_marker(request.id, DECISION):
            await self.reply(request, decision_reply(request))
            await self._approvals.claim_once(request.id, DECISION)
            posted += 1
        for status in DUE_REPLIES.get(request.status, ()):
            marker = f"posted:{status}"
            if await self._approvals.has_marker(request.id, marker):
                continue
            message = await self._reply_for(request, status, job)
            await self.reply(request, addressed(message, request.requester))
            await self._approvals.claim_once(request.id, marker)
            posted += 1
        return posted

    async def _reply_for(
        self, request: ApprovalRequest, status: ApprovalStatus, job: TrainingJob | None
    ) -> Message:
        name = request.body.get("voice_name")
        if status == S.SUBMITTED:
            return blocks.text_message(messages.submit_accepted(request.job_id))
        if status == S.PASSED:
            return blocks.review_passed_message(request.job_id, name, request.job_state)
        if status == S.FAILED:
            if job is not None and job.category == "failed":
                return blocks.training_outcome_message(job)
            audit = await self._metastudio.audit_result(request.job_id)
            logs = await self._metastudio.operation_logs(request.job_id)
            reject_times = job.reject_times if job else None
            return blocks.review_failed_message(
                request.job_id, name, audit, reason=_admin_reason(logs) or request.outcome,
                reject_times=reject_times,
            )
        if status in (S.SUCCEEDED, S.TRAINING_FAILED):
            current = job or await self._metastudio.show_job(request.job_id, request.app_user_id)
            return blocks.training_outcome_message(current)
        if status == S.SUBMIT_FAILED:
            code, _, text = (request.submit_error or "").partition(": ")
            return blocks.submit_failed_message(request.job_id, code or None, text or None, None)
        return blocks.text_message(messages.request_expired(request.id))


def decision_reply(request: ApprovalRequest) -> Message:
    """The thread reply for an approve or reject click."""
    if request.status == S.REJECTED:
        text = messages.rejected_by(request.decided_by or "?", request.reason)
    else:
        text = messages.approved_by(request.decided_by or "?")
    return addressed(blocks.text_message(text), request.requester)
