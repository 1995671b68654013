"""A submit as the requester sees it, from the slash command or the form: a dry run, or one
call into the submission service and the answer it leads to."""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalRequest, OpenRequestExists
from bot.i18n import _
from bot.slack import blocks, messages
from bot.slack.listeners.replying import Reply
from bot.submissions import SubmissionService, SubmitIntent

log = logging.getLogger("bot.slack")


class SubmitReplies:
    def __init__(self, submissions: SubmissionService, client: AsyncWebClient) -> None:
        self._submissions = submissions
        self._client = client

    async def submit(self, intent: SubmitIntent, dry_run: bool, reply: Reply) -> None:
        if dry_run:
            await self._submissions.authorize_submit(intent)
            await self._submissions.check_job(intent)
            call = self._submissions.dry_run(intent)
            await reply(blocks.dry_run_message(call.method, call.url, call.headers, call.body))
            return
        try:
            request = (await self._submissions.submit(intent)).request
        except OpenRequestExists as error:
            link = await self._permalink(error.request) if error.request is not None else ""
            text = messages.open_request_exists(intent.job_id, error.request_id, link)
            await reply(blocks.text_message(text))
            return
        # A card in the channel the user typed in is right in front of them; a link is only
        # worth its extra Web API call when the card went to a separate approval channel.
        elsewhere = request.card_channel != intent.channel_id
        link = await self._permalink(request) if elsewhere else ""
        if request.status == "auto_approved":
            text = messages.submitted_without_approval(request.id, request.card_channel)
        else:
            text = messages.approval_requested(request.id, request.card_channel)
        await reply(blocks.text_message(f"{text} {link}".strip()))

    async def _permalink(self, request: ApprovalRequest) -> str:
        if request.card_ts is None:
            return ""
        try:
            found = await self._client.chat_getPermalink(
                channel=request.card_channel, message_ts=request.card_ts
            )
        except Exception:  # the link is a convenience; the card is already posted
            log.warning("no permalink for request %s", request.id)
            return ""
        return _("<{link}|Open the approval card>").format(link=found["permalink"])
