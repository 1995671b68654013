"""Block Kit builders: pure functions from view-models to an ``OutgoingMessage`` (fallback
text + blocks).

Every builder keeps Slack's limits: at most 50 blocks a message, 3,000 characters a section,
10 fields a section; long lists are cut with a note saying how much was left out. All
user-supplied text passes through ``messages.escape`` before it reaches mrkdwn.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.i18n import N_, _
from bot.metastudio.models import (
    ASSESS_CHECKS,
    AuditResult,
    CommitJobRequest,
    JobState,
    TrainingJob,
    TrainingQuotas,
    category_of,
    category_words,
    state_words,
)
from bot.readiness import Readiness
from bot.slack import messages
from bot.slack.messages import code, escape, mention, truncate

ACTION_APPROVE = "approval_approve"
ACTION_REJECT = "approval_reject"
BLOCK_APPROVAL_ACTIONS = "approval_actions"

MAX_MESSAGE_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_TEXT = 3000

APPROVAL_STATUSES = frozenset(messages.APPROVAL_STATUS_WORDS)

_STATUS_EMOJI: dict[str, str] = {
    "pending": ":hourglass_flowing_sand:",
    "approved": ":white_check_mark:",
    "auto_approved": ":white_check_mark:",
    "rejected": ":no_entry:",
    "expired": ":alarm_clock:",
    "submitting": ":arrows_counterclockwise:",
    "submitted": ":inbox_tray:",
    "under_review": ":mag:",
    "submit_failed": ":x:",
    "passed": ":tada:",
    "failed": ":x:",
    "succeeded": ":white_check_mark:",
    "training_failed": ":x:",
}


@dataclass(frozen=True)
class OutgoingMessage:
    """What ``chat.postMessage`` / ``chat.update`` / ``respond`` need: fallback text + blocks."""

    text: str
    blocks: list[dict[str, Any]]

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


@dataclass(frozen=True)
class ApprovalCard:
    """The view-model of one approval request, as the approval card shows it."""

    request_id: str
    requester_id: str
    job_id: str
    request: CommitJobRequest
    payload_hash: str
    status: str = "pending"
    job_name: str | None = None
    job_state: str | None = None
    decided_by: str | None = None
    reason: str | None = None
    expires_at: datetime | float | None = None
    note: str | None = None
    # The job's risks, shown while the request waits for a decision (read for each
    # rendering, never stored); None when MetaStudio did not answer.
    readiness: Readiness | None = None
    required_approvals: int = 1
    approvers: tuple[str, ...] = ()


# -- small pieces ------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def section(text: str, *, verbatim: bool = False) -> dict[str, Any]:
    """``verbatim``: Slack leaves bare URLs and names in ``text`` alone (no auto-linking);
    for sentences that carry user input, in code spans."""
    text_object = _mrkdwn(truncate(text, MAX_SECTION_TEXT))
    if verbatim:
        text_object["verbatim"] = True
    return {"type": "section", "text": text_object}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain(truncate(text, MAX_HEADER_TEXT))}


def context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [_mrkdwn(truncate(t, MAX_SECTION_TEXT)) for t in texts[:10]],
    }


def fields_section(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [
            _mrkdwn(truncate(f"*{label}*\n{value}", MAX_FIELD_TEXT)) for label, value in pairs[:10]
        ],
    }


def _fallback(text: str) -> str:
    return truncate(text, MAX_FALLBACK_TEXT)


# What a packed list is of, for the note on what did not fit.
Listed = Literal["entries", "resources", "problems", "roles", "events"]


def pack_lines(
    lines: Sequence[str], max_blocks: int, *, what: Listed = "entries"
) -> list[dict[str, Any]]:
    """Pack lines into as few sections as fit 3,000 characters each, using at most
    ``max_blocks`` blocks; when they don't all fit, the last block says how many were left."""
    blocks: list[dict[str, Any]] = []
    current: list[str] = []
    size = 0
    for index, raw in enumerate(lines):
        line = truncate(raw, MAX_SECTION_TEXT)
        if current and size + 1 + len(line) > MAX_SECTION_TEXT:
            if len(blocks) + 2 >= max_blocks:
                blocks.append(section("\n".join(current)))
                blocks.append(context(_omitted(len(lines) - index, what)))
                return blocks
            blocks.append(section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + (1 if size else 0)
    if current:
        blocks.append(section("\n".join(current)))
    return blocks


_OMITTED: dict[Listed, str] = {
    "entries": N_("…and {count} more entries not shown."),
    "resources": N_("…and {count} more resources not shown."),
    "problems": N_("…and {count} more problems not shown."),
    "roles": N_("…and {count} more roles not shown."),
    "events": N_("…and {count} more events not shown."),
}


def _omitted(count: int, what: Listed) -> str:
    return _(_OMITTED[what]).format(count=count)


def slack_date(when: datetime | float | None) -> str | None:
    """A ``<!date>`` token: Slack shows it in the reader's time zone, the fallback in UTC."""
    if when is None:
        return None
    if isinstance(when, datetime):
        moment = when if when.tzinfo else when.replace(tzinfo=UTC)
    else:
        seconds = float(when)
        # MetaStudio's timestamps are milliseconds; ours are seconds.
        if seconds > 1e11:
            seconds /= 1000
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return escape(str(when))
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _state_words(state: str | None) -> str:
    if not state:
        return _("unknown")
    try:
        parsed = JobState(state)
    except ValueError:
        return code(state)
    if not parsed.known:
        # A state newer than the bot: its raw name is all there is to show.
        return _("{state} (not known to this bot)").format(state=code(parsed.value))
    return _("{words} (`{state}`)").format(words=state_words(parsed), state=parsed.value)


_FIELD_LABELS: dict[str, str] = {
    "voice_name": N_("Voice name"),
    "sex": N_("Sex"),
    "language": N_("Language"),
    "tag": N_("Tag"),
    "phone": N_("Phone"),
    "app_user_id": N_("App user ID"),
    "output_language": N_("Output language"),
    "description": N_("Description"),
    "custom_text": N_("Audition text"),
}


def request_fields(request: CommitJobRequest) -> list[tuple[str, str]]:
    """The fields a submit will send, as (label, value as typed) pairs."""
    body = request.body()
    order = [k for k in _FIELD_LABELS if k in body] + [k for k in body if k not in _FIELD_LABELS]
    return [(_(_FIELD_LABELS[k]) if k in _FIELD_LABELS else k, body[k]) for k in order]


def _as_typed(text: str) -> dict[str, Any]:
    """User-supplied text exactly as typed: plain text is never formatted, linked or turned
    into a mention, and ``emoji: false`` leaves ``:shortcodes:`` alone."""
    return {"type": "plain_text", "text": text, "emoji": False}


def typed_fields_section(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A two-column section of (label, value as typed) pairs."""
    return {
        "type": "section",
        "fields": [
            _as_typed(truncate(f"{label}\n{value}", MAX_FIELD_TEXT)) for label, value in pairs[:10]
        ],
    }


def typed_section(label: str, value: str) -> dict[str, Any]:
    return {"type": "section", "text": _as_typed(truncate(f"{label}\n{value}", MAX_SECTION_TEXT))}


# -- approval card -----------------------------------------------------------------------


def approval_button_value(request_id: str, payload_hash: str) -> str:
    value = f"{request_id}:{payload_hash}"
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"button value is longer than {MAX_BUTTON_VALUE} characters")
    return value


def parse_approval_value(value: str) -> tuple[str, str] | None:
    """``(request_id, payload_hash)`` from an Approve/Reject button value, or None."""
    request_id, sep, payload_hash = value.rpartition(":")
    if not sep or not request_id or not payload_hash:
        return None
    return request_id, payload_hash


def approval_decision_line(status: str, decided_by: str | None) -> str:
    emoji = _STATUS_EMOJI.get(status, ":grey_question:")
    words = messages.approval_status(status)
    if decided_by and status in ("approved", "rejected"):
        line = _("*{status}* by {user}").format(status=words, user=mention(decided_by))
    elif decided_by:
        # Later states keep the trail of who let the request through.
        line = _("*{status}* · approved by {user}").format(status=words, user=mention(decided_by))
    else:
        line = f"*{words}*"
    return f"{emoji} {line}"


def _decision_context(status: str, decided_by: str | None, reason: str | None) -> dict[str, Any]:
    """The decision line; a reason (an approver's words, or MetaStudio's) follows as typed."""
    elements = [_mrkdwn(approval_decision_line(status, decided_by))]
    if reason:
        elements.append(_as_typed(truncate(reason, MAX_SECTION_TEXT)))
    return {"type": "context", "elements": elements}


def approval_card(card: ApprovalCard) -> OutgoingMessage:
    job = code(card.job_id, 64)
    name = code(card.job_name, 64) if card.job_name else _("name unknown")
    blocks: list[dict[str, Any]] = [
        header(_("Voice training submit request")),
        section(
            _("{requester} asks to submit job {job} to MetaStudio.\nJob: {name}, {state}").format(
                requester=mention(card.requester_id),
                job=job,
                name=name,
                state=_state_words(card.job_state),
            ),
            verbatim=True,
        ),
    ]
    short = [(k, v) for k, v in request_fields(card.request) if len(v) <= 200]
    long = [(k, v) for k, v in request_fields(card.request) if len(v) > 200]
    if short:
        blocks.append(typed_fields_section(short))
    blocks += [typed_section(label, value) for label, value in long]
    if not short and not long:
        blocks.append(section(_("_No fields set: MetaStudio keeps the job's current values._")))
    if card.status != "pending":
        blocks.append(context(messages.risks_after_decision(card.job_id)))
    elif card.readiness is not None:
        blocks += readiness_blocks(card.readiness)
    else:
        blocks.append(context(messages.readiness_unread()))
    if card.note:
        blocks.append(section(f":information_source: {escape(card.note)}"))
    details = [
        _("Payload {hash}").format(hash=code(card.payload_hash[:12])),
        _("request {request}").format(request=code(card.request_id)),
    ]
    expires = slack_date(card.expires_at)
    if expires and card.status == "pending":
        details.append(_("expires {date}").format(date=expires))
    blocks.append(context(" · ".join(details)))
    if card.required_approvals > 1:
        blocks.append(approval_progress(card))
    if card.status == "pending":
        blocks.append(_approval_actions(card))
    blocks.append(_decision_context(card.status, card.decided_by, card.reason))
    text = _("Submit request for job {job} from {requester}: {status}").format(
        job=escape(card.job_id),
        requester=mention(card.requester_id),
        status=messages.approval_status(card.status),
    )
    return OutgoingMessage(text=_fallback(text), blocks=blocks)


# A suggestion is MetaStudio's text: shown as plain text, each cut so six of them fit a section.
MAX_SUGGESTION = 400


def risk_lines(readiness: Readiness, *, quota: bool = True) -> list[str]:
    """What stands in the way of review, worst first; empty when nothing does."""
    risks: list[str] = []
    if not readiness.authorization:
        risks.append(messages.risk_no_authorization())
    if readiness.failed_checks:
        risks.append(messages.risk_checks_out(len(readiness.failed_checks), len(ASSESS_CHECKS)))
    if quota and readiness.no_quota and readiness.job_type:
        risks.append(messages.risk_no_quota(readiness.job_type))
    return risks


def readiness_blocks(readiness: Readiness, *, quota: bool = True) -> list[dict[str, Any]]:
    """The job's risks in at most five blocks: the marked risks, the facts, the checks out
    of range (a heading, then MetaStudio's figures and suggestions as plain text), the
    checks in range.
    ``quota``: show the trainings left (only worth it before the submit)."""
    risks = risk_lines(readiness, quota=quota)
    out = [section(messages.risks_heading(risks) if risks else messages.no_risks())]
    facts = [
        (_("Type"), messages.job_type_words(readiness.job_type)),
        (_("Authorization letter"), messages.authorization_words(readiness.authorization)),
        (_("Earlier reviews"), messages.reject_times_words(readiness.reject_times)),
    ]
    if quota and readiness.quota_checked:
        facts.append(
            (
                _("Trainings left"),
                messages.quota_words(readiness.quota_left, readiness.job_type, readiness.allocated),
            )
        )
    out.append(fields_section(facts))
    notes: list[str] = []
    if readiness.failed_checks:
        total = len(ASSESS_CHECKS)
        lines = []
        for check in readiness.failed_checks:
            line = messages.check_line(check.label, check.actual, check.expected)
            if check.suggestion:
                line += "\n   " + truncate(check.suggestion, MAX_SUGGESTION)
            lines.append("• " + line)
        if readiness.suggestion:
            overall = truncate(readiness.suggestion, MAX_SUGGESTION)
            lines.append(messages.overall_suggestion(overall))
        out.append(section(messages.checks_out_heading(len(readiness.failed_checks), total)))
        out.append(
            {"type": "section", "text": _as_typed(truncate("\n".join(lines), MAX_SECTION_TEXT))}
        )
        notes.append(messages.checks_in_range(readiness.passed_checks))
    elif readiness.assessed:
        notes.append(messages.checks_in_range(readiness.passed_checks))
    else:
        notes.append(messages.no_assessment())
    if quota and readiness.quota_unread:
        notes.append(messages.quota_unread())
    out.append(context(*notes))
    return out


def quotas_message(quotas: TrainingQuotas | None) -> OutgoingMessage:
    """``/voice quota``: the trainings left per type, and each resource with its expiry."""
    if quotas is None:
        return text_message(messages.quotas_unavailable())
    counts = quotas.resource_available_nums.model_dump(exclude_none=True)
    pairs = [(name, str(left)) for name, left in counts.items() if isinstance(left, int)]
    out: list[dict[str, Any]] = [section(messages.quotas_title())]
    if pairs:
        out.append(fields_section([(escape(k), v) for k, v in pairs]))
    lines = [
        messages.quota_resource(
            r.resource_type or "?",
            r.resource_available_nums or 0,
            r.resource_nums or 0,
            r.expire_time or "?",
        )
        for r in quotas.resources
    ]
    if lines:
        out += pack_lines(lines, MAX_MESSAGE_BLOCKS - len(out), what="resources")
    counts_text = ", ".join(f"{k} {v}" for k, v in pairs)
    text = _("Voice trainings left: {counts}").format(counts=counts_text)
    return OutgoingMessage(text=_fallback(escape(text)), blocks=out)


def approval_progress(card: ApprovalCard) -> dict[str, Any]:
    """How many of the required approvals are in, from whom, and how many are still needed."""
    pending = card.status == "pending"
    return context(messages.approval_progress(card.approvers, card.required_approvals, pending))


def _approval_actions(card: ApprovalCard) -> dict[str, Any]:
    value = approval_button_value(card.request_id, card.payload_hash)
    voice = card.request.voice_name or card.job_name or card.job_id
    confirm = {
        "title": _plain(_("Submit to MetaStudio?")),
        "text": _plain(
            truncate(
                _(
                    "Job {job} ({voice}) goes into review at MetaStudio. This can't be undone."
                ).format(job=card.job_id, voice=voice),
                300,
            )
        ),
        "confirm": _plain(_("Approve")),
        "deny": _plain(_("Cancel")),
    }
    return {
        "type": "actions",
        "block_id": BLOCK_APPROVAL_ACTIONS,
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_APPROVE,
                "text": _plain(_("Approve")),
                "style": "primary",
                "value": value,
                "confirm": confirm,
            },
            {
                "type": "button",
                "action_id": ACTION_REJECT,
                "text": _plain(_("Reject")),
                "style": "danger",
                "value": value,
            },
        ],
    }


# -- job status and outcomes -------------------------------------------------------------


def _job_title(job_id: str, voice_name: str | None) -> str:
    if voice_name:
        return _("Job {job} *{voice}*").format(job=code(job_id, 64), voice=escape(voice_name))
    return _("Job {job}").format(job=code(job_id, 64))


def status_message(job: TrainingJob, readiness: Readiness | None = None) -> OutgoingMessage:
    category = category_words(category_of(job.state))
    pairs: list[tuple[str, str]] = [
        (_("State"), _state_words(job.state)),
        (_("Category"), escape(category)),
    ]
    for label, value in (
        (N_("Type"), job.job_type),
        (N_("Sex"), job.sex),
        (N_("Language"), job.language),
        (N_("Tag"), job.tag),
        (N_("App user ID"), job.app_user_id),
        (N_("Asset ID"), job.asset_id),
    ):
        if value:
            pairs.append((_(label), escape(value)))
    failure = _failure(job.job_failed_code, job.job_failed_reason)
    if failure:
        pairs.append((_("Failure"), failure))
    if job.reject_times:
        pairs.append((_("Rejected"), _("{n} time(s)").format(n=job.reject_times)))
    updated = slack_date(job.lastupdate_time)
    if updated:
        pairs.append((_("Updated"), updated))
    blocks = [section(_job_title(job.job_id, job.voice_name)), fields_section(pairs)]
    if readiness is not None:
        blocks += readiness_blocks(readiness)
    text = _("Job {job} is {state} ({category})").format(
        job=escape(job.job_id), state=escape(state_words(job.state)), category=escape(category)
    )
    return OutgoingMessage(text=_fallback(text), blocks=blocks)


def _failure(code_: str | None, reason: str | None) -> str:
    parts = [code(code_)] if code_ else []
    if reason:
        parts.append(escape(reason))
    return ": ".join(parts)


def dry_run_message(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: Mapping[str, Any] | str | bytes | None,
) -> OutgoingMessage:
    """The exact request a submit would send (credentials already redacted by the caller)."""
    lines = [f"{method.upper()} {url}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        if not isinstance(body, str):
            body = json.dumps(body, ensure_ascii=False, indent=2)
        lines += ["", body]
    # Triple backticks in the content would end the code block early.
    raw = "\n".join(lines).replace("```", "'''")
    shown = escape(raw)
    room = MAX_SECTION_TEXT - 8
    blocks = [section(messages.dry_run_intro())]
    if len(shown) > room:
        blocks.append(section("```" + truncate(shown, room) + "```"))
        blocks.append(
            context(
                _("The request is {n} characters long; the rest is cut here.").format(n=len(raw))
            )
        )
    else:
        blocks.append(section("```" + shown + "```"))
    text = _("Dry run: {method} {url} (nothing was sent)").format(
        method=escape(method.upper()), url=escape(url)
    )
    return OutgoingMessage(text=_fallback(text), blocks=blocks)


def review_passed_message(
    job_id: str, voice_name: str | None, state: str | None = None
) -> OutgoingMessage:
    title = _job_title(job_id, voice_name)
    blocks = [
        section(":tada: " + _("{job} passed review at MetaStudio.").format(job=title)),
        context(
            _("State: {state}. Training follows; I'll post when it finishes.").format(
                state=_state_words(state)
            )
        ),
    ]
    text = _("Job {job} passed review").format(job=escape(job_id))
    return OutgoingMessage(text=_fallback(text), blocks=blocks)


def review_failed_message(
    job_id: str,
    voice_name: str | None,
    audit: AuditResult | None,
    *,
    reason: str | None = None,
    reject_times: int | None = None,
) -> OutgoingMessage:
    """Every system-review error (file, code, message) and the reviewer's message."""
    blocks: list[dict[str, Any]] = [
        section(
            ":x: "
            + _("{job} did not pass review at MetaStudio.").format(
                job=_job_title(job_id, voice_name)
            )
        )
    ]
    admin = audit.admin_audit_result if audit else None
    admin_message = (admin.message if admin else None) or reason
    if admin_message:
        quoted = "\n".join(f"> {line}" for line in escape(admin_message).splitlines())
        blocks.append(section(_("*Reviewer's message*\n{message}").format(message=quoted)))
    if admin and admin.attachment_url and admin.attachment_url.startswith(("https://", "http://")):
        label = escape(admin.attachment_name or _("attachment")).replace("|", "/")
        url = escape(admin.attachment_url).replace("|", "%7C")
        blocks.append(
            section(_("*Reviewer's attachment*: <{url}|{label}>").format(url=url, label=label))
        )
    errors = audit.system_audit_result.errors if audit and audit.system_audit_result else []
    lines = []
    for e in errors:
        files = " / ".join(code(f) for f in (e.audio_name, e.text_name) if f) or _(
            "(no file named)"
        )
        said = escape(e.error_message or _("no message"))
        lines.append(f"• {files}: {code(e.error_code or _('no code'))} {said}")
    if lines:
        blocks.append(section(_("*Automatic review found {n} problem(s):*").format(n=len(lines))))
        budget = MAX_MESSAGE_BLOCKS - len(blocks) - 1
        blocks += pack_lines(lines, budget, what="problems")
    if not admin_message and not lines:
        blocks.append(section(_("MetaStudio gave no reason.")))
    if reject_times:
        todo = _(
            "What to do: fix the files above, upload the data again, then "
            "`/voice submit {job}` again (rejected {n} time(s) so far)."
        ).format(job=escape(job_id), n=reject_times)
    else:
        todo = _(
            "What to do: fix the files above, upload the data again, then "
            "`/voice submit {job}` again."
        ).format(job=escape(job_id))
    blocks.append(context(todo))
    text = _fallback(_("Job {job} did not pass review").format(job=escape(job_id)))
    return OutgoingMessage(text=text, blocks=blocks)


def submit_failed_message(
    job_id: str,
    error_code: str | None,
    error_message: str | None,
    hint: str | None,
    *,
    request_id: str | None = None,
) -> OutgoingMessage:
    """MetaStudio refused the submit: its code, its message, and what to do."""
    blocks = [
        section(":x: " + _("Submitting job {job} failed.").format(job=code(job_id, 64))),
        section(messages.metastudio_error(error_code, error_message, hint)),
        context(
            messages.submit_failed_todo()
            + (
                " " + _("MetaStudio request id {request}.").format(request=code(request_id))
                if request_id
                else ""
            )
        ),
    ]
    text = _("Submitting job {job} failed: {error}").format(
        job=escape(job_id), error=escape(error_code or _("error"))
    )
    return OutgoingMessage(text=_fallback(text), blocks=blocks)


def training_outcome_message(job: TrainingJob) -> OutgoingMessage:
    """The terminal outcome of a job: the asset on SUCCEED, the code and reason otherwise."""
    title = _job_title(job.job_id, job.voice_name)
    if job.state == JobState.SUCCEED:
        asset = code(job.asset_id, 64) if job.asset_id else _("not reported")
        blocks = [
            section(":white_check_mark: " + _("{job} finished training.").format(job=title)),
            fields_section([(_("Asset ID"), asset), (_("State"), _state_words(job.state))]),
        ]
        text = _("Job {job} succeeded").format(job=escape(job.job_id))
        return OutgoingMessage(text=_fallback(text), blocks=blocks)
    why = _failure(job.job_failed_code, job.job_failed_reason) or _("MetaStudio gave no reason.")
    state = escape(state_words(job.state))
    blocks = [
        section(":x: " + _("{job} ended: {state}.").format(job=title, state=state)),
        section(_("*Reason*\n{reason}").format(reason=why)),
    ]
    text = _("Job {job} {state}").format(job=escape(job.job_id), state=state)
    return OutgoingMessage(text=_fallback(text), blocks=blocks)


# -- roles and audit ---------------------------------------------------------------------


def roles_message(members: Mapping[str, Collection[str]]) -> OutgoingMessage:
    """Who holds each role: ``{role: user ids}``."""
    lines = []
    for role, users in members.items():
        who = messages.mentions(sorted(users)) if users else _("_nobody_")
        lines.append(f"*{escape(role)}*: {who}")
    blocks = [section(_("*Roles*"))] + (
        pack_lines(lines, MAX_MESSAGE_BLOCKS - 1, what="roles")
        if lines
        else [section(_("_No roles granted._"))]
    )
    return OutgoingMessage(text=_("Roles"), blocks=blocks)


def user_roles_message(
    user_id: str, roles: Collection[str], sources: Mapping[str, Sequence[str]] | None = None
) -> OutgoingMessage:
    """The roles a user holds; ``sources`` names where a role comes from when not (only)
    from a direct grant."""
    if roles:
        held = ", ".join(
            messages.role_with_source(r, (sources or {}).get(r, ())) for r in sorted(roles)
        )
        text = _("{user} has: {roles}").format(user=mention(user_id), roles=held)
    else:
        text = messages.no_roles(user_id)
    return OutgoingMessage(text=_fallback(text), blocks=[section(text)])


def _get(event: object, name: str) -> Any:
    if isinstance(event, Mapping):
        return event.get(name)
    return getattr(event, name, None)


def _audit_line(event: object) -> str:
    ts = _get(event, "ts")
    when: str | None
    if isinstance(ts, datetime | int | float):
        when = slack_date(ts)
    elif isinstance(ts, str) and ts:
        try:
            when = slack_date(float(ts.split("-")[0]))
        except ValueError:
            when = escape(ts)
    else:
        when = None
    parts = [when or "?"]
    actor = _get(event, "actor")
    parts.append(mention(str(actor)) if actor else _("system"))
    parts.append(f"*{escape(str(_get(event, 'action') or _('event')))}*")
    role = _get(event, "role")
    if role:
        # Grants and revocations: who (a user or a user group) and which role.
        parts.append(f"{mention(str(_get(event, 'target') or '?'))} {escape(str(role))}")
    job_id = _get(event, "job_id")
    if job_id:
        parts.append(code(str(job_id), 64))
    payload_hash = _get(event, "payload_hash")
    if payload_hash:
        parts.append(_("payload {hash}").format(hash=code(str(payload_hash)[:12])))
    detail = _get(event, "detail")
    if detail:
        parts.append(escape(truncate(str(detail), 300)))
    return " · ".join(parts)


def audit_message(events: Sequence[object], *, job_id: str | None = None) -> OutgoingMessage:
    """An audit trail, newest last. Events are mappings or objects with ts, actor, action,
    job_id, payload_hash and detail."""
    if job_id:
        heading = _("*Audit trail for job {job}* ({n} events)").format(
            job=code(job_id, 64), n=len(events)
        )
        text = _("Audit trail for job {job}: {n} events").format(job=escape(job_id), n=len(events))
    else:
        heading = _("*Audit trail* ({n} events)").format(n=len(events))
        text = _("Audit trail: {n} events").format(n=len(events))
    blocks: list[dict[str, Any]] = [section(heading)]
    if events:
        blocks += pack_lines(
            [_audit_line(e) for e in events], MAX_MESSAGE_BLOCKS - 1, what="events"
        )
    else:
        blocks.append(section(_("_No events recorded._")))
    return OutgoingMessage(text=_fallback(text), blocks=blocks)


def quoting(sentence: str, typed: str | None, fallback: str) -> OutgoingMessage:
    """A sentence followed by someone's words exactly as they typed them."""
    out = [section(sentence)]
    if typed:
        out.append({"type": "section", "text": _as_typed(truncate(typed, MAX_SECTION_TEXT))})
    return OutgoingMessage(text=_fallback(fallback), blocks=out)


def text_message(text: str) -> OutgoingMessage:
    """A single-section message from any of the sentences in ``messages``."""
    return OutgoingMessage(text=_fallback(text), blocks=[section(text)])
