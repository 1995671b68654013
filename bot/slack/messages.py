"""Every sentence the bot shows a Slack user, as small functions returning mrkdwn strings.

Handlers and builders never spell out user-facing text themselves; they call one of these.
Arguments are primitives (ids, codes, names) so any layer can use this module without
importing the others. User-supplied text is escaped here, at the point it enters mrkdwn.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from bot.i18n import N_, Language, _, ngettext

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
        return _("(empty)")
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
    "help": N_("`{c} help`: show this list"),
    "status": N_("`{c} status &lt;job_id&gt;`: show a job's state at MetaStudio"),
    "quota": N_("`{c} quota`: voice trainings left per type (for anyone with a role)"),
    "roles": N_("`{c} roles [@user]`: your roles; admins can name a user, or see everyone's"),
    "submit": N_(
        "`{c} submit`: open the submit form\n"
        '• `{c} submit &lt;job_id&gt; voice_name="My voice" sex=female language=cn tag=customer'
        " [--dry-run]`: ask for approval to submit a training job"
    ),
    "grant": N_("`{c} grant @user &lt;role&gt;`: give a user a role (requester, approver, admin)"),
    "revoke": N_("`{c} revoke @user &lt;role&gt;`: take a role away from a user"),
    "audit": N_("`{c} audit [job_id]`: show the audit trail, for one job or for all"),
    "policy": N_(
        "`{c} policy [#channel approvals=N language=en|zh]`: show the approval policies;"
        " admins set how many approvers a channel's requests need, and its language"
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
    "approver": N_("Approve or Reject on approval cards (someone else's requests)"),
}


def _role_heading(role: str, held: Collection[str] | None, admins: Sequence[str]) -> str:
    if held is None:
        text = _("*Needs the {role} role*")
    elif role in held:
        text = _("*Needs the {role} role* (you have it)")
    elif admins:
        text = _("*Needs the {role} role* (you don't have it; ask an admin: {admins})")
    else:
        text = _("*Needs the {role} role* (you don't have it; ask a workspace admin)")
    return text.format(role=escape(role), admins=mentions(admins))


def usage_text(
    held: Collection[str] | None, admins: Sequence[str] = (), *, command: str = COMMAND
) -> str:
    """Every subcommand, under the role it needs, saying which roles the caller holds
    (``held``; None when they could not be read) and who can grant the others."""
    c = escape(command)
    lines = [_("*Usage of `{c}`:*").format(c=c)]
    for role, names in USAGE_BY_ROLE:
        if role is not None:
            lines.append(_role_heading(role, held, admins))
        lines += ["• " + _(_USAGE_LINES[name]).format(c=c) for name in names]
        if role in _ROLE_DUTY:
            lines.append("• " + _(_ROLE_DUTY[role]))
    if held is not None and "requester" in held:
        lines.append(submit_keys_text())
    return "\n".join(lines)


def submit_keys_text() -> str:
    """The keys `submit` accepts, with their allowed values and limits."""
    return "\n".join(
        (
            _('*Submit keys* (quote values with spaces: `description="two words"`):'),
            "• " + _("`voice_name` (required, up to 64 characters)"),
            "• `sex`: female, male",
            "• `language`: cn, en",
            "• `tag`: ecommerce, news, marketing, live, education, customer, storytelling",
            "• "
            + _("`description` (up to 512 characters), `custom_text` (audition text, up to 512)"),
            "• " + _("`phone` (5 to 20 digits, may start with +)"),
            "• " + _("`app_user_id` (ASCII letters, digits and punctuation, up to 64, no spaces)"),
            "• " + _("`output_language` (letters, - and _, up to 16)"),
            "• " + _("`--dry-run`: show the exact request without sending it"),
        )
    )


# -- parse problems ----------------------------------------------------------------------


def parse_problems(
    problems: Sequence[tuple[str | None, str]],
    *,
    subcommand: str | None = None,
    command: str = COMMAND,
) -> str:
    """Everything wrong with one command line, one bullet per problem."""
    lines = [_("I couldn't read that command:")]
    for field, message in problems:
        lines.append(f"• *{escape(field)}*: {message}" if field else f"• {message}")
    if subcommand:
        lines.append(
            _("See `{command} help` for how to use `{subcommand}`.").format(
                command=command, subcommand=escape(subcommand)
            )
        )
    else:
        lines.append(_("See `{command} help` for the usage.").format(command=command))
    return "\n".join(lines)


def command_too_long(limit: int) -> str:
    return ngettext(
        "The command is too long: keep it under {limit} character.",
        "The command is too long: keep it under {limit} characters.",
        limit,
    ).format(limit=limit)


def empty_command() -> str:
    return _("Start with a subcommand, for example `/voice help`.")


def unknown_subcommand(word: str, suggestion: str | None, names: Iterable[str]) -> str:
    if suggestion:
        text = _("Unknown subcommand {word}. Did you mean `{suggestion}`? Use one of: {names}.")
    else:
        text = _("Unknown subcommand {word}. Use one of: {names}.")
    return text.format(word=code(word), suggestion=suggestion, names=_or_list(names))


def not_a_subcommand(word: str, suggestion: str | None) -> str:
    """An unknown first word, for a reply that lists the caller's subcommands after it."""
    if suggestion:
        return _("Unknown subcommand {word}. Did you mean `{suggestion}`?").format(
            word=code(word), suggestion=escape(suggestion)
        )
    return _("Unknown subcommand {word}.").format(word=code(word))


