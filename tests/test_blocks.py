"""Block Kit builders and the submit modal, each checked against slack_sdk's own models."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.i18n import LANGUAGES, Language, speaking
from bot.inbox import Inbox
from bot.metastudio.models import (
    AdminAuditResult,
    AuditResult,
    CommitJobRequest,
    JobState,
    SystemAuditError,
    SystemAuditResult,
    TrainingJob,
    TrainingQuotas,
)
from bot.permissions import Role
from bot.policies import Policies
from bot.readiness import Readiness
from bot.slack import messages
from bot.slack.blocks import (
    ACTION_APPROVE,
    ACTION_REJECT,
    APPROVAL_STATUSES,
    BLOCK_APPROVAL_ACTIONS,
    ApprovalCard,
    OutgoingMessage,
    approval_card,
    audit_message,
    dry_run_message,
    parse_approval_value,
    quotas_message,
    review_failed_message,
    review_passed_message,
    roles_message,
    status_message,
    submit_failed_message,
    text_message,
    training_outcome_message,
    user_roles_message,
)
from bot.slack.commands import Submit, parse
from bot.slack.home import MAX_HOME_BLOCKS, home_view
from bot.slack.modal import (
    ACTION_JOB,
    BLOCK_DRY_RUN,
    BLOCK_JOB,
    CALLBACK_ID,
    FIELD_BLOCK_IDS,
    job_option_label,
    job_options,
    parse_submission,
    reject_modal,
    submit_modal,
)
from tests.conftest import pending_requests

JOB = "26f06524-4f75-4b3a-a853-b649a21aaf66"
HOSTILE = "<!channel> & <@U999> <https://evil.example|click>"


def assert_valid_message(message: OutgoingMessage) -> None:
    assert message.text
    assert len(message.text) <= 40_000
    assert 0 < len(message.blocks) <= 50
    for raw in message.blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        assert block.to_dict()  # raises SlackObjectFormationError on any broken limit
        if raw["type"] == "section" and "text" in raw:
            assert len(raw["text"]["text"]) <= 3000
    json.dumps(message.blocks)


def assert_valid_modal(view: dict[str, Any]) -> None:
    assert len(view["blocks"]) <= 100
    assert View(**view).to_dict()["type"] == "modal"
    assert len(view["title"]["text"]) <= 24
    assert len(view["submit"]["text"]) <= 24


def rendered(message: OutgoingMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False) + message.text


def card(**changes: Any) -> ApprovalCard:
    values: dict[str, Any] = {
        "request_id": "req-1",
        "requester_id": "U012ABCDEF",
        "job_id": JOB,
        "request": CommitJobRequest(voice_name="demo", sex="FEMALE", language="CN", tag="NEWS"),
        "payload_hash": "ab" * 32,
        "job_name": "demo",
        "job_state": JobState.UPLOADING,
        "expires_at": 1_767_225_600.0,
    }
    values.update(changes)
    return ApprovalCard(**values)


def job(state: JobState = JobState.UPLOADING, **changes: Any) -> TrainingJob:
    return TrainingJob.model_validate(
        {"job_id": JOB, "state": state, "voice_name": "demo", "lastupdate_time": 1_767_225_600_000}
        | changes
    )


# -- approval card --------------------------------------------------------------------------


def test_pending_card_has_exactly_approve_and_reject() -> None:
    message = approval_card(card())
    assert_valid_message(message)
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert len(actions) == 1
    assert actions[0]["block_id"] == BLOCK_APPROVAL_ACTIONS
    approve, reject = actions[0]["elements"]
    assert (approve["text"]["text"], approve["action_id"], approve["style"]) == (
        "Approve",
        ACTION_APPROVE,
        "primary",
    )
    assert (reject["text"]["text"], reject["action_id"], reject["style"]) == (
        "Reject",
        ACTION_REJECT,
        "danger",
    )
    assert approve["value"] == reject["value"] == f"req-1:{'ab' * 32}"
    assert parse_approval_value(approve["value"]) == ("req-1", "ab" * 32)
    text = rendered(message)
    assert "<@U012ABCDEF>" in text
    assert "Waiting for an approver" in text
    assert "<!date^1767225600^" in text


@pytest.mark.parametrize("status", sorted(APPROVAL_STATUSES - {"pending"}))
def test_decided_card_has_no_buttons_and_says_who_decided(status: str) -> None:
    message = approval_card(card(status=status, decided_by="U0APPROVER", reason="bad data"))
    assert_valid_message(message)
    assert not [b for b in message.blocks if b["type"] == "actions"]
    line, reason = message.blocks[-1]["elements"]
    assert messages.APPROVAL_STATUS_WORDS[status] in line["text"]
    assert "by <@U0APPROVER>" in line["text"]
    assert reason == {"type": "plain_text", "text": "bad data", "emoji": False}


def test_card_with_unknown_job_and_empty_request() -> None:
    message = approval_card(card(job_name=None, job_state=None, request=CommitJobRequest()))
    assert_valid_message(message)
    text = rendered(message)
    assert "name unknown" in text
    assert "No fields set" in text


def test_card_escapes_every_user_supplied_text() -> None:
    hostile_request = CommitJobRequest(voice_name=HOSTILE, description=HOSTILE * 10)
    message = approval_card(
        card(
            request=hostile_request,
            job_name=HOSTILE,
            reason=HOSTILE,
            note=HOSTILE,
            status="rejected",
            decided_by="U0APPROVER",
        )
    )
    assert_valid_message(message)
    mrkdwn = [t["text"] for t in text_objects(message) if t["type"] == "mrkdwn"]
    typed = [t["text"] for t in text_objects(message) if t["type"] == "plain_text"]
    # In mrkdwn it is escaped; as plain text it is shown as typed, and inert.
    assert not any("<!channel>" in t or "<@U999>" in t for t in mrkdwn)
    assert any("&lt;!channel&gt; &amp; &lt;@U999&gt;" in t for t in mrkdwn)
    assert any(HOSTILE in t for t in typed)
    assert "<!channel>" not in message.text


def text_objects(message: OutgoingMessage) -> list[dict[str, Any]]:
    """Every text object of a message's blocks (section text and fields, context elements)."""
    found: list[dict[str, Any]] = []
    for block in message.blocks:
        if isinstance(block.get("text"), dict):
            found.append(block["text"])
        found += block.get("fields") or []
        found += [
            e
            for e in block.get("elements") or []
            if "text" in e and "type" in e and e["type"] in ("mrkdwn", "plain_text")
        ]
    return found


