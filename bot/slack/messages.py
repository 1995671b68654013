"""Every sentence the bot shows a Slack user, as small functions returning mrkdwn strings.

Handlers and builders never spell out user-facing text themselves; they call one of these.
Arguments are primitives (ids, codes, names) so any layer can use this module without
importing the others. User-supplied text is escaped here, at the point it enters mrkdwn.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence

COMMAND = "/voice"

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,20}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,20}")


# -- mrkdwn helpers ----------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def code(text: str, limit: int = 60) -> str:
    """Show user input verbatim in an inline code span (escaped, shortened, never empty)."""
    if not text:
        return "(empty)"
    # A backtick inside would end the span early, a newline would break it.
    shown = truncate(text, limit).replace("`", "'").replace("\n", " ")
    return f"`{escape(shown)}`"


def mention(user_id: str) -> str:
    """A user (or user group) mention when ``user_id`` has the shape of a Slack ID, else the
    escaped text."""
    if _GROUP_ID.fullmatch(user_id):
        return f"<!subteam^{user_id}>"
    if _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape(user_id)


def mentions(user_ids: Iterable[str]) -> str:
    return ", ".join(mention(u) for u in user_ids)


def _or_list(items: Iterable[str]) -> str:
    return ", ".join(f"`{escape(i)}`" for i in items)


# -- usage -------------------------------------------------------------------------------

_USAGE_LINES: dict[str, str] = {
    "help": "`{c} help`: show this list",
    "status": "`{c} status &lt;job_id&gt;`: show a job's state at MetaStudio",
    "quota": "`{c} quota`: voice trainings left per type (for anyone with a role)",
    "roles": "`{c} roles [@user]`: your roles; admins can name a user, or see everyone's",
    "submit": (
        "`{c} submit`: open the submit form\n"
        '• `{c} submit &lt;job_id&gt; voice_name="My voice" sex=female language=cn tag=customer'
        " [--dry-run]`: ask for approval to submit a training job"
    ),
    "grant": "`{c} grant @user &lt;role&gt;`: give a user a role (requester, approver, admin)",
    "revoke": "`{c} revoke @user &lt;role&gt;`: take a role away from a user",
    "audit": "`{c} audit [job_id]`: show the audit trail, for one job or for all",
    "policy": (
        "`{c} policy [#channel approvals=N]`: show the approval policies; admins set how many"
        " approvers a channel's requests need"
    ),
}

# Who may use what: every subcommand is listed for everyone, under the role it needs.
USAGE_BY_ROLE: tuple[tuple[str | None, tuple[str, ...]], ...] = (
    (None, ("help", "status", "quota", "roles", "policy")),
    ("requester", ("submit",)),
    ("approver", ()),
    ("admin", ("grant", "revoke", "audit")),
)
_ROLE_DUTY = {
    "approver": "Approve or Reject on approval cards (someone else's requests)",
}


def _role_heading(role: str, held: Collection[str] | None, admins: Sequence[str]) -> str:
    heading = f"*Needs the {escape(role)} role*"
    if held is None:
        return heading
    if role in held:
        return heading + " (you have it)"
    who = f"ask an admin: {mentions(admins)}" if admins else "ask a workspace admin"
    return f"{heading} (you don't have it; {who})"


def usage_text(
    held: Collection[str] | None, admins: Sequence[str] = (), *, command: str = COMMAND
) -> str:
    """Every subcommand, under the role it needs, saying which roles the caller holds
    (``held``; None when they could not be read) and who can grant the others."""
    c = escape(command)
    lines = [f"*Usage of `{c}`:*"]
    for role, names in USAGE_BY_ROLE:
        if role is not None:
            lines.append(_role_heading(role, held, admins))
        lines += ["• " + _USAGE_LINES[name].format(c=c) for name in names]
        if role in _ROLE_DUTY:
            lines.append("• " + _ROLE_DUTY[role])
    if held is not None and "requester" in held:
        lines.append(submit_keys_text())
    return "\n".join(lines)


def submit_keys_text() -> str:
    """The keys `submit` accepts, with their allowed values and limits."""
    return (
        '*Submit keys* (quote values with spaces: `description="two words"`):\n'
        "• `voice_name` (required, up to 64 characters)\n"
        "• `sex`: female, male\n"
        "• `language`: cn, en\n"
        "• `tag`: ecommerce, news, marketing, live, education, customer, storytelling\n"
        "• `description` (up to 512 characters), `custom_text` (audition text, up to 512)\n"
        "• `phone` (5 to 20 digits, may start with +)\n"
        "• `app_user_id` (ASCII letters, digits and punctuation, up to 64, no spaces)\n"
        "• `output_language` (letters, - and _, up to 16)\n"
        "• `--dry-run`: show the exact request without sending it"
    )


# -- parse problems ----------------------------------------------------------------------


def parse_problems(
    problems: Sequence[tuple[str | None, str]],
    *,
    subcommand: str | None = None,
    command: str = COMMAND,
) -> str:
    """Everything wrong with one command line, one bullet per problem."""
    lines = ["I couldn't read that command:"]
    for field, message in problems:
        lines.append(f"• *{escape(field)}*: {message}" if field else f"• {message}")
    if subcommand:
        lines.append(f"See `{command} help` for how to use `{escape(subcommand)}`.")
    else:
        lines.append(f"See `{command} help` for the usage.")
    return "\n".join(lines)


def command_too_long(limit: int) -> str:
    return f"The command is too long: keep it under {limit} characters."


def empty_command() -> str:
    return "Start with a subcommand, for example `/voice help`."


def unknown_subcommand(word: str, suggestion: str | None, names: Iterable[str]) -> str:
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    return f"Unknown subcommand {code(word)}.{hint} Use one of: {_or_list(names)}."


def not_a_subcommand(word: str, suggestion: str | None) -> str:
    """An unknown first word, for a reply that lists the caller's subcommands after it."""
    hint = f" Did you mean `{escape(suggestion)}`?" if suggestion else ""
    return f"Unknown subcommand {code(word)}.{hint}"