def unreadable_with_usage(problems: Sequence[str], usage: str) -> str:
    """Input with no recognisable subcommand: what was wrong, then what the caller can do."""
    lines = [_("I couldn't read that command:")] + [f"• {p}" for p in problems]
    return "\n".join(lines) + "\n\n" + usage


def unterminated_quote(fragment: str) -> str:
    return _(
        "The quote that starts {fragment} is never closed. "
        "Close it with the same kind of quote, followed by a space or the end of the line."
    ).format(fragment=code(fragment, 30))


def unknown_key(key: str, suggestion: str | None, allowed: Iterable[str]) -> str:
    if key.replace("-", "_") in {"dry_run", "dryrun"}:
        return _("Dry run is a flag, not a key: write `--dry-run`.")
    if suggestion:
        text = _("Unknown key {key}. Did you mean `{suggestion}`? Allowed keys: {allowed}.")
    else:
        text = _("Unknown key {key}. Allowed keys: {allowed}.")
    return text.format(key=code(key), suggestion=suggestion, allowed=_or_list(allowed))


def unknown_flag(flag: str) -> str:
    return _("Unknown flag {flag}. The only flag is `--dry-run`.").format(flag=code(flag))


def duplicate_key(key: str) -> str:
    return _("`{key}` is given more than once; give each key once.").format(key=escape(key))


def missing_value(key: str) -> str:
    return _(
        "`{key}=` has no value. Write `{key}=value` with no space after `=`, "
        "and quote values with spaces."
    ).format(key=escape(key))


def bare_word(word: str, subcommand: str) -> str:
    if subcommand == "submit":
        return _(
            "{word} is not `key=value`. Put the job id right after `submit`, then "
            'only `key=value` pairs; quote values with spaces: `description="two words"`.'
        ).format(word=code(word))
    return _("{word} is not expected here: `{subcommand}` takes no more words.").format(
        word=code(word), subcommand=escape(subcommand)
    )


def unexpected_key_value(word: str, subcommand: str) -> str:
    return _("{word} is not expected here: `{subcommand}` takes no `key=value` pairs.").format(
        word=code(word), subcommand=escape(subcommand)
    )


def bad_enum(key: str, value: str, allowed: Iterable[str], suggestion: str | None) -> str:
    if suggestion:
        text = _(
            "{value} is not a valid {key}. Did you mean `{suggestion}`? Use one of: {allowed}."
        )
    else:
        text = _("{value} is not a valid {key}. Use one of: {allowed}.")
    return text.format(
        value=code(value), key=escape(key), suggestion=suggestion, allowed=_or_list(allowed)
    )


def bad_job_id(value: str) -> str:
    return _(
        "{value} is not a job id. A MetaStudio job id is 8 to 64 characters of "
        "letters, digits and `-` (for example `26f06524-4f75-4b3a-a853-b649a21aaf66`)."
    ).format(value=code(value))


def missing_job_id(subcommand: str) -> str:
    return _("`{subcommand}` needs a job id, e.g. `/voice {subcommand} &lt;job_id&gt;`.").format(
        subcommand=escape(subcommand)
    )


def too_long(key: str, limit: int, length: int) -> str:
    return ngettext(
        "`{key}` is {length} character long; the limit is {limit}.",
        "`{key}` is {length} characters long; the limit is {limit}.",
        length,
    ).format(key=escape(key), length=length, limit=limit)


def voice_name_required() -> str:
    return _(
        "`voice_name` is required: it becomes the name of the voice in the asset library. "
        'Add `voice_name="..."`.'
    )


def control_characters(key: str, multiline: bool) -> str:
    if multiline:
        text = _("`{key}` contains control characters; use plain text.")
    else:
        text = _("`{key}` must be one line of plain text (no line breaks or control characters).")
    return text.format(key=escape(key))


def bad_phone(value: str) -> str:
    return _(
        "{value} is not a phone number: use 5 to 20 digits, optionally starting with `+`."
    ).format(value=code(value))


def bad_app_user_id(value: str) -> str:
    return _(
        "{value} is not a valid app_user_id: use ASCII letters, digits and punctuation, "
        "no spaces, up to 64 characters (MetaStudio rejects Chinese characters here)."
    ).format(value=code(value))


def bad_output_language(value: str) -> str:
    return _(
        "{value} is not a valid output_language: use letters, `-` and `_`, "
        "up to 16 characters (for example `CN` or `EN`)."
    ).format(value=code(value))


