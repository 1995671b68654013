"""The MetaStudio client's errors: one hierarchy, and the parser that maps an answer onto it.

Hierarchy::

    MetaStudioError                 anything that went wrong talking to MetaStudio
    ├── TransportError              no answer: timeout, connection refused or reset
    ├── SubmitOutcomeUnknown        ambiguous submit; reading the job did not settle it
    ├── CredentialsHeld             no call sent: the credentials were refused lately
    └── APIError                    MetaStudio (or its gateway) answered with an error status
        ├── CredentialsRejected     APIG.0301 / APIGW.0301: the gateway refused the credentials
        │   ├── SignatureRejected   AK/SK: wrong SK, skewed clock, unknown AK, or locked AK/SK
        │   └── TokenExpired        the IAM token was refused or has expired
        ├── ProjectMismatch         MSS.00010009: X-Project-Id is not the credentials' project
        ├── JobNotFound             MSS.41000003
        ├── JobNotSubmittable       MSS.41000005, or another 400 on submit about the job's state
        ├── InvalidParameter        MSS.00000002/00000003/10000002/10000003
        ├── QuotaExceeded           MSS.41000012 (concurrency), MSS.41000023 (resources)
        ├── Throttled               429; carries ``retry_after``
        └── ServerError             5xx

``str(error)`` is safe to show to a user: it never holds a secret, an Authorization value
or the gateway's echo of the canonical request. ``error.hint`` says what to do about it, in
the language spoken now; ``error.hint_en`` is the same in English, its message id, for a
hint stored to be shown later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bot.i18n import N_, _

MAX_MESSAGE = 300

# MetaStudio's own FAQ shows APIG.0301; older gateway pages show APIGW.0301 for the same
# messages. The message tells the cases apart (see ``credentials_kind``).
AUTH_CODES = frozenset({"APIG.0301", "APIGW.0301"})
TOKEN_CODES = frozenset({"APIGW.0307", "MSS.00010008"})
PROJECT_MISMATCH_CODES = frozenset({"MSS.00010009"})
JOB_NOT_FOUND_CODES = frozenset({"MSS.41000003"})
NOT_SUBMITTABLE_CODES = frozenset({"MSS.41000005"})
INVALID_PARAMETER_CODES = frozenset(
    {"MSS.00000002", "MSS.00000003", "MSS.10000002", "MSS.10000003"}
)
CONCURRENCY_QUOTA_CODE = "MSS.41000012"
RESOURCE_QUOTA_CODE = "MSS.41000023"
QUOTA_CODES = frozenset({CONCURRENCY_QUOTA_CODE, RESOURCE_QUOTA_CODE})

# The gateway echoes its canonical request after this marker; it may include signed token
# headers, and a user has no use for it, so it is split off the shown message.
_CANONICAL_MARKER = re.compile(r",?\s*canonicalRequest\s*:", re.IGNORECASE)
_SECRET_HEADER_LINE = re.compile(
    r"(x-auth-token|x-security-token|authorization)\s*:[^|\n]*", re.IGNORECASE
)
_ERROR_PAIRS = (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message"))
# "Get secretKey failed,ak:<the AK>,err:ak not exist": the AK is no secret, but has no place
# in a chat message either.
_AK_IN_MESSAGE = re.compile(r"(\bak:)[^,\s]*", re.IGNORECASE)

SIGNATURE = "signature"
CLOCK = "clock"
UNKNOWN_AK = "unknown_ak"
LOCKED = "locked"
TOKEN = "token"  # noqa: S105  (a kind of failure, not a secret)
IAM = "iam"
CREDENTIAL_KINDS = (SIGNATURE, CLOCK, UNKNOWN_AK, LOCKED, TOKEN, IAM)

# What an operator should check, by the kind of authentication failure.
_CREDENTIAL_HINTS = {
    SIGNATURE: N_(
        "Configuration problem: MetaStudio did not accept the request signature. Ask an "
        "operator to check that HUAWEICLOUD_SDK_SK is the secret key of HUAWEICLOUD_SDK_AK "
        "(rotated, mistyped, extra spaces), and that the Huawei Cloud account is not in "
        "arrears or frozen."
    ),
    CLOCK: N_(
        "Configuration problem: the bot host's clock is more than 15 minutes off, so its "
        "signatures look expired. Ask an operator to check the host's clock (NTP)."
    ),
    UNKNOWN_AK: N_(
        "Configuration problem: MetaStudio does not know the access key. Ask an operator to "
        "check HUAWEICLOUD_SDK_AK (deleted, or of another account)."
    ),
    LOCKED: N_(
        "MetaStudio has locked the bot's AK/SK for five minutes after repeated failed "
        "sign-ins. The bot waits for the lock to lift and then tries once; meanwhile ask an "
        "operator to check HUAWEICLOUD_SDK_SK and whatever else uses this key."
    ),
    TOKEN: N_(
        "Configuration problem: MetaStudio refused the IAM token even after a fresh one was "
        "fetched. Ask an operator to check the VOICEBOT_IAM_* settings, the region, and that "
        "the account is not in arrears or frozen."
    ),
    IAM: N_(
        "Configuration problem: IAM refused the bot's user name, password, account (domain) "
        "or project. Ask an operator to check the VOICEBOT_IAM_* settings."
    ),
}


def credentials_kind(error_msg: str) -> str:
    """Which authentication failure a gateway 401 message describes."""
    text = error_msg.lower()
    if "reach the limit" in text or "ak access failed" in text:
        return LOCKED
    if "signature expired" in text:
        return CLOCK
    if "ak not exist" in text or "get secretkey failed" in text:
        return UNKNOWN_AK
    if "token" in text:
        return TOKEN
    return SIGNATURE


def credentials_hint_en(kind: str) -> str:
    return _CREDENTIAL_HINTS.get(kind, _CREDENTIAL_HINTS[SIGNATURE])


def credentials_hint(kind: str) -> str:
    """What an operator should check, in the language spoken now."""
    return _(credentials_hint_en(kind))


class MetaStudioError(Exception):
    """Base of every client error; the message is safe to show to a user."""

    hint_en = N_(
        "Try again later. If it keeps happening, ask the bot's operators to look at the logs."
    )

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    @property
    def hint(self) -> str:
        """What to do about it, in the language spoken now."""
        return _(self.hint_en)


class TransportError(MetaStudioError):
    """No answer came back. ``maybe_sent`` is False only when the request surely never left."""

    hint_en = N_("MetaStudio did not answer. Try again in a few minutes.")

    def __init__(self, message: str, *, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.message,), {"maybe_sent": self.maybe_sent}))


class SubmitOutcomeUnknown(MetaStudioError):
    """A submit failed without a clear answer and reading the job could not tell if it took.

    ``job`` is the last state read, if any read succeeded. ``in_flight`` is True when the
    POST may still be on its way to MetaStudio's backend (a 502 or 504, a timeout or a
    connection lost after sending), False when that exchange was over (another 5xx).
    """

    hint_en = N_(
        "It is not known whether the submit went through. Check the job's state in a minute "
        "before submitting it again."
    )

    def __init__(
        self, message: str, *, job_id: str, job: Any = None, in_flight: bool = True
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.job = job
        self.in_flight = in_flight

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                type(self),
                (self.message,),
                {"job_id": self.job_id, "job": self.job, "in_flight": self.in_flight},
            ),
        )


class APIError(MetaStudioError):
    """MetaStudio answered with an error status and (usually) an error body."""

    summary = "MetaStudio refused the request"

    def __init__(
        self,
        status: int,
        error_code: str,
        error_msg: str,
        request_id: str | None = None,
        *,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.retry_after = retry_after
        # Redacted gateway diagnostics (the echoed canonical request), for operators' logs.
        self.detail = detail
        rid = f", request id {request_id}" if request_id else ""
        if error_code == str(status):
            # No MetaStudio error body (a proxy's page): the message is the status already.
            super().__init__(f"{self.summary}: {error_msg}")
        else:
            super().__init__(f"{self.summary}: {error_msg} (HTTP {status} {error_code}{rid})")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, error_code={self.error_code!r}, "
            f"request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                type(self),
                (self.status, self.error_code, self.error_msg, self.request_id),
                {"retry_after": self.retry_after, "detail": self.detail},
            ),
        )


class CredentialsRejected(APIError):
    """The gateway refused the bot's credentials. Never retried on its own: after more than
    five refusals in a row the gateway locks the AK/SK for five minutes, for every user of
    it. ``kind`` says which check failed (one of ``CREDENTIAL_KINDS``)."""

    summary = "MetaStudio refused the bot's credentials"

    @property
    def kind(self) -> str:
        return credentials_kind(self.error_msg)

    @property
    def hint_en(self) -> str:  # type: ignore[override]
        return credentials_hint_en(self.kind)


class SignatureRejected(CredentialsRejected):
    summary = "MetaStudio rejected the request signature"


class TokenExpired(CredentialsRejected):
    summary = "MetaStudio refused the IAM token"

    @property
    def kind(self) -> str:
        return TOKEN


class CredentialsHeld(MetaStudioError):
    """Nothing was sent: MetaStudio refused the credentials lately (``kind``), and no call
    is made with them until they change or a single probe finds them working again.
    ``retry_in`` is the number of seconds until that probe is due (None: none is due)."""

    def __init__(
        self, message: str, *, kind: str, error_code: str = "", retry_in: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.error_code = error_code
        self.retry_in = retry_in

    @property
    def hint_en(self) -> str:  # type: ignore[override]
        return credentials_hint_en(self.kind)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                type(self),
                (self.message,),
                {"kind": self.kind, "error_code": self.error_code, "retry_in": self.retry_in},
            ),
        )


class ProjectMismatch(APIError):
    summary = "MetaStudio refused the project id"
    hint_en = N_(
        "Configuration problem: HUAWEICLOUD_SDK_PROJECT_ID is not the project of these "
        "credentials in this region. Ask an operator to check it."
    )


class JobNotFound(APIError):
    summary = "MetaStudio has no such training job"
    hint_en = N_(
        "Check the job id, and that the job belongs to the project and region the bot is "
        "configured for."
    )


class JobNotSubmittable(APIError):
    summary = "The job cannot be submitted in its current state"
    hint_en = N_(
        "A job can be submitted once its data is uploaded (or uploaded again after a failed "
        "review), and not while it is already in review or training. Check the job's state."
    )


class InvalidParameter(APIError):
    summary = "MetaStudio rejected a parameter"
    hint_en = N_("Check the values given (voice_name, sex, language, tag) and try again.")


class QuotaExceeded(APIError):
    summary = "MetaStudio quota exceeded"

    @property
    def hint_en(self) -> str:  # type: ignore[override]
        if self.error_code == RESOURCE_QUOTA_CODE:
            return N_("The account has no voice-training resources left. Buy more, then try again.")
        return N_("Too many jobs are in training at once. Wait for earlier jobs to finish.")


class Throttled(APIError):
    summary = "MetaStudio is rate limiting requests"
    hint_en = N_("MetaStudio is busy. Try again in a minute.")


class ServerError(APIError):
    summary = "MetaStudio had an internal error"
    hint_en = N_("MetaStudio failed on its side. Try again in a few minutes.")


def _rebuild(
    cls: type[MetaStudioError], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> MetaStudioError:
    return cls(*args, **kwargs)


def _find_pair(body: Any) -> tuple[str, str] | None:
    """The SDK's order: the three flat spellings first, then the same inside nested objects."""
    if not isinstance(body, Mapping):
        return None
    for code_key, msg_key in _ERROR_PAIRS:
        if code_key in body and msg_key in body:
            return str(body[code_key]), str(body[msg_key])
    for value in body.values():
        found = _find_pair(value)
        if found is not None:
            return found
    return None


