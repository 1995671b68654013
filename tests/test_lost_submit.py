"""A submit whose answer was lost: MetaStudio's gateway answers 502 while its backend goes
on and applies the commit seconds later. The bot must not send it again while it may still
land, and must read the job before calling a later refusal a failure. Real HTTP to the
local MetaStudio, real Redis; the worker as a process for the end-to-end case."""

from __future__ import annotations

import asyncio
import random

from bot.approvals import ApprovalStatus, ApprovalStore
from bot.metastudio import MetaStudioClient, SubmitOutcomeUnknown
from bot.tracking import PollPolicy, Tracker
from sandbox.metastudio import FaultConfig, LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import WorkerProcess, metastudio_posts, replies_with, thread_replies
from tests.test_approval_flow import approved_job
from tests.test_tracking import client, store, submitting  # noqa: F401  (fixtures)

S = ApprovalStatus


def late_commit(delay: float, latency: float = 0.0) -> FaultConfig:
    """The first commit is answered 502 at once and applied ``delay`` seconds later."""
    return FaultConfig(
        lost_reply_rate=1.0,
        lost_reply_mode="late",
        lost_reply_delay=delay,
        latency=latency,
        methods=frozenset({"POST"}),
        limit=1,
    )


async def test_a_commit_answered_502_that_lands_later_is_sent_once(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    bot_env: dict[str, str],
) -> None:
    metastudio.faults = late_commit(delay=2.0)
    worker = WorkerProcess({**bot_env, "VOICEBOT_SUBMIT_SETTLE": "4"}).start()
    try:
        job, posted = await approved_job(driver, slack, metastudio)
        await replies_with(slack, posted, "passed review", within=20)
    finally:
        worker.stop()

    assert len(metastudio_posts(metastudio)) == 1
    assert [r.status for r in metastudio.requests if r.method == "POST"] == [502]
    assert metastudio.commit_count(job) == 1
    thread = thread_replies(slack, posted)
    assert len(thread) == 3, thread  # approved, submitted, passed
    assert not any("failed" in text for text in thread)


async def test_a_refused_resend_after_a_lost_answer_is_checked_by_reading(
    metastudio: LocalMetaStudio,
    client: MetaStudioClient,  # noqa: F811
    store: ApprovalStore,  # noqa: F811
) -> None:
    """The first commit's 502 comes after 1 s and it lands 0.8 s later; the settle window
    is set too short (0.3 s), so the read after it still shows nothing and the commit is
    sent again. That one reaches the backend after the first landed and is refused for the
    job's state: the bot reads the job, finds it under review, and reports it submitted."""
    metastudio.faults = late_commit(delay=0.8, latency=1.0)
    job = metastudio.seed_job()
    request = await submitting(store, job, (await client.show_job(job)).model_dump())
    tracker = Tracker(
        store,
        client,
        PollPolicy(interval=0.05, cap=0.2, training_interval=0.2),
        rng=random.Random(5),
        submit_settle=0.3,
    )

    first = await tracker.step(request.id)
    assert first.request is not None
    assert first.request.status == S.SUBMITTING
    assert isinstance(first.fault, SubmitOutcomeUnknown)
    step = first
    for _ in range(60):
        assert step.next_poll is not None
        await asyncio.sleep(step.next_poll)
        step = await tracker.step(request.id)
        assert step.request is not None
        if step.request.status != S.SUBMITTING:
            break

    assert step.request is not None
    assert step.request.status == S.SUBMITTED
    assert [r.status for r in metastudio.requests if r.method == "POST"] == [502, 400]
    assert metastudio.commit_count(job) == 1
    events = await store.audit.read(job_id=job)
    assert events[-1].action == "submitted"
    assert events[-1].detail == "confirmed by reading the job"
