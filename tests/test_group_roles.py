"""Slack user groups as role holders: a role granted to ``@group`` is held by whoever is in
the group now (``usergroups.users.list``, cached for ``VOICEBOT_USERGROUP_CACHE_SECONDS``),
and a membership that can't be read grants nothing."""

from __future__ import annotations

import copy

from sandbox.metastudio import LocalMetaStudio
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    ADMIN,
    APPROVE,
    REQUESTER,
    WorkerProcess,
    click_as_shown,
    ephemeral_texts,
    grant_role,
    nothing_more_happens,
    replies_with,
    say,
    submit_job,
    wait_until,
    with_env,
)

GROUP = "S0APPROVE1"
GROUP_MENTION = f"<!subteam^{GROUP}|@voice-approvers>"
MEMBER = "UMEMBER001"
OUTSIDER = "UOUTSIDE01"
LEAVER = "ULEAVER001"


async def test_a_group_member_approves_and_a_non_member_is_refused(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    slack.add_usergroup(GROUP, "voice-approvers", [MEMBER])
    await grant_role(driver, REQUESTER, "requester")
    reply = await say(driver, slack, f"grant {GROUP_MENTION} approver", user=ADMIN)
    assert f"<!subteam^{GROUP}> now has the *approver* role" in reply, reply
    roles = await say(driver, slack, f"roles <@{MEMBER}>", user=ADMIN)
    assert f"*approver* (through <!subteam^{GROUP}>)" in roles, roles
    audit = await say(driver, slack, "audit", user=ADMIN)
    assert GROUP in audit, audit

    job = metastudio.seed_job(voice_name="narrator")
    card = copy.deepcopy(await submit_job(driver, slack, job))
    await click_as_shown(driver, slack, OUTSIDER, card, APPROVE)
    await wait_until(lambda: any("approver" in t for t in ephemeral_texts(slack, OUTSIDER)))
    assert metastudio.commit_count(job) == 0

    await click_as_shown(driver, slack, MEMBER, card, APPROVE)
    await replies_with(slack, card, "passed review")
    assert metastudio.commit_count(job) == 1


@with_env(VOICEBOT_USERGROUP_CACHE_SECONDS="0.5")
async def test_a_member_removed_from_the_group_is_refused_after_the_cache_refresh(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    slack.add_usergroup(GROUP, "voice-approvers", [MEMBER, LEAVER])
    await grant_role(driver, REQUESTER, "requester")
    await say(driver, slack, f"grant {GROUP_MENTION} approver", user=ADMIN)
    before = await say(driver, slack, "roles", user=LEAVER)
    assert "*approver*" in before, before

    slack.set_usergroup_users(GROUP, [MEMBER])

    async def no_longer_approver() -> bool:
        return "*approver*" not in await say(driver, slack, "roles", user=LEAVER)

    await wait_until(no_longer_approver)
    job = metastudio.seed_job(voice_name="narrator")
    card = copy.deepcopy(await submit_job(driver, slack, job))
    await click_as_shown(driver, slack, LEAVER, card, APPROVE)
    await wait_until(lambda: any("approver" in t for t in ephemeral_texts(slack, LEAVER)))
    await nothing_more_happens()
    assert metastudio.commit_count(job) == 0


async def test_a_failing_group_lookup_grants_nothing_and_says_why(
    driver: SlackDriver, slack: LocalSlack, metastudio: LocalMetaStudio, worker: WorkerProcess
) -> None:
    slack.add_usergroup(GROUP, "voice-approvers", [MEMBER])
    await grant_role(driver, REQUESTER, "requester")
    await say(driver, slack, f"grant {GROUP_MENTION} approver", user=ADMIN)
    job = metastudio.seed_job(voice_name="narrator")
    card = copy.deepcopy(await submit_job(driver, slack, job))

    slack.fail_next("usergroups.users.list", "missing_scope", times=5)
    await click_as_shown(driver, slack, MEMBER, card, APPROVE)
    await wait_until(lambda: any("usergroups:read" in t for t in ephemeral_texts(slack, MEMBER)))
    await nothing_more_happens()
    assert metastudio.commit_count(job) == 0


async def test_a_group_is_not_given_the_admin_role_and_revoking_is_audited(
    driver: SlackDriver, slack: LocalSlack
) -> None:
    slack.add_usergroup(GROUP, "voice-approvers", [MEMBER])
    refused = await say(driver, slack, f"grant {GROUP_MENTION} admin", user=ADMIN)
    assert "person" in refused, refused
    await say(driver, slack, f"grant {GROUP_MENTION} approver", user=ADMIN)
    revoked = await say(driver, slack, f"revoke {GROUP_MENTION} approver", user=ADMIN)
    assert f"<!subteam^{GROUP}> no longer has the *approver* role" in revoked, revoked
    roles = await say(driver, slack, "roles", user=MEMBER)
    assert "*approver*" not in roles, roles
