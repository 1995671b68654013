"""`/voice` command text → command models, and one specific message for each thing wrong."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.metastudio.models import CommitJobRequest, JobTag, Language, Sex
from bot.slack import messages
from bot.slack.commands import (
    FIELD_RULES,
    MAX_COMMAND_LENGTH,
    ROLE_NAMES,
    SUBCOMMAND_NAMES,
    SUBMIT_KEYS,
    Audit,
    Command,
    Grant,
    Help,
    ParseFailure,
    Policy,
    Problem,
    Revoke,
    Roles,
    Status,
    Submit,
    SubmitForm,
    parse,
    validate_field,
    without_invisible,
)

JOB = "26f06524-4f75-4b3a-a853-b649a21aaf66"


def submit(dry_run: bool = False, job_id: str = JOB, **fields: str) -> Submit:
    return Submit(job_id=job_id, request=CommitJobRequest.model_validate(fields), dry_run=dry_run)


def failure(text: str) -> ParseFailure:
    result = parse(text)
    assert isinstance(result, ParseFailure), result
    return result


# -- subcommands that parse ---------------------------------------------------------------

PARSES: list[tuple[str, Command]] = [
    ("", Help()),
    ("   ", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("help submit", Help()),
    ("submit", SubmitForm()),
    ("submit --dry-run", SubmitForm(dry_run=True)),
    (f"submit {JOB} voice_name=demo", submit(voice_name="demo")),
    (
        f"submit {JOB} voice_name=demo sex=Female language=CN tag=customer",
        submit(voice_name="demo", sex="FEMALE", language="CN", tag="CUSTOMER"),
    ),
    (
        f"submit {JOB} voice_name=v description=d phone=+8613800000000 app_user_id=U012ABC "
        "output_language=EN custom_text=hello",
        submit(
            voice_name="v",
            description="d",
            phone="+8613800000000",
            app_user_id="U012ABC",
            output_language="EN",
            custom_text="hello",
        ),
    ),
    (f"submit {JOB} voice_name=v --dry-run", submit(True, voice_name="v")),
    (f"submit --dry-run {JOB} voice_name=v", submit(True, voice_name="v")),
    (f"submit {JOB} —dry-run voice_name=v", submit(True, voice_name="v")),
    (f"submit {JOB} –dry-run voice_name=v", submit(True, voice_name="v")),
    (f"submit {JOB} --DRY_RUN voice_name=v", submit(True, voice_name="v")),
    (f"SUBMIT {JOB} VOICE_NAME=v", submit(voice_name="v")),
    (f"submit {JOB} voice-name=v", submit(voice_name="v")),
    (f"submit voice_name=v {JOB}", submit(voice_name="v")),
    ("submit abcdefgh voice_name=v", submit(job_id="abcdefgh", voice_name="v")),
    (f"submit {JOB} voice_name=v tag=STORYTELLING", submit(voice_name="v", tag="STORYTELLING")),
    (f"status {JOB}", Status(job_id=JOB)),
    (f"Status {JOB}", Status(job_id=JOB)),
    ("audit", Audit()),
    (f"audit {JOB}", Audit(job_id=JOB)),
    ("roles", Roles()),
    ("roles <@U012ABCDEF|alice>", Roles(user_id="U012ABCDEF")),
    ("roles <@U012ABCDEF>", Roles(user_id="U012ABCDEF")),
    ("roles @U012ABCDEF", Roles(user_id="U012ABCDEF")),
    ("roles U012ABCDEF", Roles(user_id="U012ABCDEF")),
    ("roles W0123ABC", Roles(user_id="W0123ABC")),
    ("roles &lt;@U012ABCDEF&gt;", Roles(user_id="U012ABCDEF")),
    ("roles <@U012ABCDEF|Alice Smith>", Roles(user_id="U012ABCDEF")),
    ("grant <@U012ABCDEF|alice> approver", Grant(user_id="U012ABCDEF", role="approver")),
    ("grant approver <@U012ABCDEF>", Grant(user_id="U012ABCDEF", role="approver")),
    ("grant U1X2 Admin", Grant(user_id="U1X2", role="admin")),
    (
        "grant <!subteam^S0VOICE1|@voice-approvers> approver",
        Grant(user_id="S0VOICE1", role="approver"),
    ),
    ("policy", Policy()),
    ("policy <#C0123ABC|voice> approvals=2", Policy(channel_id="C0123ABC", approvals=2)),
    ("policy approvals=3 C0123ABC", Policy(channel_id="C0123ABC", approvals=3)),
    ("revoke <@U012ABCDEF> REQUESTER", Revoke(user_id="U012ABCDEF", role="requester")),
]


@pytest.mark.parametrize(("text", "expected"), PARSES)
def test_parses(text: str, expected: Command) -> None:
    assert parse(text) == expected


# -- quoting ------------------------------------------------------------------------------

QUOTED: list[tuple[str, str]] = [
    ('voice_name="My voice"', "My voice"),
    ("voice_name='My voice'", "My voice"),
    ("voice_name=“My voice”", "My voice"),  # iOS / macOS smart quotes
    ("voice_name=”My voice”", "My voice"),
    ("voice_name=„My voice“", "My voice"),
    ("voice_name=‘My voice’", "My voice"),
    ("voice_name='Alice’s voice'", "Alice’s voice"),  # an apostrophe is not a closing quote
    ("voice_name=Alice's", "Alice's"),  # a quote inside a word is just a character
    ('voice_name="a=b c"', "a=b c"),
    ('voice_name="  padded  "', "padded"),
    ('voice_name="x &amp; y &lt;z&gt;"', "x & y <z>"),  # Slack escapes these in command text
    ("voice_name=<https://example.com|example.com>", "example.com"),  # and auto-links URLs
    ("voice_name=<https://example.com>", "https://example.com"),
    ("voice_name=声音一号", "声音一号"),
]


@pytest.mark.parametrize(("fragment", "voice_name"), QUOTED)
def test_quoting(fragment: str, voice_name: str) -> None:
    assert parse(f"submit {JOB} {fragment}") == submit(voice_name=voice_name)


def test_unusual_whitespace_separates_words() -> None:
    # Chinese input methods type an ideographic space; Slack may send non-breaking spaces.
    text = f"submit\u3000{JOB}\xa0voice_name=v\n\tsex=male"
    assert parse(text) == submit(voice_name="v", sex="MALE")


def test_multiline_description_keeps_its_line_breaks() -> None:
    result = parse(f'submit {JOB} voice_name=v description="line one\nline two"')
    assert result == submit(voice_name="v", description="line one\nline two")


# -- every error has its own message -------------------------------------------------------

# (text, field, a fragment the message must contain)
ERRORS: list[tuple[str, str | None, str]] = [
    ("stauts x", "subcommand", "Did you mean `status`?"),
    ("xyzzy", "subcommand", "Use one of: `help`, `status`, `submit`"),
    ("voice_name=x", "subcommand", "Unknown subcommand `voice_name=x`"),
    (f'submit {JOB} voice_name="never closed', None, "is never closed"),
    (f"submit {JOB} voice_name='never closed", None, "is never closed"),
    (f"submit {JOB} voice_name=“never closed", None, "`voice_name=“never closed`"),
    (f"submit {JOB} voice_nme=x", "voice_nme", "Did you mean `voice_name`?"),
    (f"submit {JOB} voice_name=v colour=red", "colour", "Allowed keys: `voice_name`, `sex`"),
    (f"submit {JOB} voice_name=v dry_run=true", "dry_run", "write `--dry-run`"),
    (f"submit {JOB} voice_name=v --force", None, "Unknown flag `--force`"),
    (f"submit {JOB} voice_name=v sex=fmale", "sex", "Did you mean `female`?"),
    (f"submit {JOB} voice_name=v sex=other", "sex", "Use one of: `female`, `male`."),
    (f"submit {JOB} voice_name=v language=zh", "language", "Use one of: `cn`, `en`."),
    (f"submit {JOB} voice_name=v tag=sport", "tag", "`ecommerce`, `news`, `marketing`"),
    (f"submit {JOB} voice_name=v tag=eduction", "tag", "Did you mean `education`?"),
    ("submit abc voice_name=v", "job_id", "8 to 64 characters"),
    ("submit abc_defgh voice_name=v", "job_id", "letters, digits and `-`"),
    (f"submit {'a' * 65} voice_name=v", "job_id", "is not a job id"),
    ("submit voice_name=v", "job_id", "`submit` needs a job id"),
    ("status", "job_id", "`status` needs a job id"),
    ("status abc", "job_id", "is not a job id"),
    ("audit job/1234567", "job_id", "is not a job id"),
    (f"submit {JOB} voice_name={'v' * 65}", "voice_name", "65 characters long; the limit is 64"),
    (
        f"submit {JOB} voice_name=v description={'d' * 513}",
        "description",
        "513 characters long; the limit is 512",
    ),
    (
        f"submit {JOB} voice_name=v custom_text={'c' * 513}",
        "custom_text",
        "the limit is 512",
    ),
    (f"submit {JOB} voice_name=", "voice_name", "`voice_name=` has no value"),
    (f'submit {JOB} voice_name=""', "voice_name", "has no value"),
    (f"submit {JOB} voice_name=v extra", None, "`extra` is not `key=value`"),
    (f"submit {JOB} voice_name=a voice_name=b", "voice_name", "given more than once"),
    (f"submit {JOB} voice_name=v sex=male SEX=female", "sex", "given more than once"),
    (f"submit {JOB} sex=male", "voice_name", "`voice_name` is required"),
    (f"submit {JOB} voice_name=v phone=12", "phone", "5 to 20 digits"),
    (f"submit {JOB} voice_name=v phone=138-0000", "phone", "is not a phone number"),
    (f"submit {JOB} voice_name=v app_user_id=用户", "app_user_id", "rejects Chinese characters"),
    (f'submit {JOB} voice_name=v app_user_id="a b"', "app_user_id", "no spaces"),
    (f"submit {JOB} voice_name=v app_user_id={'u' * 65}", "app_user_id", "the limit is 64"),
    (f"submit {JOB} voice_name=v output_language=1x", "output_language", "letters, `-` and `_`"),
    (f'submit {JOB} voice_name="two\nlines"', "voice_name", "one line of plain text"),
    (f"submit {JOB} voice_name=v description=bell\x07", "description", "control characters"),
    (f"status {JOB} extra", None, "`status` takes no more words"),
    (f"status {JOB} a=b", None, "`status` takes no `key=value` pairs"),
    ("roles @alice", "user", "is a display name, not a user"),
    ("roles @alice", "user", "so Slack fills in their ID"),
    ("roles <#C0123ABC|general>", "user", "not a channel or a group"),
    ("roles <!here>", "user", "not a channel or a group"),
    ("roles bob", "user", "is not a Slack user"),
    ("roles UMA", "user", "is not a Slack user"),  # a name in capitals is not an ID
    ("roles <@B0123ABC>", "user", "is not a Slack user"),
    ("roles U012ABC U034DEF", None, "`roles` takes no more words"),
    ("grant", "user", "`grant` needs a user"),
    ("grant", "role", "`grant` needs a role: one of `requester`, `approver`, `admin`."),
    ("grant <@U012ABC>", "role", "`grant` needs a role"),
    ("revoke <@U012ABC> superuser", "role", "`superuser` is not a role."),
    ("grant <@U012ABC> aprover", "role", "Did you mean `approver`?"),
    ("grant <@U012ABC> admin more", None, "`grant` takes no more words"),
    ("grant @alice admin", "user", "is a display name"),
    ("policy <#C0123ABC|voice>", "approvals", "how many approvals"),
    ("policy approvals=2", "channel", "Name the channel"),
    ("policy <#C0123ABC|voice> approvals=0", "approvals", "from 1 to 10"),
    ("policy <#C0123ABC|voice> approvals=two", "approvals", "from 1 to 10"),
    ("policy <#C0123ABC|voice> quorum=2", "quorum", "is not a policy setting"),
    ("policy alice approvals=2", "channel", "is not a channel"),
    ("x" * (MAX_COMMAND_LENGTH + 1), None, f"under {MAX_COMMAND_LENGTH} characters"),
]


@pytest.mark.parametrize(("text", "field", "fragment"), ERRORS)
def test_error_messages(text: str, field: str | None, fragment: str) -> None:
    result = failure(text)
    matching = [p for p in result.problems if p.field == field]
    assert matching, result.problems
    assert any(fragment in p.message for p in matching), [p.message for p in matching]


def test_every_invalid_part_gets_its_own_problem() -> None:
    result = failure("submit abc voice_nme=x sex=fmale tag=bogus phone=12 voice_name= extra")
    fields = [p.field for p in result.problems]
    assert fields == ["job_id", None, "voice_nme", "voice_name", "sex", "tag", "phone"]
    assert result.subcommand == "submit"


def test_empty_key_is_not_also_reported_missing() -> None:
    result = failure(f"submit {JOB} voice_name=")
    assert [p.field for p in result.problems] == ["voice_name"]


def test_failure_text_lists_every_problem_and_points_to_help() -> None:
    result = failure("grant @alice superuser")
    text = result.text()
    assert text.startswith("I couldn't read that command:")
    assert text.count("\n• ") == 2
    assert text.endswith("See `/voice help` for how to use `grant`.")


@pytest.mark.parametrize(
    "text",
    [
        f"submit {JOB} voice_name=v sex=<!channel>",
        "roles <!everyone>",
        "grant <@U012ABC> <!here>",
        "status <!channel>",
        "<!channel>",
    ],
)
def test_user_text_in_errors_is_escaped(text: str) -> None:
    # Echoing the input unescaped would ping the whole channel from an error message.
    rendered = failure(text).text()
    assert "<!" not in rendered
    assert "&lt;!" in rendered


def test_ampersand_in_errors_is_escaped() -> None:
    rendered = failure(f"submit {JOB} voice_name=v tag=a&b").text()
    assert "`a&amp;b`" in rendered


# -- the usage text ---------------------------------------------------------------------------


def test_usage_lists_every_subcommand_under_the_role_it_needs() -> None:
    everyone = messages.usage_text(set(), ["U0ADMIN1"])
    for name in SUBCOMMAND_NAMES:
        assert f"/voice {name}" in everyone
    assert "*Needs the requester role* (you don't have it; ask an admin: <@U0ADMIN1>)" in everyone
    assert "`voice_name`" not in everyone

    requester = messages.usage_text({"requester"}, ["U0ADMIN1"])
    assert "*Needs the requester role* (you have it)" in requester
    for key in SUBMIT_KEYS:
        assert f"`{key}`" in requester

    unknown = messages.usage_text(None)
    assert "*Needs the admin role*\n" in unknown  # roles unreadable: no claim either way
    assert "<job_id>" not in unknown
    assert "&lt;job_id&gt;" in unknown


def test_usage_text_states_the_same_limits_the_parser_enforces() -> None:
    keys = messages.submit_keys_text()
    for name, rule in FIELD_RULES.items():
        if rule.enum is None and name != "phone":
            assert f"{rule.max_length}" in keys, name
        if rule.enum is not None:
            for member in rule.enum:
                assert member.value.lower() in keys
    assert ROLE_NAMES == ("requester", "approver", "admin")
    assert {m.value for m in Sex} == {"FEMALE", "MALE"}
    assert {m.value for m in Language} == {"CN", "EN"}
    assert len(JobTag) == 7


# -- properties ---------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "submit",
        "status",
        "grant",
        "revoke",
        "roles",
        "audit",
        "help",
        JOB,
        "abc",
        "voice_name=",
        "sex=",
        "tag=",
        "=",
        '"',
        "'",
        "“",
        "”",
        "‘",
        "’",
        "<@U012ABC|a b>",
        "<@",
        "<",
        ">",
        "&lt;",
        "&amp;",
        "@alice",
        "--dry-run",
        "—",
        "\n",
        "\x00",
        "\u3000",
        "声音",
        " ",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_PIECES, max_size=30).map("".join)))
def test_parse_never_raises(text: str) -> None:
    result = parse(text)
    if isinstance(result, ParseFailure):
        assert result.problems
        assert all(p.message for p in result.problems)
        assert "<" not in result.text()
    else:
        assert isinstance(
            result, Help | SubmitForm | Submit | Status | Roles | Grant | Revoke | Audit
        )


_PLAIN = (
    st.text(
        alphabet=st.characters(
            categories=("L", "N", "Zs", "Pd", "Po"), exclude_characters="\"'“”„‟‘’‚‛<>&\u3000\xa0"
        ),
        min_size=1,
        max_size=64,
    )
    .map(str.strip)
    .filter(bool)
)


@settings(max_examples=200, deadline=None)
@given(voice_name=_PLAIN, description=_PLAIN)
def test_quoted_values_round_trip(voice_name: str, description: str) -> None:
    text = f'submit {JOB} voice_name="{voice_name}" description=“{description}”'
    assert parse(text) == submit(voice_name=voice_name, description=description)


def test_invisible_characters_are_dropped_and_line_separators_refused() -> None:
    hidden = "nar\u202erator\u200b\U000e0041\u00ad\u3164\u2066x\u2069"
    assert without_invisible(hidden) == "narratorx"
    assert validate_field("voice_name", hidden) == "narratorx"
    for separator in ("\u2028", "\u2029"):
        assert isinstance(validate_field("voice_name", f"a{separator}b"), Problem)
        assert isinstance(validate_field("description", f"a{separator}b"), Problem)
    assert validate_field("description", "two\nlines") == "two\nlines"
