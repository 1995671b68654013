"""The approval buttons and the reject form: one atomic decision per request, then the card
and the thread brought up to date (or left to the worker when Slack fails).

A click that decides nothing (already decided, expired, a stale card, another workspace or
channel, one's own request) is told why, privately.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalRequest, Decision, DecisionOutcome
from bot.durability import NotReplicated
from bot.metrics import Metrics
from bot.permissions import PermissionStoreUnavailable, Principal
from bot.redis import StoreUnavailable
from bot.slack import blocks, messages, modal
from bot.slack.listeners.replying import (
    Ack,
    Replies,
    Reply,
    body_channel,
    body_principal,
    metadata,
)
from bot.slack.notify import Notifier, NotifyBusy
from bot.submissions import SubmissionService

log = logging.getLogger("bot.slack")

# Called after a click changed a request (decided it, or counted an approval): the Home tab
# of whoever it concerns is rebuilt.
AfterDecision = Callable[[Principal, ApprovalRequest], Awaitable[None]]


def refusal_text(outcome: DecisionOutcome, request_id: str, request: ApprovalRequest | None) -> str:
    """Why a click decided nothing."""
    if outcome == DecisionOutcome.EXPIRED:
        return messages.request_expired(request_id)
    if outcome == DecisionOutcome.SELF_APPROVAL:
        return messages.self_approval_refused()
    if outcome == DecisionOutcome.HASH_MISMATCH:
        return messages.payload_changed()
    if outcome == DecisionOutcome.WRONG_WORKSPACE:
        return messages.wrong_workspace()
    if outcome == DecisionOutcome.WRONG_CHANNEL:
        return messages.wrong_channel(request.card_channel if request is not None else None)
    if outcome == DecisionOutcome.COUNTED and request is not None:
        return messages.approval_counted(request.approver_ids, request.required_approvals)
    if outcome == DecisionOutcome.ALREADY_APPROVED and request is not None:
        return messages.already_approved(request.required_approvals)
    if outcome == DecisionOutcome.ALREADY_DECIDED and request is not None:
        return messages.already_decided(str(request.status), request.decided_by)
    return messages.request_not_found(request_id)


class ApprovalButtons:
    def __init__(
        self,
        submissions: SubmissionService,
        notifier: Notifier,
        replies: Replies,
        metrics: Metrics,
    ) -> None:
        self._submissions = submissions
        self._notifier = notifier
        self._replies = replies
        self._metrics = metrics
        self._after: AfterDecision | None = None

    def set_after_decision(self, after: AfterDecision) -> None:
        self._after = after

    def register(self, app: AsyncApp) -> None:
        app.action(blocks.ACTION_APPROVE)(self.on_approve)
        app.action(blocks.ACTION_REJECT)(self.on_reject)
        app.view(modal.REJECT_CALLBACK_ID)(self.on_reject_form)

    async def on_approve(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        if not await self._replies.first_of(body):
            return
        await self.decide(
            body, body_channel(body), str(action.get("value", "")), approve=True, reason=None
        )

    async def on_reject(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """Open the reject form, once the clicker may decide the request from here."""
        await ack()
        if not await self._replies.first_of(body):
            return
        await self.open_reject_form(body, body_channel(body), str(action.get("value", "")), client)

    async def _clicked(
        self, body: dict[str, Any], channel: str, value: str
    ) -> tuple[Principal, Reply, tuple[str, str]] | None:
        """Who clicked, how to answer them, and the (request id, payload hash) the button
        names; None, having said why, when the payload names no workspace or the button
        value is not one of ours."""
        try:
            principal = body_principal(body)
        except ValueError:
            await self._replies.unknown_caller(body, channel)
            return None
        reply = self._replies.ephemeral_to(channel, principal.user)
        parsed = blocks.parse_approval_value(value)
        if parsed is None:
            await reply(blocks.text_message(messages.payload_changed()))
            return None
        return principal, reply, parsed

    async def open_reject_form(
        self, body: dict[str, Any], channel: str, value: str, client: AsyncWebClient
    ) -> None:
        """Open the reject form for a click on ``value`` counted as made in ``channel``
        (call it once per delivery)."""
        clicked = await self._clicked(body, channel, value)
        if clicked is None:
            return
        principal, reply, parsed = clicked

        async def open_form() -> None:
            refused = await self._submissions.may_decide(principal, channel, parsed[0])
            if refused is not None:
                await reply(blocks.text_message(refusal_text(refused, parsed[0], None)))
                return
            # The form's submission is checked against this: who opened it, for which
            # request, from which channel and workspace.
            meta = json.dumps(
                {
                    "value": value,
                    "channel": channel,
                    "user": principal.user,
                    "tenant": principal.tenant,
                }
            )
            await client.views_open(
                trigger_id=body["trigger_id"], view=modal.reject_modal(private_metadata=meta)
            )

        await self._replies.guard(reply, open_form(), channel=channel)

    async def on_reject_form(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        if not await self._replies.first_of(body):
            return
        meta = metadata(view.get("private_metadata"))
        channel = str(meta.get("channel") or "")
        try:
            principal = body_principal(body)
        except ValueError:
            await self._replies.unknown_caller(body, channel)
            return
        if (meta.get("user"), meta.get("tenant")) != (principal.user, principal.tenant):
            # Not the form this user opened: decide nothing, and say so.
            log.warning("reject form from %s does not match its metadata", principal.user)
            await self._replies.ephemeral(channel, principal.user, messages.payload_changed())
            return
        reason = modal.reject_reason(view.get("state", {}).get("values", {}))
        await self.decide(body, channel, str(meta.get("value", "")), approve=False, reason=reason)

    async def decide(
        self,
        body: dict[str, Any],
        channel: str,
        value: str,
        *,
        approve: bool,
        reason: str | None,
    ) -> None:
        clicked = await self._clicked(body, channel, value)
        if clicked is None:
            return
        principal, reply, parsed = clicked
        request_id, payload_hash = parsed

        async def decide() -> None:
            try:
                decision = await self._submissions.decide(
                    principal, channel, request_id, payload_hash, approve=approve, reason=reason
                )
            except StoreUnavailable as error:
                if isinstance(error, PermissionStoreUnavailable | NotReplicated):
                    raise
                # The decision's reply was lost: it may or may not have been made.
                await reply(blocks.text_message(messages.decision_unconfirmed()))
                return
            self._metrics.decisions.labels(str(decision.outcome)).inc()
            await self._after_decision(decision, request_id, principal, channel)
            changed = decision.decided or decision.outcome == DecisionOutcome.COUNTED
            if changed and decision.request is not None and self._after is not None:
                await self._after(principal, decision.request)

        await self._replies.guard(reply, decide(), channel=channel)

    async def _after_decision(
        self, decision: Decision, request_id: str, principal: Principal, channel: str
    ) -> None:
        request = decision.request
        if decision.decided and request is not None:
            await self._flush_or_defer(request)
            return
        if decision.outcome in (DecisionOutcome.EXPIRED, DecisionOutcome.COUNTED) and (
            request is not None
        ):
            await self._flush_or_defer(request)
        text = refusal_text(decision.outcome, request_id, request)
        await self._replies.ephemeral(channel, principal.user, text)

    async def _flush_or_defer(self, request: ApprovalRequest) -> None:
        """Update the card and post the decision now; if Slack fails, the worker retries."""
        try:
            await self._notifier.flush(request)
        except NotifyBusy:
            log.debug("request %s: another process is posting for it", request.id)
        except Exception:  # any Slack or Redis failure: the worker posts it later
            # The decision already enqueued the request's tracking job, which posts it.
            log.warning("request %s: Slack update failed, left to the worker", request.id)