def missing_user(subcommand: str) -> str:
    return _("`{name}` needs a user: mention them, e.g. `/voice {name} @alice`.").format(
        name=escape(subcommand)
    )


def missing_role(subcommand: str, roles: Iterable[str]) -> str:
    return _("`{subcommand}` needs a role: one of {roles}.").format(
        subcommand=escape(subcommand), roles=_or_list(roles)
    )


def bad_role(value: str, roles: Iterable[str], suggestion: str | None) -> str:
    if suggestion:
        text = _("{value} is not a role. Did you mean `{suggestion}`? Roles: {roles}.")
    else:
        text = _("{value} is not a role. Roles: {roles}.")
    return text.format(value=code(value), suggestion=suggestion, roles=_or_list(roles))


def display_name_mention(text: str) -> str:
    return _(
        "{text} is a display name, not a user. Mention the user (type @ and pick them "
        "from the list) so Slack fills in their ID. If it still arrives as plain text, turn on "
        "*Escape channels, users, and links* for the slash command in the app settings."
    ).format(text=code(text))


def not_a_user(text: str) -> str:
    return _("{text} is not a user. Mention a person, not a channel or a group.").format(
        text=code(text)
    )


def bad_user_id(text: str) -> str:
    return _("{text} is not a Slack user. Mention the user, e.g. `@alice`.").format(text=code(text))


def modal_job_required() -> str:
    return _("Choose the job to submit.")


# -- permissions -------------------------------------------------------------------------


def permission_denied(role: str, action: str, admins: Sequence[str]) -> str:
    """E.g. "You need the *approver* role to approve requests. Ask an admin: <@U1>, <@U2>."

    ``action`` is a verb phrase marked with ``N_`` where it is defined (e.g. "approve or reject
    requests"); it is translated here, where the sentence is built."""
    if admins:
        text = _("You need the *{role}* role to {action}. Ask an admin: {admins}.")
    else:
        text = _("You need the *{role}* role to {action}. Ask a workspace admin.")
    return text.format(role=escape(role), action=escape(_(action)), admins=mentions(admins))


def channel_not_allowed(channel_id: str, allowed_channels: Sequence[str]) -> str:
    where = ", ".join(f"<#{c}>" for c in allowed_channels if _CHANNEL_ID.fullmatch(c))
    here = f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else code(channel_id)
    if where:
        return _("`/voice` can't be used in {here}. Use it in {where}.").format(
            here=here, where=where
        )
    return _("`/voice` can't be used in {here}.").format(here=here)


def decision_not_confirmed() -> str:
    return _(
        "I couldn't confirm your decision on the store's replicas, so the card doesn't show "
        "it yet. If the card still has its buttons in a minute, click again."
    )


def decision_unconfirmed() -> str:
    return _(
        "I couldn't confirm your decision: the approval store didn't answer, so it may not be "
        "recorded. If the card still has its buttons in a minute, click again."
    )


def request_unconfirmed(channel_id: str) -> str:
    if _CHANNEL_ID.fullmatch(channel_id):
        return _(
            "I posted the approval card in {channel}, but the store didn't confirm the request "
            "was recorded. If a click on the card says the request can't be found, submit again."
        ).format(channel=f"<#{channel_id}>")
    return _(
        "I posted the approval card, but the store didn't confirm the request was "
        "recorded. If a click on the card says the request can't be found, submit again."
    )


def submitted_without_approval(request_id: str, channel_id: str | None) -> str:
    if channel_id and _CHANNEL_ID.fullmatch(channel_id):
        text = _(
            "Approval is not required here, so request `{request_id}` goes straight to "
            "MetaStudio. I'll post updates in its thread in {channel}."
        )
    else:
        text = _(
            "Approval is not required here, so request `{request_id}` goes straight to "
            "MetaStudio. I'll post updates in its thread."
        )
    return text.format(request_id=escape(request_id), channel=f"<#{channel_id}>")


def permission_store_unavailable() -> str:
    return _(
        "I can't check permissions right now (the permission store is unavailable), "
        "so nothing was done. Try again in a minute."
    )


def role_with_source(role: str, sources: Sequence[str]) -> str:
    groups = [s for s in sources if s != "direct"]
    if not groups:
        return f"*{escape(role)}*"
    if "direct" in sources:
        text = _("*{role}* (directly and through {groups})")
    else:
        text = _("*{role}* (through {groups})")
    return text.format(role=escape(role), groups=", ".join(mention(g) for g in groups))


def group_lookup_failed(group: str, error: str) -> str:
    return _(
        "I couldn't read who is in {group} from Slack ({error}), so roles "
        "given through that group count for no one right now, and nothing was done. If this "
        "says `missing_scope`, reinstall the app with the `usergroups:read` scope."
    ).format(group=mention(group), error=code(error, 40))