def test_user_text_on_the_card_renders_as_typed() -> None:
    """Bare URLs, *bold*, ~strike~, _italics_ and :emoji: that a requester or an approver
    typed are shown as typed: only in plain text objects (which Slack never formats, links
    or parses), never in mrkdwn."""
    typed_text = "*big* ~gone~ _slanted_ https://evil.example :smile:"
    message = approval_card(
        card(
            request=CommitJobRequest(voice_name=typed_text[:64], description=typed_text * 8),
            job_name=typed_text[:64],
            reason=typed_text,
            status="rejected",
            decided_by="U0APPROVER",
        )
    )
    assert_valid_message(message)
    objects = text_objects(message)
    for obj in objects:
        if "*big*" not in obj["text"]:
            continue
        if obj["type"] == "mrkdwn":
            # Only inside a code span, which Slack does not format, and verbatim: no links.
            assert f"`{typed_text}`" in obj["text"], obj
            assert obj.get("verbatim") is True, obj
        else:
            assert obj.get("emoji") is False, obj
    typed = [o["text"] for o in objects if o["type"] == "plain_text"]
    assert any(typed_text[:64] in t for t in typed)  # the voice name field
    assert any((typed_text * 8)[:400] in t for t in typed)  # the description
    assert typed_text in typed  # the approver's reason


def test_long_fields_get_their_own_section() -> None:
    message = approval_card(card(request=CommitJobRequest(voice_name="v", description="d" * 512)))
    assert_valid_message(message)
    assert any(
        b.get("text", {}).get("text", "").startswith("Description\n" + "d" * 512)
        for b in message.blocks
    )