def unreadable_with_usage(problems: Sequence[str], usage: str) -> str:
    """Input with no recognisable subcommand: what was wrong, then what the caller can do."""
    lines = ["I couldn't read that command:"] + [f"• {p}" for p in problems]
    return "\n".join(lines) + "\n\n" + usage


def unterminated_quote(fragment: str) -> str:
    return (
        f"The quote that starts {code(fragment, 30)} is never closed. "
        "Close it with the same kind of quote, followed by a space or the end of the line."
    )


def unknown_key(key: str, suggestion: str | None, allowed: Iterable[str]) -> str:
    if key.replace("-", "_") in {"dry_run", "dryrun"}:
        return "Dry run is a flag, not a key: write `--dry-run`."
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    return f"Unknown key {code(key)}.{hint} Allowed keys: {_or_list(allowed)}."


def unknown_flag(flag: str) -> str:
    return f"Unknown flag {code(flag)}. The only flag is `--dry-run`."


def duplicate_key(key: str) -> str:
    return f"`{escape(key)}` is given more than once; give each key once."


def missing_value(key: str) -> str:
    return (
        f"`{escape(key)}=` has no value. Write `{escape(key)}=value` with no space after `=`, "
        "and quote values with spaces."
    )


def bare_word(word: str, subcommand: str) -> str:
    if subcommand == "submit":
        return (
            f"{code(word)} is not `key=value`. Put the job id right after `submit`, then "
            'only `key=value` pairs; quote values with spaces: `description="two words"`.'
        )
    return f"{code(word)} is not expected here: `{escape(subcommand)}` takes no more words."


def unexpected_key_value(word: str, subcommand: str) -> str:
    return f"{code(word)} is not expected here: `{escape(subcommand)}` takes no `key=value` pairs."


def bad_enum(key: str, value: str, allowed: Iterable[str], suggestion: str | None) -> str:
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    return f"{code(value)} is not a valid {escape(key)}.{hint} Use one of: {_or_list(allowed)}."


