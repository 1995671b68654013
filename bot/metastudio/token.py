"""IAM token auth for MetaStudio: obtain an IAM user token, cache it, renew it before expiry.

``TokenAuth`` is an ``httpx.Auth`` for ``httpx.AsyncClient``. It asks IAM for a token
(``POST {iam}/v3/auth/tokens`` with the user's password, scoped to one project), sends it
as ``X-Auth-Token``, and keeps it until it nears expiry. A token lasts 24 h; it is renewed
once less than ``refresh_before`` (1 h) of it remains, and at once when MetaStudio answers
401 "The token must be updated" (revoked early, e.g. after a password change), after which
the request is sent once more. One coroutine renews while the others keep using the old
token if it is still valid, or wait for the new one if it is not.

Neither the password nor a token ever appears in a log line, a repr or an error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from bot.i18n import N_
from bot.metastudio.errors import (
    AUTH_CODES,
    IAM,
    TOKEN,
    MetaStudioError,
    credentials_hint_en,
    credentials_kind,
)

logger = logging.getLogger("bot.metastudio.token")

TOKEN_PATH = "/v3/auth/tokens"  # noqa: S105
SUBJECT_TOKEN_HEADER = "X-Subject-Token"  # noqa: S105
AUTH_TOKEN_HEADER = "X-Auth-Token"  # noqa: S105
IAM_CONTENT_TYPE = "application/json;charset=utf8"
# Real APIG says "decrypt token fail", "token expires, ..." or "x-auth-token not found"
# under APIG.0301 / APIGW.0301 (older pages: "The token must be updated", APIGW.0307).
TOKEN_REJECTED_CODES = frozenset({"APIGW.0307", "MSS.00010008"})
TOKEN_REJECTED_TEXT = "token must be updated"  # noqa: S105
# AK/SK headers make no sense next to a token, and a stale Authorization would confuse the
# gateway about which scheme to check.
_AKSK_HEADERS = ("Authorization", "X-Sdk-Date")
_MAX_IAM_MESSAGE = 200


class IAMAuthError(MetaStudioError):
    """IAM issued no token: the credentials or project were refused, or IAM did not answer.

    The MetaStudio request the token was for was not sent. ``status_code`` is IAM's HTTP
    status, or None when IAM could not be reached.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        if status_code is not None and 400 <= status_code < 500:
            self.hint_en = credentials_hint_en(IAM)
        else:
            self.hint_en = N_("The IAM service did not answer. Try again in a few minutes.")

    def __reduce__(self) -> tuple[Any, ...]:
        state = {"status_code": self.status_code, "hint_en": self.hint_en}
        return (type(self), (self.message,), state)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: float
    expires_at: float

    def __repr__(self) -> str:
        return f"_Token(renew_at={self.renew_at}, expires_at={self.expires_at})"


