"""`/voice` end to end: signed slash commands over HTTP to the web app, a real Redis, the local
Slack and the local MetaStudio; every subcommand, every validation error, roles and denials,
the audit stream, the submit modal round trip, and requests that fail verification.

A slash command's answer reaches the user either as the ack body or as posts to its
response_url; the local Slack records both against the same response_url id, so ``answer``
reads them together (``answer`` in conftest).
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import redis.asyncio as aioredis

from bot.metastudio.models import STATE_WORDS, JobState, category_of
from bot.slack import modal
from sandbox.metastudio import LocalMetaStudio, ReviewPlan
from sandbox.metastudio.faults import FaultConfig
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    ACK_DEADLINE,
    ADMIN,
    APPROVER,
    CHANNEL,
    INTERNAL_ERROR,
    OUTSIDER,
    REQUESTER,
    TEAM,
    answer,
    grant,
    prefixed_keys,
    say,
)

# A job seeded in review stays there however slowly a loaded machine runs the test.
STILL_IN_REVIEW = ReviewPlan(system_delay=600, admin_delay=600)


# -- help and usage ----------------------------------------------------------------------------


async def test_help_lists_every_subcommand_with_the_role_it_needs(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    """A new user learns that `submit` exists, which role it needs and whom to ask."""
    outsider = await say(driver, slack, "help", user=OUTSIDER)
    for name in ("help", "status", "roles", "submit", "grant", "revoke", "audit"):
        assert f"/voice {name}" in outsider, name
    for role in ("requester", "approver", "admin"):
        assert f"*Needs the {role} role* (you don't have it; ask an admin: <@{ADMIN}>)" in (
            outsider
        ), role
    assert "voice_name` (required" not in outsider  # the submit keys are for requesters

    await grant(driver, slack, REQUESTER, "requester")
    requester = await say(driver, slack, "help", user=REQUESTER)
    assert "*Needs the requester role* (you have it)" in requester
    assert "*Needs the admin role* (you don't have it" in requester
    assert "voice_name` (required" in requester

    admin = await say(driver, slack, "", user=ADMIN)
    assert "*Needs the admin role* (you have it)" in admin
    assert "*Needs the requester role* (you don't have it" in admin  # roles are separate duties


async def test_unknown_or_malformed_input_gets_the_usage(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    for text in ("xyzzy", "stauts", "voice_name=x", "grnt", '"unclosed', "x" * 4001):
        reply = await say(driver, slack, text, user=OUTSIDER)
        assert "/voice help" in reply, text
        assert "/voice status" in reply, text
        assert "/voice submit" in reply, text
        assert "*Needs the requester role* (you don't have it" in reply, text
    unclosed = await say(driver, slack, '"unclosed', user=ADMIN)
    assert "is never closed" in unclosed
    assert "/voice grant" in unclosed


async def test_did_you_mean_suggests_the_closest_subcommand(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    typo = await say(driver, slack, "stauts", user=OUTSIDER)
    assert "Did you mean `status`?" in typo
    admin_word = await say(driver, slack, "grnt @x", user=OUTSIDER)
    assert "Did you mean `grant`?" in admin_word
    assert "*Needs the admin role* (you don't have it" in admin_word


# -- submit with arguments -------------------------------------------------------------------


async def test_submit_posts_an_approval_card(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant(driver, slack, REQUESTER, "requester")
    job = metastudio.seed_job(voice_name="narrator")
    reply = await say(
        driver, slack, f'submit {job} voice_name="Narrator One" sex=female', user=REQUESTER
    )
    assert "Approval requested" in reply
    (card,) = slack.messages(CHANNEL)
    assert job in card.text or any(job in str(b) for b in card.blocks)
    assert metastudio.commit_count(job) == 0


JOB = "26f06524-4f75-4b3a-a853-b649a21aaf66"

# (command text, a fragment of the specific message the user must see)
VALIDATION_ERRORS: list[tuple[str, str]] = [
    (f"submit {JOB} voice_nme=x", "Did you mean `voice_name`?"),
    (f"submit {JOB} voice_name=v colour=red", "Unknown key `colour`"),
    (f"submit {JOB} voice_name=v sex=fmale", "Did you mean `female`?"),
    (f"submit {JOB} voice_name=v language=zh", "is not a valid language"),
    (f"submit {JOB} voice_name=v tag=sport", "is not a valid tag"),
    ("submit abc voice_name=v", "is not a job id"),
    ("submit voice_name=v", "`submit` needs a job id"),
    (f"submit {JOB} sex=male", "`voice_name` is required"),
    (f"submit {JOB} voice_name={'v' * 65}", "the limit is 64"),
    (f"submit {JOB} voice_name=", "has no value"),
    (f"submit {JOB} voice_name=v extra", "is not `key=value`"),
    (f"submit {JOB} voice_name=a voice_name=b", "given more than once"),
    (f"submit {JOB} voice_name=v phone=12", "is not a phone number"),
    (f"submit {JOB} voice_name=v app_user_id=用户", "rejects Chinese characters"),
    (f"submit {JOB} voice_name=v --force", "Unknown flag `--force`"),
    (f'submit {JOB} voice_name="never closed', "is never closed"),
    ("status", "`status` needs a job id"),
    ("status abc", "is not a job id"),
    ("roles @alice", "is a display name, not a user"),
    ("grant <@U0ALICE1>", "needs a role"),
    ("grant <@U0ALICE1> boss", "is not a role"),
    ("revoke", "needs a user"),
]


async def test_every_validation_error_reaches_the_user(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    for text, fragment in VALIDATION_ERRORS:
        reply = await say(driver, slack, text, user=REQUESTER)
        assert fragment in reply, (text, reply)
        assert INTERNAL_ERROR not in reply
    assert slack.messages(CHANNEL) == []


async def test_job_problems_found_at_metastudio_reach_the_user(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    metastudio.review = STILL_IN_REVIEW
    await grant(driver, slack, REQUESTER, "requester")
    missing = await say(driver, slack, f"submit {JOB} voice_name=v", user=REQUESTER)
    assert f"MetaStudio has no job `{JOB}`" in missing

    busy = metastudio.seed_job(state=JobState.AUDITING)
    not_ready = await say(driver, slack, f"submit {busy} voice_name=v", user=REQUESTER)
    assert f"Job `{busy}` can't be submitted now: it is in manual review" in not_ready
    assert slack.messages(CHANNEL) == []


async def test_dry_run_shows_the_request_and_sends_nothing(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant(driver, slack, REQUESTER, "requester")
    job = metastudio.seed_job()
    reply = await say(driver, slack, f"submit {job} voice_name=v --dry-run", user=REQUESTER)
    assert "Dry run" in reply
    assert "local-signing-secret" not in reply
    assert slack.messages(CHANNEL) == []
    assert metastudio.commit_count(job) == 0


# -- status ----------------------------------------------------------------------------------


async def test_status_gives_the_state_in_words_with_its_category(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    metastudio.review = STILL_IN_REVIEW
    for state in (JobState.UPLOADING, JobState.AUDITING, JobState.AUDIT_FAILED, JobState.SUCCEED):
        job = metastudio.seed_job(state=state, voice_name="narrator")
        reply = await say(driver, slack, f"status {job}", user=OUTSIDER)
        assert f"is {STATE_WORDS[state]} ({category_of(state)})" in reply, reply
        assert "narrator" in reply

    unknown = await say(driver, slack, f"status {JOB}", user=OUTSIDER)
    assert f"MetaStudio has no job `{JOB}`" in unknown


# -- roles, grants, revokes, denials, audit ---------------------------------------------------


async def test_grant_accepts_every_mention_form(driver: SlackDriver, slack: LocalSlack) -> None:
    forms = ["<@U0ALICE1|alice>", "<@U0ALICE2>", "U0ALICE3", "@U0ALICE4", "&lt;@U0ALICE5&gt;"]
    for n, mention in enumerate(forms, start=1):
        user = f"U0ALICE{n}"
        reply = await say(driver, slack, f"grant {mention} approver", user=ADMIN)
        assert f"<@{user}> now has the *approver* role" in reply, reply
        roles = await say(driver, slack, f"roles {mention}", user=ADMIN)
        assert f"<@{user}> has: *approver*" in roles
        swapped = await say(driver, slack, f"revoke approver {mention}", user=ADMIN)
        assert f"<@{user}> no longer has the *approver* role" in swapped


async def test_grant_and_revoke_change_roles_and_are_audited(
    driver: SlackDriver,
    slack: LocalSlack,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant(driver, slack, APPROVER, "approver")
    again = await say(driver, slack, f"grant <@{APPROVER}> approver", user=ADMIN)
    assert "already has the *approver* role; nothing changed" in again
    everyone = await say(driver, slack, "roles", user=ADMIN)
    assert f"*approver*: <@{APPROVER}>" in everyone
    assert f"*admin*: <@{ADMIN}>" in everyone

    revoked = await say(driver, slack, f"revoke <@{APPROVER}> approver", user=ADMIN)
    assert f"<@{APPROVER}> no longer has the *approver* role" in revoked
    not_held = await say(driver, slack, f"revoke <@{APPROVER}> approver", user=ADMIN)
    assert "does not have the *approver* role; nothing changed" in not_held
    assert f"<@{APPROVER}> has no roles" in await say(
        driver, slack, f"roles <@{APPROVER}>", user=ADMIN
    )

    entries = await redis_client.xrange(f"{redis_prefix}audit")
    changes = [
        (f["action"], f["actor"], f["target"], f["role"], f["tenant"], f["channel"])
        for _, f in entries
    ]
    assert changes == [
        ("grant", ADMIN, APPROVER, "approver", TEAM, CHANNEL),
        ("revoke", ADMIN, APPROVER, "approver", TEAM, CHANNEL),
    ]

    bootstrap = await say(driver, slack, f"revoke <@{ADMIN}> admin", user=ADMIN)
    assert "VOICEBOT_ADMINS" in bootstrap


async def test_admin_commands_are_denied_naming_the_role_and_the_admin(
    driver: SlackDriver,
    slack: LocalSlack,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    await grant(driver, slack, REQUESTER, "requester")
    before = await prefixed_keys(redis_client, redis_prefix)
    audit_before = await redis_client.xlen(f"{redis_prefix}audit")
    for text in (
        f"grant <@{OUTSIDER}> admin",
        f"revoke <@{REQUESTER}> requester",
        f"roles <@{ADMIN}>",
        "audit",
    ):
        reply = await say(driver, slack, text, user=REQUESTER)
        assert "You need the *admin* role" in reply, (text, reply)
        assert f"Ask an admin: <@{ADMIN}>" in reply, (text, reply)
    # Anyone may see their own roles, by `roles` or by naming themselves.
    for text in ("roles", f"roles <@{REQUESTER}>"):
        reply = await say(driver, slack, text, user=REQUESTER)
        assert f"<@{REQUESTER}> has: *requester*" in reply, (text, reply)
    assert await prefixed_keys(redis_client, redis_prefix) == before
    assert await redis_client.xlen(f"{redis_prefix}audit") == audit_before


async def test_submit_is_denied_without_the_requester_role(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    job = metastudio.seed_job()
    for user in (OUTSIDER, ADMIN):
        reply = await say(driver, slack, f"submit {job} voice_name=v", user=user)
        assert "You need the *requester* role to submit voice-training tasks" in reply
        assert f"<@{ADMIN}>" in reply
        form = await say(driver, slack, "submit", user=user)
        assert "You need the *requester* role" in form
    assert slack.views == []
    assert slack.messages(CHANNEL) == []


async def test_audit_shows_the_grants(driver: SlackDriver, slack: LocalSlack) -> None:
    await grant(driver, slack, APPROVER, "approver")
    reply = await say(driver, slack, "audit", user=ADMIN)
    assert "Audit trail" in reply
    assert "*grant*" in reply


async def test_the_audit_trail_shows_only_the_callers_workspace(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    """Roles are per workspace, and so is the trail: an admin of another workspace (here a
    bootstrap admin, who is one everywhere) sees none of this one's entries."""
    await grant(driver, slack, APPROVER, "approver")
    result = await driver.slash_command(
        "/voice", "audit", user=ADMIN, channel=CHANNEL, team="T0OTHER"
    )
    elsewhere = await answer(slack, result)
    assert "*grant*" not in elsewhere
    assert "*grant*" in await say(driver, slack, "audit", user=ADMIN)


