"""The local MetaStudio: voice-training routes, admin routes, and the object tests drive.

``LocalMetaStudio`` owns the job store, the gateway, fault injection and the request
record, and builds the Starlette app that serves them (run it with ``ServerThread``).
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.metastudio.models import JobState
from sandbox.metastudio import errors
from sandbox.metastudio.edge import Edge, RecordedRequest, Recorder
from sandbox.metastudio.faults import FaultConfig, FaultInjector
from sandbox.metastudio.gateway import LOCK_SECONDS, Gateway, TokenValidator
from sandbox.metastudio.store import (
    COMMIT_FIELDS,
    ENUM_FIELDS,
    AuditFailure,
    JobStore,
    ListQuery,
    Outcome,
    ReviewPlan,
)

# Fixed credentials for local runs only; they open nothing but this sandbox.
LOCAL_AK = "LOCALSANDBOXAK0000000"
LOCAL_SK = "LocalSandboxSecretKey000000000000000000"
LOCAL_PROJECT_ID = "0123456789abcdef0123456789abcdef"

API = "/v1/{project_id}/voice-training-manage"


class IdentityProvider(TokenValidator, Protocol):
    """A local IAM: serves its own routes and says whether a token it issued is valid."""

    @property
    def routes(self) -> Sequence[BaseRoute]: ...


class SeedJob(BaseModel):
    """``seed_job`` keyword arguments, as accepted by ``POST /_sandbox/jobs`` and seed files."""

    model_config = ConfigDict(extra="forbid")

    job_id: str | None = None
    state: JobState = JobState.UPLOADING
    voice_name: str = "demo"
    outcome: Outcome = "pass"
    failure: AuditFailure | None = None
    app_user_id: str | None = None
    sex: str = "FEMALE"
    language: str = "CN"
    tag: str | None = None
    job_type: str = "BASIC"
    batch_name: str | None = None
    created_ago: float = 0.0

    @field_validator("state")
    @classmethod
    def _documented(cls, value: JobState) -> JobState:
        # The model accepts any name (a newer API's); a seed must name a documented state.
        if not value.known:
            raise ValueError(f"unknown state {value.value!r}")
        return value

    def kwargs(self) -> dict[str, Any]:
        return {name: value for name, value in self if value is not None}


class SeedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review: ReviewPlan | None = None
    jobs: list[SeedJob] = []


class _OutcomeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    failure: AuditFailure | None = None


class _ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float


def _error_response(error: errors.ApiError) -> JSONResponse:
    return JSONResponse(error.body(), error.status, headers=error.headers)


def _admin_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": "SANDBOX.BAD_REQUEST", "error_msg": message}, status)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid_parameter(name) from None
    if not low <= value <= high:
        raise errors.invalid_parameter(name)
    return value


def _app_user_id(request: Request) -> str | None:
    value = request.headers.get("x-app-userid")
    if value is not None and not value.isascii():
        raise errors.invalid_parameter("X-App-UserId")
    return value


def _commit_body(request: Request, raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise errors.bad_json()
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.bad_json() from None
    if not isinstance(body, dict):
        raise errors.bad_json()
    for name in COMMIT_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise errors.invalid_parameter(name)
        if name in ENUM_FIELDS and value not in ENUM_FIELDS[name]:
            raise errors.invalid_parameter(name)
    return body


def _list_query(request: Request, store: JobStore) -> ListQuery:
    params = request.query_params
    states: frozenset[JobState] | None = None
    if params.get("state"):
        names = [s.strip() for s in params["state"].split(",") if s.strip()]
        if not all(store.knows_state(name) for name in names):
            raise errors.invalid_parameter("state")
        states = frozenset(JobState(name) for name in names)
    tag = params.get("tag") or None
    if tag is not None and tag not in ENUM_FIELDS["tag"]:
        raise errors.invalid_parameter("tag")
    sort_key = params.get("sort_key") or "create_time"
    sort_dir = params.get("sort_dir") or "desc"
    if sort_key not in ("create_time", "update_time"):
        raise errors.invalid_parameter("sort_key")
    if sort_dir not in ("asc", "desc"):
        raise errors.invalid_parameter("sort_dir")
    return ListQuery(
        offset=_int_param(request, "offset", 0, 0, 2_147_483_647),
        limit=_int_param(request, "limit", 10, 1, 100),
        states=states,
        job_id=params.get("job_id") or None,
        voice_name=params.get("voice_name") or None,
        tag=tag,
        job_type=params.get("job_type") or None,
        batch_name=params.get("batch_name") or None,
        sort_key=sort_key,  # type: ignore[arg-type]
        sort_dir=sort_dir,  # type: ignore[arg-type]
    )


class LocalMetaStudio:
    """A MetaStudio voice-training API behind an AK/SK (or IAM token) gateway, in memory.

    ``clock`` (monotonic seconds) times the review simulation and is injectable so tests
    can move time instead of sleeping; ``wall_clock`` is what X-Sdk-Date is checked against.
    """

    def __init__(
        self,
        credentials: Mapping[str, str] | None = None,
        project_id: str = LOCAL_PROJECT_ID,
        *,
        review: ReviewPlan | None = None,
        faults: FaultConfig | None = None,
        iam: IdentityProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_recorded: int = 50_000,
        lock_seconds: float = LOCK_SECONDS,
        auth_code: str = errors.AUTH_CODE,
    ) -> None:
        self.project_id = project_id
        self.store = JobStore(review, clock=clock, wall_clock=wall_clock)
        self._injector = FaultInjector(faults)
        self._recorder = Recorder(max_recorded)
        self._counters: Counter[str] = Counter()
        self._gateway = Gateway(
            credentials if credentials is not None else {LOCAL_AK: LOCAL_SK},
            project_id,
            tokens=iam,
            wall_clock=wall_clock,
            lock_seconds=lock_seconds,
            auth_code=auth_code,
        )
        routes: list[BaseRoute] = [*self._api_routes(), *self._admin_routes()]
        if iam is not None:
            routes.extend(iam.routes)
        self.app = Starlette(
            routes=routes,
            middleware=[
                Middleware(
                    Edge,
                    gateway=self._gateway,
                    faults=self._injector,
                    recorder=self._recorder,
                    counters=self._counters,
                )
            ],
            exception_handlers={
                errors.ApiError: self._on_api_error,
                404: self._on_not_found,
                405: self._on_method_not_allowed,
            },
        )
        self.app.router.redirect_slashes = False

    def __repr__(self) -> str:
        return f"LocalMetaStudio(project_id={self.project_id!r}, jobs={len(self.store)})"

    # in-process API ------------------------------------------------------------------------

    def seed_job(
        self,
        job_id: str | None = None,
        *,
        state: JobState = JobState.UPLOADING,
        voice_name: str = "demo",
        outcome: Outcome = "pass",
        failure: AuditFailure | None = None,
        app_user_id: str | None = None,
        sex: str = "FEMALE",
        language: str = "CN",
        tag: str | None = None,
        job_type: str = "BASIC",
        batch_name: str | None = None,
        created_ago: float = 0.0,
    ) -> str:
        """Create a job (uuid4 id if none given); ``outcome`` decides its next review."""
        return self.store.seed(
            job_id,
            state=state,
            voice_name=voice_name,
            outcome=outcome,
            failure=failure,
            app_user_id=app_user_id,
            sex=sex,
            language=language,
            tag=tag,
            job_type=job_type,
            batch_name=batch_name,
            created_ago=created_ago,
        )

    def load_seed(self, source: Path | str | Mapping[str, Any]) -> list[str]:
        """Seed from a seed file (path) or its parsed JSON; returns the job ids."""
        data = json.loads(Path(source).read_text()) if isinstance(source, Path | str) else source
        seed = SeedFile.model_validate(data)
        if seed.review is not None:
            self.review = seed.review
        return [self.seed_job(**job.kwargs()) for job in seed.jobs]

    def set_outcome(
        self, job_id: str, outcome: Outcome, failure: AuditFailure | None = None
    ) -> None:
        """Decide how the job's next review round ends (e.g. pass after a rejection)."""
        self.store.set_outcome(job_id, outcome, failure)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as GET details would return it now (raises ApiError if unknown)."""
        return self.store.job(job_id)

    def state(self, job_id: str) -> JobState:
        return self.store.state(job_id)

    def report_state_as(self, state: JobState, name: str | None) -> None:
        """Act as a newer API: report jobs in ``state`` under the new state ``name``."""
        self.store.report_state_as(state, name)

    def set_credentials(self, credentials: Mapping[str, str]) -> None:
        """Replace the AK/SK pairs the gateway knows, as when a key is rotated."""
        self._gateway.set_credentials(credentials)

    @property
    def lock_seconds(self) -> float:
        """How long the gateway locks an AK after more than five failures in a row."""
        return self._gateway.lock_seconds

    @lock_seconds.setter
    def lock_seconds(self, seconds: float) -> None:
        self._gateway.lock_seconds = seconds

    @property
    def auth_code(self) -> str:
        """The code of authentication failures: APIG.0301, or the older pages' APIGW.0301."""
        return self._gateway.auth_code

    @auth_code.setter
    def auth_code(self, code: str) -> None:
        self._gateway.auth_code = code

    def locked(self, access_key: str) -> bool:
        """Whether the gateway has locked ``access_key`` for repeated failures right now."""
        return self._gateway.locked(access_key)

    def lift_lock(self, access_key: str) -> None:
        """End ``access_key``'s lockout now (tests stand in for the window running out)."""
        self._gateway.lift_lock(access_key)

    def commit_count(self, job_id: str) -> int:
        """How many commits were applied to the job (failed or rejected ones do not count)."""
        return self.store.commit_count(job_id)

    def advance(self, seconds: float) -> None:
        """Move the review clock forward by ``seconds``."""
        self.store.advance(seconds)

    @property
    def requests(self) -> deque[RecordedRequest]:
        """Every API and IAM request received (admin traffic excluded), oldest first."""
        return self._recorder.requests

    @property
    def faults(self) -> FaultConfig:
        return self._injector.config

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        self._injector.config = config

    @property
    def review(self) -> ReviewPlan:
        return self.store.review

    @review.setter
    def review(self, plan: ReviewPlan) -> None:
        """Applies to reviews started from now on."""
        self.store.review = plan

    def stats(self) -> dict[str, Any]:
        return {
            **self.store.stats(),
            "requests": self._recorder.total,
            "faults": dict(self._injector.counts),
            "lockouts": self._gateway.lockouts,
            "rejected": {
                key.split(":", 1)[1]: n
                for key, n in self._counters.items()
                if key.startswith("rejected:")
            },
        }

    # API routes ----------------------------------------------------------------------------

    def _api_routes(self) -> list[BaseRoute]:
        return [
            Route(API + "/user/jobs", self._list_jobs, methods=["GET"]),
            Route(API + "/user/jobs/{job_id}", self._job, methods=["GET", "POST"]),
            Route(API + "/user/jobs/{job_id}/audit-result", self._audit_result, methods=["GET"]),
            Route(API + "/user/jobs/{job_id}/op-logs", self._op_logs, methods=["GET"]),
        ]

    async def _job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        user_id = _app_user_id(request)
        if request.method == "POST":
            body = _commit_body(request, await request.body())
            self.store.commit(job_id, body, user_id)
            return JSONResponse({})
        return JSONResponse(self.store.job(job_id))

    async def _list_jobs(self, request: Request) -> Response:
        _app_user_id(request)
        return JSONResponse(self.store.list(_list_query(request, self.store)))

    async def _audit_result(self, request: Request) -> Response:
        return JSONResponse(self.store.audit_result(request.path_params["job_id"]))

    async def _op_logs(self, request: Request) -> Response:
        offset = _int_param(request, "offset", 0, 0, 2_147_483_647)
        limit = _int_param(request, "limit", 10, 1, 100)
        return JSONResponse(self.store.op_logs(request.path_params["job_id"], offset, limit))

    async def _on_api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.ApiError)
        return _error_response(exc)

    async def _on_not_found(self, request: Request, exc: Exception) -> Response:
        return _error_response(errors.api_not_found())

    async def _on_method_not_allowed(self, request: Request, exc: Exception) -> Response:
        return _error_response(errors.method_not_allowed())

    # admin routes --------------------------------------------------------------------------

    def _admin_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/jobs", self._admin_seed, methods=["POST"]),
            Route("/_sandbox/jobs/{job_id}", self._admin_job, methods=["GET"]),
            Route("/_sandbox/jobs/{job_id}/commits", self._admin_commits, methods=["GET"]),
            Route("/_sandbox/jobs/{job_id}/outcome", self._admin_outcome, methods=["PUT"]),
            Route("/_sandbox/faults", self._admin_faults, methods=["GET", "PUT"]),
            Route("/_sandbox/review", self._admin_review, methods=["GET", "PUT"]),
            Route("/_sandbox/clock/advance", self._admin_advance, methods=["POST"]),
            Route("/_sandbox/requests", self._admin_requests, methods=["GET"]),
            Route("/_sandbox/stats", self._admin_stats, methods=["GET"]),
        ]

    async def _admin_seed(self, request: Request) -> Response:
        try:
            seed = SeedJob.model_validate_json(await request.body())
            job_id = self.seed_job(**seed.kwargs())
        except ValidationError as exc:
            return _admin_error(400, str(exc.errors(include_url=False, include_input=False)))
        except ValueError as exc:
            return _admin_error(409, str(exc))
        return JSONResponse({"job_id": job_id}, 201)

    async def _admin_job(self, request: Request) -> Response:
        return JSONResponse(self.job(request.path_params["job_id"]))

    async def _admin_commits(self, request: Request) -> Response:
        return JSONResponse({"count": self.commit_count(request.path_params["job_id"])})

    async def _admin_outcome(self, request: Request) -> Response:
        try:
            change = _OutcomeChange.model_validate_json(await request.body())
        except ValidationError as exc:
            return _admin_error(400, str(exc.errors(include_url=False, include_input=False)))
        self.set_outcome(request.path_params["job_id"], change.outcome, change.failure)
        return JSONResponse({"outcome": change.outcome})

    async def _admin_faults(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                self.faults = FaultConfig.model_validate_json(await request.body())
            except ValidationError as exc:
                return _admin_error(400, str(exc.errors(include_url=False, include_input=False)))
        return JSONResponse(self.faults.to_json())

    async def _admin_review(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                self.review = ReviewPlan.model_validate_json(await request.body())
            except ValidationError as exc:
                return _admin_error(400, str(exc.errors(include_url=False, include_input=False)))
        return JSONResponse(self.review.model_dump(mode="json"))

    async def _admin_advance(self, request: Request) -> Response:
        try:
            advance = _ClockAdvance.model_validate_json(await request.body())
        except ValidationError as exc:
            return _admin_error(400, str(exc.errors(include_url=False, include_input=False)))
        self.advance(advance.seconds)
        return JSONResponse({"advanced": advance.seconds})

    async def _admin_requests(self, request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return _admin_error(400, "since must be an integer")
        recorded, total = self._recorder.since(since)
        return JSONResponse({"requests": [r.to_json() for r in recorded], "next": total})

    async def _admin_stats(self, request: Request) -> Response:
        return JSONResponse(self.stats())
