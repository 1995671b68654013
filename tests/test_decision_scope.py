"""Only the request's own workspace decides it, from its card's channel, through a form
opened for it.

A Slack Connect channel shows a card to members of other organisations, whose clicks reach
the bot signed like any other (with their own team id); the same app installed in two
workspaces does too. Holding the approver role in workspace B says nothing about A.
"""

from __future__ import annotations

import copy
import json
from urllib.parse import urlencode

from bot.slack import modal
from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    ADMIN,
    APPROVE,
    APPROVER,
    CHANNEL,
    REJECT,
    REQUESTER,
    WorkerProcess,
    click_as_shown,
    ephemeral_texts,
    grant_flow_roles,
    has_buttons,
    replies_with,
    submit_job,
    wait_until,
)

OTHER_TEAM = "T0OTHER"
FOREIGN = "UFOREIGN01"
SECOND_APPROVER = "UAPPROVE02"
ELSEWHERE = "CELSEWHERE"


async def grant_in(driver: SlackDriver, user: str, role: str, team: str) -> None:
    result = await driver.slash_command(
        "/voice", f"grant <@{user}> {role}", user=ADMIN, channel=CHANNEL, team=team
    )
    assert result.acked


async def test_an_approver_of_another_workspace_cannot_decide(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    await grant_flow_roles(driver)
    await grant_in(driver, FOREIGN, "approver", OTHER_TEAM)
    job = metastudio.seed_job()
    card = await submit_job(driver, slack, job)

    for action in (APPROVE, REJECT):
        clicked = await click_as_shown(driver, slack, FOREIGN, card, action, team=OTHER_TEAM)
        assert clicked.acked
    await wait_until(lambda: len(ephemeral_texts(slack, FOREIGN)) == 2)
    assert all("belongs to another workspace" in t for t in ephemeral_texts(slack, FOREIGN))
    assert not [v for v in slack.views if v.user == FOREIGN]  # no reject form opened
    assert has_buttons(slack.message(CHANNEL, card.ts))

    # The request is still the workspace's own to decide.
    await click_as_shown(driver, slack, APPROVER, card, APPROVE)
    await replies_with(slack, card, "Submitted job")
    assert metastudio.commit_count(job) == 1
    assert not any(f"<@{FOREIGN}>" in m.text for m in slack.thread(CHANNEL, card.ts))


async def test_a_click_from_another_channel_decides_nothing(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    slack.add_channel(ELSEWHERE, "elsewhere")
    await grant_flow_roles(driver)
    job = metastudio.seed_job()
    card = await submit_job(driver, slack, job)

    clicked = await click_as_shown(driver, slack, APPROVER, card, APPROVE, channel=ELSEWHERE)

    assert clicked.acked
    shown = await slack.wait_for_async(lambda: slack.ephemerals(ELSEWHERE, APPROVER))
    assert f"Decide this request from its approval card in <#{CHANNEL}>" in shown[0].text
    assert has_buttons(slack.message(CHANNEL, card.ts))
    assert metastudio.commit_count(job) == 0


async def test_a_reject_form_counts_only_for_whoever_it_was_opened_for(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio
) -> None:
    """The form carries the request, channel, user and workspace it was opened for; a
    submission of it by anyone else (or naming another request) decides nothing."""
    await grant_flow_roles(driver)
    await driver.slash_command(
        "/voice", f"grant <@{SECOND_APPROVER}> approver", user=ADMIN, channel=CHANNEL
    )
    job = metastudio.seed_job()
    card = await submit_job(driver, slack, job)
    await driver.block_action(APPROVER, CHANNEL, card.ts, REJECT)
    [form] = await slack.wait_for_async(
        lambda: [v for v in slack.views if v.callback_id == modal.REJECT_CALLBACK_ID]
    )
    meta = json.loads(form.private_metadata)
    assert (meta["user"], meta["tenant"], meta["channel"]) == (APPROVER, slack.team_id, CHANNEL)

    for user, team in ((SECOND_APPROVER, slack.team_id), (APPROVER, OTHER_TEAM)):
        name = slack.state.ensure_user(user).name
        payload = {
            "type": "view_submission",
            "user": {"id": user, "username": name, "name": name, "team_id": team},
            "team": {"id": team, "domain": slack.team_domain},
            "api_app_id": slack.app_id,
            "token": slack.verification_token,
            "trigger_id": slack.state.issue_trigger(user).id,
            "view": copy.deepcopy(form.view),
            "response_urls": [],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = {**driver.sign(body), "Content-Type": "application/x-www-form-urlencoded"}
        assert (await driver.send_raw(body, headers)).status_code == 200
    await wait_until(lambda: ephemeral_texts(slack, SECOND_APPROVER))
    assert "out of date" in ephemeral_texts(slack, SECOND_APPROVER)[0]

    # Still pending: the approver it was opened for decides with it.
    assert has_buttons(slack.message(CHANNEL, card.ts))
    await driver.view_submission(APPROVER, form.id, {"reason": {"reason": "no"}})
    await slack.wait_for_async(lambda: "Rejected" in slack.message(CHANNEL, card.ts).text)
    assert f"by <@{APPROVER}>" in json.dumps(slack.message(CHANNEL, card.ts).blocks)


async def test_invisible_characters_never_reach_the_card_or_metastudio(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    """A right-to-left override or a zero-width space can make a card read differently
    from what is submitted; they are dropped from what the requester typed."""
    await grant_flow_roles(driver)
    job = metastudio.seed_job()
    card = await submit_job(driver, slack, job, 'description="good\u202edab\u200b voice"')

    assert "good" in json.dumps(card.blocks, ensure_ascii=False)
    assert "\u202e" not in json.dumps(card.blocks, ensure_ascii=False)
    assert "\u200b" not in json.dumps(card.blocks, ensure_ascii=False)
    await click_as_shown(driver, slack, APPROVER, card, APPROVE)
    await wait_until(lambda: metastudio.commit_count(job) == 1, within=15)
    # The stand-in applies a commit before it answers, and records the request as it answers.
    await wait_until(lambda: [r for r in metastudio.requests if r.method == "POST"])
    [commit] = [r for r in metastudio.requests if r.method == "POST"]
    assert json.loads(commit.body)["description"] == "gooddab voice"
    assert REQUESTER in card.text