def split_gateway_echo(error_msg: str) -> tuple[str, str | None]:
    """Return (message without the canonical-request echo, redacted echo or None)."""
    match = _CANONICAL_MARKER.search(error_msg)
    if match is None:
        return error_msg, None
    echo = error_msg[match.end() :].strip()
    return error_msg[: match.start()].rstrip(" ,;"), _SECRET_HEADER_LINE.sub(r"\1:***", echo)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _classify(status: int, code: str, msg: str, *, on_commit: bool) -> type[APIError]:
    # The gateway answers a stale token with the signature code, so the text decides first.
    if code in TOKEN_CODES or "token must be updated" in msg.lower():
        return TokenExpired
    if code in AUTH_CODES:
        return TokenExpired if credentials_kind(msg) == TOKEN else SignatureRejected
    if code in PROJECT_MISMATCH_CODES:
        return ProjectMismatch
    if code in JOB_NOT_FOUND_CODES:
        return JobNotFound
    if code in NOT_SUBMITTABLE_CODES:
        return JobNotSubmittable
    if code in INVALID_PARAMETER_CODES:
        return InvalidParameter
    if code in QUOTA_CODES:
        return QuotaExceeded
    if status == 429:
        return Throttled
    if status >= 500:
        return ServerError
    if on_commit and status == 400 and ("state" in msg.lower() or "状态" in msg):
        return JobNotSubmittable
    return APIError


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    on_commit: bool = False,
) -> APIError:
    """Build the mapped APIError for an error answer (status >= 400)."""
    text = content.decode("utf-8", errors="replace")
    body: Any = None
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    request_id = headers.get("x-request-id") or headers.get("X-Request-Id")
    if not request_id and isinstance(body, Mapping) and body.get("request_id"):
        request_id = str(body["request_id"])
    pair = _find_pair(body)
    if pair is None:
        # Not MetaStudio's error body: a proxy's or load balancer's HTML page, say. Its text
        # means nothing to a user (and may be a whole page), so only the status is kept.
        rid = f" (request id {request_id})" if request_id else ""
        code, msg = str(status), f"HTTP {status}{rid}"
    else:
        code, msg = pair
    msg, echo = split_gateway_echo(msg)
    msg = _AK_IN_MESSAGE.sub(r"\1***", msg)
    if len(msg) > MAX_MESSAGE:
        msg = msg[:MAX_MESSAGE] + "…"
    cls = _classify(status, code, msg, on_commit=on_commit)
    retry_after = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
    return cls(status, code, msg, request_id, retry_after=retry_after, detail=echo)
