"""The MetaStudio client: every call, every error class, retries and the at-most-once submit.

Part one drives the client against a small scripted server (real HTTP) for answers the
local MetaStudio never gives (other error-body spellings, 504, a 5xx twice in a row).
Part two runs it against the local MetaStudio, with its gateway, review simulation and
fault injection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.metastudio import (
    AKSKAuth,
    APIError,
    CommitJobRequest,
    CommitResult,
    CredentialsRejected,
    InvalidParameter,
    JobNotFound,
    JobNotSubmittable,
    JobState,
    MetaStudioClient,
    MetaStudioError,
    ProjectMismatch,
    QuotaExceeded,
    RetryPolicy,
    ServerError,
    SignatureRejected,
    SubmitOutcomeUnknown,
    Throttled,
    TokenExpired,
    TrainingJob,
    TransportError,
)
from bot.metastudio.client import REDACTED, json_bytes, submit_took_effect
from bot.metastudio.errors import error_from_response, parse_retry_after
from bot.settings import ConfigError, Settings
from sandbox.iam import IAMUser, LocalIAM
from sandbox.metastudio import FaultConfig, LocalMetaStudio, ReviewPlan
from sandbox.serve import ServerThread

AK = "HWTESTAK0000000000000"
SK = "HwTestSecretKey0000000000000000000000000"
PROJECT = "0123456789abcdef0123456789abcdef"
JOB = "26f06524-4f75-4b3a-a853-b649a21aaf66"
PREFIX = f"/v1/{PROJECT}/voice-training-manage"
AUTH_PREFIX = "Incorrect IAM authentication information: "
REQUEST = CommitJobRequest(voice_name="demo_voice_01", sex="FEMALE", language="CN")


class Sleeps:
    """An injectable sleep that records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def fast_retry(sleeps: Sleeps, attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, sleep=sleeps, random=lambda: 0.5)


# -- part one: a scripted server ----------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


@dataclass
class Seen:
    method: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """Replies handed out in request order; each request is recorded as it arrived."""

    replies: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            self.seen.append(
                Seen(
                    request.method,
                    request.scope["raw_path"].decode(),
                    request.scope["query_string"].decode(),
                    {k.lower(): v for k, v in request.headers.items()},
                    await request.body(),
                )
            )
            reply = self.replies.pop(0) if self.replies else Reply()
            if reply.delay:
                await asyncio.sleep(reply.delay)
            content = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            return Response(content, reply.status, reply.headers, "application/json")

        methods = ["GET", "POST", "PUT", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", handle, methods=methods)])

    def methods(self) -> list[str]:
        return [s.method for s in self.seen]


def job_json(state: JobState, **extra: Any) -> dict[str, Any]:
    return {"job_id": JOB, "state": state.value, "reject_times": 0, "lastupdate_time": 1, **extra}


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def scripted_server(script: Script) -> Iterator[ServerThread]:
    with ServerThread(script.app()) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def scripted(
    scripted_server: ServerThread, sleeps: Sleeps
) -> AsyncIterator[MetaStudioClient]:
    client = MetaStudioClient(
        scripted_server.url, PROJECT, AKSKAuth(AK, SK), timeout=2.0, retry=fast_retry(sleeps)
    )
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    ("body", "code", "msg"),
    [
        ({"error_code": "MSS.41000003", "error_msg": "gone"}, "MSS.41000003", "gone"),
        ({"errorCode": "MSS.00000003", "errorMsg": "bad"}, "MSS.00000003", "bad"),
        ({"code": "MSS.41000012", "message": "busy"}, "MSS.41000012", "busy"),
        ({"error": {"error_code": "APIGW.0308", "error_msg": "slow"}}, "APIGW.0308", "slow"),
        (
            {"error_code": "A", "error_msg": "first", "code": "B", "message": "second"},
            "A",
            "first",
        ),
    ],
)
def test_error_body_is_read_in_the_sdk_order(body: dict[str, Any], code: str, msg: str) -> None:
    error = error_from_response(400, {}, json.dumps(body).encode())
    assert (error.error_code, error.error_msg) == (code, msg)


def test_unparseable_error_body_falls_back_to_status_and_request_id() -> None:
    error = error_from_response(503, {"x-request-id": "rid-1"}, b"<html>upstream down</html>")
    assert isinstance(error, ServerError)
    assert (error.error_code, error.error_msg) == ("503", "HTTP 503 (request id rid-1)")
    assert "<html" not in str(error)


def test_request_id_comes_from_the_header_then_the_body() -> None:
    body = json.dumps({"error_code": "X", "error_msg": "y", "request_id": "from-body"}).encode()
    assert error_from_response(400, {"x-request-id": "from-header"}, body).request_id == (
        "from-header"
    )
    assert error_from_response(400, {}, body).request_id == "from-body"


