"""The approval card shows what decides the review, end to end: signed Slack deliveries to
the web app, real Redis, the local Slack and the local MetaStudio serving the job detail
(``assess_result``, ``voice_authorization_url``, ``reject_times``, ``allocated_resource``)
and the training quotas as the SDK names them.

Each marked risk (no authorization letter, audio out of range, no training left of the
job's type) is on the card before anyone can click; each blocking setting stops the request
and tells the requester why; a quota read that fails or is slow leaves the card without that
line, never without the card.
"""

from __future__ import annotations

import copy

import pytest

from bot.metastudio import JobState
from bot.slack import modal
from sandbox.metastudio import FaultConfig, LocalMetaStudio
from sandbox.metastudio.assess import Quotas
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    APPROVE,
    APPROVER,
    CHANNEL,
    OUTSIDER,
    REQUESTER,
    WorkerProcess,
    block_text,
    card_of,
    click_as_shown,
    grant_flow_roles,
    has_buttons,
    metastudio_posts,
    say,
    submit_job,
    wait_until,
    with_env,
)

WARNING = "Before you approve:"


async def test_a_clean_job_shows_its_type_checks_letter_history_and_quota(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    metastudio.quotas = Quotas(basic=4)
    job = metastudio.seed_job(job_type="BASIC")
    await grant_flow_roles(driver)
    card = block_text(await submit_job(driver, slack, job))

    assert WARNING not in card
    assert "Nothing MetaStudio reports stands in the way of review" in card
    assert "*Type*\\n`BASIC`" in card
    assert "*Authorization letter*\\n:white_check_mark: uploaded" in card
    assert "*Earlier reviews*\\nnever failed review" in card
    assert "*Trainings left*\\n4 of `BASIC`" in card
    assert (
        "In range: Speaking speed, Volume, Signal-to-noise ratio, Reverberation, "
        "Overall quality (DNSMOS), Background noise (DNSMOS)."
    ) in card


async def test_audio_out_of_range_is_marked_with_figures_and_suggestions(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    job = metastudio.seed_job(assess_out_of_range=("snr", "reverb"))
    await grant_flow_roles(driver)
    posted = await submit_job(driver, slack, job)
    card = block_text(posted)

    assert f"{WARNING}* *2 of 6 audio checks out of range*" in card
    assert "Audio out of range* (2 of 6 checks" in card
    assert "Signal-to-noise ratio: 18.7 (expected >=35 dB)" in card
    assert "Signal-to-noise ratio is too low; record somewhere quiet" in card
    assert "Reverberation: 0.93 (expected <=0.4 s)" in card
    assert "MetaStudio suggests: 音频存在质量问题" in card
    assert (
        "In range: Speaking speed, Volume, Overall quality (DNSMOS), Background noise (DNSMOS)."
    ) in card
    # MetaStudio's words are plain text: never formatted, linked or turned into mentions.
    figures = next(b for b in posted.blocks if "Signal-to-noise ratio: 18.7" in str(b))
    assert figures["text"]["type"] == "plain_text"
    assert has_buttons(posted), "the approver still decides"


async def test_a_missing_authorization_letter_is_marked(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    job = metastudio.seed_job(authorization=False)
    await grant_flow_roles(driver)
    card = block_text(await submit_job(driver, slack, job))

    assert f"{WARNING}* *no authorization letter* from the voice owner" in card
    assert "*Authorization letter*\\n:warning: *missing*" in card


async def test_earlier_rejections_are_counted(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    job = metastudio.seed_job(state=JobState.AUDIT_FAILED, reject_times_before=2)
    await grant_flow_roles(driver)
    card = block_text(await submit_job(driver, slack, job))

    assert "*Earlier reviews*\\nfailed review 2 times before" in card


async def test_no_quota_left_for_the_type_is_marked_unless_a_resource_is_allocated(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    metastudio.quotas = Quotas(basic=3, advance=0)
    bare = metastudio.seed_job(job_type="ADVANCE")
    allocated = metastudio.seed_job(job_type="ADVANCE", allocated=True)
    await grant_flow_roles(driver)

    card = block_text(await submit_job(driver, slack, bare))
    assert f"{WARNING}* *no ADVANCE trainings left* and none allocated to this job" in card
    assert "*Trainings left*\\n:warning: *none left* of `ADVANCE`" in card

    card = block_text(await submit_job(driver, slack, allocated))
    assert WARNING not in card
    assert "a training resource is allocated to this job" in card


@pytest.mark.parametrize(
    "fault",
    [FaultConfig(path="/quotas$", error_rate=1.0), FaultConfig(path="/quotas$", latency=3.0)],
    ids=["failing", "slow"],
)
@with_env(VOICEBOT_QUOTA_TIMEOUT="0.5")
async def test_a_failing_or_slow_quota_read_leaves_the_card_without_that_line(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, fault: FaultConfig
) -> None:
    metastudio.faults = fault
    job = metastudio.seed_job(authorization=False)
    await grant_flow_roles(driver)
    posted = await submit_job(driver, slack, job)
    card = block_text(posted)

    assert "Trainings left: not shown, MetaStudio's quota did not answer in time." in card
    assert "*Trainings left*" not in card
    assert "*no authorization letter*" in card, "the other risks are still shown"
    assert has_buttons(posted)


async def test_a_decided_card_points_to_status_instead_of_its_risks(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    job = metastudio.seed_job(authorization=False, assess_out_of_range=("snr",))
    await grant_flow_roles(driver)
    posted = copy.deepcopy(await submit_job(driver, slack, job))
    assert "*no authorization letter*" in block_text(posted)
    assert (await click_as_shown(driver, slack, APPROVER, posted, APPROVE)).acked
    await wait_until(lambda: metastudio_posts(metastudio) != [])

    def decided() -> str:
        card = card_of(slack, job)
        return block_text(card) if card is not None and not has_buttons(card) else ""

    await wait_until(lambda: f"`/voice status {job}` shows it now" in decided())
    assert "*no authorization letter*" not in decided()
    assert "Signal-to-noise ratio: 18.7" not in decided()


# -- the blocking settings ---------------------------------------------------------------------


@with_env(VOICEBOT_BLOCK_WITHOUT_AUTHORIZATION="true")
async def test_blocking_without_authorization_refuses_the_request(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    unsigned = metastudio.seed_job(authorization=False)
    noisy = metastudio.seed_job(assess_out_of_range=("snr",))
    await grant_flow_roles(driver)

    reply = await say(driver, slack, f"submit {unsigned} voice_name=v", user=REQUESTER)
    assert f"Job `{unsigned}` can't be requested yet" in reply
    assert "no authorization letter from the voice owner" in reply
    assert "Upload the signed letter to the job in the MetaStudio console" in reply
    assert card_of(slack, unsigned) is None
    assert metastudio_posts(metastudio) == []

    # Only the letter is required: audio out of range is left to the approver.
    assert WARNING in block_text(await submit_job(driver, slack, noisy))


@with_env(VOICEBOT_BLOCK_FAILED_ASSESSMENT="true")
async def test_blocking_failed_assessment_refuses_the_request(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    noisy = metastudio.seed_job(assess_out_of_range=("snr", "reverb"))
    unsigned = metastudio.seed_job(authorization=False)
    await grant_flow_roles(driver)

    reply = await say(driver, slack, f"submit {noisy} voice_name=v", user=REQUESTER)
    assert f"Job `{noisy}` can't be requested yet" in reply
    assert "out of range for Signal-to-noise ratio, Reverberation" in reply
    assert "Record and upload the audio again" in reply
    assert card_of(slack, noisy) is None

    assert "*no authorization letter*" in block_text(await submit_job(driver, slack, unsigned))


# -- /voice status and /voice quota ------------------------------------------------------------


async def test_status_shows_the_same_summary(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    metastudio.quotas = Quotas(advance=0)
    job = metastudio.seed_job(
        job_type="ADVANCE",
        authorization=False,
        assess_out_of_range=("speed",),
        reject_times_before=1,
    )
    reply = await say(driver, slack, f"status {job}", user=OUTSIDER)

    assert "*no authorization letter*" in reply
    assert "*1 of 6 audio checks out of range*" in reply
    assert "*no ADVANCE trainings left*" in reply
    assert "failed review 1 time before" in reply


async def test_quota_table_for_anyone_with_a_role(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    metastudio.quotas = Quotas(basic=7, middle=1, advance=0)
    await grant_flow_roles(driver)

    table = await say(driver, slack, "quota", user=APPROVER)
    assert "*basic*\n7" in table
    assert "*middle*\n1" in table
    assert "*advance*\n0" in table
    assert "BASIC: 7 of 7 left, expires 2027-06-30T23:59:59Z" in table

    refused = await say(driver, slack, "quota", user=OUTSIDER)
    assert "The quota table is for people with a role here" in refused
    assert "basic" not in refused


@with_env(VOICEBOT_BLOCK_WITHOUT_AUTHORIZATION="true")
async def test_the_form_shows_a_blocked_job_on_its_job_field(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant_flow_roles(driver)
    unsigned = metastudio.seed_job(authorization=False, voice_name="narrator")
    opened = await driver.slash_command("/voice", "submit", user=REQUESTER, channel=CHANNEL)
    assert opened.acked
    form = await slack.wait_for_async(
        lambda: [v for v in slack.views if v.callback_id == modal.CALLBACK_ID]
    )
    submitted = await driver.view_submission(
        REQUESTER,
        form[0].id,
        {
            modal.BLOCK_JOB: {modal.ACTION_JOB: (unsigned, unsigned)},
            "voice_name": {"voice_name": "v"},
        },
    )
    assert submitted.json is not None
    assert submitted.json["response_action"] == "errors"
    error = submitted.json["errors"][modal.BLOCK_JOB]
    assert f"Job {unsigned} can't be requested yet" in error
    assert "no authorization letter" in error
    assert card_of(slack, unsigned) is None
