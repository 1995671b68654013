"""Parse the text of a `/voice` slash command into a validated command model.

``parse(text)`` never raises: it returns one of the frozen command models or a
``ParseFailure`` listing every problem found, each with its own specific message. The field
rules for a submit (``validate_job_id``, ``validate_fields``) are defined once here and reused
by the submit modal.

Tokenising is shell-like, with Slack's quirks in mind: clients turn quotes into smart quotes
and ``--`` into a dash, and slash-command text arrives with ``&``, ``<`` and ``>`` escaped.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, TypeAlias

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.i18n import Language as I18nLanguage
from bot.metastudio.models import CommitJobRequest, JobTag, Language, Sex
from bot.slack import messages

ROLE_NAMES: tuple[str, ...] = ("requester", "approver", "admin")
SUBCOMMAND_NAMES: tuple[str, ...] = (
    "help",
    "status",
    "submit",
    "roles",
    "grant",
    "revoke",
    "audit",
    "quota",
    "policy",
)
SUBMIT_KEYS: tuple[str, ...] = (
    "voice_name",
    "sex",
    "language",
    "tag",
    "description",
    "phone",
    "app_user_id",
    "output_language",
    "custom_text",
)
DRY_RUN_FLAG = "--dry-run"
MAX_COMMAND_LENGTH = 4000

JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{8,64}")
# Real IDs are longer, but test workspaces and Slack's own examples use short ones.
USER_ID_PATTERN = re.compile(r"[UW][A-Z0-9]{2,20}")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]{2,20})(?:\|[^<>]*)?>|([CG][A-Z0-9]{2,20})")
MAX_APPROVALS = 10
POLICY_KEYS = ("approvals", "language")
# What `policy #ch language=...` accepts, lower-cased, for the bot's two languages.
POLICY_LANGUAGES: dict[str, I18nLanguage] = {
    "en": "en",
    "english": "en",
    "英文": "en",
    "英语": "en",
    "zh": "zh",
    "zh-cn": "zh",
    "cn": "zh",
    "chinese": "zh",
    "中文": "zh",
    "汉语": "zh",
    "简体中文": "zh",
    "普通话": "zh",
}


# -- models ------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Help(_Frozen):
    subcommand: ClassVar[str] = "help"


class SubmitForm(_Frozen):
    """Bare ``submit``: open the submit modal."""

    subcommand: ClassVar[str] = "submit"
    dry_run: bool = False


class Submit(_Frozen):
    subcommand: ClassVar[str] = "submit"
    job_id: str
    request: CommitJobRequest
    dry_run: bool = False


class Status(_Frozen):
    subcommand: ClassVar[str] = "status"
    job_id: str


class Quota(_Frozen):
    subcommand: ClassVar[str] = "quota"


class Roles(_Frozen):
    subcommand: ClassVar[str] = "roles"
    user_id: str | None = None


class Grant(_Frozen):
    subcommand: ClassVar[str] = "grant"
    user_id: str
    role: str


class Revoke(_Frozen):
    subcommand: ClassVar[str] = "revoke"
    user_id: str
    role: str


class Audit(_Frozen):
    subcommand: ClassVar[str] = "audit"
    job_id: str | None = None


class Policy(_Frozen):
    """Bare ``policy`` shows the policies in force; with a channel, an admin sets its."""

    subcommand: ClassVar[str] = "policy"
    channel_id: str | None = None
    approvals: int | None = None
    language: I18nLanguage | None = None


Command: TypeAlias = (
    Help | SubmitForm | Submit | Status | Quota | Roles | Grant | Revoke | Audit | Policy
)


class Problem(_Frozen):
    """One thing wrong with the input; ``field`` names the key or argument, if any."""

    field: str | None = None
    message: str


class ParseFailure(_Frozen):
    """``subcommand`` is the subcommand whose arguments were wrong, if one was recognised;
    ``unknown`` is the first word as typed when it names no subcommand."""

    problems: tuple[Problem, ...]
    subcommand: str | None = None
    unknown: str | None = None

    def text(self, command: str = messages.COMMAND) -> str:
        return messages.parse_problems(
            [(p.field, p.message) for p in self.problems],
            subcommand=self.subcommand,
            command=command,
        )


# -- field rules (shared with the modal) -------------------------------------------------


@dataclass(frozen=True)
class FieldRule:
    name: str
    max_length: int
    enum: type[StrEnum] | None = None
    multiline: bool = False


FIELD_RULES: dict[str, FieldRule] = {
    "voice_name": FieldRule("voice_name", 64),
    "sex": FieldRule("sex", 16, enum=Sex),
    "language": FieldRule("language", 16, enum=Language),
    "tag": FieldRule("tag", 32, enum=JobTag),
    "description": FieldRule("description", 512, multiline=True),
    "phone": FieldRule("phone", 20),
    "app_user_id": FieldRule("app_user_id", 64),
    "output_language": FieldRule("output_language", 16),
    "custom_text": FieldRule("custom_text", 512, multiline=True),
}

# Enum values may be typed in Chinese too: each alias stands for the API value. Keys and
# subcommands stay ASCII in every language.
ENUM_ALIASES: dict[str, dict[str, str]] = {
    "sex": {
        "女": "FEMALE",
        "女性": "FEMALE",
        "女声": "FEMALE",
        "男": "MALE",
        "男性": "MALE",
        "男声": "MALE",
    },
    "language": {"中文": "CN", "汉语": "CN", "普通话": "CN", "英文": "EN", "英语": "EN"},
    "tag": {
        "电商": "ECOMMERCE",
        "新闻": "NEWS",
        "营销": "MARKETING",
        "直播": "LIVE",
        "教育": "EDUCATION",
        "客服": "CUSTOMER",
        "故事": "STORYTELLING",
        "讲故事": "STORYTELLING",
    },
}

_PHONE = re.compile(r"\+?[0-9]{5,20}")
_APP_USER_ID = re.compile(r"[\x21-\x7e]{1,64}")
_OUTPUT_LANGUAGE = re.compile(r"[A-Za-z][A-Za-z_-]{0,15}")


def suggest(word: str, choices: Sequence[str]) -> str | None:
    """The choice closest to a mistyped ``word``, if any is close enough."""
    found = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


# Invisible characters can make a card read differently from what is submitted ("Trojan
# Source"): every format character (bidirectional overrides, isolates and marks, zero-width
# and tag characters, soft hyphens) and the blank fillers that render as nothing are dropped.
_BLANK_FILLERS = frozenset("\u034f\u115f\u1160\u3164\uffa0")


def without_invisible(text: str) -> str:
    """``text`` without format (``Cf``) characters and blank fillers."""
    return "".join(
        char for char in text if char not in _BLANK_FILLERS and unicodedata.category(char) != "Cf"
    )


def _has_control(text: str, multiline: bool) -> bool:
    """Control characters, and line or paragraph separators (only \\n and \\t are allowed,
    and only where the field takes several lines)."""
    allowed = {"\n", "\t"} if multiline else set()
    return any(
        unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") and c not in allowed for c in text
    )


def validate_job_id(raw: str) -> str | Problem:
    value = raw.strip()
    if not JOB_ID_PATTERN.fullmatch(value):
        return Problem(field="job_id", message=messages.bad_job_id(raw))
    return value


def validate_field(name: str, raw: str) -> str | Problem:
    """Check one submit field; returns the API value (enums upper-cased) or a Problem."""
    rule = FIELD_RULES[name]
    value = without_invisible(raw).strip()
    if not value:
        return Problem(field=name, message=messages.missing_value(name))
    if rule.enum is not None:
        if value in ENUM_ALIASES.get(name, {}):
            return ENUM_ALIASES[name][value]
        allowed = [m.value.lower() for m in rule.enum]
        if value.lower() not in allowed:
            suggestion = suggest(value, allowed)
            return Problem(field=name, message=messages.bad_enum(name, value, allowed, suggestion))
        return value.upper()
    if len(value) > rule.max_length:
        return Problem(field=name, message=messages.too_long(name, rule.max_length, len(value)))
    if _has_control(value, rule.multiline):
        return Problem(field=name, message=messages.control_characters(name, rule.multiline))
    if name == "phone" and not _PHONE.fullmatch(value):
        return Problem(field=name, message=messages.bad_phone(value))
    if name == "app_user_id" and not _APP_USER_ID.fullmatch(value):
        return Problem(field=name, message=messages.bad_app_user_id(value))
    if name == "output_language" and not _OUTPUT_LANGUAGE.fullmatch(value):
        return Problem(field=name, message=messages.bad_output_language(value))
    return value


def validate_fields(raw: Mapping[str, str]) -> CommitJobRequest | list[Problem]:
    """Validate the given submit fields (keys from ``SUBMIT_KEYS``); voice_name is required."""
    problems: list[Problem] = []
    values: dict[str, str] = {}
    for name, text in raw.items():
        checked = validate_field(name, text)
        if isinstance(checked, Problem):
            problems.append(checked)
        else:
            values[name] = checked
    if "voice_name" not in raw:
        problems.append(Problem(field="voice_name", message=messages.voice_name_required()))
    if problems:
        return problems
    try:
        return CommitJobRequest.model_validate(values)
    except ValidationError as exc:  # the rules above should make this unreachable
        return [
            Problem(field=str(e["loc"][0]) if e["loc"] else None, message=messages.escape(e["msg"]))
            for e in exc.errors()
        ]


# -- tokenising --------------------------------------------------------------------------

_DOUBLE_QUOTES = frozenset('"“”„‟')
_SINGLE_QUOTES = frozenset("'‘’‚‛")
# macOS and iOS turn a typed "--" into an em or en dash.
_FLAG_DASHES = "-—–"
# Slack-formatted spans (mentions, channels, links) are kept whole even with spaces inside.
_SLACK_SPAN = re.compile(r"<(?:[@#!]|https?://|mailto:|tel:)[^<>]*>")


@dataclass(frozen=True)
class Token:
    raw: str
    key: str | None
    value: str
    quoted: bool


class _Unterminated(Exception):
    def __init__(self, fragment: str) -> None:
        self.fragment = fragment


def _closing_quote(text: str, start: int, family: frozenset[str]) -> int:
    # A closing quote must end the word, so apostrophes inside a value (Alice’s) survive.
    for j in range(start, len(text)):
        if text[j] in family and (j + 1 == len(text) or text[j + 1].isspace()):
            return j
    return -1


def tokenize(text: str) -> list[Token]:
    """Split on whitespace, honouring quotes after ``key=`` or at the start of a word."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        key: str | None = None
        buf: list[str] = []
        quoted = False
        at_value_start = True
        while i < n and not text[i].isspace():
            c = text[i]
            if at_value_start and (c in _DOUBLE_QUOTES or c in _SINGLE_QUOTES):
                family = _DOUBLE_QUOTES if c in _DOUBLE_QUOTES else _SINGLE_QUOTES
                end = _closing_quote(text, i + 1, family)
                if end < 0:
                    raise _Unterminated(text[start:])
                buf.append(text[i + 1 : end])
                i = end + 1
                quoted = True
                at_value_start = False
                continue
            if c == "<":
                span = _SLACK_SPAN.match(text, i)
                if span:
                    buf.append(span.group())
                    i = span.end()
                    at_value_start = False
                    continue
            at_value_start = False
            if c == "=" and key is None:
                key = "".join(buf)
                buf = []
                at_value_start = True
                i += 1
                continue
            buf.append(c)
            i += 1
        tokens.append(Token(raw=text[start:i], key=key, value="".join(buf), quoted=quoted))
    return tokens


