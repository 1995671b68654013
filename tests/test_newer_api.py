"""A newer MetaStudio than the bot knows, and a proxy in front of it: a state the bot has
never heard of, and an error page that is not MetaStudio's JSON. Real HTTP to the local
MetaStudio (acting as the newer API), signed Slack requests, real Redis."""

from __future__ import annotations

import random

from bot.approvals import ApprovalStatus, ApprovalStore
from bot.metastudio import JobState, MetaStudioClient
from bot.review_sweep import ReviewSweep
from bot.slack import modal
from bot.tracking import PollPolicy, Tracker
from sandbox.metastudio import FaultConfig, LocalMetaStudio, ReviewPlan
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import CHANNEL, OUTSIDER, REQUESTER, grant, say
from tests.test_tracking import client, reviewing, store, submitting  # noqa: F401  (fixtures)

S = ApprovalStatus
NEW_STATE = "AUDIT_PASSED_QUEUED"


async def test_status_of_a_job_in_a_newer_state_names_it(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    job = metastudio.seed_job(state=JobState.WAITING, voice_name="narrator")
    metastudio.report_state_as(JobState.WAITING, NEW_STATE)

    reply = await say(driver, slack, f"status {job}", user=OUTSIDER)

    assert NEW_STATE in reply, reply
    assert "unknown" in reply
    assert "narrator" in reply
    assert "not answering" not in reply


async def test_job_picker_lists_the_ready_jobs_beside_one_in_a_newer_state(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    """The newer API reports AUDIT_FAILED jobs under a finer name, which its state filter
    still matches: the page holds one state the bot cannot place."""
    await grant(driver, slack, REQUESTER, "requester")
    ready = metastudio.seed_job(voice_name="narrator")
    metastudio.seed_job(voice_name="second", state=JobState.AUDIT_FAILED)
    metastudio.report_state_as(JobState.AUDIT_FAILED, "AUDIT_FAILED_WAIT_REUPLOAD")
    await driver.slash_command("/voice", "submit", user=REQUESTER, channel=CHANNEL)
    (form,) = await slack.wait_for_async(lambda: slack.views)

    suggested = await driver.block_suggestion(REQUESTER, form.id, modal.ACTION_JOB, "")

    options = (suggested.json or {})["options"]
    assert [o["value"] for o in options] == [ready], options


async def test_review_sweep_reads_a_page_with_a_newer_state(
    metastudio: LocalMetaStudio,
    client: MetaStudioClient,  # noqa: F811
    store: ApprovalStore,  # noqa: F811
) -> None:
    """Manual review reported under a newer name: the job is still listed as under review,
    so its review has not ended."""
    metastudio.review = ReviewPlan(system_delay=600, admin_delay=600)  # stays in review
    job = metastudio.seed_job(state=JobState.AUDITING)
    await reviewing(store, job)
    metastudio.report_state_as(JobState.AUDITING, "AUDITING_MANUAL")

    result = await ReviewSweep(store, client).ended()

    assert result.watched == 1
    assert result.ended == []


async def test_a_job_in_a_newer_state_is_watched_at_the_slow_pace(
    metastudio: LocalMetaStudio,
    client: MetaStudioClient,  # noqa: F811
    store: ApprovalStore,  # noqa: F811
) -> None:
    """Neither under review nor finished: the request keeps its status, records the raw
    state for its card, and looks again at the training pace."""
    job = metastudio.seed_job(state=JobState.WAITING)
    metastudio.report_state_as(JobState.WAITING, NEW_STATE)
    request = await submitting(store, job, None)
    assert await store.transition(request.id, S.SUBMITTED) is not None
    policy = PollPolicy(interval=0.05, cap=0.2, training_interval=60.0)
    tracker = Tracker(store, client, policy, rng=random.Random(3))

    step = await tracker.step(request.id)

    assert step.request is not None
    assert step.request.status == S.SUBMITTED
    assert step.request.job_state == NEW_STATE
    assert step.next_poll is not None
    assert step.next_poll >= 0.9 * policy.training_interval
    assert step.fault is None


async def test_an_html_error_page_is_shown_as_its_status_and_request_id(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    job = metastudio.seed_job(voice_name="narrator")
    metastudio.faults = FaultConfig(error_rate=1.0, error_body="html", methods=frozenset({"GET"}))

    reply = await say(driver, slack, f"status {job}", user=OUTSIDER)

    failed = [r for r in metastudio.requests if r.status == 500]
    assert failed
    assert "HTTP 500" in reply, reply
    assert "request id" in reply
    assert "<html" not in reply
    assert "&lt;html" not in reply
    assert "nginx" not in reply