def test_button_value_limit() -> None:
    with pytest.raises(ValueError, match="2000"):
        approval_card(card(payload_hash="h" * 2000))


def test_approval_value_parsing() -> None:
    assert parse_approval_value("a:b:c") == ("a:b", "c")
    assert parse_approval_value("nohash") is None
    assert parse_approval_value(":x") is None
    assert parse_approval_value("x:") is None


# -- job status and outcomes --------------------------------------------------------------


@pytest.mark.parametrize("state", list(JobState))
def test_status_message_for_every_state(state: JobState) -> None:
    message = status_message(
        job(
            state, job_failed_code="MSS.1", job_failed_reason=HOSTILE, asset_id="a1", reject_times=2
        )
    )
    assert_valid_message(message)
    text = rendered(message)
    assert state.value in text
    assert "<!channel>" not in text


def test_dry_run_message_shows_the_request() -> None:
    message = dry_run_message(
        "post",
        f"https://metastudio.example/v1/p/voice-training-manage/user/jobs/{JOB}",
        {"Authorization": "***", "X-Sdk-Date": "20250101T000000Z"},
        {"voice_name": "demo <b> & ```", "sex": "FEMALE"},
    )
    assert_valid_message(message)
    code_block = message.blocks[1]["text"]["text"]
    assert code_block.startswith("```POST https://metastudio.example/")
    assert "Authorization: ***" in code_block
    assert '"voice_name": "demo &lt;b&gt; &amp; \'\'\'"' in code_block
    assert "Nothing was sent" in rendered(message)


@pytest.mark.parametrize("body", [None, "raw text", b'{"a": 1}', {"description": "x" * 5000}])
def test_dry_run_message_body_kinds_and_truncation(body: Any) -> None:
    message = dry_run_message("POST", "https://m.example/x", {}, body)
    assert_valid_message(message)
    if isinstance(body, dict):
        assert "the rest is cut here" in rendered(message)
        assert message.blocks[1]["text"]["text"].endswith("```")


def test_review_passed() -> None:
    message = review_passed_message(JOB, HOSTILE, JobState.WAITING)
    assert_valid_message(message)
    assert "passed review" in message.text
    assert "<!channel>" not in rendered(message)


def audit(errors: int, admin_message: str | None = "Audio 3 is too noisy") -> AuditResult:
    return AuditResult(
        system_audit_result=SystemAuditResult(
            audit_time=1,
            errors=[
                SystemAuditError(
                    audio_name=f"audio_{i}.wav",
                    text_name=f"text_{i}.txt",
                    error_code=f"MSS.{i:08d}",
                    error_message=f"problem {i} <&>",
                )
                for i in range(errors)
            ],
        ),
        admin_audit_result=AdminAuditResult(
            message=admin_message,
            attachment_name="notes.pdf",
            attachment_url="https://files.example/notes.pdf?a=1&b=2",
        ),
    )


def test_review_failed_lists_every_error_and_the_reviewers_message() -> None:
    message = review_failed_message(JOB, "demo", audit(3), reject_times=1)
    assert_valid_message(message)
    text = rendered(message)
    for i in range(3):
        assert f"`audio_{i}.wav` / `text_{i}.txt`: `MSS.{i:08d}` problem {i} &lt;&amp;&gt;" in text
    assert "> Audio 3 is too noisy" in text
    assert "<https://files.example/notes.pdf?a=1&amp;b=2|notes.pdf>" in text
    assert "rejected 1 time(s)" in text
    assert f"`/voice submit {JOB}` again" in text


def test_review_failed_with_many_errors_stays_within_limits() -> None:
    message = review_failed_message(JOB, "demo", audit(2000))
    assert_valid_message(message)
    text = rendered(message)
    shown = text.count("`audio_")
    note = [b for b in message.blocks if b["type"] == "context" and "not shown" in str(b)]
    assert len(note) == 1
    omitted = int(note[0]["elements"][0]["text"].split("and ")[1].split(" ")[0])
    assert shown + omitted == 2000