def bad_job_id(value: str) -> str:
    return (
        f"{code(value)} is not a job id. A MetaStudio job id is 8 to 64 characters of "
        "letters, digits and `-` (for example `26f06524-4f75-4b3a-a853-b649a21aaf66`)."
    )


def missing_job_id(subcommand: str) -> str:
    return (
        f"`{escape(subcommand)}` needs a job id, e.g. `/voice {escape(subcommand)} &lt;job_id&gt;`."
    )


def too_long(key: str, limit: int, length: int) -> str:
    return f"`{escape(key)}` is {length} characters long; the limit is {limit}."


def voice_name_required() -> str:
    return (
        "`voice_name` is required: it becomes the name of the voice in the asset library. "
        'Add `voice_name="..."`.'
    )


def control_characters(key: str, multiline: bool) -> str:
    if multiline:
        return f"`{escape(key)}` contains control characters; use plain text."
    return f"`{escape(key)}` must be one line of plain text (no line breaks or control characters)."


def bad_phone(value: str) -> str:
    return f"{code(value)} is not a phone number: use 5 to 20 digits, optionally starting with `+`."


def bad_app_user_id(value: str) -> str:
    return (
        f"{code(value)} is not a valid app_user_id: use ASCII letters, digits and punctuation, "
        "no spaces, up to 64 characters (MetaStudio rejects Chinese characters here)."
    )


def bad_output_language(value: str) -> str:
    return (
        f"{code(value)} is not a valid output_language: use letters, `-` and `_`, "
        "up to 16 characters (for example `CN` or `EN`)."
    )


def missing_user(subcommand: str) -> str:
    name = escape(subcommand)
    return f"`{name}` needs a user: mention them, e.g. `/voice {name} @alice`."


def missing_role(subcommand: str, roles: Iterable[str]) -> str:
    return f"`{escape(subcommand)}` needs a role: one of {_or_list(roles)}."


def bad_role(value: str, roles: Iterable[str], suggestion: str | None) -> str:
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    return f"{code(value)} is not a role.{hint} Roles: {_or_list(roles)}."


def display_name_mention(text: str) -> str:
    return (
        f"{code(text)} is a display name, not a user. Mention the user (type @ and pick them "
        "from the list) so Slack fills in their ID. If it still arrives as plain text, turn on "
        "*Escape channels, users, and links* for the slash command in the app settings."
    )


def not_a_user(text: str) -> str:
    return f"{code(text)} is not a user. Mention a person, not a channel or a group."


def bad_user_id(text: str) -> str:
    return f"{code(text)} is not a Slack user. Mention the user, e.g. `@alice`."


def modal_job_required() -> str:
    return "Choose the job to submit."


# -- permissions -------------------------------------------------------------------------


def permission_denied(role: str, action: str, admins: Sequence[str]) -> str:
    """E.g. "You need the *approver* role to approve requests. Ask an admin: <@U1>, <@U2>." """
    who = f" Ask an admin: {mentions(admins)}." if admins else " Ask a workspace admin."
    return f"You need the *{escape(role)}* role to {escape(action)}.{who}"


def channel_not_allowed(channel_id: str, allowed_channels: Sequence[str]) -> str:
    where = ", ".join(f"<#{c}>" for c in allowed_channels if _CHANNEL_ID.fullmatch(c))
    tail = f" Use it in {where}." if where else ""
    here = f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else code(channel_id)
    return f"`/voice` can't be used in {here}.{tail}"


def decision_not_confirmed() -> str:
    return (
        "I couldn't confirm your decision on the store's replicas, so the card doesn't show "
        "it yet. If the card still has its buttons in a minute, click again."
    )


def decision_unconfirmed() -> str:
    return (
        "I couldn't confirm your decision: the approval store didn't answer, so it may not be "
        "recorded. If the card still has its buttons in a minute, click again."
    )


