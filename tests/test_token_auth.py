"""IAM token auth: a token is obtained once, reused, renewed before expiry and after a
revocation, refreshed by one coroutine at a time, and a wrong password is a clear error.

Everything goes over real HTTP: the local IAM and an endpoint that accepts a request only
when its X-Auth-Token is one the IAM issued and has not expired.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.metastudio.token import IAMAuthError, TokenAuth
from sandbox.iam import WRONG_CREDENTIALS, IAMUser, LocalIAM, project_id_for
from sandbox.metastudio import LocalMetaStudio
from sandbox.serve import ServerThread
from tests.conftest import free_port

USER, PASSWORD, DOMAIN, REGION = "voicebot", "correct horse battery staple", "acme", "cn-north-4"
DAY = 86400.0
START = 1_750_000_000.0


@dataclass
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Sandbox:
    url: str
    iam: LocalIAM
    clock: Clock
    seen_tokens: list[str] = field(default_factory=list)
    seen_headers: list[dict[str, str]] = field(default_factory=list)

    def auth(self, password: str | SecretStr = PASSWORD) -> TokenAuth:
        return TokenAuth(self.url, USER, password, DOMAIN, REGION, clock=self.clock)


def _build_app(box: Sandbox) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        box.seen_headers.append(dict(request.headers))
        token = request.headers.get("x-auth-token", "")
        box.seen_tokens.append(token)
        if not box.iam.validate(token):
            return JSONResponse(
                {
                    "error_code": "APIGW.0301",
                    "error_msg": "Incorrect IAM authentication information: token invalid, "
                    "The token must be updated",
                },
                status_code=401,
            )
        return JSONResponse({"ok": True})

    async def deny(request: Request) -> JSONResponse:
        box.seen_tokens.append(request.headers.get("x-auth-token", ""))
        body = {"error_code": "APIGW.0307", "error_msg": "The token must be updated"}
        return JSONResponse(body, status_code=401)

    async def forbidden(request: Request) -> JSONResponse:
        box.seen_tokens.append(request.headers.get("x-auth-token", ""))
        body = {"error_code": "MSS.00010009", "error_msg": "urlTenantId is not equal tokenTenantId"}
        return JSONResponse(body, status_code=401)

    routes = [
        *box.iam.routes,
        Route("/echo", echo, methods=["GET", "POST"]),
        Route("/deny", deny),
        Route("/forbidden", forbidden),
    ]
    return Starlette(routes=routes)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    clock = Clock()
    iam = LocalIAM(users=[IAMUser(USER, PASSWORD, DOMAIN)], token_ttl=DAY, clock=clock)
    box = Sandbox(url="", iam=iam, clock=clock)
    with ServerThread(_build_app(box)) as server:
        box.url = server.url
        yield box


async def _get(client: httpx.AsyncClient, path: str = "/echo") -> httpx.Response:
    return await client.get(path)


async def test_token_is_obtained_once_and_sent_as_x_auth_token(sandbox: Sandbox) -> None:
    auth = sandbox.auth()
    async with httpx.AsyncClient(base_url=sandbox.url, auth=auth) as client:
        responses = [await _get(client) for _ in range(20)]
        responses.append(await client.post("/echo", json={"voice_name": "demo"}))

    assert [r.status_code for r in responses] == [200] * 21
    assert sandbox.iam.token_requests == 1
    assert len(set(sandbox.seen_tokens)) == 1
    assert sandbox.iam.validate(sandbox.seen_tokens[0])
    for headers in sandbox.seen_headers:
        assert "authorization" not in headers
        assert "x-sdk-date" not in headers


async def test_aksk_headers_already_on_the_request_are_dropped(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=sandbox.auth()) as client:
        response = await client.get(
            "/echo", headers={"Authorization": "SDK-HMAC-SHA256 stale", "X-Sdk-Date": "x"}
        )
    assert response.status_code == 200
    assert "authorization" not in sandbox.seen_headers[0]
    assert "x-sdk-date" not in sandbox.seen_headers[0]


async def test_token_is_renewed_in_its_last_hour_not_before(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=sandbox.auth()) as client:
        await _get(client)
        first = sandbox.seen_tokens[-1]

        sandbox.clock.now = START + DAY - 3600 - 1
        assert (await _get(client)).status_code == 200
        assert sandbox.iam.token_requests == 1
        assert sandbox.seen_tokens[-1] == first

        sandbox.clock.now = START + DAY - 3600 + 1
        assert (await _get(client)).status_code == 200
        assert sandbox.iam.token_requests == 2
        second = sandbox.seen_tokens[-1]
        assert second != first
        # The old token was still valid: the renewal happened before anything failed.
        assert sandbox.iam.validate(first)

        sandbox.clock.now += 2 * 3600
        assert (await _get(client)).status_code == 200
        assert sandbox.iam.token_requests == 2
        assert sandbox.seen_tokens[-1] == second


async def test_an_expired_token_is_never_sent(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=sandbox.auth()) as client:
        await _get(client)
        sandbox.clock.now = START + 3 * DAY
        response = await _get(client)
    assert response.status_code == 200
    assert sandbox.iam.token_requests == 2
    assert len(sandbox.seen_tokens) == 2  # no request went out with the expired token


async def test_concurrent_requests_share_one_token_request(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=sandbox.auth()) as client:
        responses = await asyncio.gather(*(_get(client) for _ in range(40)))
        assert {r.status_code for r in responses} == {200}
        assert sandbox.iam.token_requests == 1

        # At renewal time, one coroutine renews; the rest go on with the still-valid token.
        sandbox.clock.now = START + DAY - 60
        responses = await asyncio.gather(*(_get(client) for _ in range(40)))
        assert {r.status_code for r in responses} == {200}
        assert sandbox.iam.token_requests == 2

        # Once expired, everyone waits for the single renewal.
        sandbox.clock.now = START + 5 * DAY
        before = len(sandbox.seen_tokens)
        responses = await asyncio.gather(*(_get(client) for _ in range(40)))
        assert {r.status_code for r in responses} == {200}
        assert sandbox.iam.token_requests == 3
        assert len(set(sandbox.seen_tokens[before:])) == 1


async def test_revoked_token_is_renewed_and_the_request_retried_once(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=sandbox.auth()) as client:
        await _get(client)
        sandbox.iam.revoke_all()
        response = await _get(client)
    assert response.status_code == 200
    assert sandbox.iam.token_requests == 2
    assert len(sandbox.seen_tokens) == 3
    assert sandbox.seen_tokens[1] == sandbox.seen_tokens[0]
    assert sandbox.seen_tokens[2] != sandbox.seen_tokens[1]


async def test_a_token_refused_twice_is_not_retried_again(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=sandbox.auth()) as client:
        response = await _get(client, "/deny")
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIGW.0307"
    assert len(sandbox.seen_tokens) == 2
    assert sandbox.iam.token_requests == 2


async def test_other_401s_are_not_retried(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=sandbox.auth()) as client:
        response = await _get(client, "/forbidden")
    assert response.status_code == 401
    assert len(sandbox.seen_tokens) == 1
    assert sandbox.iam.token_requests == 1


async def test_wrong_password_is_a_clear_error_without_secrets(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # httpcore's own DEBUG trace prints raw response headers (X-Subject-Token included),
    # so deployments keep it above DEBUG; everything of ours and httpx's INFO is checked.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot")
    wrong = "not-the-password-42"
    auth = sandbox.auth(password=SecretStr(wrong))
    async with httpx.AsyncClient(base_url=sandbox.url, auth=auth) as client:
        with pytest.raises(IAMAuthError) as caught:
            await _get(client)

    error = caught.value
    assert error.status_code == 401
    assert WRONG_CREDENTIALS in str(error)
    assert USER in str(error)
    assert DOMAIN in str(error)
    assert "VOICEBOT_IAM_" in error.hint
    assert sandbox.seen_tokens == []  # the MetaStudio request was never sent
    revived = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own object)
    assert (str(revived), revived.status_code, revived.hint) == (
        str(error),
        401,
        error.hint,
    )
    for text in (str(error), repr(error), repr(auth), caplog.text):
        assert wrong not in text
        assert PASSWORD not in text


async def test_unreachable_iam_is_an_error_with_no_status() -> None:
    port = free_port()
    auth = TokenAuth(f"http://127.0.0.1:{port}", USER, PASSWORD, DOMAIN, REGION, timeout=2.0)
    async with httpx.AsyncClient(auth=auth) as client:
        with pytest.raises(IAMAuthError) as caught:
            await client.get(f"http://127.0.0.1:{port}/echo")
    assert caught.value.status_code is None
    assert "Try again" in caught.value.hint


async def test_password_and_token_stay_out_of_repr_and_logs(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # httpcore's own DEBUG trace prints raw response headers (X-Subject-Token included),
    # so deployments keep it above DEBUG; everything of ours and httpx's INFO is checked.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot")
    auth = sandbox.auth()
    async with httpx.AsyncClient(base_url=sandbox.url, auth=auth) as client:
        await _get(client)
        sandbox.iam.revoke_all()
        await _get(client)
    assert "obtained an IAM token" in caplog.text
    for text in (repr(auth), str(vars(auth)), caplog.text, repr(sandbox.iam)):
        assert PASSWORD not in text
        for token in sandbox.seen_tokens:
            assert token not in text


async def test_project_id_scope_and_invalidate(sandbox: Sandbox) -> None:
    auth = TokenAuth(
        sandbox.url,
        USER,
        PASSWORD,
        DOMAIN,
        project_id=project_id_for(REGION),
        clock=sandbox.clock,
    )
    async with httpx.AsyncClient(base_url=sandbox.url, auth=auth) as client:
        assert (await _get(client)).status_code == 200
        auth.invalidate()
        assert (await _get(client)).status_code == 200
    assert sandbox.iam.token_requests == 2


def test_exactly_one_project_scope_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TokenAuth("http://iam", USER, PASSWORD, DOMAIN)
    with pytest.raises(ValueError, match="exactly one"):
        TokenAuth("http://iam", USER, PASSWORD, DOMAIN, REGION, project_id="0" * 32)


def test_sync_client_is_refused_clearly(sandbox: Sandbox) -> None:
    with (
        httpx.Client(base_url=sandbox.url, auth=sandbox.auth()) as client,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        client.get("/echo")
    assert sandbox.seen_tokens == []


def _token_body(
    name: str = USER, password: str = PASSWORD, domain: str = DOMAIN, project: str = REGION
) -> dict[str, object]:
    user = {"name": name, "password": password, "domain": {"name": domain}}
    return {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": {"name": project}},
        }
    }


def test_local_iam_speaks_the_iam_token_api(sandbox: Sandbox) -> None:
    headers = {"Content-Type": "application/json;charset=utf8"}
    with httpx.Client(base_url=sandbox.url, headers=headers) as client:
        created = client.post("/v3/auth/tokens", json=_token_body())
        wrong_domain = client.post("/v3/auth/tokens", json=_token_body(domain="other"))
        wrong_user = client.post("/v3/auth/tokens", json=_token_body(name="mallory"))
        malformed = client.post("/v3/auth/tokens", content=b"{not json")

    assert created.status_code == 201
    token = created.headers["X-Subject-Token"]
    body = created.json()["token"]
    assert body["project"] == {
        "name": REGION,
        "id": project_id_for(REGION),
        "domain": body["project"]["domain"],
    }
    assert body["issued_at"] == "2025-06-15T15:06:40.000000Z"
    assert body["expires_at"] == "2025-06-16T15:06:40.000000Z"
    assert sandbox.iam.validate(token)
    assert not sandbox.iam.validate(token + "x")

    unauthorized = {"error": {"code": 401, "message": WRONG_CREDENTIALS, "title": "Unauthorized"}}
    assert (wrong_domain.status_code, wrong_domain.json()) == (401, unauthorized)
    assert (wrong_user.status_code, wrong_user.json()) == (401, unauthorized)
    assert "X-Subject-Token" not in wrong_user.headers
    assert malformed.status_code == 400

    sandbox.clock.now = START + DAY
    assert not sandbox.iam.validate(token)
    sandbox.clock.now = START
    assert sandbox.iam.validate(token)
    sandbox.iam.revoke_all()
    assert not sandbox.iam.validate(token)


def test_local_iam_with_a_project_table_rejects_unknown_projects() -> None:
    iam = LocalIAM(users=[IAMUser(USER, PASSWORD, DOMAIN)], projects={REGION: "f" * 32})
    with ServerThread(iam.app) as server:
        known = httpx.post(server.url + "/v3/auth/tokens", json=_token_body())
        unknown = httpx.post(server.url + "/v3/auth/tokens", json=_token_body(project="x"))
    assert known.status_code == 201
    assert known.json()["token"]["project"]["id"] == "f" * 32
    assert unknown.status_code == 400
    assert "IAMUser" in repr(IAMUser(USER, PASSWORD, DOMAIN))
    assert PASSWORD not in repr(IAMUser(USER, PASSWORD, DOMAIN))


async def test_token_auth_against_the_local_metastudio_gateway() -> None:
    """The local MetaStudio mounts the IAM and accepts its tokens instead of AK/SK."""
    clock = Clock()
    iam = LocalIAM(users=[IAMUser(USER, PASSWORD, DOMAIN)], clock=clock)
    project_id = project_id_for(REGION)
    metastudio = LocalMetaStudio(project_id=project_id, iam=iam, wall_clock=clock)
    job_id = metastudio.seed_job(voice_name="demo_voice_01")
    with ServerThread(metastudio.app) as server:
        auth = TokenAuth(server.url, USER, PASSWORD, DOMAIN, REGION, clock=clock)
        path = f"/v1/{project_id}/voice-training-manage/user/jobs/{job_id}"
        async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
            first = await client.get(path)
            iam.revoke_all()
            after_revocation = await client.get(path)
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            without_token = await anonymous.get(path)

    assert first.status_code == 200
    assert first.json()["voice_name"] == "demo_voice_01"
    assert after_revocation.status_code == 200
    assert iam.tokens_issued == 2
    assert without_token.status_code == 401