@pytest.mark.parametrize(
    ("status", "code", "msg", "cls"),
    [
        (401, "APIGW.0301", "verify aksk signature fail", SignatureRejected),
        (401, "APIG.0301", "verify aksk signature fail", SignatureRejected),
        (401, "APIG.0301", "calc ak sk signature fail:signature expired", SignatureRejected),
        (401, "APIG.0301", "Get secretKey failed,ak:******,err:ak not exist", SignatureRejected),
        (401, "APIG.0301", "AK access failed to reach the limit,forbidden.", SignatureRejected),
        (401, "APIG.0301", "decrypt token fail", TokenExpired),
        (401, "APIGW.0301", "x-auth-token not found", TokenExpired),
        (401, "APIGW.0301", "token invalid, The token must be updated", TokenExpired),
        (401, "APIGW.0307", "The token must be updated.", TokenExpired),
        (400, "MSS.00010009", "urlTenantId is not equal tokenTenantId", ProjectMismatch),
        (404, "MSS.41000003", "训练任务不存在", JobNotFound),
        (400, "MSS.41000005", "task state does not allow this operation", JobNotSubmittable),
        (400, "MSS.00000002", "Invalid body", InvalidParameter),
        (400, "MSS.00000003", "Invalid parameter: tag", InvalidParameter),
        (400, "MSS.10000002", "Request JSON exception", InvalidParameter),
        (400, "MSS.10000003", "Parameter validation abnormal", InvalidParameter),
        (403, "MSS.41000012", "concurrency", QuotaExceeded),
        (403, "MSS.41000023", "resources", QuotaExceeded),
        (429, "APIGW.0308", "throttled", Throttled),
        (500, "MSS.000000002", "internal error", ServerError),
        (404, "MSS.00010003", "SR.api not found", APIError),
    ],
)
def test_error_codes_map_onto_the_hierarchy(
    status: int, code: str, msg: str, cls: type[APIError]
) -> None:
    body = json.dumps({"error_code": code, "error_msg": msg}).encode()
    error = error_from_response(status, {}, body)
    assert type(error) is cls
    assert error.hint
    assert code in str(error)


@pytest.mark.parametrize(
    ("msg", "kind", "checks"),
    [
        ("verify aksk signature fail", "signature", "HUAWEICLOUD_SDK_SK"),
        ("calc ak sk signature fail:signature expired", "clock", "NTP"),
        ("Get secretKey failed,ak:AKEXAMPLE1,err:ak not exist", "unknown_ak", "HUAWEICLOUD_SDK_AK"),
        ("AK access failed to reach the limit,forbidden.", "locked", "five minutes"),
        ("decrypt token fail", "token", "VOICEBOT_IAM_"),
        ("token expires, expires_at: 2026-12-01T00:00:00Z", "token", "VOICEBOT_IAM_"),
    ],
)
@pytest.mark.parametrize("code", ["APIG.0301", "APIGW.0301"])
def test_gateway_authentication_failures_are_told_apart_by_their_message(
    code: str, msg: str, kind: str, checks: str
) -> None:
    body = json.dumps({"error_code": code, "error_msg": AUTH_PREFIX + msg}).encode()
    error = error_from_response(401, {"X-Request-Id": "r1"}, body)
    assert isinstance(error, CredentialsRejected)
    assert error.kind == kind
    assert checks in error.hint
    assert "AKEXAMPLE1" not in str(error)


def test_other_400_about_state_on_submit_is_not_submittable() -> None:
    body = json.dumps({"error_code": "MSS.49999999", "error_msg": "job state invalid"}).encode()
    assert isinstance(error_from_response(400, {}, body, on_commit=True), JobNotSubmittable)
    assert type(error_from_response(400, {}, body)) is APIError


def test_quota_hints_tell_concurrency_from_resources() -> None:
    def quota(code: str) -> str:
        body = json.dumps({"error_code": code, "error_msg": "quota"}).encode()
        return error_from_response(403, {}, body).hint

    assert "wait" in quota("MSS.41000012").lower()
    assert "buy" in quota("MSS.41000023").lower()


def test_gateway_canonical_request_echo_is_kept_out_of_the_message() -> None:
    echo = (
        "POST|/v1/p/x/|"
        "|content-type:application/json|x-security-token:SECRETSTS|x-sdk-date:20250101T000000Z|"
    )
    msg = (
        "Incorrect IAM authentication information: verify aksk signature fail, "
        f"canonicalRequest: {echo}"
    )
    body = json.dumps({"error_code": "APIGW.0301", "error_msg": msg}).encode()
    error = error_from_response(401, {"X-Request-Id": "r1"}, body)
    assert isinstance(error, SignatureRejected)
    assert "canonicalRequest" not in str(error)
    assert "x-sdk-date" not in str(error)
    assert "SECRETSTS" not in repr(error)
    assert error.detail is not None
    assert "SECRETSTS" not in error.detail
    assert "x-security-token:***" in error.detail
    assert "HUAWEICLOUD_SDK_SK" in error.hint


