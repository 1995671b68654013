"""MetaStudio refusing the bot's credentials, end to end: the gateway's real APIG.0301
answers and its lockout (more than five failures in a row lock the AK/SK), the bot's
breaker shared by the web process and the worker (real Redis), signed Slack requests, the
worker as a process."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis

from bot.credentials import CredentialsBreaker, fingerprint
from bot.metastudio import (
    AKSKAuth,
    CredentialsHeld,
    MetaStudioClient,
    TokenExpired,
)
from bot.settings import Settings
from bot.slack import modal
from sandbox.iam import IAMUser, LocalIAM, project_id_for
from sandbox.metastudio import LOCAL_AK, LOCAL_PROJECT_ID, LOCAL_SK, LocalMetaStudio
from sandbox.serve import ServerThread
from sandbox.slack import LocalSlack, SlackDriver
from tests.conftest import (
    APPROVE,
    APPROVER,
    CHANNEL,
    OUTSIDER,
    REQUESTER,
    WorkerProcess,
    block_text,
    free_port,
    grant_flow_roles,
    metastudio_posts,
    nothing_more_happens,
    replies_with,
    say,
    submit_job,
    thread_replies,
    wait_until,
)

ROTATED_SK = "RotatedSecretKey0000000000000000000000000"
HELD = "refused the bot's credentials"


def refused(metastudio: LocalMetaStudio) -> int:
    """Calls the gateway refused for their credentials."""
    return sum(r.status == 401 for r in metastudio.requests)


async def worker_metrics(port: int) -> dict[str, float]:
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"http://127.0.0.1:{port}/metrics")
    return {
        name: float(value)
        for name, _, value in (
            line.rpartition(" ")
            for line in reply.text.splitlines()
            if line.startswith("voicebot_metastudio")
        )
    }


async def scraped(port: int) -> dict[str, float]:
    try:
        return await worker_metrics(port)
    except httpx.HTTPError:
        return {}


@pytest.mark.slow
@pytest.mark.parametrize("code", ["APIG.0301", "APIGW.0301"])
async def test_a_rotated_key_holds_the_submit_without_locking_the_key(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    bot_env: dict[str, str],
    bot_web: ServerThread,
    code: str,
) -> None:
    """The SK is rotated in the console between the request and the approval. The worker
    is refused once, holds the request and says so once; nobody retries into a lockout.
    Fixed and restarted, the worker submits the held request once."""
    metastudio.auth_code = code
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)
    metastudio.set_credentials({LOCAL_AK: ROTATED_SK})
    port = free_port()
    worker = WorkerProcess({**bot_env, "VOICEBOT_WORKER_METRICS_PORT": str(port)}).start()
    try:
        await driver.block_action(APPROVER, CHANNEL, posted.ts, APPROVE)
        await replies_with(slack, posted, HELD)
        await wait_until(lambda: "On hold" in block_text(slack.message(CHANNEL, posted.ts)))
        # Well past the worker's poll interval: any retry would have happened by now.
        await nothing_more_happens(3)
        figures = await scraped(port)
        # The web process holds its calls too: nothing is sent for a status or the picker.
        before = len(metastudio.requests)
        status = await say(driver, slack, f"status {job}", user=OUTSIDER)
        await driver.slash_command("/voice", "submit", user=REQUESTER, channel=CHANNEL)
        [form] = await slack.wait_for_async(
            lambda: [v for v in slack.views if v.callback_id == modal.CALLBACK_ID]
        )
        picked = await driver.block_suggestion(REQUESTER, form.id, modal.ACTION_JOB, "")
        async with httpx.AsyncClient() as web:
            web_metrics = (await web.get(f"{bot_web.url}/metrics")).text
    finally:
        worker.stop()

    assert 1 <= refused(metastudio) <= 5, refused(metastudio)
    assert not metastudio.locked(LOCAL_AK)
    assert metastudio.stats()["lockouts"] == 0
    assert metastudio_posts(metastudio) == []
    assert figures["voicebot_metastudio_credentials_ok"] == 0
    assert figures['voicebot_metastudio_auth_failures_total{kind="signature"}'] >= 1
    assert HELD in status
    [option] = (picked.json or {})["options"]
    assert option["text"]["text"] == "MetaStudio refused the bot's credentials; ask an operator"
    assert "voicebot_metastudio_credentials_ok 0.0" in web_metrics
    assert len(metastudio.requests) == before
    [held] = [t for t in thread_replies(slack, posted) if HELD in t]
    assert "HUAWEICLOUD_SDK_SK" in held
    assert LOCAL_SK not in held
    assert ROTATED_SK not in held
    assert "canonicalRequest" not in held
    card = block_text(slack.message(CHANNEL, posted.ts))
    assert "Submit to MetaStudio failed" not in card

    fixed = WorkerProcess({**bot_env, "HUAWEICLOUD_SDK_SK": ROTATED_SK}).start()
    try:
        await replies_with(slack, posted, "passed review", within=20)
    finally:
        fixed.stop()
    assert metastudio.commit_count(job) == 1
    assert len(metastudio_posts(metastudio)) == 1
    thread = thread_replies(slack, posted)
    assert sum(HELD in t for t in thread) == 1, thread
    assert [HELD in t for t in thread] == [False, True, False, False], thread
    assert "Submitted job" in thread[2]
    assert "On hold" not in block_text(slack.message(CHANNEL, posted.ts))
    assert metastudio.stats()["lockouts"] == 0


async def test_a_locked_key_is_probed_once_after_the_lockout_window(
    driver: SlackDriver,
    slack: LocalSlack,
    metastudio: LocalMetaStudio,
    bot_env: dict[str, str],
) -> None:
    """Another client of the same AK locked it with bad signatures. The bot is refused once,
    waits the lockout window out, sends a single probe and then the held submit, once."""
    metastudio.lock_seconds = 600.0
    await grant_flow_roles(driver)
    job = metastudio.seed_job(voice_name="narrator")
    posted = await submit_job(driver, slack, job)
    url = f"/v1/{LOCAL_PROJECT_ID}/voice-training-manage/user/jobs/{job}"
    wrong = AKSKAuth(LOCAL_AK, "Wrong" + LOCAL_SK[5:])
    headers = {"X-Project-Id": LOCAL_PROJECT_ID, "Content-Type": "application/json"}
    base = metastudio.url  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=base, auth=wrong, headers=headers) as other:
        for _ in range(6):
            assert (await other.get(url)).status_code == 401
    assert metastudio.locked(LOCAL_AK)
    by_others = refused(metastudio)

    worker = WorkerProcess({**bot_env, "VOICEBOT_METASTUDIO_AUTH_PROBE_AFTER": "2"}).start()
    try:
        await driver.block_action(APPROVER, CHANNEL, posted.ts, APPROVE)
        await wait_until(lambda: refused(metastudio) > by_others, within=20)
        # The window runs out (however slowly the worker started): the probe finds it over.
        metastudio.lift_lock(LOCAL_AK)
        await replies_with(slack, posted, "passed review", within=20)
    finally:
        worker.stop()

    assert refused(metastudio) - by_others == 1
    assert metastudio.stats()["lockouts"] == 1
    assert metastudio.commit_count(job) == 1
    assert len(metastudio_posts(metastudio)) == 1
    [held] = [t for t in thread_replies(slack, posted) if HELD in t]
    assert "locked" in held
    assert "five minutes" in held


async def test_a_refused_token_is_renewed_once_then_held_like_a_refused_key(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    """Token auth, and the account is frozen: the gateway refuses the token ("decrypt token
    fail"). The client fetches a new token once and sends once more; refused again, the
    breaker opens and the next call is not sent at all."""
    iam = LocalIAM(users=[IAMUser("voicebot", "pw", "acme")])
    project_id = project_id_for("cn-north-4")
    local = LocalMetaStudio(project_id=project_id, iam=iam)
    job = local.seed_job()
    with ServerThread(local.app) as server:
        settings = Settings(
            METASTUDIO_ENDPOINT=server.url,
            HUAWEICLOUD_SDK_PROJECT_ID=project_id,
            HUAWEICLOUD_SDK_IAM_ENDPOINT=server.url,
            VOICEBOT_IAM_USER="voicebot",
            VOICEBOT_IAM_PASSWORD="pw",
            VOICEBOT_IAM_DOMAIN="acme",
        )
        breaker = CredentialsBreaker(redis_client, redis_prefix, fingerprint(settings))
        async with MetaStudioClient.from_settings(settings, guard=breaker) as client:
            assert (await client.show_job(job)).job_id == job
            iam.frozen = True
            with pytest.raises(TokenExpired) as refused_token:
                await client.show_job(job)
            sent = len(local.requests)
            with pytest.raises(CredentialsHeld) as held:
                await client.show_job(job)

    assert iam.token_requests == 2
    gets = [r.status for r in local.requests if r.method == "GET"]
    assert gets == [200, 401, 401]
    assert len(local.requests) == sent
    assert refused_token.value.kind == held.value.kind == "token"
    assert "VOICEBOT_IAM_" in held.value.hint
    assert "pw" not in str(held.value)
    assert await breaker.refusals() == 1
