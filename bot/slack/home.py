"""The App Home tab as Block Kit: an approver's inbox with Approve and Reject, a requester's
own requests with a link to each thread, and an admin's policies and role holders.

A Home view holds at most 100 blocks, so the content is cut into pages, each with buttons
to the previous and next page; a request's blocks never straddle two pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.approvals import ApprovalRequest
from bot.i18n import _
from bot.inbox import Inbox
from bot.permissions import Role
from bot.slack import messages
from bot.slack.blocks import (
    approval_button_value,
    context,
    header,
    section,
    slack_date,
)
from bot.slack.messages import code, escape, mention

ACTION_HOME_APPROVE = "home_approve"
ACTION_HOME_REJECT = "home_reject"
ACTION_HOME_PAGE = "home_page"
MAX_HOME_BLOCKS = 100
# Room left on every page for the page buttons.
_PAGE_BLOCKS = MAX_HOME_BLOCKS - 2

Item = list[dict[str, Any]]


def thread_link(request: ApprovalRequest) -> str | None:
    """A link to the request's card (its thread), in Slack's archive URL form."""
    if request.card_ts is None:
        return None
    return f"https://slack.com/archives/{request.card_channel}/p{request.card_ts.replace('.', '')}"


def _title(request: ApprovalRequest) -> str:
    name = request.body.get("voice_name")
    job = code(request.job_id, 64)
    if name:
        return _("Job {job} ({voice})").format(job=job, voice=code(name, 64))
    return _("Job {job}").format(job=job)


def _waiting_item(request: ApprovalRequest) -> Item:
    lines = [
        _("*{title}* from {requester}").format(
            title=_title(request), requester=mention(request.requester)
        )
    ]
    details = [_("in {channel}").format(channel=f"<#{request.card_channel}>")]
    if request.required_approvals > 1:
        details.append(
            messages.approval_progress(
                request.approver_ids, request.required_approvals, pending=True
            )
        )
    expires = slack_date(request.expires_at)
    if expires:
        details.append(_("expires {date}").format(date=expires))
    link = thread_link(request)
    if link:
        details.append(_("<{link}|open the card>").format(link=link))
    value = approval_button_value(request.id, request.short_hash)
    confirm = {
        "title": {"type": "plain_text", "text": _("Submit to MetaStudio?")},
        "text": {
            "type": "plain_text",
            "text": _("Job {job} goes into review at MetaStudio.").format(job=request.job_id[:200]),
        },
        "confirm": {"type": "plain_text", "text": _("Approve")},
        "deny": {"type": "plain_text", "text": _("Cancel")},
    }
    return [
        section("\n".join(lines), verbatim=True),
        context(" · ".join(details)),
        {
            "type": "actions",
            "block_id": f"home:{request.id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_HOME_APPROVE,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": _("Approve")},
                    "value": value,
                    "confirm": confirm,
                },
                {
                    "type": "button",
                    "action_id": ACTION_HOME_REJECT,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": _("Reject")},
                    "value": value,
                },
            ],
        },
    ]


def _mine_item(request: ApprovalRequest) -> Item:
    status = messages.approval_status(str(request.status))
    parts = [f"*{_title(request)}*: {status}"]
    link = thread_link(request)
    if link:
        parts.append(_("<{link}|open the thread>").format(link=link))
    return [section(" · ".join(parts), verbatim=True)]


def home_items(inbox: Inbox) -> list[Item]:
    """Everything the Home tab shows, as items whose blocks stay together."""
    items: list[Item] = [[header("voicebot")]]
    if inbox.problem is not None:
        items.append([section(messages.group_lookup_failed(inbox.problem, "error"))])
    if inbox.waiting is not None:
        items.append([header(_("Waiting for your approval"))])
        if not inbox.waiting:
            items.append([section(_("_Nothing waits for you._"))])
        items += [_waiting_item(r) for r in inbox.waiting]
    if inbox.mine or Role.requester in inbox.roles:
        items.append([header(_("Your requests"))])
        if not inbox.mine:
            items.append([section(_("_You have made no requests lately._"))])
        items += [_mine_item(r) for r in inbox.mine]
    if inbox.policies is not None:
        items.append([header(_("Approval policies"))])
        p = inbox.policies
        shown = messages.policies_text(p.default, p.channels, p.default_language, p.languages)
        items.append([section(shown)])
        items.append([header(_("Role holders"))])
        for role, holders in inbox.holders.items():
            who = messages.mentions(sorted(holders)) if holders else _("_nobody_")
            items.append([section(f"*{escape(role)}*: {who}")])
    if len(items) == 1:
        items.append([section(messages.home_no_roles())])
    return items


def paginate(items: Sequence[Item], limit: int = _PAGE_BLOCKS) -> list[Item]:
    pages: list[Item] = [[]]
    for item in items:
        if pages[-1] and len(pages[-1]) + len(item) > limit:
            pages.append([])
        pages[-1].extend(item[:limit])
    return pages


def home_view(inbox: Inbox, page: int = 0) -> dict[str, Any]:
    """The Home tab's view for ``inbox``, page ``page`` (clamped to the pages there are)."""
    pages = paginate(home_items(inbox))
    page = max(0, min(page, len(pages) - 1))
    blocks = list(pages[page])
    if len(pages) > 1:
        buttons = []
        if page > 0:
            buttons.append(
                {
                    "type": "button",
                    "action_id": f"{ACTION_HOME_PAGE}_prev",
                    "text": {"type": "plain_text", "text": _("Previous page")},
                    "value": str(page - 1),
                }
            )
        if page < len(pages) - 1:
            buttons.append(
                {
                    "type": "button",
                    "action_id": f"{ACTION_HOME_PAGE}_next",
                    "text": {"type": "plain_text", "text": _("Next page")},
                    "value": str(page + 1),
                }
            )
        blocks.append(context(_("Page {page} of {pages}").format(page=page + 1, pages=len(pages))))
        blocks.append({"type": "actions", "block_id": "home_pages", "elements": buttons})
    return {"type": "home", "blocks": blocks}