def _roundtrip(error: MetaStudioError) -> Any:
    # Queue workers pickle a failed job's exception; these bytes are our own.
    return pickle.loads(pickle.dumps(error))  # noqa: S301


def test_errors_survive_pickling() -> None:
    body = json.dumps({"error_code": "APIGW.0308", "error_msg": "slow"}).encode()
    throttled = error_from_response(429, {"Retry-After": "3", "X-Request-Id": "r"}, body)
    copy = _roundtrip(throttled)
    assert type(copy) is Throttled
    assert copy.retry_after == 3.0
    assert str(copy) == str(throttled)
    assert _roundtrip(SubmitOutcomeUnknown("lost", job_id=JOB)).job_id == JOB
    assert _roundtrip(TransportError("no answer", maybe_sent=False)).maybe_sent is False


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    top = RetryPolicy(attempts=10, base=0.2, cap=1.0, random=lambda: 1.0)
    assert [top.backoff(n) for n in range(5)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    half = RetryPolicy(base=0.2, cap=5.0, random=lambda: 0.5)
    assert half.backoff(2) == pytest.approx(0.4)
    assert RetryPolicy(jitter="none", random=lambda: 0.0).backoff(1) == pytest.approx(0.4)


def test_retry_delay_honours_retry_after_and_the_attempt_budget() -> None:
    policy = RetryPolicy(attempts=3, random=lambda: 1.0, max_retry_after=10)
    throttled = Throttled(429, "APIGW.0308", "slow", retry_after=7.0)
    assert policy.delay(0, throttled) == 7.0
    assert policy.delay(2, throttled) is None
    assert policy.delay(0, Throttled(429, "APIGW.0308", "slow", retry_after=60.0)) is None
    assert policy.delay(1, ServerError(500, "x", "y")) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def _job(state: JobState, reject_times: int | None = 0, updated: int | None = 1) -> TrainingJob:
    return TrainingJob(job_id=JOB, state=state, reject_times=reject_times, lastupdate_time=updated)


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        (_job(JobState.UPLOADING), _job(JobState.UPLOADING), False),
        (_job(JobState.UPLOADING), _job(JobState.SYSTEM_AUDITING, updated=2), True),
        (_job(JobState.CREATING), _job(JobState.WAITING, updated=2), True),
        (_job(JobState.UPLOADING), _job(JobState.AUDIT_FAILED, 1, 3), True),
        (_job(JobState.AUDIT_FAILED, 1, 5), _job(JobState.AUDIT_FAILED, 2, 9), True),
        (_job(JobState.AUDIT_FAILED, 1, 5), _job(JobState.AUDIT_FAILED, 1, 5), False),
        (_job(JobState.AUDIT_FAILED, 1, 5), _job(JobState.AUDIT_FAILED, 1, 9), None),
        (_job(JobState.AUDIT_FAILED, None, 5), _job(JobState.AUDIT_FAILED, None, 5), False),
        (_job(JobState.AUDIT_FAILED, None, 5), _job(JobState.AUDIT_FAILED, None, 6), None),
        (_job(JobState.AUDIT_FAILED, 1, 5), _job(JobState.AUDITING, 1, 6), True),
        (_job(JobState.AUDITING), _job(JobState.WAITING, updated=2), False),
    ],
)
def test_submit_took_effect_compares_before_and_after(
    before: TrainingJob, after: TrainingJob, verdict: bool | None
) -> None:
    assert submit_took_effect(before, after) is verdict


async def test_every_request_carries_content_type_project_and_encoded_path(
    scripted: MetaStudioClient, script: Script
) -> None:
    odd = "a/b c+ü"
    script.replies = [
        Reply(body=job_json(JobState.UPLOADING, job_id=odd)),
        Reply(body={"count": 0, "jobs": []}),
        Reply(body={}),
        Reply(body={"count": 0, "operations": []}),
    ]
    job = await scripted.show_job(odd, app_user_id="U012ABCDEF")
    assert job.job_id == odd
    states = [JobState.WAITING, JobState.FAILED]
    await scripted.list_jobs(states=states, app_user_id="U1", tag="NEWS")
    await scripted.audit_result(odd)
    await scripted.operation_logs(odd, offset=5, limit=20)
    show, listing, audit, logs = script.seen
    for seen in script.seen:
        assert seen.headers["content-type"] == "application/json"
        assert seen.headers["x-project-id"] == PROJECT
        assert seen.headers["authorization"].startswith("SDK-HMAC-SHA256 Access=" + AK)
        assert "x-sdk-date" in seen.headers["authorization"]
        assert SK not in json.dumps(seen.headers)
    assert show.raw_path == f"{PREFIX}/user/jobs/a%2Fb%20c%2B%C3%BC"
    assert audit.raw_path == f"{PREFIX}/user/jobs/a%2Fb%20c%2B%C3%BC/audit-result"
    assert show.headers["x-app-userid"] == "U012ABCDEF"
    assert listing.headers["x-app-userid"] == "U1"
    assert "x-app-userid" not in audit.headers
    assert "x-app-userid" not in logs.headers
    assert listing.query == "limit=10&offset=0&state=WAITING%2CFAILED&tag=NEWS"
    assert logs.query == "limit=20&offset=5"