_LINK_WITH_LABEL = re.compile(r"<(?:https?://|mailto:|tel:)[^|<>]*\|([^<>]*)>")
_LINK = re.compile(r"<((?:https?://|mailto:|tel:)[^|<>]*)>")


def unslack(value: str) -> str:
    """Undo Slack's formatting of command text: unwrap auto-links, unescape &amp; &lt; &gt;."""
    value = _LINK_WITH_LABEL.sub(r"\1", value)
    value = _LINK.sub(r"\1", value)
    return value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- mentions and roles ------------------------------------------------------------------

_MENTION = re.compile(r"<@([A-Za-z0-9]+)(?:\|[^<>]*)?>")
# Slack sends a user group mention as <!subteam^S123|@handle>.
_GROUP_MENTION = re.compile(r"<!subteam\^(S[A-Z0-9]{2,20})(?:\|[^<>]*)?>")


def parse_user(word: str) -> str | Problem:
    """A user from ``<@U123|name>``, ``<@U123>``, ``@U123`` or a bare ``U123``; or a user
    group from ``<!subteam^S123|@handle>``."""
    text = unslack(word) if "&lt;" in word else word
    group = _GROUP_MENTION.fullmatch(text)
    if group:
        return group.group(1)
    m = _MENTION.fullmatch(text)
    if m:
        if USER_ID_PATTERN.fullmatch(m.group(1)):
            return m.group(1)
        return Problem(field="user", message=messages.bad_user_id(word))
    if text.startswith(("<#", "<!")):
        return Problem(field="user", message=messages.not_a_user(word))
    bare = text[1:] if text.startswith("@") else text
    # Without Slack's markup, only accept what cannot be a display name: an ID with a digit.
    if USER_ID_PATTERN.fullmatch(bare) and any(ch.isdigit() for ch in bare):
        return bare
    if text.startswith("@"):
        return Problem(field="user", message=messages.display_name_mention(word))
    return Problem(field="user", message=messages.bad_user_id(word))


