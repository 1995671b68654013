"""Review tracking and its posts, in-process against the local MetaStudio and the local
Slack over real HTTP, with real Redis: the resumed submit, the number of reads a review
costs, and two notifiers racing on one card."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalRequest, ApprovalStatus, ApprovalStore
from bot.metastudio import CommitJobRequest, JobState, MetaStudioClient
from bot.review_sweep import ReviewSweep
from bot.settings import Settings
from bot.slack.messages import APPROVAL_STATUS_WORDS
from bot.slack.notify import Notifier, NotifyBusy, card_message
from bot.tracking import PollPolicy, Tracker
from sandbox.metastudio import LOCAL_AK, LOCAL_PROJECT_ID, LOCAL_SK, LocalMetaStudio, ReviewPlan
from sandbox.serve import ServerThread
from sandbox.slack import LocalSlack
from tests.conftest import CHANNEL, REQUESTER, record_request, wait_until

S = ApprovalStatus
BODY = {"voice_name": "narrator", "sex": "FEMALE"}


class FakeClock:
    """Shared by the local MetaStudio's review, the store and the tracker: a days-long review
    runs in milliseconds."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def client_for(url: str) -> MetaStudioClient:
    settings = Settings(
        HUAWEICLOUD_SDK_AK=LOCAL_AK,
        HUAWEICLOUD_SDK_SK=LOCAL_SK,
        HUAWEICLOUD_SDK_PROJECT_ID=LOCAL_PROJECT_ID,
        METASTUDIO_ENDPOINT=url,
        VOICEBOT_METASTUDIO_TIMEOUT=2,
    )
    return MetaStudioClient.from_settings(settings)


@pytest.fixture
async def client(metastudio: LocalMetaStudio) -> AsyncIterator[MetaStudioClient]:
    async with client_for(metastudio.url) as opened:  # type: ignore[attr-defined]
        yield opened


@pytest.fixture
def store(redis_client: aioredis.Redis, redis_prefix: str) -> ApprovalStore:
    return ApprovalStore(redis_client, redis_prefix, ttl_seconds=600, allow_self_approval=False)


def tracker(store: ApprovalStore, client: MetaStudioClient) -> Tracker:
    policy = PollPolicy(interval=0.05, cap=0.2, training_interval=0.2)
    return Tracker(store, client, policy, rng=random.Random(1))


async def submitting(
    store: ApprovalStore, job: str, baseline: dict[str, object] | None, *, tenant: str = "T0LOCAL"
) -> ApprovalRequest:
    """A request whose submit was claimed by a step that then died: status ``submitting``."""
    snapshot = baseline or {}
    request = await record_request(
        store,
        tenant=tenant,
        team_id=tenant,
        enterprise_id=None,
        requester=REQUESTER,
        origin_channel=CHANNEL,
        card_channel=CHANNEL,
        job_id=job,
        body=BODY,
        app_user_id=None,
        auto_approve=True,
        job_state=snapshot.get("state"),
        job_reject_times=snapshot.get("reject_times"),
        job_updated=snapshot.get("lastupdate_time"),
    )
    claimed = await store.claim_submit(request.id)
    assert claimed is not None
    assert claimed.status == S.SUBMITTING
    return claimed


def posts(metastudio: LocalMetaStudio) -> int:
    return sum(r.method == "POST" for r in metastudio.requests)


async def posts_so_far(metastudio: LocalMetaStudio, expected: int) -> int:
    """The local MetaStudio records a request just after answering it."""
    await wait_until(lambda: posts(metastudio) >= expected, within=2)
    return posts(metastudio)


# -- a resumed submit reads before it re-sends ------------------------------------------------


async def test_resume_does_not_resubmit_when_the_earlier_submit_landed_and_failed_review(
    metastudio: LocalMetaStudio, client: MetaStudioClient, store: ApprovalStore
) -> None:
    """Requested from AUDIT_FAILED; the submit landed and the review failed again before the
    step resumed. The job is AUDIT_FAILED as at request time, but rejected once more: a
    second POST would submit it twice."""
    job = metastudio.seed_job(state=JobState.AUDIT_FAILED, outcome="fail")
    before = await client.show_job(job)
    request = await submitting(store, job, before.model_dump())
    await client.commit_job(job, CommitJobRequest(**BODY))  # the attempt that landed
    metastudio.advance(60)
    again = await client.show_job(job)
    assert again.state == JobState.AUDIT_FAILED
    assert again.reject_times == (before.reject_times or 0) + 1
    sent = await posts_so_far(metastudio, 1)

    step = await tracker(store, client).step(request.id)

    assert posts(metastudio) == sent
    assert step.request is not None
    assert step.request.status == S.SUBMITTED
    step = await tracker(store, client).step(request.id)
    assert step.request is not None
    assert step.request.status == S.FAILED
    assert metastudio.commit_count(job) == 1