async def test_commit_sends_compact_json_once(scripted: MetaStudioClient, script: Script) -> None:
    script.replies = [Reply(body=job_json(JobState.UPLOADING)), Reply(body={})]
    request = CommitJobRequest(voice_name="声音一号", sex="FEMALE", tag="CUSTOMER")
    result = await scripted.commit_job(JOB, request, app_user_id="U012ABCDEF")
    assert (result.applied, result.verified_by_read, result.posts) == (True, False, 1)
    post = script.seen[1]
    assert post.method == "POST"
    assert post.raw_path == f"{PREFIX}/user/jobs/{JOB}"
    assert post.body == json_bytes(request.body())
    assert post.body == '{"tag":"CUSTOMER","sex":"FEMALE","voice_name":"声音一号"}'.encode()
    assert post.headers["x-app-userid"] == "U012ABCDEF"


async def test_reads_retry_server_errors_and_honour_retry_after(
    scripted: MetaStudioClient, script: Script, sleeps: Sleeps
) -> None:
    script.replies = [
        Reply(503, {"error_code": "MSS.000000002", "error_msg": "internal error"}),
        Reply(429, {"error_code": "APIGW.0308", "error_msg": "slow"}, {"Retry-After": "2"}),
        Reply(body=job_json(JobState.AUDITING)),
    ]
    job = await scripted.show_job(JOB)
    assert job.state is JobState.AUDITING
    assert sleeps.delays == [pytest.approx(0.1), 2.0]


async def test_reads_do_not_retry_definite_errors(
    scripted: MetaStudioClient, script: Script, sleeps: Sleeps
) -> None:
    script.replies = [Reply(404, {"error_code": "MSS.41000003", "error_msg": "no such task"})]
    with pytest.raises(JobNotFound):
        await scripted.show_job(JOB)
    assert len(script.seen) == 1
    assert sleeps.delays == []


async def test_unreadable_success_body_is_an_error(
    scripted: MetaStudioClient, script: Script
) -> None:
    script.replies = [Reply(raw=b"not json")]
    with pytest.raises(MetaStudioError, match="could not read"):
        await scripted.show_job(JOB)


async def test_commit_after_a_finished_5xx_and_a_read_showing_nothing_resends_once(
    scripted: MetaStudioClient, script: Script
) -> None:
    script.replies = [
        Reply(body=job_json(JobState.UPLOADING)),
        Reply(500, {"error_code": "MSS.000000002", "error_msg": "internal error"}),
        Reply(body=job_json(JobState.UPLOADING)),
        Reply(body={}),
    ]
    result = await scripted.commit_job(JOB, REQUEST)
    assert (result.applied, result.verified_by_read, result.posts) == (True, False, 2)
    assert script.methods() == ["GET", "POST", "GET", "POST"]


async def test_commit_never_posts_a_third_time(scripted: MetaStudioClient, script: Script) -> None:
    error = {"error_code": "MSS.000000002", "error_msg": "internal error"}
    script.replies = [
        Reply(body=job_json(JobState.UPLOADING)),
        Reply(500, error),
        Reply(body=job_json(JobState.UPLOADING)),
        Reply(500, error),
        Reply(body=job_json(JobState.UPLOADING)),
    ]
    with pytest.raises(ServerError):
        await scripted.commit_job(JOB, REQUEST)
    assert script.methods() == ["GET", "POST", "GET", "POST", "GET"]


async def test_commit_after_a_5xx_that_landed_is_verified_by_read(
    scripted: MetaStudioClient, script: Script
) -> None:
    script.replies = [
        Reply(body=job_json(JobState.UPLOADING)),
        Reply(500, {"error_code": "MSS.000000002", "error_msg": "internal error"}),
        Reply(body=job_json(JobState.SYSTEM_AUDITING, lastupdate_time=2)),
    ]
    result = await scripted.commit_job(JOB, REQUEST)
    assert (result.applied, result.verified_by_read, result.posts) == (True, True, 1)
    assert result.job is not None
    assert result.job.state is JobState.SYSTEM_AUDITING


async def test_commit_after_a_504_does_not_resend(
    scripted: MetaStudioClient, script: Script
) -> None:
    script.replies = [
        Reply(body=job_json(JobState.UPLOADING)),
        Reply(504, {"error_code": "APIGW.0203", "error_msg": "gateway timeout"}),
        Reply(body=job_json(JobState.UPLOADING)),
    ]
    with pytest.raises(SubmitOutcomeUnknown) as caught:
        await scripted.commit_job(JOB, REQUEST)
    assert script.methods() == ["GET", "POST", "GET"]
    assert caught.value.job is not None
    assert caught.value.hint