# -- the submit modal ------------------------------------------------------------------------


async def test_modal_round_trip(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant(driver, slack, REQUESTER, "requester")
    ready = metastudio.seed_job(voice_name="narrator")
    retry = metastudio.seed_job(voice_name="second", state=JobState.AUDIT_FAILED)
    busy = metastudio.seed_job(voice_name="busy", state=JobState.AUDITING)
    done = metastudio.seed_job(voice_name="done", state=JobState.SUCCEED)

    opened = await driver.slash_command("/voice", "submit", user=REQUESTER, channel=CHANNEL)
    assert opened.acked
    assert opened.elapsed < ACK_DEADLINE
    view = await slack.wait_for_async(lambda: slack.views)
    (form,) = view
    assert (form.user, form.callback_id) == (REQUESTER, modal.CALLBACK_ID)

    suggested = await driver.block_suggestion(REQUESTER, form.id, modal.ACTION_JOB, "")
    assert suggested.acked
    values = {o["value"] for o in (suggested.json or {})["options"]}
    assert values == {ready, retry}
    assert busy not in values
    assert done not in values
    narrowed = await driver.block_suggestion(REQUESTER, form.id, modal.ACTION_JOB, "narr")
    assert [o["value"] for o in (narrowed.json or {})["options"]] == [ready]

    bad = await driver.view_submission(
        REQUESTER,
        form.id,
        {
            modal.BLOCK_JOB: {modal.ACTION_JOB: (ready, ready)},
            "voice_name": {"voice_name": "v"},
            "phone": {"phone": "12"},
            "app_user_id": {"app_user_id": "a b"},
        },
    )
    ack = bad.json or {}
    assert ack.get("response_action") == "errors"
    assert set(ack["errors"]) == {"phone", "app_user_id"}
    assert "phone number" in ack["errors"]["phone"]
    assert not slack.view(form.id).closed

    not_ready = await driver.view_submission(
        REQUESTER,
        form.id,
        {modal.BLOCK_JOB: {modal.ACTION_JOB: (busy, busy)}, "voice_name": {"voice_name": "v"}},
    )
    assert (
        (not_ready.json or {})
        .get("errors", {})
        .get(modal.BLOCK_JOB, "")
        .startswith(f"Job {busy} can't be submitted now")
    )

    good = await driver.view_submission(
        REQUESTER,
        form.id,
        {
            modal.BLOCK_JOB: {modal.ACTION_JOB: (ready, ready)},
            "voice_name": {"voice_name": "Narrator One"},
            "sex": {"sex": "FEMALE"},
        },
    )
    assert good.acked
    assert good.elapsed < ACK_DEADLINE
    assert slack.view(form.id).closed
    (card,) = await slack.wait_for_async(lambda: slack.messages(CHANNEL))
    assert ready in card.text or ready in str(card.blocks)
    note = await slack.wait_for_async(lambda: slack.ephemerals(CHANNEL, REQUESTER))
    assert "Approval requested" in note[-1].text


async def test_job_picker_says_when_metastudio_is_down(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant(driver, slack, REQUESTER, "requester")
    await driver.slash_command("/voice", "submit", user=REQUESTER, channel=CHANNEL)
    (form,) = await slack.wait_for_async(lambda: slack.views)
    metastudio.faults = FaultConfig(error_rate=1.0, methods=frozenset({"GET"}))
    suggested = await driver.block_suggestion(REQUESTER, form.id, modal.ACTION_JOB, "")
    assert suggested.acked
    assert suggested.elapsed < ACK_DEADLINE
    (option,) = (suggested.json or {})["options"]
    assert "MetaStudio is unavailable" in option["text"]["text"]
    chosen = (option["text"]["text"], option["value"])
    refused = await driver.view_submission(
        REQUESTER,
        form.id,
        {modal.BLOCK_JOB: {modal.ACTION_JOB: chosen}, "voice_name": {"voice_name": "v"}},
    )
    errors = (refused.json or {}).get("errors", {})
    assert errors[modal.BLOCK_JOB].startswith("MetaStudio is not answering")
    assert slack.messages(CHANNEL) == []


async def test_modal_needs_the_requester_role(driver: SlackDriver, slack: LocalSlack) -> None:
    reply = await say(driver, slack, "submit", user=OUTSIDER)
    assert "You need the *requester* role" in reply
    assert slack.calls("views.open") == []


# -- requests that fail verification ---------------------------------------------------------


def _command_body(slack: LocalSlack, text: str) -> bytes:
    response_url = slack.issue_response_url("command", CHANNEL, ADMIN).url
    return urlencode(
        {
            "command": "/voice",
            "text": text,
            "user_id": ADMIN,
            "channel_id": CHANNEL,
            "team_id": TEAM,
            "response_url": response_url,
            "trigger_id": slack.state.issue_trigger(ADMIN).id,
        }
    ).encode()


async def test_unverified_requests_get_401_and_change_nothing(
    driver: SlackDriver,
    slack: LocalSlack,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    body = _command_body(slack, f"grant <@{OUTSIDER}> admin")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    before = await prefixed_keys(redis_client, redis_prefix)
    calls_before = len(slack.calls())

    forged = await driver.send_raw(
        body, {**form, **driver.sign(body), "X-Slack-Signature": "v0=" + "0" * 64}
    )
    other_secret = SlackDriver(slack, driver.bot_url, "not-the-secret")
    wrong_key = await driver.send_raw(body, {**form, **other_secret.sign(body)})
    stale = await driver.send_raw(body, {**form, **driver.sign(body, int(time.time()) - 301)})
    future = await driver.send_raw(body, {**form, **driver.sign(body, int(time.time()) + 400)})
    unsigned = await driver.send_raw(body, form)
    no_signature = await driver.send_raw(
        body, {**form, "X-Slack-Request-Timestamp": str(int(time.time()))}
    )
    no_timestamp = await driver.send_raw(
        body, {**form, "X-Slack-Signature": driver.sign(body)["X-Slack-Signature"]}
    )
    tampered = await driver.send_raw(
        _command_body(slack, f"grant <@{OUTSIDER}> approver"), {**form, **driver.sign(body)}
    )
    results = [forged, wrong_key, stale, future, unsigned, no_signature, no_timestamp, tampered]
    assert [r.status_code for r in results] == [401] * len(results)

    await slack.wait_for_async(lambda: True)
    assert len(slack.calls()) == calls_before
    assert slack.responses == []
    assert await prefixed_keys(redis_client, redis_prefix) == before
    assert await redis_client.exists(f"{redis_prefix}audit") == 0

    # The same body, properly signed, does go through.
    signed = await driver.send_raw(body, {**form, **driver.sign(body)})
    assert signed.status_code == 200
    granted = await slack.wait_for_async(lambda: slack.responses)
    assert f"<@{OUTSIDER}> now has the *admin* role" in granted[0].text
    assert await redis_client.exists(f"{redis_prefix}audit") == 1