@pytest.mark.parametrize("with_baseline", [True, False], ids=["baseline", "no-baseline"])
async def test_resume_sends_once_when_nothing_landed(
    metastudio: LocalMetaStudio,
    client: MetaStudioClient,
    store: ApprovalStore,
    with_baseline: bool,
) -> None:
    job = metastudio.seed_job()
    before = await client.show_job(job)
    request = await submitting(store, job, before.model_dump() if with_baseline else None)

    step = await tracker(store, client).step(request.id)

    assert step.request is not None
    assert step.request.status == S.SUBMITTED
    assert metastudio.commit_count(job) == 1
    assert await posts_so_far(metastudio, 1) == 1


async def test_resume_confirms_a_landed_submit_by_reading(
    metastudio: LocalMetaStudio, client: MetaStudioClient, store: ApprovalStore
) -> None:
    job = metastudio.seed_job()
    request = await submitting(store, job, (await client.show_job(job)).model_dump())
    await client.commit_job(job, CommitJobRequest(**BODY))  # landed; its step then died
    sent = await posts_so_far(metastudio, 1)

    step = await tracker(store, client).step(request.id)

    assert posts(metastudio) == sent
    assert step.request is not None
    assert step.request.status == S.SUBMITTED
    events = await store.audit.read(job_id=job)
    assert events[-1].action == "submitted"
    assert events[-1].detail == "confirmed by reading the job"
    assert events[-1].payload_hash == request.payload_hash


# -- what a review costs -------------------------------------------------------------------


@pytest.fixture
def slow_metastudio() -> Iterator[tuple[LocalMetaStudio, FakeClock]]:
    clock = FakeClock()
    hours = 3600.0
    local = LocalMetaStudio(
        review=ReviewPlan(system_delay=1 * hours, admin_delay=5 * hours), clock=clock
    )
    with ServerThread(local.app) as server:
        local.url = server.url  # type: ignore[attr-defined]
        yield local, clock