async def test_commit_whose_read_fails_is_outcome_unknown(
    scripted: MetaStudioClient, script: Script, sleeps: Sleeps
) -> None:
    error = {"error_code": "MSS.000000002", "error_msg": "internal error"}
    script.replies = [Reply(body=job_json(JobState.UPLOADING)), Reply(502, error)]
    script.replies += [Reply(500, error) for _ in range(4)]
    with pytest.raises(SubmitOutcomeUnknown, match="reading the job afterwards failed"):
        await scripted.commit_job(JOB, REQUEST)
    assert script.methods().count("POST") == 1
    assert len(sleeps.delays) == 3


async def test_commit_retries_429_honouring_retry_after(
    scripted: MetaStudioClient, script: Script, sleeps: Sleeps
) -> None:
    script.replies = [
        Reply(body=job_json(JobState.UPLOADING)),
        Reply(429, {"error_code": "APIGW.0308", "error_msg": "slow"}, {"Retry-After": "1"}),
        Reply(body={}),
    ]
    result = await scripted.commit_job(JOB, REQUEST)
    assert (result.verified_by_read, result.posts) == (False, 2)
    assert sleeps.delays == [1.0]


async def test_timeout_on_a_read_is_a_transport_error(
    scripted_server: ServerThread, script: Script, sleeps: Sleeps
) -> None:
    script.replies = [Reply(body=job_json(JobState.UPLOADING), delay=0.5) for _ in range(2)]
    async with MetaStudioClient(
        scripted_server.url,
        PROJECT,
        AKSKAuth(AK, SK),
        timeout=0.1,
        retry=fast_retry(sleeps, attempts=2),
    ) as client:
        with pytest.raises(TransportError, match="timed out") as caught:
            await client.show_job(JOB)
    assert caught.value.maybe_sent
    assert len(script.seen) == 2


async def test_commit_when_nothing_listens_never_sends(sleeps: Sleeps) -> None:
    with ServerThread(Script().app()) as server:
        url = server.url
    async with MetaStudioClient(
        url, PROJECT, AKSKAuth(AK, SK), timeout=1.0, retry=fast_retry(sleeps, attempts=2)
    ) as client:
        with pytest.raises(TransportError) as caught:
            await client.commit_job(JOB, REQUEST)
    assert caught.value.maybe_sent is False


async def test_describe_commit_is_signed_and_redacted(
    scripted: MetaStudioClient, script: Script
) -> None:
    call = scripted.describe_commit(JOB, REQUEST, app_user_id="U012ABCDEF")
    assert call.method == "POST"
    assert call.url.endswith(f"{PREFIX}/user/jobs/{JOB}")
    assert call.headers["authorization"] == REDACTED
    assert call.headers["x-project-id"] == PROJECT
    assert call.headers["x-app-userid"] == "U012ABCDEF"
    assert call.headers["content-type"] == "application/json"
    assert "x-sdk-date" in call.headers
    assert call.body == json_bytes(REQUEST.body()).decode()
    assert SK not in repr(call)
    assert "Signature=" not in repr(call)
    assert script.seen == []


# -- part two: the local MetaStudio ------------------------------------------------------


@pytest.fixture
def ms() -> LocalMetaStudio:
    # Review stages long enough never to pass on their own; tests move the clock instead.
    return LocalMetaStudio(
        credentials={AK: SK},
        project_id=PROJECT,
        review=ReviewPlan(system_delay=60.0, admin_delay=60.0),
    )


@pytest.fixture
def sandbox(ms: LocalMetaStudio) -> Iterator[ServerThread]:
    with ServerThread(ms.app) as server:
        yield server


def make_client(
    server: ServerThread,
    sleeps: Sleeps,
    *,
    sk: str = SK,
    project_id: str = PROJECT,
    timeout: float = 2.0,
    attempts: int = 4,
) -> MetaStudioClient:
    return MetaStudioClient(
        server.url,
        project_id,
        AKSKAuth(AK, sk),
        timeout=timeout,
        retry=fast_retry(sleeps, attempts=attempts),
    )


@pytest.fixture
async def client(sandbox: ServerThread, sleeps: Sleeps) -> AsyncIterator[MetaStudioClient]:
    async with make_client(sandbox, sleeps) as c:
        yield c


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def posts(ms: LocalMetaStudio, job_id: str) -> int:
    return sum(1 for r in ms.requests if r.method == "POST" and r.path.endswith(job_id))