def request_unconfirmed(channel_id: str) -> str:
    where = f" in <#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else ""
    return (
        f"I posted the approval card{where}, but the store didn't confirm the request was "
        "recorded. If a click on the card says the request can't be found, submit again."
    )


def submitted_without_approval(request_id: str, channel_id: str | None) -> str:
    where = f" in <#{channel_id}>" if channel_id and _CHANNEL_ID.fullmatch(channel_id) else ""
    return (
        f"Approval is not required here, so request `{escape(request_id)}` goes straight to "
        f"MetaStudio. I'll post updates in its thread{where}."
    )


def permission_store_unavailable() -> str:
    return (
        "I can't check permissions right now (the permission store is unavailable), "
        "so nothing was done. Try again in a minute."
    )


def role_with_source(role: str, sources: Sequence[str]) -> str:
    groups = [s for s in sources if s != "direct"]
    if not groups:
        return f"*{escape(role)}*"
    through = ", ".join(mention(g) for g in groups)
    direct = "directly and " if "direct" in sources else ""
    return f"*{escape(role)}* ({direct}through {through})"


def group_lookup_failed(group: str, error: str) -> str:
    return (
        f"I couldn't read who is in {mention(group)} from Slack ({code(error, 40)}), so roles "
        "given through that group count for no one right now, and nothing was done. If this "
        "says `missing_scope`, reinstall the app with the `usergroups:read` scope."
    )


def group_role_refused(group: str, role: str) -> str:
    return (
        f"The *{escape(role)}* role is given to a person, not to a group like {mention(group)}"
        ": a group's members change outside voicebot. Grant it to each person instead."
    )


def role_granted(user_id: str, role: str) -> str:
    return f"{mention(user_id)} now has the *{escape(role)}* role."


def role_already_held(user_id: str, role: str) -> str:
    return f"{mention(user_id)} already has the *{escape(role)}* role; nothing changed."


def role_revoked(user_id: str, role: str) -> str:
    return f"{mention(user_id)} no longer has the *{escape(role)}* role."


def role_not_held(user_id: str, role: str) -> str:
    return f"{mention(user_id)} does not have the *{escape(role)}* role; nothing changed."


def last_admin(user_id: str) -> str:
    return f"{mention(user_id)} is the last admin; grant admin to someone else first."


def no_roles(user_id: str) -> str:
    return f"{mention(user_id)} has no roles."


# -- approvals ---------------------------------------------------------------------------

APPROVAL_STATUS_WORDS: dict[str, str] = {
    "pending": "Waiting for an approver",
    "approved": "Approved",
    "rejected": "Rejected",
    "expired": "Expired without a decision",
    "submitting": "Approved, submitting to MetaStudio",
    "submitted": "Submitted to MetaStudio",
    "submit_failed": "Submit to MetaStudio failed",
    "under_review": "Submitted, under review at MetaStudio",
    "passed": "Review passed at MetaStudio",
    "failed": "Review failed at MetaStudio",
    "auto_approved": "Auto-approved (approval is not required)",
    "succeeded": "Training succeeded",
    "training_failed": "Training failed at MetaStudio",
}


def approval_status(status: str) -> str:
    return APPROVAL_STATUS_WORDS.get(status, escape(status.replace("_", " ")))


def approval_requested(request_id: str, channel_id: str | None) -> str:
    where = f" in <#{channel_id}>" if channel_id and _CHANNEL_ID.fullmatch(channel_id) else ""
    return (
        f"Approval requested{where} (request `{escape(request_id)}`). "
        "I'll post updates in the thread."
    )


def self_approval_refused() -> str:
    return "You can't approve your own request; ask another approver."


def not_an_approver(admins: Sequence[str]) -> str:
    return permission_denied("approver", "approve or reject requests", admins)


def request_expired(request_id: str) -> str:
    return (
        f"Request `{escape(request_id)}` has expired; nothing was submitted. "
        "Ask the requester to submit again."
    )


def request_not_found(request_id: str) -> str:
    return f"I can't find request `{escape(request_id)}`; it may have expired and been removed."