class TokenAuth(httpx.Auth):
    """``httpx.AsyncClient(auth=TokenAuth(iam, user, password, domain, "cn-north-4"))``.

    ``project_name`` (for Huawei Cloud, the region name) or ``project_id`` scopes the token;
    give exactly one. ``clock`` returns wall-clock seconds (tests advance it); ``transport``
    is used for the calls to IAM.
    """

    def __init__(
        self,
        iam_endpoint: str,
        user_name: str,
        password: SecretStr | str,
        domain_name: str,
        project_name: str | None = None,
        *,
        project_id: str | None = None,
        refresh_before: float = 3600.0,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (project_name is None) == (project_id is None):
            raise ValueError("give exactly one of project_name and project_id")
        self._url = iam_endpoint.rstrip("/") + TOKEN_PATH
        self._user = user_name
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        self._domain = domain_name
        self._project: dict[str, str] = (
            {"id": project_id} if project_id is not None else {"name": str(project_name)}
        )
        self._refresh_before = refresh_before
        self._timeout = timeout
        self._transport = transport
        self._clock = clock
        self._token: _Token | None = None
        # asyncio.Lock binds to the loop it first waits on; a lock per loop lets one
        # TokenAuth serve, e.g., a worker and a test that each run their own loop.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        project = ", ".join(f"project_{key}={value!r}" for key, value in self._project.items())
        return (
            f"TokenAuth(iam={self._url!r}, user={self._user!r}, domain={self._domain!r}, {project})"
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("TokenAuth needs httpx.AsyncClient; it renews tokens with asyncio")
        yield request  # pragma: no cover  (makes this a generator, as httpx expects)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        # A retry sends the same request again, so a streamed body must be buffered now.
        await request.aread()
        _apply(request, token)
        response = yield request
        if response.status_code == 401:
            await response.aread()
        if _token_rejected(response):
            logger.info("metastudio refused the IAM token; renewing it and retrying once")
            _apply(request, await self.token(rejected=token))
            yield request

    async def token(self, *, rejected: str | None = None) -> str:
        """A valid token, from the cache or from IAM; ``rejected`` is one not to reuse."""
        cached = self._token
        if cached is not None and cached.value != rejected:
            now = self._clock()
            if now < cached.renew_at:
                return cached.value
            if now < cached.expires_at and self._lock().locked():
                # Someone is already renewing; the current token still works meanwhile.
                return cached.value
        async with self._lock():
            cached = self._token
            if cached is not None and cached.value != rejected and self._clock() < cached.renew_at:
                return cached.value
            self._token = await self._issue()
            return self._token.value

    def invalidate(self) -> None:
        """Forget the cached token, so the next request asks IAM for a new one."""
        self._token = None

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _request_body(self) -> bytes:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self._user,
                            "password": self._password.get_secret_value(),
                            "domain": {"name": self._domain},
                        }
                    },
                },
                "scope": {"project": self._project},
            }
        }
        return json.dumps(body).encode("utf-8")

    async def _issue(self) -> _Token:
        requested_at = self._clock()
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as iam:
                response = await iam.post(
                    self._url,
                    params={"nocatalog": "true"},
                    content=self._request_body(),
                    headers={"Content-Type": IAM_CONTENT_TYPE},
                )
        except httpx.HTTPError as error:
            raise IAMAuthError(
                f"Could not reach IAM at {self._url} to get a token ({type(error).__name__})."
            ) from None
        if response.status_code not in (200, 201):
            raise IAMAuthError(
                f"IAM refused a token for user {self._user!r} in account {self._domain!r}: "
                f"{_iam_message(response)} (HTTP {response.status_code})",
                status_code=response.status_code,
            )
        value = response.headers.get(SUBJECT_TOKEN_HEADER)
        if not value:
            raise IAMAuthError(
                f"IAM answered HTTP {response.status_code} without an {SUBJECT_TOKEN_HEADER} "
                "header.",
                status_code=response.status_code,
            )
        lifetime = _lifetime(response, requested_at)
        if lifetime is None:
            raise IAMAuthError(
                "IAM's token answer has no usable token.expires_at.",
                status_code=response.status_code,
            )
        expires_at = requested_at + lifetime
        # A short-lived token would otherwise be "due for renewal" from the moment it is issued.
        margin = min(self._refresh_before, lifetime / 2)
        logger.info(
            "obtained an IAM token for user %s (project %s), valid for %.0f s",
            self._user,
            next(iter(self._project.values())),
            lifetime,
        )
        return _Token(value=value, renew_at=expires_at - margin, expires_at=expires_at)


def _apply(request: httpx.Request, token: str) -> None:
    for name in _AKSK_HEADERS:
        if name in request.headers:
            del request.headers[name]
    request.headers[AUTH_TOKEN_HEADER] = token


def _token_rejected(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    try:
        body = response.json()
    except ValueError:
        return TOKEN_REJECTED_TEXT in response.text.lower()
    if not isinstance(body, dict):
        return False
    if body.get("error_code") in TOKEN_REJECTED_CODES:
        return True
    message = str(body.get("error_msg", ""))
    if body.get("error_code") in AUTH_CODES and credentials_kind(message) == TOKEN:
        return True
    return TOKEN_REJECTED_TEXT in message.lower()


def _lifetime(response: httpx.Response, requested_at: float) -> float | None:
    """Seconds the token lives. Measured on IAM's own clock (expires_at - issued_at) when it
    says when it issued the token, so local clock skew cannot make a fresh token look
    expired or an old one look fresh."""
    try:
        token = response.json()["token"]
        expires_at = _parse_time(token["expires_at"])
        issued_at = _parse_time(token["issued_at"]) if "issued_at" in token else None
    except (ValueError, KeyError, TypeError):
        return None
    if issued_at is None:
        lifetime = expires_at.timestamp() - requested_at
    else:
        lifetime = (expires_at - issued_at).total_seconds()
    return lifetime if lifetime > 0 else None


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _iam_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        message = response.reason_phrase or "no reason given"
    return message[:_MAX_IAM_MESSAGE]


__all__ = ["IAMAuthError", "TokenAuth"]