async def test_submit_then_follow_a_failed_review_and_resubmit(
    ms: LocalMetaStudio, client: MetaStudioClient
) -> None:
    job_id = ms.seed_job(outcome="fail", app_user_id="U012ABCDEF")
    result = await client.commit_job(job_id, REQUEST, app_user_id="U012ABCDEF")
    assert (result.applied, result.verified_by_read, result.posts) == (True, False, 1)
    assert ms.commit_count(job_id) == 1
    assert (await client.show_job(job_id, app_user_id="U012ABCDEF")).state is (
        JobState.SYSTEM_AUDITING
    )
    ms.advance(61)
    assert (await client.show_job(job_id)).state is JobState.AUDITING
    ms.advance(61)
    failed = await client.show_job(job_id)
    assert failed.state is JobState.AUDIT_FAILED
    assert failed.reject_times == 1

    audit = await client.audit_result(job_id)
    assert audit.system_audit_result is not None
    assert audit.system_audit_result.errors
    assert audit.admin_audit_result is not None
    assert audit.admin_audit_result.message

    logs = await client.operation_logs(job_id)
    actions = [log.action for log in logs.operations]
    assert {"COMMIT_JOB", "SYSTEM_AUDIT_PASS", "AUDIT_NOT_PASS"} <= set(actions)
    assert logs.count == len(logs.operations)
    rejected = next(log for log in logs.operations if log.action == "AUDIT_NOT_PASS")
    assert rejected.external_info is not None
    assert rejected.external_info.admin_audit_failure_reason
    assert len((await client.operation_logs(job_id, offset=0, limit=1)).operations) == 1

    again = await client.commit_job(job_id, REQUEST)
    assert again.applied
    assert ms.commit_count(job_id) == 2
    for recorded in ms.requests:
        assert recorded.header("content-type") == "application/json"
        assert recorded.header("x-project-id") == PROJECT
        if recorded.path.endswith(("/audit-result", "/op-logs")):
            assert recorded.header("x-app-userid") is None


async def test_list_filters_by_state_and_pages_newest_first(
    ms: LocalMetaStudio, client: MetaStudioClient
) -> None:
    waiting = [ms.seed_job(state=JobState.WAITING, created_ago=100 - n) for n in range(5)]
    for _ in range(3):
        ms.seed_job(state=JobState.UPLOADING)
    first = await client.list_jobs(states=[JobState.WAITING], offset=0, limit=2)
    second = await client.list_jobs(states=[JobState.WAITING], offset=2, limit=2)
    last = await client.list_jobs(states=[JobState.WAITING], offset=4, limit=2)
    assert first.count == second.count == last.count == 5
    paged = [job.job_id for page in (first, second, last) for job in page.jobs]
    assert paged == list(reversed(waiting))
    both = await client.list_jobs(states=[JobState.WAITING, JobState.UPLOADING], limit=100)
    assert both.count == 8
    one = await client.list_jobs(job_id=waiting[0], app_user_id="U1")
    assert [job.job_id for job in one.jobs] == [waiting[0]]


async def test_definite_errors_map_to_their_classes_without_retrying(
    ms: LocalMetaStudio, client: MetaStudioClient, sleeps: Sleeps
) -> None:
    with pytest.raises(JobNotFound) as not_found:
        await client.show_job("no-such-job")
    assert not_found.value.request_id
    with pytest.raises(JobNotFound):
        await client.commit_job("no-such-job", REQUEST)

    in_review = ms.seed_job(state=JobState.AUDITING)
    with pytest.raises(JobNotSubmittable) as not_submittable:
        await client.commit_job(in_review, REQUEST)
    assert not_submittable.value.error_code == "MSS.41000005"
    assert ms.commit_count(in_review) == 0

    with pytest.raises(InvalidParameter, match="state"):
        await client.list_jobs(states=["NOT_A_STATE"])
    with pytest.raises(InvalidParameter, match="tag"):
        await client.list_jobs(tag="NOT_A_TAG")
    with pytest.raises(InvalidParameter, match="limit"):
        await client.list_jobs(limit=500)
    assert sleeps.delays == []


async def test_wrong_secret_key_is_a_signature_rejection(
    ms: LocalMetaStudio, sandbox: ServerThread, sleeps: Sleeps
) -> None:
    job_id = ms.seed_job()
    wrong = "WrongSecretKey00000000000000000000000000"
    async with make_client(sandbox, sleeps, sk=wrong) as bad:
        with pytest.raises(SignatureRejected) as caught:
            await bad.commit_job(job_id, REQUEST)
    error = caught.value
    assert error.status == 401
    assert "HUAWEICLOUD_SDK_SK" in error.hint
    assert "canonicalRequest" not in str(error)
    assert error.detail is not None
    assert "x-sdk-date" in error.detail
    for text in (str(error), repr(error), error.detail):
        assert wrong not in text
        assert SK not in text
    assert len(ms.requests) == 1
    assert ms.commit_count(job_id) == 0


async def test_project_id_mismatch(
    ms: LocalMetaStudio, sandbox: ServerThread, sleeps: Sleeps
) -> None:
    async with make_client(sandbox, sleeps, project_id="f" * 32) as other:
        with pytest.raises(ProjectMismatch) as caught:
            await other.show_job(ms.seed_job())
    assert caught.value.error_code == "MSS.00010009"
    assert "HUAWEICLOUD_SDK_PROJECT_ID" in caught.value.hint