def already_decided(status: str, decided_by: str | None) -> str:
    by = f" by {mention(decided_by)}" if decided_by else ""
    return f"This request was already decided{by}: {approval_status(status).lower()}."


def payload_changed() -> str:
    return (
        "This approval card is out of date (the request changed after it was posted); "
        "nothing was done. Use the latest card in the thread."
    )


def approval_progress(approvers: Sequence[str], required: int, pending: bool) -> str:
    count = min(len(approvers), required)
    line = f":busts_in_silhouette: {count} of {required} approvals"
    if approvers:
        line += ": " + ", ".join(mention(user) for user in approvers)
    missing = required - len(approvers)
    if pending and missing > 0:
        noun = "approval" if missing == 1 else "approvals"
        line += f" · {missing} more {noun} needed from another approver"
    return line


def approval_counted(approvers: Sequence[str], required: int) -> str:
    missing = required - len(approvers)
    noun = "approval" if missing == 1 else "approvals"
    return (
        f"Your approval is counted: {len(approvers)} of {required}. "
        f"The request needs {missing} more {noun} from other approvers before it is submitted."
    )


def already_approved(required: int) -> str:
    return (
        f"You already approved this request. It needs {required} approvals from "
        "different approvers; a second click of yours does not count."
    )


def home_no_roles() -> str:
    return (
        "You hold no voicebot role yet. Type `/voice help` to see what each role does and "
        "who can grant it."
    )


def bad_channel(word: str) -> str:
    return f"{code(word, 40)} is not a channel: pick one with #, e.g. `#voice`."


def unknown_policy_key(key: str) -> str:
    return f"{code(key, 40)} is not a policy setting: the one setting is `approvals=N`."


def bad_approvals(value: str, most: int) -> str:
    return f"`approvals` must be a whole number from 1 to {most}, not {code(value, 40)}."


def missing_policy_channel() -> str:
    return "Name the channel the policy is for, e.g. `policy #voice approvals=2`."


def missing_approvals() -> str:
    return "Say how many approvals the channel's requests need, e.g. `approvals=2`."


def policy_set(channel_id: str, approvals: int) -> str:
    noun = "approval" if approvals == 1 else "approvals"
    return (
        f"Requests made in <#{channel_id}> now need {approvals} {noun} from different "
        "approvers. Requests already open keep the policy they were made with."
    )


def policies_text(default: int, channels: Mapping[str, int]) -> str:
    lines = [f"*Approval policies:* every channel needs {default} approval(s), unless set here:"]
    if not channels:
        lines.append("• no channel has a policy of its own")
    lines += [f"• <#{channel}>: {n} approval(s)" for channel, n in channels.items()]
    return "\n".join(lines)


def approved_by(user_id: str) -> str:
    return f"Approved by {mention(user_id)}."


def approved_by_all(user_ids: Sequence[str]) -> str:
    """The decision of a request that needed several approvers: all of them, in order."""
    if len(user_ids) == 1:
        return approved_by(user_ids[0])
    *first, last = [mention(u) for u in user_ids]
    return f"Approved by {', '.join(first)} and {last}."


def rejected_by(user_id: str, reason: str | None) -> str:
    because = f": {escape(reason)}" if reason else "."
    return f"Rejected by {mention(user_id)}{because}"


def auto_approved() -> str:
    return "Approval is not required in this workspace, so the request goes straight to MetaStudio."


def wrong_workspace() -> str:
    return (
        "This request belongs to another workspace; only its own workspace can approve or "
        "reject it. Nothing was done."
    )


def wrong_channel(channel_id: str | None) -> str:
    where = f" in <#{channel_id}>" if channel_id and _CHANNEL_ID.fullmatch(channel_id) else ""
    return f"Decide this request from its approval card{where}. Nothing was done."


# -- making a request --------------------------------------------------------------------

_SLACK_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "not_allowed_token_type",
    }
)
_NOTHING_REQUESTED = "Nothing was requested."