def test_review_failed_without_any_reason() -> None:
    message = review_failed_message(JOB, None, None)
    assert_valid_message(message)
    assert "MetaStudio gave no reason." in rendered(message)


def test_review_failed_reason_from_op_log_only() -> None:
    message = review_failed_message(JOB, None, AuditResult(), reason="wrong speaker")
    assert "> wrong speaker" in rendered(message)


def test_submit_failed_shows_code_message_and_what_to_do() -> None:
    message = submit_failed_message(
        JOB, "MSS.41000012", "task concurrency <limit>", "Wait for earlier tasks.", request_id="r-9"
    )
    assert_valid_message(message)
    text = rendered(message)
    assert "`MSS.41000012`" in text
    assert "task concurrency &lt;limit&gt;" in text
    assert "Wait for earlier tasks." in text
    assert "run `/voice submit` again" in text
    assert "`r-9`" in text


def test_training_succeeded_shows_the_asset() -> None:
    message = training_outcome_message(job(JobState.SUCCEED, asset_id="asset-42"))
    assert_valid_message(message)
    assert "`asset-42`" in rendered(message)
    assert message.text.endswith("succeeded")


@pytest.mark.parametrize(
    ("state", "code", "reason", "expected"),
    [
        (JobState.FAILED, "MSS.99", "GPU fell over", "`MSS.99`: GPU fell over"),
        (JobState.SPLIT_FAILED, None, None, "MetaStudio gave no reason."),
        (JobState.USER_REVIEW_REJECT, None, "<bad>", "&lt;bad&gt;"),
    ],
)
def test_training_failed_shows_code_and_reason(
    state: JobState, code: str | None, reason: str | None, expected: str
) -> None:
    message = training_outcome_message(job(state, job_failed_code=code, job_failed_reason=reason))
    assert_valid_message(message)
    assert expected in rendered(message)


# -- roles and audit ----------------------------------------------------------------------


def test_roles_listing() -> None:
    message = roles_message({"admin": {"U0ADMIN01"}, "approver": [], "requester": ["U0B", "U0A"]})
    assert_valid_message(message)
    text = rendered(message)
    assert "*admin*: <@U0ADMIN01>" in text
    assert "*approver*: _nobody_" in text
    assert "*requester*: <@U0A>, <@U0B>" in text
    assert_valid_message(roles_message({}))


def test_user_roles() -> None:
    assert "has: *admin*, *approver*" in user_roles_message("U0X1", {"approver", "admin"}).text
    empty = user_roles_message("U0X1", [])
    assert_valid_message(empty)
    assert empty.text == "<@U0X1> has no roles."


@dataclass
class Event:
    ts: Any
    actor: str | None
    action: str
    job_id: str | None = None
    payload_hash: str | None = None
    detail: str | None = None


def test_audit_trail_accepts_mappings_and_objects() -> None:
    events: list[object] = [
        {
            "ts": 1_767_225_600.0,
            "actor": "U0REQ",
            "action": "requested",
            "job_id": JOB,
            "payload_hash": "ab" * 32,
            "detail": HOSTILE,
        },
        Event(ts=datetime(2026, 1, 1, tzinfo=UTC), actor="U0APP", action="approved", job_id=JOB),
        Event(ts="1767225600123-0", actor=None, action="submitted"),
        {"ts": "yesterday", "actor": "worker", "action": "polled"},
        {"ts": None, "action": None},
    ]
    message = audit_message(events, job_id=JOB)
    assert_valid_message(message)
    text = rendered(message)
    assert "<@U0REQ>" in text
    assert "payload `abababababab`" in text
    assert "<!channel>" not in text
    assert "yesterday" in text
    assert "(5 events)" in text


def test_long_audit_trail_is_cut_with_a_note() -> None:
    events = [
        {"ts": 1_767_225_600 + i, "actor": "U0REQ", "action": "x", "detail": "d" * 200}
        for i in range(3000)
    ]
    message = audit_message(events)
    assert_valid_message(message)
    assert "more events not shown" in rendered(message)


def test_empty_audit_trail() -> None:
    message = audit_message([])
    assert_valid_message(message)
    assert "No events recorded" in rendered(message)