async def test_throttling_is_retried_then_raised(
    ms: LocalMetaStudio, client: MetaStudioClient, sleeps: Sleeps
) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(throttle_rate=1.0)
    with pytest.raises(Throttled) as caught:
        await client.show_job(job_id)
    assert caught.value.retry_after == 1.0
    assert sleeps.delays == [1.0, 1.0, 1.0]
    assert len(ms.requests) == 4

    ms.faults = FaultConfig(throttle_rate=1.0, methods=frozenset({"POST"}))
    with pytest.raises(Throttled):
        await client.commit_job(job_id, REQUEST)
    assert posts(ms, job_id) == 4
    assert ms.commit_count(job_id) == 0


async def test_server_errors_are_retried_then_raised(
    ms: LocalMetaStudio, client: MetaStudioClient, sleeps: Sleeps
) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(error_rate=1.0)
    with pytest.raises(ServerError) as caught:
        await client.show_job(job_id)
    assert caught.value.status == 500
    assert len(ms.requests) == 4
    assert len(sleeps.delays) == 3


async def test_submit_hitting_5xx_twice_posts_twice_and_applies_nothing(
    ms: LocalMetaStudio, client: MetaStudioClient
) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(error_rate=1.0, methods=frozenset({"POST"}))
    with pytest.raises(ServerError):
        await client.commit_job(job_id, REQUEST)
    assert posts(ms, job_id) == 2
    assert ms.commit_count(job_id) == 0


async def test_read_timeout_is_a_transport_error(
    ms: LocalMetaStudio, sandbox: ServerThread, sleeps: Sleeps
) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(latency=0.4, methods=frozenset({"GET"}))
    async with make_client(sandbox, sleeps, timeout=0.1, attempts=2) as slow:
        with pytest.raises(TransportError, match="timed out"):
            await slow.show_job(job_id)


@pytest.mark.parametrize("mode", ["bad_gateway", "timeout"])
async def test_lost_reply_on_submit_is_settled_by_reading_the_job(
    ms: LocalMetaStudio, sandbox: ServerThread, sleeps: Sleeps, mode: str
) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(
        lost_reply_rate=1.0,
        lost_reply_mode=mode,
        lost_reply_delay=2.0,
        methods=frozenset({"POST"}),
    )
    async with make_client(sandbox, sleeps, timeout=0.3) as c:
        result = await c.commit_job(job_id, REQUEST)
    assert (result.applied, result.verified_by_read, result.posts) == (True, True, 1)
    assert result.job is not None
    assert result.job.state is JobState.SYSTEM_AUDITING
    assert ms.commit_count(job_id) == 1
    assert posts(ms, job_id) == 1


async def test_submit_still_in_flight_after_a_timeout_is_not_resent(
    ms: LocalMetaStudio, sandbox: ServerThread, sleeps: Sleeps
) -> None:
    job_id = ms.seed_job()
    # The gateway holds the POST past the client's timeout and applies it afterwards, so
    # the read right after the timeout still shows the job as it was.
    ms.faults = FaultConfig(latency=0.4, methods=frozenset({"POST"}))
    async with make_client(sandbox, sleeps, timeout=0.1) as c:
        with pytest.raises(SubmitOutcomeUnknown) as caught:
            await c.commit_job(job_id, REQUEST)
    assert caught.value.job is not None
    assert caught.value.job.state is JobState.UPLOADING
    assert await eventually(lambda: ms.commit_count(job_id) == 1)
    assert posts(ms, job_id) == 1


@pytest.mark.parametrize(
    ("methods", "least_applied"),
    # Faulted reads also fail the baseline read, which then (safely) sends nothing.
    [(frozenset({"POST"}), 24), (None, 12)],
)
async def test_submit_lands_at_most_once_under_faults(
    ms: LocalMetaStudio,
    client: MetaStudioClient,
    methods: frozenset[str] | None,
    least_applied: int,
) -> None:
    jobs = [ms.seed_job() for _ in range(30)]
    ms.faults = FaultConfig(error_rate=0.3, lost_reply_rate=0.3, seed=7, methods=methods)
    outcomes: dict[str, CommitResult | MetaStudioError] = {}
    for job_id in jobs:
        try:
            outcomes[job_id] = await client.commit_job(job_id, REQUEST)
        except MetaStudioError as error:
            outcomes[job_id] = error
    for job_id, outcome in outcomes.items():
        if isinstance(outcome, CommitResult):
            assert outcome.applied
            assert ms.commit_count(job_id) == 1, outcome
        else:
            assert isinstance(outcome, SubmitOutcomeUnknown | ServerError | TransportError)
            assert ms.commit_count(job_id) <= 1
    applied = [o for o in outcomes.values() if isinstance(o, CommitResult)]
    assert any(o.verified_by_read for o in applied)
    assert any(o.posts == 2 for o in applied)
    assert len(applied) >= least_applied
    assert max(ms.commit_count(job_id) for job_id in jobs) == 1


