"""Bolt listeners for ``/voice``, the submit modal, the job picker and the approval buttons.

Each listener acks first (Slack allows 3 s), parses into a model, calls a service and
renders the answer. Failures of any kind go through ``replies.error_text``, so a user always
gets a specific sentence, never silence or a stack trace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalRequest, Decision, DecisionOutcome, OpenRequestExists
from bot.metastudio import SUBMITTABLE_STATES, JobNotFound, MetaStudioError
from bot.permissions import Action, PermissionDenied, Principal, Role
from bot.redis import StoreUnavailable
from bot.slack import blocks, messages, modal
from bot.slack.blocks import Message
from bot.slack.commands import (
    SUBCOMMAND_NAMES,
    Audit,
    Command,
    Grant,
    Help,
    ParseFailure,
    Revoke,
    Roles,
    Status,
    Submit,
    SubmitForm,
    parse,
    suggest,
)
from bot.slack.notify import NotifyBusy
from bot.slack.replies import denial_text, error_text
from bot.submissions import JobNotReady, SubmitIntent

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger("bot.slack")

Ack = Callable[..., Awaitable[None]]
Reply = Callable[[Message], Awaitable[None]]

# The job picker must answer inside Slack's 3 s; MetaStudio gets what is left of it.
OPTIONS_BUDGET = 2.0
# A modal submission checks the job before closing, so problems show on the field.
MODAL_CHECK_BUDGET = 2.0
ERROR_OPTION_VALUE = "__unavailable__"
# Acks share the event loop with the work that follows them. Capping that work keeps a burst
# of commands from pushing acks past Slack's 3 s (the backlog drains right after), and it is
# no loss: Slack's own rate limits (chat.postMessage about 1 a second a channel) cap it anyway.
# Opening a modal is not capped: its trigger_id expires 3 s after the command.
AFTER_ACK_CONCURRENCY = 8

def _usage_text(held: set[str] | None, admins: list[str]) -> str:
    usage = messages.usage_text(held, admins)
    return usage if held is not None else usage + "\n" + messages.permission_store_unavailable()


def _principal(enterprise_id: str | None, team_id: str | None, user_id: str) -> Principal:
    return Principal.from_ids(enterprise_id or None, team_id or None, user_id)


def _body_principal(body: Mapping[str, Any]) -> Principal:
    user = body.get("user") or {}
    team = body.get("team") or {}
    enterprise = body.get("enterprise") or {}
    return _principal(
        enterprise.get("id") if isinstance(enterprise, Mapping) else None,
        (team.get("id") if isinstance(team, Mapping) else None) or user.get("team_id"),
        str(user.get("id", "")),
    )


class Listeners:
    def __init__(self, services: Services) -> None:
        self.s = services
        self._after_ack_slots = asyncio.Semaphore(AFTER_ACK_CONCURRENCY)

    def register(self, app: AsyncApp) -> None:
        app.command("/voice")(self.on_command)
        app.view(modal.CALLBACK_ID)(self.on_submit_modal)
        app.view(modal.REJECT_CALLBACK_ID)(self.on_reject_modal)
        app.options(modal.ACTION_JOB)(self.on_job_options)
        app.action(blocks.ACTION_APPROVE)(self.on_approve)
        app.action(blocks.ACTION_REJECT)(self.on_reject)

    # -- /voice ------------------------------------------------------------------------

    async def on_command(
        self, ack: Ack, command: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        started = time.perf_counter()
        parsed = parse(str(command.get("text") or ""))
        name = (parsed.subcommand or "unknown") if isinstance(parsed, ParseFailure) else (
            parsed.subcommand
        )
        channel = str(command.get("channel_id") or "")
        try:
            principal = _principal(
                command.get("enterprise_id"), command.get("team_id"), str(command["user_id"])
            )
        except (KeyError, ValueError):
            await ack(text=messages.unknown_caller())
            self._observe_ack(started)
            return

        async def reply(message: Message) -> None:
            await self._respond(respond, client, channel, principal.user, message)

        # Argument problems of a known subcommand need no I/O: they go in the ack itself.
        if isinstance(parsed, ParseFailure) and parsed.subcommand is not None:
            self.s.metrics.commands.labels(name, "invalid").inc()
            await ack(text=parsed.text())
            self._observe_ack(started)
            return
        # Everything else reads Redis or MetaStudio, so it is answered after the ack.
        await ack()
        self._observe_ack(started)
        if isinstance(parsed, ParseFailure):
            self.s.metrics.commands.labels(name, "invalid").inc()
            await self._after_ack(
                self._guard(reply, channel, "", self._unreadable(principal, parsed, reply))
            )
            return
        if isinstance(parsed, SubmitForm):
            await self._guard(reply, channel, "", self._open_submit_modal(
                principal, channel, command, parsed.dry_run, client
            ))
            self.s.metrics.commands.labels(name, "ok").inc()
            return
        job_id = getattr(parsed, "job_id", None) or ""
        await self._after_ack(self._guard(reply, channel, job_id, self._dispatch(
            parsed, principal, command, reply
        )))
        self.s.metrics.commands.labels(name, "ok").inc()

    async def _after_ack(self, work: Awaitable[None]) -> None:
        """Run work that follows an ack, at most ``AFTER_ACK_CONCURRENCY`` at a time."""
        async with self._after_ack_slots:
            await work

    def _observe_ack(self, started: float) -> None:
        self.s.metrics.ack_seconds.labels("command").observe(time.perf_counter() - started)

    async def _respond(
        self, respond: Any, client: AsyncWebClient, channel: str, user: str, message: Message
    ) -> None:
        """Answer through the response_url; if Slack refuses it (expired, used up, or none
        given), as an ephemeral message."""
        try:
            answer = await respond(response_type="ephemeral", **message.as_kwargs())
            failure = None if getattr(answer, "status_code", 200) == 200 else answer.status_code
        except Exception as error:  # any failure here means: try the other way
            failure = type(error).__name__
        if failure is None:
            return
        log.warning("response_url post failed (%s); answering %s with an ephemeral", failure, user)
        await self._ephemeral(client, channel, user, message.text)

    async def _guard(self, reply: Reply, channel: str, job_id: str, work: Awaitable[Any]) -> None:
        try:
            await work
        except Exception as error:  # every failure becomes a sentence for the user
            if isinstance(error, PermissionDenied):
                self.s.metrics.denials.labels(str(error.action)).inc()
            await reply(blocks.text_message(error_text(error, channel_id=channel, job_id=job_id)))

    async def _dispatch(
        self, parsed: Command, principal: Principal, command: Mapping[str, Any], reply: Reply
    ) -> None:
        channel = str(command.get("channel_id") or "")
        if isinstance(parsed, Help):
            await reply(blocks.text_message(await self._usage(principal)))
        elif isinstance(parsed, Submit):
            intent = SubmitIntent(
                principal=principal,
                team_id=command.get("team_id") or None,
                enterprise_id=command.get("enterprise_id") or None,
                channel_id=channel,
                job_id=parsed.job_id,
                request=parsed.request,
            )
            await self._submit(intent, parsed.dry_run, reply)
        elif isinstance(parsed, Status):
            job = await self.s.metastudio.show_job(parsed.job_id)
            await reply(blocks.status_message(job))
        elif isinstance(parsed, Roles):
            await self._roles(principal, channel, parsed.user_id, reply)
        elif isinstance(parsed, Grant | Revoke):
            await self._grant_or_revoke(principal, channel, parsed, reply)
        elif isinstance(parsed, Audit):
            await self.s.permissions.require(principal, Action.manage, channel)
            events = await self.s.audit.read(job_id=parsed.job_id, limit=50)
            await reply(blocks.audit_message(events, job_id=parsed.job_id))

    async def _usage(self, principal: Principal) -> str:
        """Every subcommand, marked with the roles the caller holds and who can grant them."""
        try:
            roles = await self.s.permissions.roles(principal)
            admins = await self.s.permissions.admins(principal.tenant)
        except StoreUnavailable:
            return _usage_text(None, [])
        return _usage_text({str(role) for role in roles}, admins)

    async def _unreadable(self, principal: Principal, failure: ParseFailure, reply: Reply) -> None:
        """No subcommand could be read: say what was wrong, then the usage."""
        if failure.unknown is not None:
            suggestion = suggest(failure.unknown, list(SUBCOMMAND_NAMES))
            problems = [messages.not_a_subcommand(failure.unknown, suggestion)]
        else:
            problems = [p.message for p in failure.problems]
        usage = await self._usage(principal)
        await reply(blocks.text_message(messages.unreadable_with_usage(problems, usage)))

    async def _roles(
        self, principal: Principal, channel: str, user_id: str | None, reply: Reply
    ) -> None:
        if user_id is None or user_id == principal.user:
            own = await self.s.permissions.roles(principal)
            if user_id is not None or Role.admin not in own:
                # Anyone may see their own roles; an admin's bare `roles` lists everyone's.
                await reply(blocks.user_roles_message(principal.user, sorted(map(str, own))))
                return
        await self.s.permissions.require(principal, Action.manage, channel)
        if user_id is not None:
            roles = await self.s.permissions.roles(Principal(principal.tenant, user_id))
            await reply(blocks.user_roles_message(user_id, sorted(str(r) for r in roles)))
            return
        members = {
            str(role): await self.s.permissions.members(principal.tenant, role) for role in Role
        }
        await reply(blocks.roles_message(members))

    async def _grant_or_revoke(
        self, principal: Principal, channel: str, parsed: Grant | Revoke, reply: Reply
    ) -> None:
        role = Role(parsed.role)
        if isinstance(parsed, Grant):
            changed = await self.s.permissions.grant(
                principal, parsed.user_id, role, channel_id=channel
            )
            text = (messages.role_granted if changed else messages.role_already_held)(
                parsed.user_id, str(role)
            )
        else:
            changed = await self.s.permissions.revoke(
                principal, parsed.user_id, role, channel_id=channel
            )
            text = (messages.role_revoked if changed else messages.role_not_held)(
                parsed.user_id, str(role)
            )
        await reply(blocks.text_message(text))

    # -- submit --------------------------------------------------------------------------

    async def _submit(self, intent: SubmitIntent, dry_run: bool, reply: Reply) -> None:
        if dry_run:
            await self.s.submissions.authorize_submit(intent)
            await self.s.submissions.check_job(intent)
            call = self.s.submissions.dry_run(intent)
            await reply(blocks.dry_run_message(call.method, call.url, call.headers, call.body))
            return
        try:
            request = (await self.s.submissions.submit(intent)).request
        except OpenRequestExists as error:
            link = await self._permalink(error.request) if error.request is not None else ""
            text = messages.open_request_exists(intent.job_id, error.request_id, link)
            await reply(blocks.text_message(text))
            return
        # A card in the channel the user typed in is right in front of them; a link is only
        # worth its extra Web API call when the card went to a separate approval channel.
        elsewhere = request.card_channel != intent.channel_id
        link = await self._permalink(request) if elsewhere else ""
        text = messages.approval_requested(request.id, request.card_channel)
        await reply(blocks.text_message(f"{text} {link}".strip()))

    async def _permalink(self, request: ApprovalRequest) -> str:
        if request.card_ts is None:
            return ""
        try:
            found = await self.s.slack.chat_getPermalink(
                channel=request.card_channel, message_ts=request.card_ts
            )
        except Exception:  # the link is a convenience; the card is already posted
            log.warning("no permalink for request %s", request.id)
            return ""
        return f"<{found['permalink']}|Open the approval card>"

    async def _open_submit_modal(
        self,
        principal: Principal,
        channel: str,
        command: Mapping[str, Any],
        dry_run: bool,
        client: AsyncWebClient,
    ) -> None:
        await self.s.permissions.require(principal, Action.submit, channel)
        # The command's response_url answers the requester where the bot is not a member
        # (an ephemeral there would be refused), so the form carries it to its submission.
        metadata = json.dumps(
            {"channel": channel, "team": command.get("team_id"),
             "enterprise": command.get("enterprise_id"),
             "response_url": command.get("response_url")}
        )
        label = messages.MODAL_SUBMIT if self.s.settings.require_approval else (
            messages.MODAL_SUBMIT_DIRECT
        )
        view = modal.submit_modal(
            None, private_metadata=metadata, dry_run=dry_run, submit_label=label
        )
        await client.views_open(trigger_id=command["trigger_id"], view=view)

    async def on_job_options(self, ack: Ack, body: dict[str, Any]) -> None:
        query = str(body.get("value") or "")
        try:
            found = await asyncio.wait_for(
                self.s.metastudio.list_jobs(states=sorted(SUBMITTABLE_STATES), limit=100),
                OPTIONS_BUDGET,
            )
        except (TimeoutError, MetaStudioError):
            await ack(options=[{
                "text": {"type": "plain_text", "text": "MetaStudio is unavailable; try again"},
                "value": ERROR_OPTION_VALUE,
            }])
            return
        # Only submittable jobs, even if MetaStudio ignores the state filter.
        ready = [job for job in found.jobs if job.state in SUBMITTABLE_STATES]
        await ack(options=modal.job_options(ready, query))

    async def on_submit_modal(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        values = view.get("state", {}).get("values", {})
        if modal.chosen_job(values) == ERROR_OPTION_VALUE:
            unavailable = modal.plain_error(messages.metastudio_unavailable())
            await ack(response_action="errors", errors={modal.BLOCK_JOB: unavailable})
            return
        parsed = modal.parse_submission(values)
        if isinstance(parsed, dict):
            await ack(response_action="errors", errors=parsed)
            return
        meta = _metadata(view.get("private_metadata"))
        try:
            principal = _body_principal(body)
        except ValueError:
            await ack(response_action="errors", errors={modal.BLOCK_JOB: messages.unknown_caller()})
            return
        channel = str(meta.get("channel") or "")
        intent = SubmitIntent(
            principal=principal,
            team_id=meta.get("team") or principal.tenant,
            enterprise_id=meta.get("enterprise") or None,
            channel_id=channel,
            job_id=parsed.job_id,
            request=parsed.request,
        )
        problem = await self._modal_job_problem(intent)
        if problem is not None:
            await ack(response_action="errors", errors={modal.BLOCK_JOB: problem})
            return
        await ack()

        response_url = meta.get("response_url")
        respond = AsyncRespond(response_url=response_url if isinstance(response_url, str) else None)

        async def reply(message: Message) -> None:
            await self._respond(respond, client, channel, principal.user, message)

        await self._after_ack(self._guard(reply, channel, parsed.job_id, self._submit(
            intent, parsed.dry_run, reply
        )))

    async def _modal_job_problem(self, intent: SubmitIntent) -> str | None:
        """A job that does not exist or is not ready is a field error, when MetaStudio
        answers within the budget; otherwise the background check reports it."""
        try:
            await asyncio.wait_for(self.s.submissions.check_job(intent), MODAL_CHECK_BUDGET)
        except (JobNotFound, JobNotReady) as error:
            return modal.plain_error(error_text(error, job_id=intent.job_id))
        except (TimeoutError, MetaStudioError):
            return None
        return None

    # -- approval buttons ------------------------------------------------------------------

    async def on_approve(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await self._decide(body, str(action.get("value", "")), client, approve=True, reason=None)

    async def on_reject(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        principal = _body_principal(body)
        channel = str((body.get("channel") or {}).get("id", ""))
        parsed = blocks.parse_approval_value(str(action.get("value", "")))
        if parsed is None:
            await self._ephemeral(client, channel, principal.user, messages.payload_changed())
            return
        try:
            refused = await self.s.submissions.may_decide(principal, channel, parsed[0])
        except Exception as error:
            await self._ephemeral(client, channel, principal.user, error_text(
                error, channel_id=channel
            ))
            return
        if refused is not None:
            text = _refusal_text(refused, parsed[0], None)
            await self._ephemeral(client, channel, principal.user, text)
            return
        # The form's submission is checked against this: who opened it, for which request,
        # from which channel and workspace.
        metadata = json.dumps({"value": action.get("value"), "channel": channel,
                               "user": principal.user, "tenant": principal.tenant})
        await client.views_open(
            trigger_id=body["trigger_id"], view=modal.reject_modal(private_metadata=metadata)
        )

    async def on_reject_modal(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        meta = _metadata(view.get("private_metadata"))
        fake_body = dict(body)
        fake_body["channel"] = {"id": str(meta.get("channel") or "")}
        try:
            principal = _body_principal(body)
        except ValueError:
            return
        if (meta.get("user"), meta.get("tenant")) != (principal.user, principal.tenant):
            # Not the form this user opened: decide nothing, and say so.
            log.warning("reject form from %s does not match its metadata", principal.user)
            await self._ephemeral(client, str(meta.get("channel") or ""), principal.user,
                                  messages.payload_changed())
            return
        reason = modal.reject_reason(view.get("state", {}).get("values", {}))
        await self._decide(
            fake_body, str(meta.get("value", "")), client, approve=False, reason=reason
        )

    async def _decide(
        self,
        body: Mapping[str, Any],
        value: str,
        client: AsyncWebClient,
        *,
        approve: bool,
        reason: str | None,
    ) -> None:
        principal = _body_principal(body)
        channel = str((body.get("channel") or {}).get("id", ""))
        parsed = blocks.parse_approval_value(value)
        if parsed is None:
            await self._ephemeral(client, channel, principal.user, messages.payload_changed())
            return
        request_id, payload_hash = parsed
        try:
            decision = await self.s.submissions.decide(
                principal, channel, request_id, payload_hash, approve=approve, reason=reason
            )
        except PermissionDenied as error:
            self.s.metrics.denials.labels(str(error.action)).inc()
            await self._ephemeral(client, channel, principal.user, denial_text(error, channel))
            return
        except Exception as error:
            await self._ephemeral(client, channel, principal.user, error_text(
                error, channel_id=channel
            ))
            return
        self.s.metrics.decisions.labels(str(decision.outcome)).inc()
        await self._after_decision(decision, request_id, principal, channel, client)

    async def _after_decision(
        self,
        decision: Decision,
        request_id: str,
        principal: Principal,
        channel: str,
        client: AsyncWebClient,
    ) -> None:
        request = decision.request
        if decision.decided and request is not None:
            await self._flush_or_defer(request)
            return
        if decision.outcome == DecisionOutcome.EXPIRED and request is not None:
            await self._flush_or_defer(request)
        text = _refusal_text(decision.outcome, request_id, request)
        await self._ephemeral(client, channel, principal.user, text)

    async def _flush_or_defer(self, request: ApprovalRequest) -> None:
        """Update the card and post the decision now; if Slack fails, the worker retries."""
        try:
            await self.s.notifier.flush(request)
        except NotifyBusy:
            log.debug("request %s: another process is posting for it", request.id)
        except Exception:
            log.warning("request %s: Slack update failed, left to the worker", request.id)
            await self.s.queue.enqueue_tracking(request.id)

    async def _ephemeral(
        self, client: AsyncWebClient, channel: str, user: str, text: str
    ) -> None:
        message = blocks.text_message(text)
        try:
            await client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())
        except Exception:
            log.warning("could not tell %s in %s: %s", user, channel, text)


def _refusal_text(
    outcome: DecisionOutcome, request_id: str, request: ApprovalRequest | None
) -> str:
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
    if outcome == DecisionOutcome.ALREADY_DECIDED and request is not None:
        return messages.already_decided(str(request.status), request.decided_by)
    return messages.request_not_found(request_id)


def _metadata(raw: object) -> dict[str, Any]:
    """The modal's private_metadata; a view not opened by this bot just carries none."""
    try:
        found = json.loads(raw) if isinstance(raw, str) and raw else {}
    except json.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}