def test_text_message_wraps_any_sentence() -> None:
    for sentence in (
        messages.permission_denied("approver", "approve requests", ["U1AA", "U2BB"]),
        messages.permission_store_unavailable(),
        messages.self_approval_refused(),
        messages.already_decided("approved", "U0APPROVER"),
        messages.metastudio_error("MSS.41000023", "insufficient resources", "Buy resources."),
        messages.usage_text({"requester", "admin"}, ["U0ADMIN1"]),
    ):
        assert_valid_message(text_message(sentence))


def test_sentences() -> None:
    assert messages.permission_denied("approver", "approve requests", ["U1AA", "U2BB"]) == (
        "You need the *approver* role to approve requests. Ask an admin: <@U1AA>, <@U2BB>."
    )
    assert messages.already_decided("rejected", "U0X1") == (
        "This request was already decided by <@U0X1>: rejected."
    )
    assert "<#C0123ABC>" in messages.channel_not_allowed("C0999", ["C0123ABC", "not-a-channel"])
    assert messages.mention("alice <x>") == "alice &lt;x&gt;"
    assert messages.code("") == "(empty)"
    assert messages.code("a`b\nc") == "`a'b c`"


# -- the submit modal ---------------------------------------------------------------------


def test_modal_with_static_job_options() -> None:
    choices = [(f"job-{i:04d}-abcdef", f"voice {i} " + "x" * 100) for i in range(150)]
    view = submit_modal(choices, private_metadata="C0123|U0REQ", initial_job="job-0007-abcdef")
    assert_valid_modal(view)
    assert view["callback_id"] == CALLBACK_ID
    element = view["blocks"][0]["element"]
    assert view["blocks"][0]["block_id"] == BLOCK_JOB
    assert element["type"] == "static_select"
    assert element["action_id"] == ACTION_JOB
    assert len(element["options"]) == 100
    assert element["initial_option"]["value"] == "job-0007-abcdef"
    assert all(len(o["text"]["text"]) <= 75 for o in element["options"])


def test_modal_with_external_job_select_and_prefill() -> None:
    initial = CommitJobRequest(voice_name="demo", sex="MALE", tag="LIVE", description="hi")
    view = submit_modal(None, private_metadata="", initial=initial, initial_job=JOB, dry_run=True)
    assert_valid_modal(view)
    element = view["blocks"][0]["element"]
    assert element == element | {
        "type": "external_select",
        "action_id": "job_id",
        "min_query_length": 0,
    }
    assert element["initial_option"]["value"] == JOB
    by_id = {b["block_id"]: b for b in view["blocks"]}
    assert set(FIELD_BLOCK_IDS.values()) | {BLOCK_JOB, BLOCK_DRY_RUN} == set(by_id)
    assert by_id["voice_name"]["element"]["initial_value"] == "demo"
    assert by_id["voice_name"]["optional"] is False
    assert by_id["phone"]["optional"] is True
    assert by_id["sex"]["element"]["initial_option"]["value"] == "MALE"
    assert by_id["tag"]["element"]["initial_option"]["value"] == "LIVE"
    assert "initial_option" not in by_id["language"]["element"]
    assert by_id["description"]["element"]["multiline"] is True
    assert by_id[BLOCK_DRY_RUN]["element"]["initial_options"]


def test_modal_private_metadata_limit() -> None:
    with pytest.raises(ValueError, match="3000"):
        submit_modal(None, private_metadata="x" * 3001)


def state_values(
    job_id: str | None = JOB, dry_run: bool = False, **fields: str | None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        BLOCK_JOB: {
            ACTION_JOB: {
                "type": "external_select",
                "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": job_id}
                if job_id
                else None,
            }
        },
        BLOCK_DRY_RUN: {
            "dry_run": {
                "type": "checkboxes",
                "selected_options": [{"value": "dry_run"}] if dry_run else [],
            }
        },
    }
    for name, value in fields.items():
        if name in ("sex", "language", "tag"):
            entry = {
                "type": "static_select",
                "selected_option": {"value": value} if value else None,
            }
        else:
            entry = {"type": "plain_text_input", "value": value}
        values[FIELD_BLOCK_IDS[name]] = {name: entry}
    return values


