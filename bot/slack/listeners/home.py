"""The App Home tab: rebuilt when a user opens it (``app_home_opened``) and after each
decision that concerns them; its Approve and Reject act exactly as the card's, counted as
clicks in the card's channel. A retried event or click does nothing more
after its ack (``bot.slack.deliveries``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalRequest, ApprovalStore
from bot.i18n import speaking
from bot.inbox import InboxService
from bot.permissions import Principal
from bot.slack import blocks, home
from bot.slack.languages import UserLanguages
from bot.slack.listeners.approval import ApprovalButtons
from bot.slack.listeners.replying import Ack, Replies, body_principal, principal_of

log = logging.getLogger("bot.slack")

_PAGE_ACTION = re.compile(re.escape(home.ACTION_HOME_PAGE) + r"_(prev|next)")


class HomeTab:
    def __init__(
        self,
        inbox: InboxService,
        approvals: ApprovalStore,
        buttons: ApprovalButtons,
        client: AsyncWebClient,
        replies: Replies,
        languages: UserLanguages,
    ) -> None:
        self._languages = languages
        self._inbox = inbox
        self._approvals = approvals
        self._buttons = buttons
        self._client = client
        self._replies = replies

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self.on_home_opened)
        app.action(home.ACTION_HOME_APPROVE)(self.on_approve)
        app.action(home.ACTION_HOME_REJECT)(self.on_reject)
        app.action(_PAGE_ACTION)(self.on_page)

    async def publish(self, principal: Principal, page: int = 0) -> None:
        """Rebuild ``principal``'s Home tab in their language (best effort: the next open
        rebuilds it too)."""
        try:
            inbox = await self._inbox.inbox(principal)
            with speaking(await self._languages.of(principal.tenant, principal.user)):
                view = home.home_view(inbox, page)
            await self._client.views_publish(user_id=principal.user, view=view)
        except SlackApiError as error:
            log.warning(
                "home tab of %s not published: %s", principal.user, error.response.get("error")
            )
        except Exception:  # the tab is a convenience: a failure here must not fail the click
            log.warning("home tab of %s not published", principal.user, exc_info=True)

    async def after_decision(self, principal: Principal, request: ApprovalRequest) -> None:
        """The clicker's and the requester's tabs change with a decision."""
        await self.publish(principal)
        if request.requester != principal.user:
            await self.publish(Principal(principal.tenant, request.requester))

    async def on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab") not in (None, "home") or not await self._replies.first_of(body):
            return
        try:
            principal = principal_of(
                body.get("enterprise_id"), body.get("team_id"), str(event.get("user") or "")
            )
        except ValueError:
            return
        await self.publish(principal)

    async def on_page(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        if not await self._replies.first_of(body):
            return
        value = str(action.get("value") or "0")
        await self.publish(body_principal(body), int(value) if value.isdigit() else 0)

    async def _card_channel(self, body: dict[str, Any], value: str) -> str | None:
        """The channel a click on the Home tab counts as made in: the request's card's."""
        parsed = blocks.parse_approval_value(value)
        request = await self._approvals.get(parsed[0]) if parsed else None
        if request is None:
            # Nowhere to answer in the channel: the rebuilt tab shows it is gone.
            try:
                principal = body_principal(body)
            except ValueError:
                return None
            log.info("home click by %s on a request that is gone", principal.user)
            await self.publish(principal)
            return None
        return request.card_channel

    async def on_approve(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        if not await self._replies.first_of(body):
            return
        value = str(action.get("value", ""))
        channel = await self._card_channel(body, value)
        if channel is not None:
            await self._buttons.decide(body, channel, value, approve=True, reason=None)

    async def on_reject(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        if not await self._replies.first_of(body):
            return
        value = str(action.get("value", ""))
        channel = await self._card_channel(body, value)
        if channel is not None:
            await self._buttons.open_reject_form(body, channel, value, client)


__all__ = ["HomeTab"]