async def test_describe_commit_matches_what_commit_sends(
    ms: LocalMetaStudio, client: MetaStudioClient
) -> None:
    job_id = ms.seed_job()
    call = client.describe_commit(job_id, REQUEST, app_user_id="U012ABCDEF")
    assert len(ms.requests) == 0
    await client.commit_job(job_id, REQUEST, app_user_id="U012ABCDEF")
    sent = next(r for r in ms.requests if r.method == "POST")
    assert call.url == f"{client_url(client)}{sent.path}"
    assert call.body.encode() == sent.body
    assert {k.lower() for k in call.headers} == set(sent.headers)
    assert call.headers["authorization"] == REDACTED
    signed = sent.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert call.headers["x-project-id"] == PROJECT
    assert set(signed.split(";")) <= {k.lower() for k in call.headers}
    for value in call.headers.values():
        assert SK not in value
        assert "Signature=" not in value


def client_url(client: MetaStudioClient) -> str:
    return repr(client).split("'")[1]


async def test_no_secret_reaches_errors_reprs_or_logs(
    ms: LocalMetaStudio,
    sandbox: ServerThread,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.metastudio")
    job_id = ms.seed_job()
    seen: list[object] = []
    async with make_client(sandbox, sleeps) as good:
        seen.append(good)
        ms.faults = FaultConfig(error_rate=0.5, lost_reply_rate=0.3, seed=3)
        for _ in range(3):
            try:
                seen.append(await good.commit_job(job_id, REQUEST))
            except MetaStudioError as error:
                seen.append(error)
        ms.faults = FaultConfig()
    async with make_client(sandbox, sleeps, sk="X" * 40) as bad:
        with pytest.raises(SignatureRejected) as caught:
            await bad.show_job(job_id)
        seen.extend([bad, caught.value, bad.describe_commit(job_id, REQUEST)])
    texts = [str(item) for item in seen] + [repr(item) for item in seen]
    texts += [record.getMessage() for record in caplog.records]
    assert caplog.records
    for text in texts:
        assert SK not in text
        assert "X" * 40 not in text
        assert "Signature=" not in text


def settings_for(url: str, **fields: Any) -> Settings:
    base: dict[str, Any] = {
        "huaweicloud_sdk_ak": None,
        "huaweicloud_sdk_sk": None,
        "huaweicloud_sdk_project_id": PROJECT,
        "metastudio_endpoint_override": url,
        "iam_endpoint": None,
        "iam_user": None,
        "iam_password": None,
        "iam_domain": None,
    }
    return Settings(**{**base, **fields})


async def test_from_settings_signs_with_aksk(ms: LocalMetaStudio, sandbox: ServerThread) -> None:
    settings = settings_for(sandbox.url, huaweicloud_sdk_ak=AK, huaweicloud_sdk_sk=SK)
    async with MetaStudioClient.from_settings(settings) as from_env:
        assert "AKSKAuth" in repr(from_env)
        assert SK not in repr(from_env)
        job = await from_env.show_job(ms.seed_job())
    assert job.state is JobState.UPLOADING


async def test_from_settings_falls_back_to_an_iam_token() -> None:
    password = "iam-password-secret"
    iam = LocalIAM(users=[IAMUser("bot", password, "acme")], projects={"cn-north-4": PROJECT})
    ms = LocalMetaStudio(credentials={AK: SK}, project_id=PROJECT, iam=iam)
    job_id = ms.seed_job()
    with ServerThread(ms.app) as server:
        settings = settings_for(
            server.url,
            iam_endpoint=server.url,
            iam_user="bot",
            iam_password=password,
            iam_domain="acme",
        )
        async with MetaStudioClient.from_settings(settings) as from_env:
            call = from_env.describe_commit(job_id, REQUEST)
            result = await from_env.commit_job(job_id, REQUEST)
            assert password not in repr(from_env)
    assert result.applied
    assert ms.commit_count(job_id) == 1
    assert call.headers["x-auth-token"] == REDACTED
    post = next(r for r in ms.requests if r.method == "POST" and r.path.endswith(job_id))
    token = post.header("x-auth-token")
    assert token
    assert post.header("authorization") is None
    assert post.header("x-project-id") == PROJECT
    assert token not in repr(call)


def test_from_settings_needs_credentials_and_a_project() -> None:
    with pytest.raises(ConfigError, match="HUAWEICLOUD_SDK_AK"):
        MetaStudioClient.from_settings(settings_for("http://127.0.0.1:9"))
    no_project = settings_for("http://127.0.0.1:9", huaweicloud_sdk_project_id=None)
    with pytest.raises(ConfigError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        MetaStudioClient.from_settings(no_project)
