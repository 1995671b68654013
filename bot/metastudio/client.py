"""The async MetaStudio voice-training client: signed calls, parsed answers, a safe submit.

One ``httpx.AsyncClient`` per ``MetaStudioClient``; the transport is injectable, so tests put
a real local server (or an ASGI app) behind it without patching anything. Reads are retried
under a ``RetryPolicy``; the submit (commit) is never blindly repeated, see ``commit_job``.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from bot.metastudio.errors import (
    IAM,
    APIError,
    CredentialsRejected,
    JobNotSubmittable,
    MetaStudioError,
    ServerError,
    SubmitOutcomeUnknown,
    Throttled,
    TransportError,
    error_from_response,
)
from bot.metastudio.models import (
    SUBMITTABLE_STATES,
    AuditResult,
    CommitJobRequest,
    JobList,
    JobState,
    OperationLogList,
    TrainingJob,
    TrainingQuotas,
)
from bot.metastudio.retry import RetryPolicy
from bot.metastudio.signing import AKSKAuth
from bot.metastudio.token import IAMAuthError
from bot.settings import ConfigError, Settings

logger = logging.getLogger("bot.metastudio")

M = TypeVar("M", bound=BaseModel)

API_PREFIX = "/v1/{project_id}/voice-training-manage"
USER_AGENT = "voicebot/0.1"
REDACTED = "***redacted***"
SECRET_HEADERS = frozenset({"authorization", "x-auth-token", "x-security-token"})

# A gateway that answers 502/504 may still have the request running behind it, so a read
# right after cannot prove the submit will not land; other 5xx mean the exchange is over.
IN_FLIGHT_STATUSES = frozenset({502, 504})


class CredentialsGuard(Protocol):
    """Keeps refused credentials from being used again (``bot.credentials``): consulted
    before every call, told of every refusal, and of the success of a probe."""

    async def before_call(self) -> bool:
        """Raise ``CredentialsHeld`` to send nothing; True marks the call as the probe."""
        ...

    async def refused(self, kind: str, error_code: str, request_id: str | None) -> None: ...

    async def accepted(self) -> None: ...


@dataclass(frozen=True)
class CommitResult:
    """Outcome of a submit that took effect (failures raise instead).

    ``verified_by_read`` is True when the answer was lost and a read of the job showed the
    submit had landed; ``job`` is that read (None after a plain 200). ``posts`` counts the
    POSTs sent, at most 2 (see ``MetaStudioClient.commit_job``).
    """

    applied: bool
    verified_by_read: bool
    job: TrainingJob | None = None
    posts: int = 1


@dataclass(frozen=True)
class PreparedCall:
    """A request as it would be sent, secret header values replaced by ``***redacted***``.

    Header names are lower-case, as httpx holds them and as they are signed.
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def quote_segment(value: str) -> str:
    return quote(value, safe="")


def json_bytes(payload: Mapping[str, object]) -> bytes:
    """Compact JSON; these exact bytes are what the signature hashes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def submit_took_effect(before: TrainingJob, after: TrainingJob) -> bool | None:
    """Compare the job read before a submit with one read after it failed ambiguously.

    True: the submit landed. False: it did not. None: the reads cannot tell.
    A submit moves a job into review; the only way back to a submittable state is a failed
    review, which raises ``reject_times`` (or at least ``lastupdate_time``).
    """
    if before.state not in SUBMITTABLE_STATES:
        # MetaStudio refuses a submit from here, so nothing of ours can have landed.
        return False
    if after.state not in SUBMITTABLE_STATES:
        return True
    if after.state is not JobState.AUDIT_FAILED:
        return False
    if before.state is not JobState.AUDIT_FAILED:
        return True
    if before.reject_times is not None and after.reject_times is not None:
        if after.reject_times != before.reject_times:
            return True
        if after.lastupdate_time == before.lastupdate_time:
            return False
        return None
    if after.lastupdate_time is not None and after.lastupdate_time == before.lastupdate_time:
        return False
    return None


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError:
        raise MetaStudioError(
            f"MetaStudio sent an answer the bot could not read ({model.__name__}, "
            f"HTTP {response.status_code})"
        ) from None


def _transport_error(exc: httpx.TransportError, method: str, path: str) -> TransportError:
    # Connecting never began the exchange, so such a request surely did not reach MetaStudio.
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    return TransportError(
        f"MetaStudio did not answer: {method} {path} {kind} ({type(exc).__name__})",
        maybe_sent=not never_sent,
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS context every client of this process verifies MetaStudio with: httpx's own
    default (certifi's CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once, as
    loading a CA bundle costs more CPU than a request."""
    return httpx.create_ssl_context()