async def test_a_six_hour_review_costs_few_reads_and_is_seen_promptly(
    slow_metastudio: tuple[LocalMetaStudio, FakeClock],
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    metastudio, clock = slow_metastudio
    store = ApprovalStore(
        redis_client, redis_prefix, ttl_seconds=600, allow_self_approval=False, clock=clock
    )
    policy = PollPolicy(interval=30.0, cap=300.0, training_interval=300.0)
    job = metastudio.seed_job()
    async with client_for(metastudio.url) as client:  # type: ignore[attr-defined]
        request = await record_request(
            store,
            tenant="T0LOCAL",
            team_id=None,
            enterprise_id=None,
            requester=REQUESTER,
            origin_channel=CHANNEL,
            card_channel=CHANNEL,
            job_id=job,
            body=BODY,
            app_user_id=None,
            auto_approve=True,
            job_state="UPLOADING",
        )
        tracking = Tracker(store, client, policy, rng=random.Random(7), clock=clock)
        started = clock.now
        steps = 0
        while True:
            step = await tracking.step(request.id)
            steps += 1
            assert step.request is not None
            if step.request.status == S.PASSED:
                break
            assert step.next_poll is not None
            clock.now += step.next_poll
    took = clock.now - started
    reads = sum(r.method == "GET" for r in metastudio.requests)
    # Steady 30 s polling would read 720 times; the review passed at 6 h.
    assert reads <= 110, reads
    assert 6 * 3600 <= took <= 6 * 3600 + 300
    assert sum(r.method == "POST" for r in metastudio.requests) == 1


# -- the review sweep ----------------------------------------------------------------------


async def reviewing(store: ApprovalStore, job: str, tenant: str = "T0LOCAL") -> ApprovalRequest:
    """A request whose job the bot last saw under review."""
    request = await submitting(store, job, None, tenant=tenant)
    await store.transition(request.id, S.SUBMITTED)
    moved = await store.transition(request.id, S.UNDER_REVIEW)
    assert moved is not None
    return request


async def test_sweep_reports_every_request_of_a_job_whose_review_ended(
    metastudio: LocalMetaStudio, client: MetaStudioClient, store: ApprovalStore
) -> None:
    """Two requests can follow one job (two workspaces sharing one MetaStudio project);
    both learn that its review ended, and a job still in review is not reported."""
    metastudio.review = ReviewPlan(system_delay=600, admin_delay=600)  # stays in review
    ended_job = metastudio.seed_job(state=JobState.WAITING)
    in_review = metastudio.seed_job(state=JobState.AUDITING)
    first = await reviewing(store, ended_job)
    second = await reviewing(store, ended_job, tenant="T0OTHER")
    await reviewing(store, in_review)

    result = await ReviewSweep(store, client).ended()

    assert result.watched == 3
    assert result.ended == sorted([first.id, second.id])


# -- two notifiers, one card --------------------------------------------------------------------


async def with_card(
    store: ApprovalStore, slack: LocalSlack, job: str
) -> tuple[ApprovalRequest, str]:
    """An auto-approved request whose card is posted in the local Slack; returns its ts."""
    fields: dict[str, Any] = {
        "tenant": "T0LOCAL",
        "team_id": None,
        "enterprise_id": None,
        "requester": REQUESTER,
        "origin_channel": CHANNEL,
        "card_channel": CHANNEL,
        "job_id": job,
        "body": BODY,
        "app_user_id": None,
        "auto_approve": True,
        "job_state": "UPLOADING",
    }
    poster = AsyncWebClient(token="xoxb-local", base_url=slack.api_url)
    posted = await poster.chat_postMessage(
        channel=CHANNEL, **card_message(store.draft(**fields)).as_kwargs()
    )
    request = await record_request(store, card_ts=str(posted["ts"]), **fields)
    return request, str(posted["ts"])


def _status_of(text: str) -> ApprovalStatus:
    words = text.rsplit(": ", 1)[-1]
    return next(S(s) for s, w in APPROVAL_STATUS_WORDS.items() if w == words)


async def test_racing_notifiers_never_show_a_stale_card_or_post_twice(
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    client: MetaStudioClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    def notifier() -> tuple[Notifier, ApprovalStore]:
        own = ApprovalStore(redis_client, redis_prefix, ttl_seconds=600, allow_self_approval=False)
        web = AsyncWebClient(token="xoxb-local", base_url=slack.api_url)
        return Notifier(web, own, client), own

    (web_side, store), (worker_side, _) = notifier(), notifier()
    job = metastudio.seed_job()
    request, card_ts = await with_card(store, slack, job)
    await store.set_shown_render(request.id, request.render_key)
    path = (S.SUBMITTING, S.SUBMITTED, S.UNDER_REVIEW, S.PASSED)

    async def flush(side: Notifier) -> None:
        current = await store.get(request.id)
        assert current is not None
        with contextlib.suppress(NotifyBusy):
            await side.flush(current)

    async def writer() -> None:
        for to in path:
            assert await store.transition(request.id, to, job_state="AUDITING") is not None
            await flush(web_side)

    async def racer() -> None:
        for _ in range(40):
            await flush(worker_side)
            await asyncio.sleep(0.002)

    await asyncio.gather(writer(), racer(), racer())
    final = await store.get(request.id)
    assert final is not None
    while not await web_side.settled(final):
        await flush(web_side)
        await asyncio.sleep(0.01)

    shown = [_status_of(c.params["text"]) for c in slack.calls("chat.update")]
    order = [S.AUTO_APPROVED, *path]
    assert [order.index(s) for s in shown] == sorted(order.index(s) for s in shown)
    assert shown[-1] == S.PASSED
    assert "Review passed" in slack.message(CHANNEL, card_ts).text
    replies = [m.text for m in slack.thread(CHANNEL, card_ts)[1:]]
    assert len(replies) == 2, replies
    assert replies[0].startswith(f"<@{REQUESTER}> Submitted job")
    assert replies[1].startswith(f"<@{REQUESTER}> Job {job} passed review")


async def test_a_slack_call_never_outlives_the_notify_lease(
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    client: MetaStudioClient,
    store: ApprovalStore,
) -> None:
    """Slack asks the first notifier to wait (429, Retry-After 3 s) longer than its 2 s lease
    lasts. Its call is cut off before the lease runs out, so the second notifier, which
    takes the lease once it has, is the only one to post the reply."""
    request, card_ts = await with_card(store, slack, metastudio.seed_job())
    assert await store.claim_submit(request.id) is not None
    submitted = await store.transition(request.id, S.SUBMITTED, job_state="AUDITING")
    assert submitted is not None
    patient = AsyncWebClient(
        token="xoxb-local",
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    first = Notifier(patient, store, client, lease_ms=2000)
    plain = AsyncWebClient(token="xoxb-local", base_url=slack.api_url)
    second = Notifier(plain, store, client, lease_ms=2000)
    slack.rate_limit_next("chat.postMessage", retry_after=3)

    waiting = asyncio.create_task(first.flush(submitted))
    await asyncio.sleep(2.3)
    while not await second.settled(submitted):
        with contextlib.suppress(NotifyBusy):
            await second.flush(submitted)
        await asyncio.sleep(0.05)
    (cut_off,) = await asyncio.gather(waiting, return_exceptions=True)

    replies = [m.text for m in slack.thread(CHANNEL, card_ts)[1:]]
    assert len(replies) == 1, replies
    assert replies[0].startswith(f"<@{REQUESTER}> Submitted job")
    assert isinstance(cut_off, TimeoutError), cut_off