def parse_role(word: str) -> str | Problem:
    value = word.strip().lower()
    if value in ROLE_NAMES:
        return value
    return Problem(
        field="role", message=messages.bad_role(word, ROLE_NAMES, suggest(value, ROLE_NAMES))
    )


# -- parsing -----------------------------------------------------------------------------


def parse(text: str) -> Command | ParseFailure:
    """Parse the slash command text (everything after ``/voice``). Never raises."""
    if len(text) > MAX_COMMAND_LENGTH:
        return _fail(None, Problem(message=messages.command_too_long(MAX_COMMAND_LENGTH)))
    try:
        tokens = tokenize(text)
    except _Unterminated as exc:
        return _fail(None, Problem(message=messages.unterminated_quote(exc.fragment)))
    if not tokens:
        return Help()
    head, rest = tokens[0], tokens[1:]
    name = head.value.lower() if head.key is None else head.raw
    if head.key is not None or name not in SUBCOMMAND_NAMES:
        suggestion = None if head.key is not None else suggest(name, SUBCOMMAND_NAMES)
        message = messages.unknown_subcommand(head.raw, suggestion, SUBCOMMAND_NAMES)
        problem = Problem(field="subcommand", message=message)
        return ParseFailure(problems=(problem,), unknown=head.raw)
    if name == "help":
        return Help()
    if name == "submit":
        return _parse_submit(rest)
    if name in ("status", "audit"):
        return _parse_job_command(name, rest)
    if name == "roles":
        return _parse_roles(rest)
    if name == "quota":
        return _parse_quota(rest)
    if name == "policy":
        return _parse_policy(rest)
    return _parse_grant(name, rest)