def card_not_posted(channel_id: str, error: str, *, configured: bool) -> str:
    """Slack refused the approval card: why, and what to do about it."""
    here = f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else code(channel_id)
    fix_setting = "ask an admin to set `VOICEBOT_APPROVAL_CHANNEL` to a channel I'm in"
    where = f"the approval channel {here}" if configured else here
    if error == "not_in_channel":
        todo = (
            f"ask someone in {here} to invite me there with `/invite @voicebot`, or {fix_setting}"
            if configured
            else "invite me with `/invite @voicebot`, then submit again"
        )
        return f"I can't post the approval card in {where}: I'm not a member. {_cap(todo)}. " + (
            _NOTHING_REQUESTED
        )
    if error == "channel_not_found":
        return (
            f"I can't post the approval card in {where}: it is private and I'm not in it, or "
            f"it doesn't exist. Invite me with `/invite @voicebot`, or {fix_setting}. "
            + _NOTHING_REQUESTED
        )
    if error == "is_archived":
        return (
            f"I can't post the approval card in {where}: the channel is archived. "
            f"Submit from another channel, or {fix_setting}. " + _NOTHING_REQUESTED
        )
    if error in _SLACK_TOKEN_ERRORS:
        return (
            f"Slack refused my credentials (`{escape(error)}`), so I can't post the approval "
            "card. Ask an operator to check `SLACK_BOT_TOKEN` and the app's installation. "
            + _NOTHING_REQUESTED
        )
    if error == "no_answer":
        return "Slack did not answer when I posted the approval card. " + (
            _NOTHING_REQUESTED + " Try again in a minute."
        )
    return (
        f"Slack refused the approval card in {where} (`{escape(error)}`). "
        + _NOTHING_REQUESTED
        + " Try again, or ask an operator to look at the logs."
    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def open_request_exists(job_id: str, request_id: str, link: str) -> str:
    card = link or f"request `{escape(request_id)}`"
    return (
        f"Job `{escape(job_id)}` already has an open request: {card}. "
        "It can be asked for again once that one is decided, expires or ends."
    )


def request_in_progress(job_id: str) -> str:
    return (
        f"A request for job `{escape(job_id)}` is being made right now. "
        "Look for its card in a few seconds."
    )


def in_words(seconds: float) -> str:
    """A wait, rounded up: "40 seconds", "3 minutes", "2 hours"."""
    whole = max(1, int(-(-seconds // 1)))
    if whole < 90:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = -(-whole // 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{-(-minutes // 60)} hours"


def too_many_open_requests(open_count: int, retry_after: float) -> str:
    return (
        f"You already have {open_count} requests waiting for approval, the most allowed. "
        f"Try again when one is decided, or in {in_words(retry_after)}, when the oldest expires."
    )


def request_rate_limited(limit: int, window: float, retry_after: float) -> str:
    return (
        f"You have made {limit} requests in the last {in_words(window)}, the most allowed. "
        f"Try again in {in_words(retry_after)}."
    )


# -- MetaStudio --------------------------------------------------------------------------


def metastudio_error(code_: str | None, message: str | None, hint: str | None) -> str:
    """A MetaStudio failure in words: what it said, and what to do about it."""
    said = escape(message) if message else "no details"
    tag = f" (`{escape(code_)}`)" if code_ else ""
    todo = f" {escape(hint)}" if hint else ""
    return f"MetaStudio refused the call{tag}: {said}.{todo}"


_CREDENTIAL_WORDS: dict[str, str] = {
    "signature": "it did not accept the request signature",
    "clock": "the bot's signatures look expired, so the bot's clock is off",
    "unknown_ak": "it does not know the bot's access key",
    "locked": "it has locked the bot's access key for five minutes after repeated failed sign-ins",
    "token": "it refused the bot's IAM token",
    "iam": "IAM refused the bot's sign-in",
}


def credentials_refused(kind: str) -> str:
    words = _CREDENTIAL_WORDS.get(kind, _CREDENTIAL_WORDS["signature"])
    return f"MetaStudio refused the bot's credentials: {words}."


def credentials_call_refused(kind: str, hint: str) -> str:
    """A command's answer while MetaStudio refuses the bot's credentials."""
    return f"{credentials_refused(kind)} Nothing was sent. {escape(hint)}"


def submit_held(job_id: str, kind: str, hint: str) -> str:
    """The one thread reply for a submit held because the credentials were refused."""
    return (
        f"{credentials_refused(kind)} The submit of job `{escape(job_id)}` is on hold, not "
        "lost: nothing was sent, and I'll send it once, as soon as MetaStudio accepts the "
        f"credentials again. {escape(hint)}"
    )


def held_note(kind: str) -> str:
    """The approval card's note while its submit is held (plain text)."""
    return (
        f"On hold: {credentials_refused(kind)} Nothing was sent; the submit goes out once "
        "the credentials work again."
    )


def metastudio_unavailable() -> str:
    return "MetaStudio is not answering right now. Nothing was lost; I'll keep trying."


def job_not_found(job_id: str) -> str:
    return (
        f"MetaStudio has no job `{escape(job_id)}`. "
        "Check the id with `/voice status &lt;job_id&gt;`."
    )


def job_not_submittable(job_id: str, state_words: str) -> str:
    return (
        f"Job `{escape(job_id)}` can't be submitted now: it is {escape(state_words)}. "
        "A job can be submitted after its data is uploaded, or again after a failed review."
    )


def submit_blocked(job_id: str, *, authorization: bool, failed_checks: Sequence[str]) -> str:
    """Why a job may not be requested under the blocking settings, and what to do."""
    parts = [f"Job `{escape(job_id)}` can't be requested yet."]
    if authorization:
        parts.append(
            "It has no authorization letter from the voice owner, and this workspace requires "
            "one before review. Upload the signed letter to the job in the MetaStudio console "
            "(voice training job, authorization), then run `/voice submit` again."
        )
    if failed_checks:
        parts.append(
            f"MetaStudio's assessment of its audio is out of range for "
            f"{escape(', '.join(failed_checks))}, and this workspace refuses such jobs. "
            "Record and upload the audio again as `/voice status &lt;job_id&gt;` suggests, "
            "then run `/voice submit` again."
        )
    return " ".join(parts)


# -- what decides a review (card and status) ----------------------------------------------


def risks_heading(risks: Sequence[str]) -> str:
    return ":warning: *Before you approve:* " + "; ".join(risks) + "."


def risk_no_authorization() -> str:
    return "*no authorization letter* from the voice owner"


def risk_checks_out(count: int, total: int) -> str:
    return f"*{count} of {total} audio checks out of range*"


def risk_no_quota(job_type: str) -> str:
    return f"*no {escape(job_type)} trainings left* and none allocated to this job"


def no_risks() -> str:
    return ":white_check_mark: Nothing MetaStudio reports stands in the way of review."


def job_type_words(job_type: str | None) -> str:
    return f"`{escape(job_type)}`" if job_type else "not reported"


def authorization_words(present: bool) -> str:
    return ":white_check_mark: uploaded" if present else ":warning: *missing*"


def reject_times_words(times: int) -> str:
    if times <= 0:
        return "never failed review"
    return f"failed review {times} time{'s' if times != 1 else ''} before"


def quota_words(left: int | None, job_type: str | None, allocated: bool) -> str:
    if allocated:
        return "a training resource is allocated to this job"
    if left is None:
        return f"MetaStudio counts none for {job_type_words(job_type)}"
    if left == 0:
        return f":warning: *none left* of {job_type_words(job_type)}"
    return f"{left} of {job_type_words(job_type)}"


def quota_unread() -> str:
    return "Trainings left: not shown, MetaStudio's quota did not answer in time."


def checks_out_heading(count: int, total: int) -> str:
    return f":warning: *Audio out of range* ({count} of {total} checks, MetaStudio's assessment):"


def check_line(label: str, actual: str | None, expected: str | None) -> str:
    return f"{label}: {actual or '?'} (expected {expected or '?'})"


def checks_in_range(labels: Sequence[str]) -> str:
    if not labels:
        return "No audio check in range."
    return "In range: " + ", ".join(escape(label) for label in labels) + "."


def no_assessment() -> str:
    return "MetaStudio reports no assessment of the audio for this job."


def overall_suggestion(text: str) -> str:
    return f"MetaStudio suggests: {text}"


def readiness_unread() -> str:
    return "The job's assessment is not shown: MetaStudio did not answer in time."


def risks_after_decision(job_id: str) -> str:
    return (
        "What decides the review was shown here until the decision; "
        f"`/voice status {escape(job_id)}` shows it now."
    )


def quotas_title() -> str:
    return "*Voice trainings left*"


def quota_row(kind: str, left: int) -> str:
    return f"{escape(kind)}: {left}"


def quota_resource(resource_type: str, left: int, total: int, expires: str) -> str:
    return f"{escape(resource_type)}: {left} of {total} left, expires {escape(expires)}"


def quotas_unavailable() -> str:
    return "MetaStudio did not answer with the training quotas in time; try again shortly."


def no_role_held(admins: Sequence[str]) -> str:
    who = f" Ask {mentions(admins)} for one." if admins else " Ask an admin for one."
    return "The quota table is for people with a role here." + who


def submit_accepted(job_id: str) -> str:
    return f"Submitted job `{escape(job_id)}` to MetaStudio; it is now in review."


def submit_failed_todo() -> str:
    return "Nothing was submitted. Fix the cause above, then run `/voice submit` again."


def dry_run_intro() -> str:
    return "*Dry run*: this is the exact request I would send. Nothing was sent."


def unknown_caller() -> str:
    return "I can't tell who sent this command or from which workspace, so nothing was done."


def internal_error(reference: str) -> str:
    return (
        f"Something went wrong on my side (reference `{escape(reference)}`); nothing was done. "
        "Please tell an admin."
    )


def busy() -> str:
    return "I'm busy right now; please try again in a few seconds."


# -- modal -------------------------------------------------------------------------------

# Job picker options: plain text, at most 75 characters.
PICKER_UNAVAILABLE = "MetaStudio is unavailable; try again"
PICKER_CREDENTIALS = "MetaStudio refused the bot's credentials; ask an operator"

MODAL_TITLE = "Submit voice training"
MODAL_SUBMIT = "Request approval"
MODAL_SUBMIT_DIRECT = "Submit"
MODAL_CLOSE = "Cancel"

MODAL_LABELS: dict[str, str] = {
    "job_id": "Training job",
    "voice_name": "Voice name",
    "sex": "Sex",
    "language": "Language",
    "tag": "Scenario tag",
    "description": "Description",
    "phone": "Phone",
    "app_user_id": "App user ID",
    "output_language": "Output language",
    "custom_text": "Audition text",
    "dry_run": "Dry run",
}

MODAL_HINTS: dict[str, str] = {
    "job_id": "A job whose training data is uploaded (or whose review failed).",
    "voice_name": "Up to 64 characters; becomes the voice's name in the asset library.",
    "description": "Up to 512 characters; shown in the asset library.",
    "phone": "5 to 20 digits, optionally starting with +.",
    "app_user_id": "ASCII only (no Chinese characters), no spaces, up to 64 characters.",
    "output_language": "Letters, - and _, up to 16 characters, e.g. CN or EN.",
    "custom_text": "Up to 512 characters of text for the audition sample.",
}

MODAL_OPTION_WORDS: dict[str, str] = {
    "FEMALE": "Female",
    "MALE": "Male",
    "CN": "Chinese (CN)",
    "EN": "English (EN)",
    "ECOMMERCE": "E-commerce",
    "NEWS": "News",
    "MARKETING": "Marketing",
    "LIVE": "Livestream",
    "EDUCATION": "Education",
    "CUSTOMER": "Customer service",
    "STORYTELLING": "Storytelling",
}

MODAL_DRY_RUN_OPTION = "Show the exact request without sending it"
MODAL_JOB_PLACEHOLDER = "Search by voice name or job id"
