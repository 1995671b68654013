"""The Bolt listeners, one module per surface: ``slash`` (``/voice``), ``submit_form`` (the
submit form and its job picker), ``approval`` (the Approve and Reject buttons and the reject
form), ``home`` (the App Home tab). Each acks first (Slack allows 3 s), parses, calls a
service and renders; every failure becomes a sentence through ``replying.Replies.guard``.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.admin import AdminService
from bot.approvals import ApprovalStore
from bot.inbox import InboxService
from bot.metastudio import MetaStudioClient
from bot.metrics import Metrics
from bot.slack.deliveries import Deliveries
from bot.slack.languages import UserLanguages
from bot.slack.listeners.approval import ApprovalButtons
from bot.slack.listeners.home import HomeTab
from bot.slack.listeners.replying import Replies
from bot.slack.listeners.slash import SlashCommand
from bot.slack.listeners.submit import SubmitReplies
from bot.slack.listeners.submit_form import SubmitForm
from bot.slack.notify import Notifier
from bot.submissions import SubmissionService

__all__ = ["register_listeners"]


def register_listeners(
    app: AsyncApp,
    *,
    client: AsyncWebClient,
    submissions: SubmissionService,
    admin: AdminService,
    metastudio: MetaStudioClient,
    notifier: Notifier,
    metrics: Metrics,
    deliveries: Deliveries,
    require_approval: bool,
    inbox: InboxService,
    approvals: ApprovalStore,
    languages: UserLanguages,
) -> None:
    replies = Replies(client, metrics, deliveries)
    submit = SubmitReplies(submissions, client)
    form = SubmitForm(submissions, metastudio, submit, replies, require_approval=require_approval)
    SlashCommand(admin, metastudio, submit, form, replies, metrics, submissions).register(app)
    form.register(app)
    buttons = ApprovalButtons(submissions, notifier, replies, metrics)
    home = HomeTab(inbox, approvals, buttons, client, replies, languages)
    buttons.set_after_decision(home.after_decision)
    buttons.register(app)
    home.register(app)