def test_submission_gives_the_same_model_as_the_command() -> None:
    result = parse_submission(
        state_values(
            voice_name=" demo ",
            sex="FEMALE",
            language="CN",
            tag="CUSTOMER",
            description=None,
            phone="   ",
            custom_text="line one\nline two",
            dry_run=True,
        )
    )
    command = parse(
        f"submit {JOB} voice_name=demo sex=female language=cn tag=customer "
        f'custom_text="line one\nline two" --dry-run'
    )
    assert isinstance(result, Submit)
    assert result == command


@pytest.mark.parametrize(
    ("values", "block_id", "fragment"),
    [
        (state_values(job_id=None, voice_name="v"), BLOCK_JOB, "Choose the job"),
        (state_values(job_id="bad id", voice_name="v"), BLOCK_JOB, "is not a job id"),
        (state_values(), "voice_name", "voice_name is required"),
        (state_values(voice_name="v" * 65), "voice_name", "the limit is 64"),
        (state_values(voice_name="v", sex="OTHER"), "sex", "Use one of: female, male."),
        (state_values(voice_name="v", phone="12"), "phone", "5 to 20 digits"),
        (state_values(voice_name="v", app_user_id="用户"), "app_user_id", "Chinese characters"),
        ({}, BLOCK_JOB, "Choose the job"),
        ({BLOCK_JOB: "garbage", "voice_name": {"voice_name": 7}}, "voice_name", "is required"),
    ],
)
def test_submission_errors_map_to_blocks(
    values: dict[str, Any], block_id: str, fragment: str
) -> None:
    result = parse_submission(values)
    assert isinstance(result, dict)
    assert fragment in result[block_id]
    assert "&lt;" not in result[block_id]  # modal errors are plain text, not mrkdwn
    assert "`" not in result[block_id]


def test_job_options_for_block_suggestion() -> None:
    jobs = [
        job(JobState.UPLOADING, job_id=f"{i:08d}-4f75-4b3a-a853-b649a21aaf66", voice_name="v" * 80)
        for i in range(150)
    ]
    options = job_options(jobs)
    assert len(options) == 100
    for option, source in zip(options, jobs, strict=False):
        assert option["value"] == source.job_id
        assert len(option["text"]["text"]) <= 75
        assert f"({source.job_id})" in option["text"]["text"]
    block = {
        "type": "input",
        "label": {"type": "plain_text", "text": "Job"},
        "element": {"type": "static_select", "action_id": "j", "options": options},
    }
    parsed = Block.parse(block)
    assert parsed is not None
    assert parsed.to_dict()
    assert [o["value"] for o in job_options(jobs, query="00000149-")] == [jobs[149].job_id]
    assert job_options(jobs, query="nothing matches") == []


def test_job_option_label() -> None:
    assert job_option_label(JOB, "demo", "uploading training data") == (
        f"demo ({JOB}) · uploading training data"
    )
    assert job_option_label("j" * 64, "demo", "in review") == f"demo ({'j' * 64})"
    assert len(job_option_label("j" * 80, None, None)) == 75


def test_modal_submit_label_when_no_approval_is_needed() -> None:
    view = submit_modal(None, private_metadata="", submit_label=messages.MODAL_SUBMIT_DIRECT)
    assert_valid_modal(view)
    assert view["submit"]["text"] == "Submit"


def test_channel_not_allowed_never_builds_markup_from_odd_ids() -> None:
    assert messages.channel_not_allowed("C0999", []) == "`/voice` can't be used in <#C0999>."
    assert "<#" not in messages.channel_not_allowed("<!here>", [])


# -- the job's risks on the card ------------------------------------------------------------

ALL_CHECKS = ("speed", "sound", "snr", "reverb", "dnsmos_ovrl", "dnsmos_bak")