def _fail(subcommand: str | None, *problems: Problem) -> ParseFailure:
    return ParseFailure(problems=problems, subcommand=subcommand)


def _is_flag(token: Token) -> bool:
    return token.key is None and not token.quoted and token.value[:1] in _FLAG_DASHES


def _flag_name(token: Token) -> str:
    return token.value.lstrip(_FLAG_DASHES).lower().replace("_", "-")


def _positional_only(subcommand: str, tokens: list[Token], problems: list[Problem]) -> list[str]:
    words: list[str] = []
    for t in tokens:
        if t.key is not None:
            problems.append(Problem(message=messages.unexpected_key_value(t.raw, subcommand)))
        else:
            words.append(t.value)
    return words


def _parse_job_command(name: str, tokens: list[Token]) -> Command | ParseFailure:
    problems: list[Problem] = []
    words = _positional_only(name, tokens, problems)
    checked: str | Problem | None = validate_job_id(unslack(words[0])) if words else None
    if isinstance(checked, Problem):
        problems.append(checked)
    elif checked is None and name == "status":
        problems.append(Problem(field="job_id", message=messages.missing_job_id(name)))
    problems += [Problem(message=messages.bare_word(w, name)) for w in words[1:]]
    if problems:
        return _fail(name, *problems)
    if name == "status" and isinstance(checked, str):
        return Status(job_id=checked)
    return Audit(job_id=checked if isinstance(checked, str) else None)


def _parse_quota(tokens: list[Token]) -> Command | ParseFailure:
    problems: list[Problem] = []
    words = _positional_only("quota", tokens, problems)
    problems += [Problem(message=messages.bare_word(w, "quota")) for w in words]
    if problems:
        return _fail("quota", *problems)
    return Quota()


def _parse_roles(tokens: list[Token]) -> Command | ParseFailure:
    problems: list[Problem] = []
    words = _positional_only("roles", tokens, problems)
    user_id: str | None = None
    if words:
        checked = parse_user(words[0])
        if isinstance(checked, Problem):
            problems.append(checked)
        else:
            user_id = checked
        problems += [Problem(message=messages.bare_word(w, "roles")) for w in words[1:]]
    if problems:
        return _fail("roles", *problems)
    return Roles(user_id=user_id)


def _parse_grant(name: str, tokens: list[Token]) -> Command | ParseFailure:
    problems: list[Problem] = []
    words = _positional_only(name, tokens, problems)
    # Accept both orders: "grant @alice approver" and "grant approver @alice".
    if len(words) >= 2 and words[0].strip().lower() in ROLE_NAMES:
        words[0], words[1] = words[1], words[0]
    user: str | Problem | None = parse_user(words[0]) if words else None
    role: str | Problem | None = parse_role(words[1]) if len(words) > 1 else None
    if user is None:
        problems.append(Problem(field="user", message=messages.missing_user(name)))
    elif isinstance(user, Problem):
        problems.append(user)
    if role is None:
        problems.append(Problem(field="role", message=messages.missing_role(name, ROLE_NAMES)))
    elif isinstance(role, Problem):
        problems.append(role)
    problems += [Problem(message=messages.bare_word(w, name)) for w in words[2:]]
    if problems or not isinstance(user, str) or not isinstance(role, str):
        return _fail(name, *problems)
    if name == "grant":
        return Grant(user_id=user, role=role)
    return Revoke(user_id=user, role=role)


