"""The App Home tab: an inbox of what waits for each user, built on ``app_home_opened`` and
after each decision that concerns them; its Approve and Reject act as the card's do."""

from __future__ import annotations

import json

from slack_sdk.models.views import View

from bot.inbox import Inbox
from bot.permissions import Role
from bot.slack.home import MAX_HOME_BLOCKS, home_view
from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    ADMIN,
    APPROVER,
    CHANNEL,
    REQUESTER,
    WorkerProcess,
    grant_flow_roles,
    nothing_more_happens,
    pending_requests,
    replies_with,
    say,
    submit_job,
    wait_until,
)

HOME_APPROVE = "home_approve"


def home_text(slack: LocalSlack, user: str) -> str:
    view = slack.home(user)
    return json.dumps(view["blocks"], ensure_ascii=False) if view else ""


async def test_an_approver_decides_from_the_home_tab(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    card = await submit_job(driver, slack, job)

    opened = await driver.open_home(APPROVER)
    assert opened.acked
    await wait_until(lambda: job in home_text(slack, APPROVER))
    assert HOME_APPROVE in home_text(slack, APPROVER)

    clicked = await driver.home_action(APPROVER, HOME_APPROVE)
    assert clicked.acked
    await replies_with(slack, card, "passed review")
    assert metastudio.commit_count(job) == 1
    # Rebuilt after the decision: nothing waits for the approver any more.
    await wait_until(lambda: job not in home_text(slack, APPROVER))


async def test_a_requester_sees_their_requests_and_an_admin_the_policies_and_roles(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    await submit_job(driver, slack, job)
    await say(driver, slack, f"policy <#{CHANNEL}|voice> approvals=2", user=ADMIN)

    await driver.open_home(REQUESTER)
    await wait_until(lambda: job in home_text(slack, REQUESTER))
    mine = home_text(slack, REQUESTER)
    assert "Waiting for an approver" in mine
    assert f"/archives/{CHANNEL}/p" in mine
    assert "home_approve" not in mine

    await driver.open_home(ADMIN)
    await wait_until(lambda: "Approval policies" in home_text(slack, ADMIN))
    admin = home_text(slack, ADMIN)
    assert f"<#{CHANNEL}>: 2 approval" in admin
    assert f"<@{APPROVER}>" in admin


async def test_a_retried_home_event_does_its_work_once(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    await grant_flow_roles(driver)
    first = await driver.open_home(APPROVER, event_id="Ev0RETRY001")
    assert first.acked
    await wait_until(lambda: slack.home_publishes(APPROVER) == 1)
    retried = await driver.open_home(APPROVER, event_id="Ev0RETRY001", retry_num=1)
    assert retried.acked
    await nothing_more_happens()
    assert slack.home_publishes(APPROVER) == 1


def test_a_long_inbox_is_paged_under_slacks_limit_of_100_blocks() -> None:
    waiting = pending_requests(80, channel=CHANNEL, voice_name="narrator", required_approvals=2)
    inbox = Inbox("UAPP", frozenset({Role.approver}), waiting, [])
    first = home_view(inbox)
    pages = int(first["blocks"][-2]["elements"][0]["text"].rsplit(" ", 1)[1])
    assert pages > 1
    shown: list[str] = []
    for page in range(pages):
        view = home_view(inbox, page)
        assert len(view["blocks"]) <= MAX_HOME_BLOCKS
        View(**view).to_dict()
        text = json.dumps(view["blocks"])
        shown += [r.job_id for r in waiting if r.job_id in text]
    assert shown == [r.job_id for r in waiting]


async def test_a_reject_from_the_home_tab_opens_the_card_s_form_and_ends_the_request(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    card = await submit_job(driver, slack, job)
    await driver.open_home(APPROVER)
    await wait_until(lambda: job in home_text(slack, APPROVER))

    await driver.home_action(APPROVER, "home_reject")
    modal = await slack.wait_for_async(
        lambda: [v for v in slack.views if v.callback_id == "approval_reject_reason"]
    )
    await driver.view_submission(APPROVER, modal[0].id, {"reason": {"reason": "Wrong voice"}})
    await replies_with(slack, card, "Rejected by")
    await wait_until(lambda: job not in home_text(slack, APPROVER))
    await driver.open_home(REQUESTER)
    await wait_until(lambda: "Rejected" in home_text(slack, REQUESTER))
    assert metastudio.commit_count(job) == 0