class MetaStudioClient:
    """Async client for the voice-training task API of one project.

    ``auth`` is an ``AKSKAuth`` or a token auth (any ``httpx.Auth``). Every call sends
    ``Content-Type: application/json`` (GETs too, as the SDK does) and ``X-Project-Id``.
    """

    def __init__(
        self,
        base_url: str,
        project_id: str,
        auth: httpx.Auth,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = 10.0,
        retry: RetryPolicy | None = None,
        user_agent: str = USER_AGENT,
        guard: CredentialsGuard | None = None,
    ) -> None:
        self.project_id = project_id
        self.retry = retry or RetryPolicy()
        self.guard = guard
        self._auth = auth
        self._prefix = API_PREFIX.format(project_id=quote_segment(project_id))
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": user_agent},
            verify=_tls(),
        )

    def __repr__(self) -> str:
        return f"MetaStudioClient(base_url={str(self._http.base_url)!r}, auth={self._auth!r})"

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        guard: CredentialsGuard | None = None,
    ) -> MetaStudioClient:
        """AK/SK auth when both keys are set, else IAM token auth when an IAM user is set."""
        project_id = settings.huaweicloud_sdk_project_id
        if not project_id:
            raise ConfigError("HUAWEICLOUD_SDK_PROJECT_ID is not set")
        auth: httpx.Auth
        if settings.huaweicloud_sdk_ak and settings.huaweicloud_sdk_sk:
            auth = AKSKAuth(
                settings.huaweicloud_sdk_ak.get_secret_value(),
                settings.huaweicloud_sdk_sk.get_secret_value(),
            )
        elif settings.iam_user and settings.iam_password and settings.iam_domain:
            auth = _token_auth(settings)
        else:
            raise ConfigError(
                "no MetaStudio credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or "
                "VOICEBOT_IAM_USER, VOICEBOT_IAM_PASSWORD and VOICEBOT_IAM_DOMAIN"
            )
        return cls(
            settings.metastudio_endpoint,
            project_id,
            auth,
            transport=transport,
            timeout=settings.metastudio_timeout,
            retry=retry,
            guard=guard,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> MetaStudioClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- reads ---------------------------------------------------------------------------

    async def show_job(self, job_id: str, app_user_id: str | None = None) -> TrainingJob:
        return await self._get(
            TrainingJob, self._job_path(job_id), app_user_id=app_user_id, what="show_job"
        )

    async def list_jobs(
        self,
        states: Iterable[JobState | str] | None = None,
        offset: int = 0,
        limit: int = 10,
        *,
        app_user_id: str | None = None,
        **filters: str | int | bool,
    ) -> JobList:
        """One page of jobs, newest first. ``filters``: job_id, voice_name, tag, batch_name, …"""
        params: list[tuple[str, str]] = [("offset", str(offset)), ("limit", str(limit))]
        if states is not None:
            params.append(("state", ",".join(str(state) for state in states)))
        for name, value in filters.items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            params.append((name, text))
        return await self._get(
            JobList,
            f"{self._prefix}/user/jobs",
            params=params,
            app_user_id=app_user_id,
            what="list_jobs",
        )

    async def audit_result(self, job_id: str) -> AuditResult:
        return await self._get(
            AuditResult, f"{self._job_path(job_id)}/audit-result", what="audit_result"
        )

    async def training_quotas(self, offset: int = 0, limit: int = 100) -> TrainingQuotas:
        """Trainings left per job type, and each training resource with its expiry."""
        return await self._get(
            TrainingQuotas,
            f"{self._prefix}/quotas",
            params=[("offset", str(offset)), ("limit", str(limit))],
            what="training_quotas",
        )

    async def operation_logs(
        self, job_id: str, offset: int = 0, limit: int = 100
    ) -> OperationLogList:
        return await self._get(
            OperationLogList,
            f"{self._job_path(job_id)}/op-logs",
            params=[("offset", str(offset)), ("limit", str(limit))],
            what="operation_logs",
        )

    # -- submit --------------------------------------------------------------------------

    async def commit_job(
        self,
        job_id: str,
        request: CommitJobRequest,
        app_user_id: str | None = None,
        *,
        before_post: Callable[[], Awaitable[None]] | None = None,
    ) -> CommitResult:
        """Submit the job for review, landing at most once.

        The job is read first, as a baseline. Then the POST is sent:

        - 200: applied.
        - A definite refusal (4xx other than 429): its mapped error is raised at once.
        - 429, or a connection that never opened: nothing was applied, so the POST is tried
          again under the retry policy (honouring ``Retry-After``).
        - An ambiguous failure (timeout or connection lost after sending, 5xx, a 502 whose
          reply was lost): the job is read again (with retries) and compared with the
          baseline (``submit_took_effect``). If the submit landed, the result is
          ``verified_by_read=True``. If the read fails or cannot tell,
          ``SubmitOutcomeUnknown`` is raised.

        When the read shows the submit did *not* land, the POST is re-sent **once**, and
        only if the failure was a finished exchange (a 5xx other than 502/504): then nothing
        can still be on its way to MetaStudio, so the read is proof. After a timeout, a lost
        connection, a 502 or a 504 the first POST may still be in flight behind the gateway
        and land after the read; re-sending could submit twice, so ``SubmitOutcomeUnknown``
        is raised instead and the caller checks again later. A second ambiguous failure is
        never followed by a third POST; if it too is a finished 5xx and the read still shows
        nothing, that ``ServerError`` is raised (nothing was applied). Should that second
        POST be refused because of the job's state, the job is read once more: if the first
        POST landed after all, that is the result.

        ``before_post`` is awaited before each POST (the caller records that a submit may be
        on its way).
        """
        before = first = await self.show_job(job_id, app_user_id)
        body = json_bytes(request.body())
        path = self._job_path(job_id)
        attempt = 0
        posts = 0
        resent = False
        while True:
            posts += 1
            if before_post is not None:
                await before_post()
            try:
                await self._send(
                    self._request("POST", path, body=body, app_user_id=app_user_id),
                    on_commit=True,
                )
            except JobNotSubmittable as refusal:
                if not resent:
                    raise
                # The first POST's answer was lost; it may have landed since the read.
                after = await self._read_after_ambiguous(
                    job_id, app_user_id, refusal, in_flight=False
                )
                if submit_took_effect(first, after) is not True:
                    raise
                logger.info(
                    "metastudio commit job=%s: the first POST landed after all "
                    "(state %s, posts=%d)",
                    job_id,
                    after.state,
                    posts,
                )
                return CommitResult(applied=True, verified_by_read=True, job=after, posts=posts)
            except (Throttled, TransportError, ServerError) as error:
                if isinstance(error, Throttled) or (
                    isinstance(error, TransportError) and not error.maybe_sent
                ):
                    wait = self.retry.delay(attempt, error)
                    if wait is None:
                        raise
                    logger.warning(
                        "metastudio commit job=%s not applied (%s), retry in %.2fs",
                        job_id,
                        type(error).__name__,
                        wait,
                    )
                    await self.retry.sleep(wait)
                    attempt += 1
                    continue
                finished = isinstance(error, ServerError) and error.status not in IN_FLIGHT_STATUSES
                after = await self._read_after_ambiguous(
                    job_id, app_user_id, error, in_flight=not finished
                )
                verdict = submit_took_effect(before, after)
                if verdict is True:
                    logger.info(
                        "metastudio commit job=%s applied, confirmed by read after %s "
                        "(state %s, posts=%d)",
                        job_id,
                        type(error).__name__,
                        after.state,
                        posts,
                    )
                    return CommitResult(applied=True, verified_by_read=True, job=after, posts=posts)
                if verdict is False and finished:
                    if resent:
                        raise
                    resent = True
                    before = after
                    wait = self.retry.backoff(attempt)
                    logger.warning(
                        "metastudio commit job=%s not applied after %s (read shows %s), "
                        "re-sending once in %.2fs",
                        job_id,
                        type(error).__name__,
                        after.state,
                        wait,
                    )
                    await self.retry.sleep(wait)
                    attempt += 1
                    continue
                reason = (
                    "the job shows no sign of it yet, but the request may still be on its way"
                    if verdict is False
                    else "the job's state does not tell"
                )
                logger.warning(
                    "metastudio commit job=%s outcome unknown after %s: %s",
                    job_id,
                    type(error).__name__,
                    reason,
                )
                raise SubmitOutcomeUnknown(
                    f"Submitting job {job_id} failed without a clear answer ({error}); {reason}.",
                    job_id=job_id,
                    job=after,
                    in_flight=not finished,
                ) from error
            logger.info("metastudio commit job=%s applied (posts=%d)", job_id, posts)
            return CommitResult(applied=True, verified_by_read=False, job=None, posts=posts)

    def describe_commit(
        self, job_id: str, request: CommitJobRequest, app_user_id: str | None = None
    ) -> PreparedCall:
        """The submit as ``commit_job`` would send it, signed, with secrets redacted.

        Sends nothing. A token auth's header is shown as a placeholder, since fetching the
        real token would mean calling IAM.
        """
        prepared = self._request(
            "POST",
            self._job_path(job_id),
            body=json_bytes(request.body()),
            app_user_id=app_user_id,
        )
        if isinstance(self._auth, AKSKAuth):
            flow = self._auth.sync_auth_flow(prepared)
            prepared = next(flow)
            flow.close()
        else:
            prepared.headers["X-Auth-Token"] = REDACTED
        shown = {
            name: (REDACTED if name.lower() in SECRET_HEADERS else value)
            for name, value in prepared.headers.items()
        }
        return PreparedCall(
            method="POST",
            url=str(prepared.url),
            headers=shown,
            body=prepared.content.decode("utf-8"),
        )

    # -- plumbing ------------------------------------------------------------------------

    def _job_path(self, job_id: str) -> str:
        return f"{self._prefix}/user/jobs/{quote_segment(job_id)}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        app_user_id: str | None = None,
    ) -> httpx.Request:
        headers = {"Content-Type": "application/json", "X-Project-Id": self.project_id}
        if app_user_id is not None:
            if not app_user_id.isascii():
                raise ValueError("app_user_id must be ASCII (MetaStudio refuses other text)")
            headers["X-App-UserId"] = app_user_id
        # A fresh request per try: the signer stamps X-Sdk-Date once per request object.
        return self._http.build_request(
            method,
            path,
            params=tuple(params) if params else None,
            content=body or None,
            headers=headers,
        )

    async def _send(self, request: httpx.Request, *, on_commit: bool = False) -> httpx.Response:
        method, path = request.method, request.url.path
        guard = self.guard
        probe = await guard.before_call() if guard is not None else False
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise _transport_error(exc, method, path) from exc
        except IAMAuthError as refusal:
            if (
                guard is not None
                and refusal.status_code is not None
                and (refusal.status_code < 500)
            ):
                await guard.refused(IAM, f"IAM {refusal.status_code}", None)
            raise
        failure: APIError | None = None
        if response.status_code >= 400:
            failure = error_from_response(
                response.status_code, response.headers, response.content, on_commit=on_commit
            )
            logger.info(
                "metastudio %s %s -> %d %s request_id=%s",
                method,
                path,
                failure.status,
                failure.error_code,
                failure.request_id,
            )
            if failure.detail:
                logger.debug("metastudio gateway canonical request: %s", failure.detail)
            if isinstance(failure, CredentialsRejected):
                if guard is not None:
                    await guard.refused(failure.kind, failure.error_code, failure.request_id)
                raise failure
        if probe and guard is not None:
            # Past the gateway (whatever MetaStudio then said): the credentials work.
            await guard.accepted()
        if failure is not None:
            raise failure
        return response

    async def _get(
        self,
        model: type[M],
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        app_user_id: str | None = None,
        what: str,
    ) -> M:
        async def once() -> M:
            request = self._request("GET", path, params=params, app_user_id=app_user_id)
            return _parse(model, await self._send(request))

        return await self.retry.run(once, what=what)

    async def _read_after_ambiguous(
        self,
        job_id: str,
        app_user_id: str | None,
        cause: MetaStudioError,
        *,
        in_flight: bool = True,
    ) -> TrainingJob:
        try:
            return await self.show_job(job_id, app_user_id)
        except MetaStudioError as read_error:
            logger.warning(
                "metastudio commit job=%s outcome unknown: %s, then the read failed: %s",
                job_id,
                type(cause).__name__,
                type(read_error).__name__,
            )
            raise SubmitOutcomeUnknown(
                f"Submitting job {job_id} failed without a clear answer ({cause}), and reading "
                f"the job afterwards failed too ({read_error}).",
                job_id=job_id,
                in_flight=in_flight,
            ) from cause


def _token_auth(settings: Settings) -> httpx.Auth:
    # Imported here: only token-mode deployments need it.
    from bot.metastudio.token import TokenAuth

    if not (settings.iam_user and settings.iam_password and settings.iam_domain):
        raise ConfigError(
            "incomplete IAM settings: VOICEBOT_IAM_USER, VOICEBOT_IAM_PASSWORD and "
            "VOICEBOT_IAM_DOMAIN are all needed"
        )
    iam_endpoint = settings.iam_endpoint or (
        f"https://iam.{settings.metastudio_region}.myhuaweicloud.com"
    )
    # The scope is the region's project, by name, as the SDK's own token flow does.
    return TokenAuth(
        iam_endpoint,
        settings.iam_user,
        settings.iam_password,
        settings.iam_domain,
        settings.metastudio_region,
    )


__all__ = [
    "CommitResult",
    "CredentialsGuard",
    "MetaStudioClient",
    "PreparedCall",
    "submit_took_effect",
]
