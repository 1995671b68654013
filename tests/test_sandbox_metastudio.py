"""The local MetaStudio over real HTTP: gateway, endpoints, review simulation, faults, admin."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.metastudio.models import JobState
from bot.metastudio.signing import AKSKAuth
from sandbox.metastudio import (
    AuditError,
    AuditFailure,
    FaultConfig,
    LocalMetaStudio,
    ReviewPlan,
)
from sandbox.metastudio.assess import Quotas
from sandbox.serve import ServerThread

AK = "HWTESTAK0000000000000"
SK = "HwTestSecretKey0000000000000000000000000"
PID = "0123456789abcdef0123456789abcdef"
SEED_FILE = Path(__file__).resolve().parent.parent / "config" / "sandbox-jobs.json"
SNR_ERROR = AuditError(
    audio_name="audio_3.wav",
    text_name="text_3.txt",
    error_code="MSS.12000103",
    error_message="signal-to-noise ratio too low",
)
UNSIGNED_LETTER = AuditFailure(
    stage="admin", errors=(SNR_ERROR,), admin_message="The authorization letter is unsigned"
)


def api(path: str, project_id: str = PID) -> str:
    return f"/v1/{project_id}/voice-training-manage{path}"


class StepClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TokenDesk:
    """A minimal identity service: issues tokens on /v3/auth/tokens and validates them."""

    def __init__(self) -> None:
        self.issued: set[str] = set()
        self.routes: list[BaseRoute] = [Route("/v3/auth/tokens", self._issue, methods=["POST"])]

    def validate(self, token: str) -> bool:
        return token in self.issued

    async def _issue(self, request: Request) -> Response:
        token = "MII" + secrets.token_urlsafe(24)
        self.issued.add(token)
        expires = (datetime.now(UTC) + timedelta(hours=24)).isoformat()
        return JSONResponse(
            {"token": {"expires_at": expires}}, 201, headers={"X-Subject-Token": token}
        )


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def ms(clock: StepClock) -> LocalMetaStudio:
    return LocalMetaStudio(
        {AK: SK},
        PID,
        review=ReviewPlan(system_delay=10, admin_delay=20),
        iam=TokenDesk(),
        clock=clock,
    )


@pytest.fixture
def server(ms: LocalMetaStudio) -> Iterator[ServerThread]:
    with ServerThread(ms.app) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    headers = {"X-Project-Id": PID, "Content-Type": "application/json"}
    with httpx.Client(
        base_url=server.url, auth=AKSKAuth(AK, SK), headers=headers, timeout=5.0
    ) as signed:
        yield signed


@pytest.fixture
def raw(server: ServerThread) -> Iterator[httpx.Client]:
    """An unauthenticated client for hand-built requests and the admin endpoints."""
    with httpx.Client(base_url=server.url, timeout=5.0) as plain:
        yield plain


def signed_request(
    raw: httpx.Client,
    method: str,
    url: str,
    *,
    sk: str = SK,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Request:
    base = {"X-Project-Id": PID, "Content-Type": "application/json", **(headers or {})}
    request = raw.build_request(method, url, headers=base, content=content)
    return next(AKSKAuth(AK, sk).sync_auth_flow(request))


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error_code"]


def actions(client: httpx.Client, job_id: str) -> list[tuple[str, str]]:
    ops = client.get(api(f"/user/jobs/{job_id}/op-logs"), params={"limit": 100}).json()
    return [(op["action"], op["operator"]) for op in ops["operations"]]


# endpoints and the review simulation -------------------------------------------------------


def test_details_shape_and_request_id(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job(voice_name="warm_voice", app_user_id="U1", tag="CUSTOMER")
    response = client.get(api(f"/user/jobs/{job_id}"))
    assert response.status_code == 200
    assert len(response.headers["X-Request-Id"]) == 32
    job = response.json()
    assert job["job_id"] == job_id
    assert job["state"] == "UPLOADING"
    assert job["voice_name"] == "warm_voice"
    assert job["app_user_id"] == "U1"
    assert job["tag"] == "CUSTOMER"
    assert job["job_type"] == "BASIC"
    assert job["create_type"] == "PACKAGE"
    assert job["reject_times"] == 0
    assert isinstance(job["create_time"], int)
    assert abs(job["create_time"] / 1000 - time.time()) < 60
    assert job["lastupdate_time"] == job["create_time"]
    assert "asset_id" not in job
    assert "job_failed_code" not in job
    assert job == ms.job(job_id)


def test_pass_review_flow(ms: LocalMetaStudio, client: httpx.Client, clock: StepClock) -> None:
    job_id = ms.seed_job(outcome="pass")
    body = {"tag": "CUSTOMER", "sex": "FEMALE", "voice_name": "demo_voice_01", "language": "CN"}
    response = client.post(api(f"/user/jobs/{job_id}"), json=body)
    assert response.status_code == 200
    assert response.json() == {}
    assert ms.commit_count(job_id) == 1

    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert job["state"] == "SYSTEM_AUDITING"
    assert job["voice_name"] == "demo_voice_01"
    assert job["tag"] == "CUSTOMER"
    assert actions(client, job_id) == [("CREATE_JOB", "USER"), ("COMMIT_JOB", "USER")]
    assert client.get(api(f"/user/jobs/{job_id}/audit-result")).json() == {}

    clock.advance(9.9)
    assert ms.state(job_id) is JobState.SYSTEM_AUDITING
    clock.advance(0.1)
    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert job["state"] == "AUDITING"
    assert actions(client, job_id)[-1] == ("SYSTEM_AUDIT_PASS", "SYSTEM")
    audit = client.get(api(f"/user/jobs/{job_id}/audit-result")).json()
    assert audit["system_audit_result"]["errors"] == []
    assert "admin_audit_result" not in audit

    clock.advance(20)
    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert job["state"] == "WAITING"
    assert job["reject_times"] == 0
    assert job["lastupdate_time"] - job["create_time"] == 30_000
    ops = client.get(api(f"/user/jobs/{job_id}/op-logs")).json()
    assert ops["count"] == 4
    last = ops["operations"][-1]
    assert (last["action"], last["operator"]) == ("ADMIN_AUDIT_PASS", "ADMIN")
    assert len(last["external_info"]["review_id_list"]) == 1
    assert "admin_audit_failure_reason" not in last["external_info"]
    times = [op["time"] for op in ops["operations"]]
    assert times == sorted(times)
    audit = client.get(api(f"/user/jobs/{job_id}/audit-result")).json()
    assert audit["admin_audit_result"]["message"] == "approved"

    clock.advance(3600)
    assert ms.state(job_id) is JobState.WAITING


def test_fail_review_flow_and_recommit(
    ms: LocalMetaStudio, client: httpx.Client, clock: StepClock
) -> None:
    failure = UNSIGNED_LETTER.model_copy(
        update={"attachment_name": "review.pdf", "attachment_url": "https://example.invalid/r"}
    )
    job_id = ms.seed_job(outcome="fail", failure=failure)
    assert client.post(api(f"/user/jobs/{job_id}"), json={}).status_code == 200
    clock.advance(10)
    assert ms.state(job_id) is JobState.AUDITING
    clock.advance(20)
    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert job["state"] == "AUDIT_FAILED"
    assert job["reject_times"] == 1

    audit = client.get(api(f"/user/jobs/{job_id}/audit-result")).json()
    assert audit["system_audit_result"]["errors"] == [
        {
            "audio_name": "audio_3.wav",
            "text_name": "text_3.txt",
            "error_code": "MSS.12000103",
            "error_message": "signal-to-noise ratio too low",
        }
    ]
    admin = audit["admin_audit_result"]
    assert admin["message"] == "The authorization letter is unsigned"
    assert admin["attachment_name"] == "review.pdf"
    assert admin["attachment_url"] == "https://example.invalid/r"
    assert admin["audit_time"] == job["lastupdate_time"]

    ops = client.get(api(f"/user/jobs/{job_id}/op-logs")).json()["operations"]
    assert [op["action"] for op in ops] == [
        "CREATE_JOB",
        "COMMIT_JOB",
        "SYSTEM_AUDIT_PASS",
        "AUDIT_NOT_PASS",
    ]
    rejection = ops[-1]
    assert rejection["operator"] == "ADMIN"
    reason = rejection["external_info"]["admin_audit_failure_reason"]
    assert reason == "The authorization letter is unsigned"

    # A job rejected in review may be submitted again: a new round, rejections remembered.
    assert client.post(api(f"/user/jobs/{job_id}"), json={}).status_code == 200
    assert ms.commit_count(job_id) == 2
    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert job["state"] == "SYSTEM_AUDITING"
    assert job["reject_times"] == 1
    assert actions(client, job_id)[-1] == ("COMMIT_JOB", "USER")
    clock.advance(30)
    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert job["state"] == "AUDIT_FAILED"
    assert job["reject_times"] == 2
    assert len(actions(client, job_id)) == 7

    # The data is fixed and uploaded again; this round passes.
    ms.set_outcome(job_id, "pass")
    assert client.post(api(f"/user/jobs/{job_id}"), json={}).status_code == 200
    clock.advance(30)
    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert (job["state"], job["reject_times"]) == ("WAITING", 2)
    assert actions(client, job_id)[-1] == ("ADMIN_AUDIT_PASS", "ADMIN")


def test_system_stage_failure(ms: LocalMetaStudio, client: httpx.Client, clock: StepClock) -> None:
    failure = AuditFailure(stage="system", errors=(SNR_ERROR,))
    job_id = ms.seed_job(outcome="fail", failure=failure)
    client.post(api(f"/user/jobs/{job_id}"), json={})
    clock.advance(10)
    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert job["state"] == "AUDIT_FAILED"
    assert job["reject_times"] == 1
    ops = client.get(api(f"/user/jobs/{job_id}/op-logs")).json()["operations"]
    assert (ops[-1]["action"], ops[-1]["operator"]) == ("AUDIT_NOT_PASS", "SYSTEM")
    assert "signal-to-noise" in ops[-1]["external_info"]["algorithm_failure_reason"]
    audit = client.get(api(f"/user/jobs/{job_id}/audit-result")).json()
    assert audit["system_audit_result"]["errors"][0]["error_code"] == "MSS.12000103"
    assert "admin_audit_result" not in audit


def test_training_reaches_succeed_with_asset(
    ms: LocalMetaStudio, client: httpx.Client, clock: StepClock
) -> None:
    ms.review = ReviewPlan(system_delay=1, admin_delay=1, wait_delay=5, train_delay=60)
    job_id = ms.seed_job()
    client.post(api(f"/user/jobs/{job_id}"), json={})
    clock.advance(2)
    assert ms.state(job_id) is JobState.WAITING
    clock.advance(5)
    assert ms.state(job_id) is JobState.PROCESSING
    clock.advance(60)
    job = client.get(api(f"/user/jobs/{job_id}")).json()
    assert job["state"] == "SUCCEED"
    assert len(job["asset_id"]) == 36
    assert actions(client, job_id)[-3:] == [
        ("TRAINING_FINISH", "SYSTEM"),
        ("UPLOADING_MODEL", "SYSTEM"),
        ("COMPLETE_JOB", "SYSTEM"),
    ]


def test_seeded_states(ms: LocalMetaStudio, client: httpx.Client, clock: StepClock) -> None:
    in_review = ms.seed_job(state=JobState.AUDITING, outcome="fail")
    rejected = ms.seed_job(state=JobState.AUDIT_FAILED)
    done = ms.seed_job(state=JobState.SUCCEED)
    failed = ms.seed_job(state=JobState.FAILED)
    assert ms.state(in_review) is JobState.AUDITING
    assert ms.commit_count(in_review) == 0
    clock.advance(20)
    assert ms.state(in_review) is JobState.AUDIT_FAILED
    job = ms.job(rejected)
    assert (job["state"], job["reject_times"]) == ("AUDIT_FAILED", 1)
    audit = client.get(api(f"/user/jobs/{rejected}/audit-result")).json()
    assert audit["admin_audit_result"]["message"] == "The authorization letter is unsigned"
    assert ms.job(done)["asset_id"]
    assert ms.job(failed)["job_failed_code"].startswith("MSS.")
    assert ms.job(failed)["job_failed_reason"]


def test_list_filters_and_paging(ms: LocalMetaStudio, client: httpx.Client) -> None:
    ids = [
        ms.seed_job(
            voice_name=f"voice_{i:02d}", tag="NEWS" if i % 3 == 0 else "LIVE", created_ago=100 - i
        )
        for i in range(15)
    ]
    waiting = ms.seed_job(state=JobState.WAITING, voice_name="done_voice", created_ago=500)
    creating = ms.seed_job(state=JobState.CREATING, voice_name="new_voice", created_ago=400)

    page = client.get(api("/user/jobs")).json()
    assert page["count"] == 17
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:10]
    created = [j["create_time"] for j in page["jobs"]]
    assert created == sorted(created, reverse=True)

    page = client.get(api("/user/jobs"), params={"offset": 10, "limit": 5}).json()
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][10:15]
    page = client.get(api("/user/jobs"), params={"offset": 16, "limit": 5}).json()
    assert [j["job_id"] for j in page["jobs"]] == [waiting]
    assert page["count"] == 17

    page = client.get(api("/user/jobs"), params={"state": "WAITING,CREATING"}).json()
    assert page["count"] == 2
    assert [j["job_id"] for j in page["jobs"]] == [creating, waiting]

    page = client.get(api("/user/jobs"), params={"tag": "NEWS", "limit": 100}).json()
    assert page["count"] == 5
    assert {j["tag"] for j in page["jobs"]} == {"NEWS"}

    page = client.get(api("/user/jobs"), params={"voice_name": "voice_07"}).json()
    assert [j["job_id"] for j in page["jobs"]] == [ids[7]]
    page = client.get(api("/user/jobs"), params={"job_id": ids[3]}).json()
    assert page["count"] == 1

    page = client.get(api("/user/jobs"), params={"sort_dir": "asc", "limit": 1}).json()
    assert page["jobs"][0]["job_id"] == waiting

    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}):
        assert error_of(client.get(api("/user/jobs"), params=params)) == (400, "MSS.00000003")
    bad_state = client.get(api("/user/jobs"), params={"state": "WAITING,NOPE"})
    assert error_of(bad_state) == (400, "MSS.00000003")
    assert bad_state.json()["error_msg"] == "Invalid parameter: state"
    assert error_of(client.get(api("/user/jobs"), params={"tag": "SPORTS"})) == (
        400,
        "MSS.00000003",
    )


def test_op_logs_paging(ms: LocalMetaStudio, client: httpx.Client, clock: StepClock) -> None:
    job_id = ms.seed_job()
    client.post(api(f"/user/jobs/{job_id}"), json={})
    clock.advance(30)
    page = client.get(api(f"/user/jobs/{job_id}/op-logs"), params={"offset": 1, "limit": 2})
    body = page.json()
    assert body["count"] == 4
    assert [op["action"] for op in body["operations"]] == ["COMMIT_JOB", "SYSTEM_AUDIT_PASS"]
    too_many = client.get(api(f"/user/jobs/{job_id}/op-logs"), params={"limit": 101})
    assert error_of(too_many) == (400, "MSS.00000003")


# handler errors ----------------------------------------------------------------------------


def test_commit_while_in_review_is_refused(
    ms: LocalMetaStudio, client: httpx.Client, clock: StepClock
) -> None:
    job_id = ms.seed_job()
    assert client.post(api(f"/user/jobs/{job_id}"), json={}).status_code == 200
    again = client.post(api(f"/user/jobs/{job_id}"), json={})
    assert error_of(again) == (400, "MSS.41000005")
    assert again.json()["error_msg"] == "task state does not allow this operation"
    clock.advance(30)
    after = client.post(api(f"/user/jobs/{job_id}"), json={})
    assert error_of(after) == (400, "MSS.41000005")
    assert ms.commit_count(job_id) == 1


def test_unknown_job_and_unknown_path(client: httpx.Client) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for response in (
        client.get(api(f"/user/jobs/{missing}")),
        client.post(api(f"/user/jobs/{missing}"), json={}),
        client.get(api(f"/user/jobs/{missing}/audit-result")),
        client.get(api(f"/user/jobs/{missing}/op-logs")),
    ):
        assert error_of(response) == (404, "MSS.41000003")
        assert "X-Request-Id" in response.headers
    assert error_of(client.get(api("/user/nothing-here"))) == (404, "MSS.00010003")
    assert error_of(client.get("/elsewhere")) == (404, "MSS.00010003")
    assert error_of(client.delete(api("/user/jobs"))) == (400, "MSS.00010004")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tag": "SPORTS"}, "tag"),
        ({"sex": "OTHER"}, "sex"),
        ({"language": "FR"}, "language"),
        ({"voice_name": 7}, "voice_name"),
    ],
)
def test_commit_with_bad_enum(
    ms: LocalMetaStudio, client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    job_id = ms.seed_job()
    response = client.post(api(f"/user/jobs/{job_id}"), json=body)
    assert error_of(response) == (400, "MSS.00000003")
    assert response.json()["error_msg"] == f"Invalid parameter: {field}"
    assert ms.commit_count(job_id) == 0


def test_commit_with_malformed_json(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    for content in (b"{not json", b"[1, 2]"):
        response = client.post(api(f"/user/jobs/{job_id}"), content=content)
        assert error_of(response) == (400, "MSS.10000002")
    assert ms.commit_count(job_id) == 0


def test_non_ascii_app_user_id(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    headers = {b"X-App-UserId": "用户一".encode()}
    response = client.post(api(f"/user/jobs/{job_id}"), json={}, headers=headers)
    assert error_of(response) == (400, "MSS.00000003")
    assert ms.commit_count(job_id) == 0
    ok = client.post(api(f"/user/jobs/{job_id}"), json={}, headers={"X-App-UserId": "U042"})
    assert ok.status_code == 200
    assert ms.job(job_id)["app_user_id"] == "U042"


# the gateway -------------------------------------------------------------------------------


def assert_auth_failure(response: httpx.Response, fragment: str = "") -> None:
    assert error_of(response) == (401, "APIG.0301")
    message = response.json()["error_msg"]
    assert message.startswith("Incorrect IAM authentication information")
    assert fragment in message
    assert SK not in message


def test_signature_accepted_and_tampering_rejected(ms: LocalMetaStudio, raw: httpx.Client) -> None:
    job_id = ms.seed_job()
    url = api(f"/user/jobs/{job_id}")
    assert raw.send(signed_request(raw, "GET", url)).status_code == 200

    assert_auth_failure(
        raw.send(signed_request(raw, "GET", url, sk=SK[:-1] + "X")), "canonicalRequest: GET|"
    )

    body = signed_request(raw, "POST", url, content=b'{"tag": "NEWS"}')
    tampered = httpx.Request("POST", body.url, headers=body.headers, content=b'{"tag": "LIVE"}')
    assert_auth_failure(raw.send(tampered), "verify aksk signature fail")

    header = signed_request(raw, "GET", url, headers={"X-App-UserId": "U1"})
    header.headers["X-App-UserId"] = "U2"
    assert_auth_failure(raw.send(header), "x-app-userid:U2")

    listing = signed_request(raw, "GET", api("/user/jobs") + "?limit=5")
    moved = httpx.Request("GET", listing.url.copy_with(query=b"limit=6"), headers=listing.headers)
    assert_auth_failure(raw.send(moved), "limit=6")

    stale = (datetime.now(UTC) - timedelta(minutes=16)).strftime("%Y%m%dT%H%M%SZ")
    old = signed_request(raw, "GET", url, headers={"X-Sdk-Date": stale})
    assert_auth_failure(raw.send(old), "calc ak sk signature fail:signature expired")
    recent = (datetime.now(UTC) - timedelta(minutes=14)).strftime("%Y%m%dT%H%M%SZ")
    assert raw.send(signed_request(raw, "GET", url, headers={"X-Sdk-Date": recent})).is_success

    assert_auth_failure(raw.get(url, headers={"X-Project-Id": PID}), "Authorization")

    garbled = signed_request(raw, "GET", url)
    garbled.headers["Authorization"] = "SDK-HMAC-SHA256 nonsense"
    assert_auth_failure(raw.send(garbled), "malformed")

    stranger = signed_request(raw, "GET", url)
    stranger.headers["Authorization"] = stranger.headers["Authorization"].replace(AK, "OTHERAK")
    assert_auth_failure(raw.send(stranger), "Get secretKey failed,ak:******,err:ak not exist")

    assert ms.stats()["rejected"]["APIG.0301"] == 8


def test_sdk_date_must_be_signed(ms: LocalMetaStudio, raw: httpx.Client) -> None:
    job_id = ms.seed_job()
    request = signed_request(raw, "GET", api(f"/user/jobs/{job_id}"))
    auth = request.headers["Authorization"].replace(";x-sdk-date", "")
    request.headers["Authorization"] = auth
    assert_auth_failure(raw.send(request), "x-sdk-date")


def test_more_than_five_failures_in_a_row_lock_the_key_even_for_good_signatures(
    ms: LocalMetaStudio, raw: httpx.Client
) -> None:
    ms._gateway.lock_seconds = 0.5
    job_id = ms.seed_job()
    url = api(f"/user/jobs/{job_id}")
    wrong = SK[:-1] + "X"
    for _ in range(4):
        assert_auth_failure(raw.send(signed_request(raw, "GET", url, sk=wrong)), "verify aksk")
    # A success ends the run of failures.
    assert raw.send(signed_request(raw, "GET", url)).status_code == 200
    for _ in range(5):
        assert_auth_failure(raw.send(signed_request(raw, "GET", url, sk=wrong)), "verify aksk")
    assert not ms.locked(AK)

    locking = "AK access failed to reach the limit,forbidden."
    assert_auth_failure(raw.send(signed_request(raw, "GET", url, sk=wrong)), locking)
    assert ms.locked(AK)
    assert_auth_failure(raw.send(signed_request(raw, "GET", url)), locking)
    assert ms.stats()["lockouts"] == 1

    time.sleep(0.6)
    assert raw.send(signed_request(raw, "GET", url)).status_code == 200
    assert not ms.locked(AK)


def test_the_older_gateway_code_and_a_rotated_key() -> None:
    older = LocalMetaStudio({AK: SK}, PID, auth_code="APIGW.0301")
    job_id = older.seed_job()
    url = api(f"/user/jobs/{job_id}")
    with ServerThread(older.app) as server, httpx.Client(base_url=server.url) as plain:
        assert plain.send(signed_request(plain, "GET", server.url + url)).status_code == 200
        rotated = SK[:-1] + "R"
        older.set_credentials({AK: rotated})
        refused = plain.send(signed_request(plain, "GET", server.url + url))
        assert error_of(refused) == (401, "APIGW.0301")
        assert "verify aksk signature fail" in refused.json()["error_msg"]
        fixed = plain.send(signed_request(plain, "GET", server.url + url, sk=rotated))
        assert fixed.status_code == 200


def test_project_id_checks(ms: LocalMetaStudio, raw: httpx.Client) -> None:
    job_id = ms.seed_job()
    url = api(f"/user/jobs/{job_id}")
    other = "f" * 32
    mismatch = signed_request(raw, "GET", url, headers={"X-Project-Id": other})
    response = raw.send(mismatch)
    assert error_of(response) == (400, "MSS.00010009")
    assert response.json()["error_msg"] == "urlTenantId is not equal tokenTenantId"

    foreign = signed_request(
        raw, "GET", api(f"/user/jobs/{job_id}", other), headers={"X-Project-Id": other}
    )
    assert error_of(raw.send(foreign)) == (400, "MSS.00010009")

    request = raw.build_request("GET", url, headers={"Content-Type": "application/json"})
    unsigned_project = next(AKSKAuth(AK, SK).sync_auth_flow(request))
    assert error_of(raw.send(unsigned_project)) == (400, "MSS.00010009")


def test_official_sdk_signer_is_accepted(
    ms: LocalMetaStudio, server: ServerThread, clock: StepClock
) -> None:
    job_id = ms.seed_job()
    signer = Signer(SimpleNamespace(ak=AK, sk=SK))
    body = json.dumps(
        {"tag": "CUSTOMER", "sex": "FEMALE", "voice_name": "sdk voice", "language": "CN"}
    ).encode()
    commit = SdkRequest(
        method="POST",
        schema="http",
        host=f"{server.host}:{server.port}",
        resource_path=api(f"/user/jobs/{job_id}"),
        query_params=[],
        header_params={
            "Content-Type": "application/json",
            "X-Project-Id": PID,
            "X-App-UserId": "U012ABCDEF",
            "X-Sdk-Date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        },
        body=body,
    )
    signer.sign(commit)
    assert "x-app-userid" in commit.header_params["Authorization"]
    with httpx.Client(base_url=server.url) as plain:
        response = plain.post(commit.uri, headers=commit.header_params, content=commit.body)
        assert response.status_code == 200, response.text
        assert ms.commit_count(job_id) == 1
        assert ms.job(job_id)["voice_name"] == "sdk voice"

        listing = SdkRequest(
            method="GET",
            schema="http",
            host=f"{server.host}:{server.port}",
            resource_path=api("/user/jobs"),
            query_params=[("state", "SYSTEM_AUDITING,AUDITING"), ("limit", 5), ("offset", 0)],
            header_params={
                "Content-Type": "application/json",
                "X-Project-Id": PID,
                "X-Sdk-Date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
            },
            body="",
        )
        signer.sign(listing)
        assert "%2C" in listing.uri
        response = plain.get(listing.uri, headers=listing.header_params)
        assert response.status_code == 200, response.text
        assert [j["job_id"] for j in response.json()["jobs"]] == [job_id]


def test_token_auth(ms: LocalMetaStudio, raw: httpx.Client) -> None:
    job_id = ms.seed_job()
    issued = raw.post("/v3/auth/tokens", json={"auth": {"identity": {"methods": ["password"]}}})
    assert issued.status_code == 201
    token = issued.headers["X-Subject-Token"]
    url = api(f"/user/jobs/{job_id}")
    assert raw.get(url, headers={"X-Auth-Token": token}).json()["job_id"] == job_id
    assert_auth_failure(raw.get(url, headers={"X-Auth-Token": "MIIforged"}), "token")
    mismatch = raw.get(url, headers={"X-Auth-Token": token, "X-Project-Id": "f" * 32})
    assert error_of(mismatch) == (400, "MSS.00010009")
    recorded = raw.get("/_sandbox/requests").json()["requests"]
    assert all(r["headers"].get("x-auth-token", "***") == "***" for r in recorded)
    assert all(r["body"] == "***" for r in recorded if r["path"] == "/v3/auth/tokens")


def test_token_refused_without_identity_service() -> None:
    ms = LocalMetaStudio({AK: SK}, PID)
    job_id = ms.seed_job()
    with ServerThread(ms.app) as server, httpx.Client(base_url=server.url) as plain:
        response = plain.get(api(f"/user/jobs/{job_id}"), headers={"X-Auth-Token": "MIIany"})
        assert_auth_failure(response, "token")
        assert error_of(plain.post("/v3/auth/tokens", json={})) == (404, "MSS.00010003")


# faults ------------------------------------------------------------------------------------


def test_injected_server_error(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(error_rate=1.0)
    response = client.post(api(f"/user/jobs/{job_id}"), json={})
    assert error_of(response) == (500, "MSS.000000002")
    assert response.json()["error_msg"] == "internal error"
    assert "X-Request-Id" in response.headers
    assert ms.commit_count(job_id) == 0
    assert ms.stats()["faults"]["error"] == 1


def test_injected_throttle(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(throttle_rate=1.0)
    response = client.get(api(f"/user/jobs/{job_id}"))
    assert error_of(response) == (429, "APIGW.0308")
    assert response.headers["Retry-After"] == "1"
    assert ms.stats()["faults"]["throttle"] == 1


def test_injected_latency(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(latency=0.3)
    started = time.perf_counter()
    assert client.get(api(f"/user/jobs/{job_id}")).status_code == 200
    assert time.perf_counter() - started >= 0.3
    assert ms.stats()["faults"]["latency"] == 1


def test_lost_reply_still_applies_the_commit(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(lost_reply_rate=1.0)
    response = client.post(api(f"/user/jobs/{job_id}"), json={})
    assert response.status_code == 502
    assert response.json() == {"error_code": "APIGW.0202", "error_msg": "Bad gateway"}
    assert ms.commit_count(job_id) == 1
    assert ms.state(job_id) is JobState.SYSTEM_AUDITING

    ms.faults = FaultConfig()
    retried = client.post(api(f"/user/jobs/{job_id}"), json={})
    assert error_of(retried) == (400, "MSS.41000005")
    commits = [r for r in ms.requests if r.method == "POST" and r.path.endswith(job_id)]
    assert [(r.status, r.fault) for r in commits] == [(502, "lost_reply"), (400, None)]
    assert ms.commit_count(job_id) == 1


def test_lost_reply_timeout_mode(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(lost_reply_rate=1.0, lost_reply_mode="timeout", lost_reply_delay=5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(api(f"/user/jobs/{job_id}"), json={}, timeout=0.3)
    assert ms.commit_count(job_id) == 1


def test_fault_method_filter_and_exemptions(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    ms.faults = FaultConfig(error_rate=1.0, methods=frozenset({"post"}))
    assert client.get(api(f"/user/jobs/{job_id}")).status_code == 200
    assert client.post(api(f"/user/jobs/{job_id}"), json={}).status_code == 500
    ms.faults = FaultConfig(error_rate=1.0)
    assert client.get("/_sandbox/stats").status_code == 200
    assert client.post("/v3/auth/tokens", json={}).status_code == 201
    assert ms.stats()["faults"]["error"] == 1


def test_faults_are_reproducible_by_seed(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    runs = []
    for _ in range(2):
        ms.faults = FaultConfig(error_rate=0.3, throttle_rate=0.2, seed=7)
        runs.append([client.get(api(f"/user/jobs/{job_id}")).status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert {200, 429, 500} <= set(runs[0])


# admin endpoints, recording, scale ---------------------------------------------------------


def test_admin_endpoints(ms: LocalMetaStudio, raw: httpx.Client, client: httpx.Client) -> None:
    seeded = raw.post(
        "/_sandbox/jobs",
        json={
            "voice_name": "seeded_over_http",
            "outcome": "fail",
            "failure": {"stage": "admin", "admin_message": "The authorization letter is unsigned"},
        },
    )
    assert seeded.status_code == 201
    job_id = seeded.json()["job_id"]
    assert raw.get(f"/_sandbox/jobs/{job_id}").json()["voice_name"] == "seeded_over_http"
    assert raw.post("/_sandbox/jobs", json={"job_id": job_id}).status_code == 409
    assert raw.post("/_sandbox/jobs", json={"state": "NOPE"}).status_code == 400
    assert raw.get(f"/_sandbox/jobs/{job_id}/commits").json() == {"count": 0}
    assert raw.get("/_sandbox/jobs/no-such-job").status_code == 404
    outcome = raw.put(f"/_sandbox/jobs/{job_id}/outcome", json={"outcome": "fail"})
    assert outcome.json() == {"outcome": "fail"}

    mark = raw.get("/_sandbox/requests").json()["next"]
    client.post(api(f"/user/jobs/{job_id}"), json={"voice_name": "v"})
    assert raw.get(f"/_sandbox/jobs/{job_id}/commits").json() == {"count": 1}
    recorded = raw.get("/_sandbox/requests", params={"since": mark}).json()
    assert [(r["method"], r["status"]) for r in recorded["requests"]] == [("POST", 200)]
    assert json.loads(recorded["requests"][0]["body"]) == {"voice_name": "v"}
    assert recorded["next"] == mark + 1

    review = raw.put("/_sandbox/review", json={"system_delay": 1, "admin_delay": 2})
    assert review.json()["admin_delay"] == 2
    assert ms.review.system_delay == 1
    assert raw.post("/_sandbox/clock/advance", json={"seconds": 30}).status_code == 200
    assert ms.state(job_id) is JobState.AUDIT_FAILED

    faults = raw.put("/_sandbox/faults", json={"throttle_rate": 1.0, "methods": ["GET"]})
    assert faults.json()["methods"] == ["GET"]
    assert ms.faults.throttle_rate == 1.0
    assert raw.put("/_sandbox/faults", json={"error_rate": 2}).status_code == 400
    assert client.get(api(f"/user/jobs/{job_id}")).status_code == 429
    assert raw.put("/_sandbox/faults", json={}).json()["throttle_rate"] == 0.0

    stats = raw.get("/_sandbox/stats").json()
    assert stats["jobs"] == 1
    assert stats["commits"] == 1
    assert stats["states"] == {"AUDIT_FAILED": 1}
    assert stats["faults"]["throttle"] == 1
    assert stats["requests"] == len(ms.requests) == 2


def test_exactly_one_post_reaches_commit(ms: LocalMetaStudio, client: httpx.Client) -> None:
    job_id = ms.seed_job()
    client.get(api(f"/user/jobs/{job_id}"))
    client.post(api(f"/user/jobs/{job_id}"), json={"tag": "NEWS"})
    client.get(api(f"/user/jobs/{job_id}/op-logs"))
    posts = [r for r in ms.requests if r.method == "POST" and r.path == api(f"/user/jobs/{job_id}")]
    assert len(posts) == 1
    assert posts[0].status == 200
    assert json.loads(posts[0].body) == {"tag": "NEWS"}
    assert posts[0].header("x-project-id") == PID
    assert "Signature=" not in repr(posts[0])


def test_ten_thousand_jobs_in_review_cost_nothing(
    ms: LocalMetaStudio, client: httpx.Client, clock: StepClock
) -> None:
    # Bounds are generous: they catch per-job timers or O(n) reads, not machine load.
    started = time.perf_counter()
    ids = [ms.seed_job(state=JobState.SYSTEM_AUDITING) for _ in range(10_000)]
    clock.advance(10)
    assert all(ms.state(job_id) is JobState.AUDITING for job_id in ids)
    assert time.perf_counter() - started < 5.0
    assert ms.stats()["states"] == {"AUDITING": 10_000}
    page = client.get(api("/user/jobs"), params={"state": "AUDITING", "limit": 1}).json()
    assert page["count"] == 10_000
    for job_id in ids[::1000]:
        assert client.get(api(f"/user/jobs/{job_id}")).json()["state"] == "AUDITING"


def test_demo_seed_file(ms: LocalMetaStudio, client: httpx.Client, clock: StepClock) -> None:
    ids = ms.load_seed(SEED_FILE)
    assert len(ids) >= 4
    assert ms.review.train_delay is not None
    failing = next(i for i in ids if ms.job(i)["voice_name"] == "news_anchor_m_02")
    assert client.post(api(f"/user/jobs/{failing}"), json={}).status_code == 200
    clock.advance(ms.review.system_delay + ms.review.admin_delay)
    audit = client.get(api(f"/user/jobs/{failing}/audit-result")).json()
    assert audit["admin_audit_result"]["message"] == "The authorization letter is unsigned"
    codes = [e["error_code"] for e in audit["system_audit_result"]["errors"]]
    assert "MSS.12000103" in codes


# Field names of huaweicloudsdkmetastudio 3.1.219's models (their ``openapi_types``).
SDK_JOB_FIELDS = frozenset(
    {
        "job_type",
        "job_id",
        "app_user_id",
        "voice_name",
        "sex",
        "language",
        "state",
        "reject_times",
        "asset_id",
        "job_failed_code",
        "job_failed_reason",
        "create_time",
        "lastupdate_time",
        "voice_authorization_url",
        "training_input_source_url",
        "create_type",
        "tag",
        "phone",
        "dhtms_job_id",
        "batch_name",
        "allocated_resource",
        "output_language",
        "is_remake",
        "assess_result",
        "is_ondemand_resource",
    }
)
SDK_ASSESS_RESULT = frozenset(
    {"speed", "sound", "snr", "reverb", "dnsmos_ovrl", "dnsmos_bak", "suggestion"}
)
SDK_ASSESS_PROPERTY = frozenset({"expected", "actual", "suggestion", "suggestion_en", "status"})
SDK_ALLOCATED = frozenset({"resource_id", "charge_mode", "expire_time"})
SDK_QUOTAS = frozenset({"count", "resource_available_nums", "resources"})
SDK_AVAILABLE = frozenset(
    {"flexus", "basic", "middle", "middle_on_demand", "advance", "third_party_cmww"}
)
SDK_RESOURCE = frozenset(
    {
        "operation_type",
        "resource_source",
        "asset_id",
        "resource_id",
        "resource_nums",
        "resource_available_nums",
        "resource_type",
        "charge_mode",
        "expire_time",
        "status",
    }
)


def test_job_detail_and_quotas_use_the_sdk_names(ms: LocalMetaStudio, client: httpx.Client) -> None:
    ms.quotas = Quotas(basic=3, advance=0)
    noisy = ms.seed_job(
        assess_out_of_range=("snr", "reverb"),
        authorization=False,
        reject_times_before=2,
        allocated=True,
    )
    detail = client.get(api(f"/user/jobs/{noisy}")).json()
    # ``description`` is a commit field the stand-in echoes; the SDK's detail lacks it.
    assert set(detail) - {"description"} <= SDK_JOB_FIELDS
    assess = detail["assess_result"]
    assert set(assess) == SDK_ASSESS_RESULT
    for check in SDK_ASSESS_RESULT - {"suggestion"}:
        assert set(assess[check]) == SDK_ASSESS_PROPERTY
    failing = {name for name in SDK_ASSESS_RESULT - {"suggestion"} if assess[name]["status"]}
    assert failing == {"snr", "reverb"}
    assert assess["snr"]["suggestion_en"]
    assert "voice_authorization_url" not in detail
    assert detail["reject_times"] == 2
    assert set(detail["allocated_resource"]) == SDK_ALLOCATED

    clean = client.get(api(f"/user/jobs/{ms.seed_job()}")).json()
    assert clean["voice_authorization_url"].startswith("https://")
    assert "allocated_resource" not in clean
    assert not any(clean["assess_result"][n]["status"] for n in SDK_ASSESS_RESULT - {"suggestion"})

    quotas = client.get(api("/quotas")).json()
    assert set(quotas) == SDK_QUOTAS
    assert set(quotas["resource_available_nums"]) == SDK_AVAILABLE
    assert quotas["resource_available_nums"]["basic"] == 3
    assert quotas["resource_available_nums"]["advance"] == 0
    assert all(set(r) <= SDK_RESOURCE for r in quotas["resources"])
    assert [r["resource_type"] for r in quotas["resources"]] == ["BASIC", "MIDDLE"]


def test_seed_file_covers_the_card_demos(ms: LocalMetaStudio, client: httpx.Client) -> None:
    ids = ms.load_seed(SEED_FILE)
    jobs = [client.get(api(f"/user/jobs/{i}")).json() for i in ids]
    left = client.get(api("/quotas")).json()["resource_available_nums"]

    def failing(job: dict[str, Any]) -> set[str]:
        return {k for k, v in job["assess_result"].items() if isinstance(v, dict) and v["status"]}

    assert any(
        not failing(j) and "voice_authorization_url" in j and not j["reject_times"] for j in jobs
    ), "a clean job"
    assert any(failing(j) == {"snr", "reverb"} for j in jobs)
    assert any("voice_authorization_url" not in j for j in jobs)
    assert any(j["reject_times"] == 2 for j in jobs)
    assert any(left[j["job_type"].lower()] == 0 and "allocated_resource" not in j for j in jobs)