def assessed_job(suggestion: str, **changes: Any) -> TrainingJob:
    entry = {
        "expected": "<=0.4 s & <@U123> *bold*",
        "actual": "9" * 300,
        "suggestion": "建议" * 800,
        "suggestion_en": suggestion,
        "status": 1,
    }
    assess: dict[str, Any] = {name: entry for name in ALL_CHECKS}
    assess["suggestion"] = suggestion
    return job(assess_result=assess, job_type="ADVANCE", reject_times=12, **changes)


@pytest.mark.parametrize("status", ["pending", "approved", "under_review"])
def test_card_stays_valid_with_every_check_out_of_range_and_long_suggestions(
    status: str,
) -> None:
    suggestion = "Record again somewhere quiet <!channel> `x` " * 200
    quotas = TrainingQuotas.model_validate({"resource_available_nums": {"advance": 0}})
    readiness = Readiness.of(assessed_job(suggestion), quotas)
    long_request = CommitJobRequest(
        voice_name="v" * 64, description="d" * 512, custom_text="t" * 512, tag="NEWS"
    )
    message = approval_card(
        card(
            status=status,
            readiness=readiness,
            request=long_request,
            note="n" * 2000,
            reason="r" * 3000,
            decided_by="U1",
        )
    )
    assert_valid_message(message)
    text = rendered(message)
    if status != "pending":
        # The risks are for the approver; a decided card points to where they are now.
        assert "6 of 6" not in text
        assert f"`/voice status {JOB}` shows it now" in text
        return
    assert "6 of 6 audio checks out of range" in text
    assert "*no authorization letter*" in text
    assert "*no ADVANCE trainings left*" in text
    # MetaStudio's text never reaches mrkdwn: no broadcast, no mention, no formatting.
    for block in message.blocks:
        if block["type"] == "section" and "text" in block and "<!channel>" in block["text"]["text"]:
            assert block["text"]["type"] == "plain_text"


def test_status_with_every_check_out_of_range_stays_valid() -> None:
    readiness = Readiness.of(assessed_job("x" * 5000, voice_authorization_url=""))
    message = status_message(assessed_job("x" * 5000), readiness)
    assert_valid_message(message)
    assert "*no authorization letter*" in rendered(message)


def test_a_card_whose_job_was_not_read_says_so() -> None:
    message = approval_card(card(readiness=None))
    assert_valid_message(message)
    assert messages.readiness_unread() in rendered(message)


def test_unknown_job_type_and_check_values_parse() -> None:
    parsed = TrainingJob.model_validate(
        {
            "job_id": JOB,
            "state": "UPLOADING",
            "job_type": "NEWER_TYPE",
            "assess_result": {"snr": {"status": 1}, "brand_new_check": {"status": 1}},
        }
    )
    assert parsed.job_type is not None
    assert parsed.job_type.value == "NEWER_TYPE"
    readiness = Readiness.of(parsed, TrainingQuotas())
    assert [c.name for c in readiness.failed_checks] == ["snr"]
    assert readiness.quota_left is None
    assert not readiness.no_quota
    assert_valid_message(approval_card(card(readiness=readiness)))


def test_quota_table_stays_valid_with_many_resources() -> None:
    quotas = TrainingQuotas.model_validate(
        {
            "resource_available_nums": {"basic": 1, "middle": 0},
            "resources": [
                {
                    "resource_type": "BASIC",
                    "resource_nums": 9,
                    "expire_time": "x" * 100,
                    "resource_available_nums": 1,
                }
            ]
            * 400,
        }
    )
    assert_valid_message(quotas_message(quotas))
    assert_valid_message(quotas_message(None))


# -- in both languages -----------------------------------------------------------------------

_HAN = re.compile(r"[\u4e00-\u9fff]")