def parse_channel(word: str) -> str | Problem:
    """A channel from ``<#C123|name>``, ``<#C123>`` or a bare ``C123``."""
    m = _CHANNEL.fullmatch(unslack(word) if "&lt;" in word else word)
    if m is None:
        return Problem(field="channel", message=messages.bad_channel(word))
    return m.group(1) or m.group(2)


def _parse_policy(tokens: list[Token]) -> Command | ParseFailure:
    if not tokens:
        return Policy()
    problems: list[Problem] = []
    channel: str | Problem | None = None
    settings: dict[str, object] = {}
    for token in tokens:
        key = token.key.lower() if token.key is not None else None
        if key is None and channel is None:
            channel = parse_channel(token.value)
        elif key is None:
            problems.append(Problem(message=messages.bare_word(token.value, "policy")))
        elif key not in POLICY_KEYS:
            message = messages.unknown_policy_key(key, MAX_APPROVALS)
            problems.append(Problem(field=token.key, message=message))
        elif key == "approvals":
            if not token.value.isdigit() or not 1 <= int(token.value) <= MAX_APPROVALS:
                message = messages.bad_approvals(token.value, MAX_APPROVALS)
                problems.append(Problem(field="approvals", message=message))
            else:
                settings["approvals"] = int(token.value)
        elif (language := POLICY_LANGUAGES.get(token.value.strip().lower())) is None:
            message = messages.bad_policy_language(token.value)
            problems.append(Problem(field="language", message=message))
        else:
            settings["language"] = language
    if isinstance(channel, Problem):
        problems.append(channel)
    elif channel is None:
        problems.append(Problem(field="channel", message=messages.missing_policy_channel()))
    if not settings and not problems:
        problems.append(Problem(field="approvals", message=messages.missing_approvals()))
    if problems or not isinstance(channel, str):
        return _fail("policy", *problems)
    return Policy.model_validate({"channel_id": channel, **settings})


def _parse_submit(tokens: list[Token]) -> Command | ParseFailure:
    problems: list[Problem] = []
    dry_run = False
    words: list[Token] = []
    by_key: dict[str, list[Token]] = {}
    for t in tokens:
        if _is_flag(t):
            if _flag_name(t) in ("dry-run", "dryrun"):
                dry_run = True
            else:
                problems.append(Problem(message=messages.unknown_flag(t.raw)))
        elif not t.key:
            words.append(t)
        else:
            by_key.setdefault(t.key.strip().lower().replace("-", "_"), []).append(t)
    fields: dict[str, str] = {}
    for key, given in by_key.items():
        if key not in FIELD_RULES:
            suggestion = suggest(key, SUBMIT_KEYS)
            message = messages.unknown_key(given[0].key or key, suggestion, SUBMIT_KEYS)
            problems.append(Problem(field=key, message=message))
        elif len(given) > 1:
            problems.append(Problem(field=key, message=messages.duplicate_key(key)))
        elif not given[0].value.strip():
            problems.append(Problem(field=key, message=messages.missing_value(key)))
        else:
            fields[key] = unslack(given[0].value)
    if not words and not by_key and not problems:
        return SubmitForm(dry_run=dry_run)
    job_id: str | None = None
    job_problems: list[Problem] = []
    if words:
        checked = validate_job_id(unslack(words[0].value))
        if isinstance(checked, Problem):
            job_problems.append(checked)
        else:
            job_id = checked
        job_problems += [Problem(message=messages.bare_word(w.raw, "submit")) for w in words[1:]]
    else:
        job_problems.append(Problem(field="job_id", message=messages.missing_job_id("submit")))
    problems = job_problems + problems
    validated = validate_fields(fields)
    if isinstance(validated, list):
        # A key already reported as empty or duplicated must not also be called missing.
        problems += [p for p in validated if p.field not in by_key or p.field in fields]
    if problems or isinstance(validated, list) or job_id is None:
        return _fail("submit", *problems)
    return Submit(job_id=job_id, request=validated, dry_run=dry_run)
