"""``/voice``: parse the text, ack within Slack's 3 s, then call a service and render.

Argument problems of a known subcommand need no I/O and go in the ack itself; everything
else is answered after it, through the command's response_url.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.admin import AdminService, RoleHolders
from bot.metastudio import MetaStudioClient
from bot.metrics import Metrics
from bot.permissions import Principal, Role
from bot.slack import blocks, messages
from bot.slack.commands import (
    SUBCOMMAND_NAMES,
    Audit,
    Command,
    Grant,
    Help,
    ParseFailure,
    Policy,
    Quota,
    Revoke,
    Roles,
    Status,
    Submit,
    SubmitForm,
    parse,
    suggest,
)
from bot.slack.listeners.replying import Ack, Replies, Reply, principal_of
from bot.slack.listeners.submit import SubmitReplies
from bot.slack.listeners.submit_form import SubmitForm as SubmitFormListener
from bot.submissions import SubmissionService, SubmitIntent

COMMAND = "/voice"


class SlashCommand:
    def __init__(
        self,
        admin: AdminService,
        metastudio: MetaStudioClient,
        submit: SubmitReplies,
        form: SubmitFormListener,
        replies: Replies,
        metrics: Metrics,
        submissions: SubmissionService,
    ) -> None:
        self._submissions = submissions
        self._admin = admin
        self._metastudio = metastudio
        self._submit = submit
        self._form = form
        self._replies = replies
        self._metrics = metrics

    def register(self, app: AsyncApp) -> None:
        app.command(COMMAND)(self.on_command)

    async def on_command(
        self, ack: Ack, command: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        started = time.perf_counter()
        parsed = parse(str(command.get("text") or ""))
        name = parsed.subcommand or "unknown"
        channel = str(command.get("channel_id") or "")
        try:
            principal = principal_of(
                command.get("enterprise_id"), command.get("team_id"), str(command["user_id"])
            )
        except (KeyError, ValueError):
            await ack(text=messages.unknown_caller())
            self._observe_ack(started)
            return
        reply = self._replies.responder(respond, channel, principal.user)

        # Argument problems of a known subcommand need no I/O: they go in the ack itself.
        if isinstance(parsed, ParseFailure) and parsed.subcommand is not None:
            self._metrics.commands.labels(name, "invalid").inc()
            await ack(text=parsed.text())
            self._observe_ack(started)
            return
        # Everything else reads Redis or MetaStudio, so it is answered after the ack.
        await ack()
        self._observe_ack(started)
        if not await self._replies.first_of(command):
            return
        if isinstance(parsed, ParseFailure):
            self._metrics.commands.labels(name, "invalid").inc()
            await self._replies.after_ack(
                self._replies.guard(reply, self._unreadable(principal, parsed, reply))
            )
            return
        if isinstance(parsed, SubmitForm):
            work = self._form.open(principal, channel, command, parsed.dry_run, client)
            ok = await self._replies.guard(reply, work, channel=channel)
        else:
            job_id = getattr(parsed, "job_id", None) or ""
            ok = await self._replies.after_ack(
                self._replies.guard(
                    reply,
                    self._dispatch(parsed, principal, command, reply),
                    channel=channel,
                    job_id=job_id,
                )
            )
        self._metrics.commands.labels(name, "ok" if ok else "failed").inc()

    def _observe_ack(self, started: float) -> None:
        self._metrics.ack_seconds.labels("command").observe(time.perf_counter() - started)

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
            await self._submit.submit(intent, parsed.dry_run, reply)
        elif isinstance(parsed, Status):
            job = await self._metastudio.show_job(parsed.job_id)
            await reply(blocks.status_message(job, await self._submissions.readiness(job)))
        elif isinstance(parsed, Quota):
            await reply(blocks.quotas_message(await self._submissions.training_quotas(principal)))
        elif isinstance(parsed, Roles):
            found = await self._admin.roles(principal, channel, parsed.user_id)
            if isinstance(found, RoleHolders):
                await reply(blocks.roles_message(found.members))
            else:
                await reply(blocks.user_roles_message(found.user, found.roles, found.sources))
        elif isinstance(parsed, Grant | Revoke):
            await reply(
                blocks.text_message(await self._grant_or_revoke(principal, channel, parsed))
            )
        elif isinstance(parsed, Policy):
            if parsed.channel_id is not None:
                await self._admin.set_policy(
                    principal,
                    channel,
                    parsed.channel_id,
                    approvals=parsed.approvals,
                    language=parsed.language,
                )
                said = messages.policy_set(parsed.channel_id, parsed.approvals, parsed.language)
                await reply(blocks.text_message(said))
            else:
                p = await self._admin.policies(principal)
                shown = messages.policies_text(
                    p.default, p.channels, p.default_language, p.languages
                )
                await reply(blocks.text_message(shown))
        elif isinstance(parsed, Audit):
            events = await self._admin.audit_trail(principal, channel, parsed.job_id)
            await reply(blocks.audit_message(events, job_id=parsed.job_id))

    async def _usage(self, principal: Principal) -> str:
        """Every subcommand, marked with the roles the caller holds and who can grant them."""
        standing = await self._admin.standing(principal)
        usage = messages.usage_text(standing.roles, standing.admins)
        if standing.roles is None:
            return usage + "\n" + messages.permission_store_unavailable()
        return usage

    async def _unreadable(self, principal: Principal, failure: ParseFailure, reply: Reply) -> None:
        """No subcommand could be read: say what was wrong, then the usage."""
        if failure.unknown is not None:
            suggestion = suggest(failure.unknown, list(SUBCOMMAND_NAMES))
            problems = [messages.not_a_subcommand(failure.unknown, suggestion)]
        else:
            problems = [p.message for p in failure.problems]
        usage = await self._usage(principal)
        await reply(blocks.text_message(messages.unreadable_with_usage(problems, usage)))

    async def _grant_or_revoke(
        self, principal: Principal, channel: str, parsed: Grant | Revoke
    ) -> str:
        role = Role(parsed.role)
        if isinstance(parsed, Grant):
            changed = await self._admin.grant(principal, channel, parsed.user_id, role)
            said = messages.role_granted if changed else messages.role_already_held
        else:
            changed = await self._admin.revoke(principal, channel, parsed.user_id, role)
            said = messages.role_revoked if changed else messages.role_not_held
        return said(parsed.user_id, str(role))