def group_role_refused(group: str, role: str) -> str:
    return _(
        "The *{role}* role is given to a person, not to a group like {group}"
        ": a group's members change outside voicebot. Grant it to each person instead."
    ).format(role=escape(role), group=mention(group))


def role_granted(user_id: str, role: str) -> str:
    return _("{user} now has the *{role}* role.").format(user=mention(user_id), role=escape(role))


def role_already_held(user_id: str, role: str) -> str:
    return _("{user} already has the *{role}* role; nothing changed.").format(
        user=mention(user_id), role=escape(role)
    )


def role_revoked(user_id: str, role: str) -> str:
    return _("{user} no longer has the *{role}* role.").format(
        user=mention(user_id), role=escape(role)
    )


def role_not_held(user_id: str, role: str) -> str:
    return _("{user} does not have the *{role}* role; nothing changed.").format(
        user=mention(user_id), role=escape(role)
    )


def last_admin(user_id: str) -> str:
    return _("{user} is the last admin; grant admin to someone else first.").format(
        user=mention(user_id)
    )


def no_roles(user_id: str) -> str:
    return _("{user} has no roles.").format(user=mention(user_id))


# -- approvals ---------------------------------------------------------------------------

APPROVAL_STATUS_WORDS: dict[str, str] = {
    "pending": N_("Waiting for an approver"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "expired": N_("Expired without a decision"),
    "submitting": N_("Approved, submitting to MetaStudio"),
    "submitted": N_("Submitted to MetaStudio"),
    "submit_failed": N_("Submit to MetaStudio failed"),
    "under_review": N_("Submitted, under review at MetaStudio"),
    "passed": N_("Review passed at MetaStudio"),
    "failed": N_("Review failed at MetaStudio"),
    "auto_approved": N_("Auto-approved (approval is not required)"),
    "succeeded": N_("Training succeeded"),
    "training_failed": N_("Training failed at MetaStudio"),
}


def approval_status(status: str) -> str:
    if status in APPROVAL_STATUS_WORDS:
        return _(APPROVAL_STATUS_WORDS[status])
    return escape(status.replace("_", " "))


def approval_requested(request_id: str, channel_id: str | None) -> str:
    if channel_id and _CHANNEL_ID.fullmatch(channel_id):
        text = _(
            "Approval requested in {channel} (request `{request_id}`). "
            "I'll post updates in the thread."
        )
    else:
        text = _("Approval requested (request `{request_id}`). I'll post updates in the thread.")
    return text.format(channel=f"<#{channel_id}>", request_id=escape(request_id))


def self_approval_refused() -> str:
    return _("You can't approve your own request; ask another approver.")


def not_an_approver(admins: Sequence[str]) -> str:
    return permission_denied("approver", N_("approve or reject requests"), admins)


def request_expired(request_id: str) -> str:
    return _(
        "Request `{request_id}` has expired; nothing was submitted. "
        "Ask the requester to submit again."
    ).format(request_id=escape(request_id))


def request_not_found(request_id: str) -> str:
    return _("I can't find request `{request_id}`; it may have expired and been removed.").format(
        request_id=escape(request_id)
    )


def already_decided(status: str, decided_by: str | None) -> str:
    words = approval_status(status)
    # Lowercasing turns an English status heading into a phrase; a translation is shown as
    # written (lowercasing it would also turn "MetaStudio" into "metastudio").
    if words == APPROVAL_STATUS_WORDS.get(status, words):
        words = words.lower()
    if decided_by:
        return _("This request was already decided by {user}: {status}.").format(
            user=mention(decided_by), status=words
        )
    return _("This request was already decided: {status}.").format(status=words)


def payload_changed() -> str:
    return _(
        "This approval card is out of date (the request changed after it was posted); "
        "nothing was done. Use the latest card in the thread."
    )


def approval_progress(approvers: Sequence[str], required: int, pending: bool) -> str:
    count = min(len(approvers), required)
    if approvers:
        line = ngettext(
            ":busts_in_silhouette: {count} of {required} approval: {approvers}",
            ":busts_in_silhouette: {count} of {required} approvals: {approvers}",
            required,
        )
    else:
        line = ngettext(
            ":busts_in_silhouette: {count} of {required} approval",
            ":busts_in_silhouette: {count} of {required} approvals",
            required,
        )
    line = line.format(
        count=count, required=required, approvers=", ".join(mention(user) for user in approvers)
    )
    missing = required - len(approvers)
    if pending and missing > 0:
        line += " · " + ngettext(
            "{missing} more approval needed from another approver",
            "{missing} more approvals needed from another approver",
            missing,
        ).format(missing=missing)
    return line


def approval_counted(approvers: Sequence[str], required: int) -> str:
    missing = required - len(approvers)
    return ngettext(
        "Your approval is counted: {count} of {required}. "
        "The request needs {missing} more approval from other approvers before it is submitted.",
        "Your approval is counted: {count} of {required}. "
        "The request needs {missing} more approvals from other approvers before it is submitted.",
        missing,
    ).format(count=len(approvers), required=required, missing=missing)


def already_approved(required: int) -> str:
    return ngettext(
        "You already approved this request. It needs {required} approval from "
        "different approvers; a second click of yours does not count.",
        "You already approved this request. It needs {required} approvals from "
        "different approvers; a second click of yours does not count.",
        required,
    ).format(required=required)


def home_no_roles() -> str:
    return _(
        "You hold no voicebot role yet. Type `/voice help` to see what each role does and "
        "who can grant it."
    )


def bad_channel(word: str) -> str:
    return _("{word} is not a channel: pick one with #, e.g. `#voice`.").format(word=code(word, 40))


LANGUAGE_NAMES: dict[Language, str] = {
    "en": N_("English"),
    "zh": N_("Simplified Chinese"),
}


def _language_name(language: Language) -> str:
    return _(LANGUAGE_NAMES[language])


def unknown_policy_key(key: str, most: int) -> str:
    return _(
        "{key} is not a policy setting: the settings are `approvals=N` (1 to {most}) and "
        "`language=en` or `language=zh`."
    ).format(key=code(key, 40), most=most)


def bad_approvals(value: str, most: int) -> str:
    return _("`approvals` must be a whole number from 1 to {most}, not {value}.").format(
        most=most, value=code(value, 40)
    )


def bad_policy_language(value: str) -> str:
    return _(
        "{value} is not a language I speak: the languages are `en` (English) and `zh` "
        "(Simplified Chinese), e.g. `language=zh`."
    ).format(value=code(value, 40))


def missing_policy_channel() -> str:
    return _("Name the channel the policy is for, e.g. `policy #voice approvals=2`.")


def missing_approvals() -> str:
    return _(
        "Say what to set for the channel: how many approvals its requests need "
        "(`approvals=2`), its language (`language=zh`), or both."
    )


def policy_set(channel_id: str, approvals: int | None, language: Language | None) -> str:
    channel = f"<#{channel_id}>"
    said: list[str] = []
    if approvals is not None:
        said.append(
            ngettext(
                "Requests made in {channel} now need {n} approval from different approvers.",
                "Requests made in {channel} now need {n} approvals from different approvers.",
                approvals,
            ).format(channel=channel, n=approvals)
        )
        said.append(_("Requests already open keep the policy they were made with."))
    if language is not None:
        said.append(
            _("Cards and thread posts in {channel} are now in {language}.").format(
                channel=channel, language=_language_name(language)
            )
        )
    return " ".join(said)


def policies_text(
    default: int,
    channels: Mapping[str, int],
    default_language: Language,
    languages: Mapping[str, Language],
) -> str:
    lines = [
        ngettext(
            "*Approval policies:* every channel needs {n} approval and speaks {language}, "
            "unless set here:",
            "*Approval policies:* every channel needs {n} approvals and speaks {language}, "
            "unless set here:",
            default,
        ).format(n=default, language=_language_name(default_language))
    ]
    named = sorted(set(channels) | set(languages))
    if not named:
        lines.append(_("• no channel has a policy of its own"))
    for channel in named:
        parts: list[str] = []
        if channel in channels:
            n = channels[channel]
            parts.append(ngettext("{n} approval", "{n} approvals", n).format(n=n))
        if channel in languages:
            parts.append(_language_name(languages[channel]))
        lines.append(
            _("• {channel}: {settings}").format(channel=f"<#{channel}>", settings=", ".join(parts))
        )
    return "\n".join(lines)


def approved_by(user_id: str) -> str:
    return _("Approved by {user}.").format(user=mention(user_id))


def approved_by_all(user_ids: Sequence[str]) -> str:
    """The decision of a request that needed several approvers: all of them, in order."""
    if len(user_ids) == 1:
        return approved_by(user_ids[0])
    *first, last = [mention(u) for u in user_ids]
    return _("Approved by {users} and {last}.").format(users=", ".join(first), last=last)


def rejected_by(user_id: str, reason: str | None) -> str:
    if reason:
        return _("Rejected by {user}: {reason}").format(
            user=mention(user_id), reason=escape(reason)
        )
    return _("Rejected by {user}.").format(user=mention(user_id))


def auto_approved() -> str:
    return _(
        "Approval is not required in this workspace, so the request goes straight to MetaStudio."
    )


def wrong_workspace() -> str:
    return _(
        "This request belongs to another workspace; only its own workspace can approve or "
        "reject it. Nothing was done."
    )


def wrong_channel(channel_id: str | None) -> str:
    if channel_id and _CHANNEL_ID.fullmatch(channel_id):
        return _(
            "Decide this request from its approval card in {channel}. Nothing was done."
        ).format(channel=f"<#{channel_id}>")
    return _("Decide this request from its approval card. Nothing was done.")


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
_NOTHING_REQUESTED = N_("Nothing was requested.")


def card_not_posted(channel_id: str, error: str, *, configured: bool) -> str:
    """Slack refused the approval card: why, and what to do about it."""
    here = f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else code(channel_id)
    nothing = _(_NOTHING_REQUESTED)
    if error == "not_in_channel":
        if configured:
            why = _(
                "I can't post the approval card in the approval channel {channel}: I'm not a "
                "member. Ask someone in {channel} to invite me there with `/invite @voicebot`, "
                "or ask an admin to set `VOICEBOT_APPROVAL_CHANNEL` to a channel I'm in."
            )
        else:
            why = _(
                "I can't post the approval card in {channel}: I'm not a member. Invite me with "
                "`/invite @voicebot`, then submit again."
            )
        return why.format(channel=here) + " " + nothing
    if error == "channel_not_found":
        if configured:
            why = _(
                "I can't post the approval card in the approval channel {channel}: it is "
                "private and I'm not in it, or it doesn't exist. Invite me with "
                "`/invite @voicebot`, or ask an admin to set `VOICEBOT_APPROVAL_CHANNEL` to a "
                "channel I'm in."
            )
        else:
            why = _(
                "I can't post the approval card in {channel}: it is private and I'm not in it, "
                "or it doesn't exist. Invite me with `/invite @voicebot`, or ask an admin to "
                "set `VOICEBOT_APPROVAL_CHANNEL` to a channel I'm in."
            )
        return why.format(channel=here) + " " + nothing
    if error == "is_archived":
        if configured:
            why = _(
                "I can't post the approval card in the approval channel {channel}: the channel "
                "is archived. Submit from another channel, or ask an admin to set "
                "`VOICEBOT_APPROVAL_CHANNEL` to a channel I'm in."
            )
        else:
            why = _(
                "I can't post the approval card in {channel}: the channel is archived. Submit "
                "from another channel, or ask an admin to set `VOICEBOT_APPROVAL_CHANNEL` to a "
                "channel I'm in."
            )
        return why.format(channel=here) + " " + nothing
    if error in _SLACK_TOKEN_ERRORS:
        why = _(
            "Slack refused my credentials (`{error}`), so I can't post the approval card. "
            "Ask an operator to check `SLACK_BOT_TOKEN` and the app's installation."
        )
        return why.format(error=escape(error)) + " " + nothing
    if error == "no_answer":
        return " ".join(
            (
                _("Slack did not answer when I posted the approval card."),
                nothing,
                _("Try again in a minute."),
            )
        )
    if configured:
        why = _("Slack refused the approval card in the approval channel {channel} (`{error}`).")
    else:
        why = _("Slack refused the approval card in {channel} (`{error}`).")
    return " ".join(
        (
            why.format(channel=here, error=escape(error)),
            nothing,
            _("Try again, or ask an operator to look at the logs."),
        )
    )


def open_request_exists(job_id: str, request_id: str, link: str) -> str:
    if link:
        text = _(
            "Job `{job}` already has an open request: {link}. "
            "It can be asked for again once that one is decided, expires or ends."
        )
    else:
        text = _(
            "Job `{job}` already has an open request: request `{request}`. "
            "It can be asked for again once that one is decided, expires or ends."
        )
    return text.format(job=escape(job_id), link=link, request=escape(request_id))


def request_in_progress(job_id: str) -> str:
    return _(
        "A request for job `{job}` is being made right now. Look for its card in a few seconds."
    ).format(job=escape(job_id))


def in_words(seconds: float) -> str:
    """A wait, rounded up: "40 seconds", "3 minutes", "2 hours"."""
    whole = max(1, int(-(-seconds // 1)))
    if whole < 90:
        return ngettext("{n} second", "{n} seconds", whole).format(n=whole)
    minutes = -(-whole // 60)
    if minutes < 90:
        return ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)
    hours = -(-minutes // 60)
    return ngettext("{n} hour", "{n} hours", hours).format(n=hours)


def too_many_open_requests(open_count: int, retry_after: float) -> str:
    # "requests" for any count: the count is the configured limit, not a noun to agree with.
    return _(
        "You already have {count} requests waiting for approval, the most allowed. "
        "Try again when one is decided, or in {wait}, when the oldest expires."
    ).format(count=open_count, wait=in_words(retry_after))


def request_rate_limited(limit: int, window: float, retry_after: float) -> str:
    return _(
        "You have made {limit} requests in the last {window}, the most allowed. "
        "Try again in {wait}."
    ).format(limit=limit, window=in_words(window), wait=in_words(retry_after))


# -- MetaStudio --------------------------------------------------------------------------


def metastudio_error(code_: str | None, message: str | None, hint: str | None) -> str:
    """A MetaStudio failure in words: what it said, and what to do about it."""
    said = escape(message) if message else _("no details")
    if code_:
        text = _("MetaStudio refused the call (`{code}`): {said}.").format(
            code=escape(code_), said=said
        )
    else:
        text = _("MetaStudio refused the call: {said}.").format(said=said)
    return f"{text} {escape(hint)}" if hint else text


_CREDENTIAL_WORDS: dict[str, str] = {
    "signature": N_("it did not accept the request signature"),
    "clock": N_("the bot's signatures look expired, so the bot's clock is off"),
    "unknown_ak": N_("it does not know the bot's access key"),
    "locked": N_(
        "it has locked the bot's access key for five minutes after repeated failed sign-ins"
    ),
    "token": N_("it refused the bot's IAM token"),
    "iam": N_("IAM refused the bot's sign-in"),
}


def credentials_refused(kind: str) -> str:
    words = _CREDENTIAL_WORDS.get(kind, _CREDENTIAL_WORDS["signature"])
    return _("MetaStudio refused the bot's credentials: {reason}.").format(reason=_(words))


def credentials_call_refused(kind: str, hint: str) -> str:
    """A command's answer while MetaStudio refuses the bot's credentials."""
    return " ".join((credentials_refused(kind), _("Nothing was sent."), escape(hint)))


def submit_held(job_id: str, kind: str, hint: str) -> str:
    """The one thread reply for a submit held because the credentials were refused."""
    held = _(
        "The submit of job `{job}` is on hold, not lost: nothing was sent, and I'll send it "
        "once, as soon as MetaStudio accepts the credentials again."
    ).format(job=escape(job_id))
    return " ".join((credentials_refused(kind), held, escape(hint)))


def held_note(kind: str) -> str:
    """The approval card's note while its submit is held (plain text)."""
    return _(
        "On hold: {refused} Nothing was sent; the submit goes out once the credentials work again."
    ).format(refused=credentials_refused(kind))


def metastudio_unavailable() -> str:
    return _("MetaStudio is not answering right now. Nothing was lost; I'll keep trying.")


def job_not_found(job_id: str) -> str:
    return _(
        "MetaStudio has no job `{job}`. Check the id with `/voice status &lt;job_id&gt;`."
    ).format(job=escape(job_id))


def job_not_submittable(job_id: str, state_words: str) -> str:
    return _(
        "Job `{job}` can't be submitted now: it is {state}. "
        "A job can be submitted after its data is uploaded, or again after a failed review."
    ).format(job=escape(job_id), state=escape(state_words))


def submit_blocked(job_id: str, *, authorization: bool, failed_checks: Sequence[str]) -> str:
    """Why a job may not be requested under the blocking settings, and what to do."""
    parts = [_("Job `{job}` can't be requested yet.").format(job=escape(job_id))]
    if authorization:
        parts.append(
            _(
                "It has no authorization letter from the voice owner, and this workspace "
                "requires one before review. Upload the signed letter to the job in the "
                "MetaStudio console (voice training job, authorization), then run "
                "`/voice submit` again."
            )
        )
    if failed_checks:
        parts.append(
            _(
                "MetaStudio's assessment of its audio is out of range for {checks}, and this "
                "workspace refuses such jobs. Record and upload the audio again as "
                "`/voice status &lt;job_id&gt;` suggests, then run `/voice submit` again."
            ).format(checks=escape(", ".join(failed_checks)))
        )
    return " ".join(parts)


# -- what decides a review (card and status) ----------------------------------------------


def risks_heading(risks: Sequence[str]) -> str:
    return _(":warning: *Before you approve:* {risks}.").format(risks="; ".join(risks))


def risk_no_authorization() -> str:
    return _("*no authorization letter* from the voice owner")


def risk_checks_out(count: int, total: int) -> str:
    return _("*{count} of {total} audio checks out of range*").format(count=count, total=total)


def risk_no_quota(job_type: str) -> str:
    return _("*no {job_type} trainings left* and none allocated to this job").format(
        job_type=escape(job_type)
    )


def no_risks() -> str:
    return _(":white_check_mark: Nothing MetaStudio reports stands in the way of review.")


def job_type_words(job_type: str | None) -> str:
    return f"`{escape(job_type)}`" if job_type else _("not reported")


def authorization_words(present: bool) -> str:
    return _(":white_check_mark: uploaded") if present else _(":warning: *missing*")


def reject_times_words(times: int) -> str:
    if times <= 0:
        return _("never failed review")
    return ngettext(
        "failed review {n} time before", "failed review {n} times before", times
    ).format(n=times)


def quota_words(left: int | None, job_type: str | None, allocated: bool) -> str:
    if allocated:
        return _("a training resource is allocated to this job")
    if left is None:
        return _("MetaStudio counts none for {job_type}").format(job_type=job_type_words(job_type))
    if left == 0:
        return _(":warning: *none left* of {job_type}").format(job_type=job_type_words(job_type))
    return _("{n} of {job_type}").format(n=left, job_type=job_type_words(job_type))


def quota_unread() -> str:
    return _("Trainings left: not shown, MetaStudio's quota did not answer in time.")


def checks_out_heading(count: int, total: int) -> str:
    return _(
        ":warning: *Audio out of range* ({count} of {total} checks, MetaStudio's assessment):"
    ).format(count=count, total=total)


def check_line(label: str, actual: str | None, expected: str | None) -> str:
    return _("{label}: {actual} (expected {expected})").format(
        label=label, actual=actual or "?", expected=expected or "?"
    )


def checks_in_range(labels: Sequence[str]) -> str:
    if not labels:
        return _("No audio check in range.")
    return _("In range: {checks}.").format(checks=", ".join(escape(label) for label in labels))


def no_assessment() -> str:
    return _("MetaStudio reports no assessment of the audio for this job.")


def overall_suggestion(text: str) -> str:
    return _("MetaStudio suggests: {suggestion}").format(suggestion=text)


def readiness_unread() -> str:
    return _("The job's assessment is not shown: MetaStudio did not answer in time.")


def risks_after_decision(job_id: str) -> str:
    return _(
        "What decides the review was shown here until the decision; "
        "`/voice status {job}` shows it now."
    ).format(job=escape(job_id))


def quotas_title() -> str:
    return _("*Voice trainings left*")


def quota_row(kind: str, left: int) -> str:
    return f"{escape(kind)}: {left}"


def quota_resource(resource_type: str, left: int, total: int, expires: str) -> str:
    return _("{resource}: {left} of {total} left, expires {expires}").format(
        resource=escape(resource_type), left=left, total=total, expires=escape(expires)
    )


def quotas_unavailable() -> str:
    return _("MetaStudio did not answer with the training quotas in time; try again shortly.")


def no_role_held(admins: Sequence[str]) -> str:
    if admins:
        return _("The quota table is for people with a role here. Ask {admins} for one.").format(
            admins=mentions(admins)
        )
    return _("The quota table is for people with a role here. Ask an admin for one.")


def submit_accepted(job_id: str) -> str:
    return _("Submitted job `{job}` to MetaStudio; it is now in review.").format(job=escape(job_id))


def submit_failed_todo() -> str:
    return _("Nothing was submitted. Fix the cause above, then run `/voice submit` again.")


def dry_run_intro() -> str:
    return _("*Dry run*: this is the exact request I would send. Nothing was sent.")


def unknown_caller() -> str:
    return _("I can't tell who sent this command or from which workspace, so nothing was done.")


def internal_error(reference: str) -> str:
    return _(
        "Something went wrong on my side (reference `{reference}`); nothing was done. "
        "Please tell an admin."
    ).format(reference=escape(reference))


def busy() -> str:
    return _("I'm busy right now; please try again in a few seconds.")


# -- modal -------------------------------------------------------------------------------

# Job picker options: plain text, at most 75 characters.
PICKER_UNAVAILABLE = N_("MetaStudio is unavailable; try again")
PICKER_CREDENTIALS = N_("MetaStudio refused the bot's credentials; ask an operator")

MODAL_TITLE = N_("Submit voice training")
MODAL_SUBMIT = N_("Request approval")
MODAL_SUBMIT_DIRECT = N_("Submit")
MODAL_CLOSE = N_("Cancel")

MODAL_LABELS: dict[str, str] = {
    "job_id": N_("Training job"),
    "voice_name": N_("Voice name"),
    "sex": N_("Sex"),
    "language": N_("Language"),
    "tag": N_("Scenario tag"),
    "description": N_("Description"),
    "phone": N_("Phone"),
    "app_user_id": N_("App user ID"),
    "output_language": N_("Output language"),
    "custom_text": N_("Audition text"),
    "dry_run": N_("Dry run"),
}

MODAL_HINTS: dict[str, str] = {
    "job_id": N_("A job whose training data is uploaded (or whose review failed)."),
    "voice_name": N_("Up to 64 characters; becomes the voice's name in the asset library."),
    "description": N_("Up to 512 characters; shown in the asset library."),
    "phone": N_("5 to 20 digits, optionally starting with +."),
    "app_user_id": N_("ASCII only (no Chinese characters), no spaces, up to 64 characters."),
    "output_language": N_("Letters, - and _, up to 16 characters, e.g. CN or EN."),
    "custom_text": N_("Up to 512 characters of text for the audition sample."),
}

MODAL_OPTION_WORDS: dict[str, str] = {
    "FEMALE": N_("Female"),
    "MALE": N_("Male"),
    "CN": N_("Chinese (CN)"),
    "EN": N_("English (EN)"),
    "ECOMMERCE": N_("E-commerce"),
    "NEWS": N_("News"),
    "MARKETING": N_("Marketing"),
    "LIVE": N_("Livestream"),
    "EDUCATION": N_("Education"),
    "CUSTOMER": N_("Customer service"),
    "STORYTELLING": N_("Storytelling"),
}

MODAL_DRY_RUN_OPTION = N_("Show the exact request without sending it")
MODAL_JOB_PLACEHOLDER = N_("Search by voice name or job id")
