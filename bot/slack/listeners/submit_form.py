"""The submit form: opening it, the job picker inside it, and its submission.

Problems with the fields or the job show on the form itself (``response_action: errors``);
what happens after it closes is answered through the response_url of the command that
opened it, which works where the bot is not a member of the channel.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.i18n import _
from bot.metastudio import (
    SUBMITTABLE_STATES,
    CredentialsHeld,
    CredentialsRejected,
    JobNotFound,
    MetaStudioClient,
    MetaStudioError,
)
from bot.permissions import Principal
from bot.slack import messages, modal
from bot.slack.listeners.replying import Ack, Replies, body_principal, metadata
from bot.slack.listeners.submit import SubmitReplies
from bot.slack.replies import error_text
from bot.submissions import JobNotReady, SubmissionService, SubmitBlocked, SubmitIntent

# The job picker must answer inside Slack's 3 s; MetaStudio gets what is left of it.
OPTIONS_BUDGET = 2.0
# A submission checks the job before the form closes, so problems show on the field.
MODAL_CHECK_BUDGET = 2.0
ERROR_OPTION_VALUE = "__unavailable__"


class SubmitForm:
    def __init__(
        self,
        submissions: SubmissionService,
        metastudio: MetaStudioClient,
        submit: SubmitReplies,
        replies: Replies,
        *,
        require_approval: bool,
    ) -> None:
        self._submissions = submissions
        self._metastudio = metastudio
        self._submit = submit
        self._replies = replies
        self._require_approval = require_approval

    def register(self, app: AsyncApp) -> None:
        app.view(modal.CALLBACK_ID)(self.on_submit)
        app.options(modal.ACTION_JOB)(self.on_job_options)

    async def open(
        self,
        principal: Principal,
        channel: str,
        command: Mapping[str, Any],
        dry_run: bool,
        client: AsyncWebClient,
    ) -> None:
        await self._submissions.may_submit(principal, channel)
        # The command's response_url answers the requester where the bot is not a member
        # (an ephemeral there would be refused), so the form carries it to its submission.
        meta = json.dumps(
            {
                "channel": channel,
                "team": command.get("team_id"),
                "enterprise": command.get("enterprise_id"),
                "response_url": command.get("response_url"),
            }
        )
        label = messages.MODAL_SUBMIT if self._require_approval else messages.MODAL_SUBMIT_DIRECT
        view = modal.submit_modal(None, private_metadata=meta, dry_run=dry_run, submit_label=label)
        await client.views_open(trigger_id=command["trigger_id"], view=view)

    async def on_job_options(self, ack: Ack, body: dict[str, Any]) -> None:
        query = str(body.get("value") or "")
        try:
            found = await asyncio.wait_for(
                self._metastudio.list_jobs(states=sorted(SUBMITTABLE_STATES), limit=100),
                OPTIONS_BUDGET,
            )
        except (TimeoutError, MetaStudioError) as error:
            refused = isinstance(error, CredentialsHeld | CredentialsRejected)
            text = _(messages.PICKER_CREDENTIALS if refused else messages.PICKER_UNAVAILABLE)
            await ack(
                options=[
                    {
                        "text": {"type": "plain_text", "text": text},
                        "value": ERROR_OPTION_VALUE,
                    }
                ]
            )
            return
        # Only submittable jobs, even if MetaStudio ignores the state filter.
        ready = [job for job in found.jobs if job.state in SUBMITTABLE_STATES]
        await ack(options=modal.job_options(ready, query))

    async def on_submit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view.get("state", {}).get("values", {})
        if modal.chosen_job(values) == ERROR_OPTION_VALUE:
            unavailable = modal.plain_error(messages.metastudio_unavailable())
            await ack(response_action="errors", errors={modal.BLOCK_JOB: unavailable})
            return
        parsed = modal.parse_submission(values)
        if isinstance(parsed, dict):
            await ack(response_action="errors", errors=parsed)
            return
        meta = metadata(view.get("private_metadata"))
        try:
            principal = body_principal(body)
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
        problem = await self._job_problem(intent)
        if problem is not None:
            await ack(response_action="errors", errors={modal.BLOCK_JOB: problem})
            return
        await ack()
        if not await self._replies.first_of(body):
            return
        response_url = meta.get("response_url")
        respond = AsyncRespond(response_url=response_url if isinstance(response_url, str) else None)
        reply = self._replies.responder(respond, channel, principal.user)
        await self._replies.after_ack(
            self._replies.guard(
                reply,
                self._submit.submit(intent, parsed.dry_run, reply),
                channel=channel,
                job_id=parsed.job_id,
            )
        )

    async def _job_problem(self, intent: SubmitIntent) -> str | None:
        """A job that does not exist or is not ready is a field error, when MetaStudio
        answers within the budget; otherwise the background check reports it."""
        try:
            await asyncio.wait_for(self._submissions.check_job(intent), MODAL_CHECK_BUDGET)
        except (JobNotFound, JobNotReady, SubmitBlocked) as error:
            return modal.plain_error(error_text(error, job_id=intent.job_id))
        except (TimeoutError, MetaStudioError):
            return None
        return None
