"""A local IAM that issues password-scoped user tokens and says whether a token is valid.

It serves ``POST /v3/auth/tokens`` the way Huawei Cloud IAM does for the password method
(201, token in ``X-Subject-Token``, ``{"token": {"expires_at", "issued_at", "project", ...}}``;
401 for a wrong name, password or account), and the local MetaStudio asks ``validate`` about
each ``X-Auth-Token`` it receives. Tokens expire after ``token_ttl`` seconds of ``clock``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN_PATH = "/v3/auth/tokens"  # noqa: S105
WRONG_CREDENTIALS = "The username or password is wrong."


@dataclass(frozen=True, slots=True)
class IAMUser:
    name: str
    password: str
    domain: str

    def __repr__(self) -> str:
        return f"IAMUser(name={self.name!r}, domain={self.domain!r})"


@dataclass(frozen=True, slots=True)
class _Issued:
    user: str
    project_id: str
    expires_at: float


def project_id_for(name: str) -> str:
    """The 32-hex-digit id the local IAM gives a project it was not told about."""
    return hashlib.md5(name.encode("utf-8"), usedforsecurity=False).hexdigest()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, title: str, message: str) -> JSONResponse:
    body = {"error": {"code": status, "message": message, "title": title}}
    return JSONResponse(body, status_code=status)


class LocalIAM:
    """``LocalIAM(users=[IAMUser("bot", "pw", "acme")])``; mount ``.routes`` or serve ``.app``.

    ``projects`` maps project names to ids; with None every name is accepted and given the
    id ``project_id_for(name)``. ``clock`` returns wall-clock seconds.
    """

    def __init__(
        self,
        users: Iterable[IAMUser],
        *,
        projects: Mapping[str, str] | None = None,
        token_ttl: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._users = {(user.domain, user.name): user for user in users}
        self._projects = dict(projects) if projects is not None else None
        self._ttl = token_ttl
        self._clock = clock
        self._tokens: dict[str, _Issued] = {}
        # validate() is called from the MetaStudio app's thread, revoke_all() from tests.
        self._mutex = threading.Lock()
        self.token_requests = 0
        self.tokens_issued = 0
        # An account in arrears or frozen: IAM still issues tokens, the gateway refuses them.
        self.frozen = False
        self.routes = [Route(TOKEN_PATH, self._create_token, methods=["POST"])]
        self.app = Starlette(routes=self.routes)

    def __repr__(self) -> str:
        return f"LocalIAM(users={len(self._users)}, tokens={len(self._tokens)})"

    def validate(self, token: str) -> bool:
        if self.frozen:
            return False
        with self._mutex:
            issued = self._tokens.get(token)
        return issued is not None and self._clock() < issued.expires_at

    def revoke_all(self) -> None:
        with self._mutex:
            self._tokens.clear()

    def _project(self, scope: Mapping[str, Any]) -> tuple[str, str] | None:
        """(name, id) of the scoped project, or None if it is unknown."""
        name, project_id = scope.get("name"), scope.get("id")
        if self._projects is None:
            if isinstance(name, str) and name:
                return name, project_id_for(name)
            if isinstance(project_id, str) and project_id:
                return project_id, project_id
            return None
        for known_name, known_id in self._projects.items():
            if name == known_name or project_id == known_id:
                return known_name, known_id
        return None

    async def _create_token(self, request: Request) -> JSONResponse:
        self.token_requests += 1
        try:
            auth = json.loads(await request.body())["auth"]
            identity = auth["identity"]
            user = identity["password"]["user"]
            name, password = str(user["name"]), str(user["password"])
            domain = str(user["domain"]["name"])
            scope = auth["scope"]["project"]
            if "password" not in identity["methods"] or not isinstance(scope, dict):
                raise ValueError("password method and project scope required")
        except (ValueError, KeyError, TypeError):
            return _error(400, "Bad Request", "The request body is malformed.")

        known = self._users.get((domain, name))
        given, expected = password.encode("utf-8"), (known.password if known else "").encode()
        if known is None or not hmac.compare_digest(given, expected):
            return _error(401, "Unauthorized", WRONG_CREDENTIALS)
        project = self._project(scope)
        if project is None:
            return _error(400, "Bad Request", "The project in the scope does not exist.")

        now = self._clock()
        token = "MIIT" + secrets.token_urlsafe(48)
        with self._mutex:
            self._tokens[token] = _Issued(name, project[1], now + self._ttl)
            self.tokens_issued += 1
        body = {
            "token": {
                "methods": ["password"],
                "issued_at": _iso(now),
                "expires_at": _iso(now + self._ttl),
                "project": {
                    "name": project[0],
                    "id": project[1],
                    "domain": {"name": domain, "id": project_id_for("domain:" + domain)},
                },
                "user": {
                    "name": name,
                    "id": project_id_for("user:" + domain + ":" + name),
                    "domain": {"name": domain, "id": project_id_for("domain:" + domain)},
                },
            }
        }
        return JSONResponse(body, status_code=201, headers={"X-Subject-Token": token})


__all__ = ["TOKEN_PATH", "WRONG_CREDENTIALS", "IAMUser", "LocalIAM", "project_id_for"]
