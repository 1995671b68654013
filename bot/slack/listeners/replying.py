"""How a listener answers: through the response_url or an ephemeral, after the ack, with
every failure turned into a sentence by one path (``Replies.guard``).

Who is acting comes from the payload: the enterprise (on Grid) or the team, and the user.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.permissions import PermissionDenied, Principal
from bot.slack import blocks, messages
from bot.slack.blocks import OutgoingMessage
from bot.slack.deliveries import Deliveries
from bot.slack.replies import error_text

log = logging.getLogger("bot.slack")

Ack = Callable[..., Awaitable[None]]
Reply = Callable[[OutgoingMessage], Awaitable[None]]

# Acks share the event loop with the work that follows them. Capping that work keeps a burst
# of commands from pushing acks past Slack's 3 s (the backlog drains right after), and it is
# no loss: Slack's own rate limits (chat.postMessage about 1 a second a channel) cap it anyway.
# Opening a modal is not capped: its trigger_id expires 3 s after the command.
AFTER_ACK_CONCURRENCY = 8


def principal_of(enterprise_id: str | None, team_id: str | None, user_id: str) -> Principal:
    return Principal.from_ids(enterprise_id or None, team_id or None, user_id)


def body_principal(body: Mapping[str, Any]) -> Principal:
    """The actor of an interaction payload (``ValueError`` when it names none)."""
    user = body.get("user") or {}
    team = body.get("team") or {}
    enterprise = body.get("enterprise") or {}
    return principal_of(
        enterprise.get("id") if isinstance(enterprise, Mapping) else None,
        (team.get("id") if isinstance(team, Mapping) else None) or user.get("team_id"),
        str(user.get("id", "")),
    )


def body_channel(body: Mapping[str, Any]) -> str:
    return str((body.get("channel") or {}).get("id", ""))


def metadata(raw: object) -> dict[str, Any]:
    """A view's private_metadata; a view not opened by this bot just carries none."""
    try:
        found = json.loads(raw) if isinstance(raw, str) and raw else {}
    except json.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


class Replies:
    def __init__(self, client: AsyncWebClient, metrics: Metrics, deliveries: Deliveries) -> None:
        self._client = client
        self._metrics = metrics
        self._deliveries = deliveries
        self._after_ack_slots = asyncio.Semaphore(AFTER_ACK_CONCURRENCY)

    async def first_of(self, body: Mapping[str, Any]) -> bool:
        """Whether this is the first delivery of ``body`` (ask right after the ack): a
        redelivery or a replay does nothing more."""
        return await self._deliveries.first_of(body)

    async def after_ack(self, work: Awaitable[bool]) -> bool:
        """Run work that follows an ack, at most ``AFTER_ACK_CONCURRENCY`` at a time."""
        async with self._after_ack_slots:
            return await work

    async def guard(
        self, reply: Reply, work: Awaitable[Any], *, channel: str = "", job_id: str = ""
    ) -> bool:
        """Run ``work``; any failure becomes a specific sentence for the user. False when
        it failed."""
        try:
            await work
        except Exception as error:  # every failure becomes a sentence for the user
            if isinstance(error, PermissionDenied):
                self._metrics.denials.labels(str(error.action)).inc()
            await reply(blocks.text_message(error_text(error, channel_id=channel, job_id=job_id)))
            return False
        return True

    def responder(self, respond: Any, channel: str, user: str) -> Reply:
        """A reply through the response_url (``respond``); where Slack refuses it (expired,
        used up, or none given), as an ephemeral message."""

        async def reply(message: OutgoingMessage) -> None:
            try:
                answer = await respond(response_type="ephemeral", **message.as_kwargs())
                status = getattr(answer, "status_code", 200)
                failure = None if status == 200 else str(status)
            except Exception as error:  # any failure here means: try the other way
                failure = type(error).__name__
            if failure is None:
                return
            log.warning(
                "response_url post failed (%s); answering %s with an ephemeral", failure, user
            )
            await self.ephemeral(channel, user, message.text)

        return reply

    async def unknown_caller(self, body: Mapping[str, Any], channel: str) -> None:
        """A payload naming no workspace: say so to its user, if it names one."""
        user = str((body.get("user") or {}).get("id") or "")
        if user:
            await self.ephemeral(channel, user, messages.unknown_caller())

    def ephemeral_to(self, channel: str, user: str) -> Reply:
        async def reply(message: OutgoingMessage) -> None:
            await self.ephemeral(channel, user, message.text)

        return reply

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        message = blocks.text_message(text)
        try:
            await self._client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())
        except Exception:  # nowhere left to say it: the log is the record
            log.warning("could not tell %s in %s: %s", user, channel, text)