def _longest_messages() -> dict[str, OutgoingMessage]:
    """The longest message of each kind, built in the language spoken now."""
    suggestion = "在安静的地方重新录制，避免回声和底噪。" * 200
    quotas = TrainingQuotas.model_validate({"resource_available_nums": {"advance": 0}})
    readiness = Readiness.of(assessed_job(suggestion), quotas)
    long_request = CommitJobRequest(
        voice_name="声" * 64, description="描" * 512, custom_text="试" * 512, tag="NEWS"
    )
    longest: dict[str, OutgoingMessage] = {}
    for status in ("pending", "approved", "rejected", "under_review", "expired"):
        longest[f"card {status}"] = approval_card(
            card(
                status=status,
                readiness=readiness,
                request=long_request,
                job_name="名" * 64,
                note="注" * 2000,
                reason="理由" * 1500,
                decided_by="U1",
                required_approvals=10,
                approvers=tuple(f"U{i:09d}" for i in range(9)),
            )
        )
    longest["review failed"] = review_failed_message(
        JOB, "声" * 64, audit(2000, admin_message="音频第 3 条噪声过大。" * 300), reject_times=12
    )
    longest["status"] = status_message(assessed_job(suggestion), readiness)
    longest["submit failed"] = submit_failed_message(
        JOB, "MSS.00000001", "错误" * 3000, "提示" * 500, request_id="r" * 64
    )
    longest["training failed"] = training_outcome_message(
        job(JobState.FAILED, job_failed_code="MSS.1", job_failed_reason="失败" * 3000)
    )
    longest["review passed"] = review_passed_message(JOB, "声" * 64, JobState.WAITING_SPLIT)
    events = [
        {"ts": 1_767_225_600 + i, "actor": "U0REQ", "action": "approve", "detail": "细" * 300}
        for i in range(3000)
    ]
    longest["audit"] = audit_message(events, job_id=JOB)
    many = {"BASIC": 1, "MIDDLE": 0, "ADVANCE": 3}
    resource = {"resource_type": "BASIC", "resource_nums": 9, "expire_time": "x" * 100}
    longest["quotas"] = quotas_message(
        TrainingQuotas.model_validate(
            {"resource_available_nums": many, "resources": [resource] * 400}
        )
    )
    longest["roles"] = roles_message(
        {f"role{i}": [f"U{j:09d}" for j in range(400)] for i in range(3)}
    )
    longest["sentence"] = text_message(
        messages.submit_blocked(JOB, authorization=False, failed_checks=["snr"] * 6)
    )
    return longest


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_longest_messages_stay_valid_in_every_language(language: Language) -> None:
    with speaking(language):
        longest = _longest_messages()
    for kind, message in longest.items():
        assert_valid_message(message)
        # The bot's own words are in the language; English has none of the Chinese ones.
        if language == "zh":
            assert _HAN.search(message.text), kind
        else:
            assert not _HAN.search(message.text.replace("声", "")), kind


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_modals_and_home_stay_valid_in_every_language(language: Language) -> None:
    choices = [(f"job-{i:04d}-abcdef", "声" * 60) for i in range(150)]
    waiting = pending_requests(80, channel="C0123", voice_name="声" * 64, required_approvals=3)
    policies = Policies(
        default=2,
        channels={f"C{i:08d}": 3 for i in range(40)},
        default_language="zh",
        languages={f"C{i:08d}": "en" for i in range(20, 60)},
    )
    roles = frozenset({Role.approver, Role.requester, Role.admin})
    inbox = Inbox("UAPP", roles, waiting, waiting[:30], policies, {"admin": ["UAPP"] * 50})
    with speaking(language):
        modals = [
            submit_modal(choices, private_metadata="C0123|U0REQ", initial_job="job-0007-abcdef"),
            submit_modal(
                None, private_metadata="C0123|U0REQ", submit_label=messages.MODAL_SUBMIT_DIRECT
            ),
            reject_modal(private_metadata="r1"),
        ]
        first = home_view(inbox)
        pages = [home_view(inbox, page) for page in range(1, 8)]
    for view in modals:
        assert_valid_modal(view)
        title = view["title"]["text"]
        assert bool(_HAN.search(title)) is (language == "zh"), title
    for view in [first, *pages]:
        assert len(view["blocks"]) <= MAX_HOME_BLOCKS
        assert View(**view).to_dict()["type"] == "home"
    headers = [b["text"]["text"] for b in first["blocks"] if b["type"] == "header"]
    assert all(bool(_HAN.search(h)) is (language == "zh") for h in headers[1:]), headers
