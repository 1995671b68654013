"""The API gateway's authentication check: AK/SK signature or IAM token, then the tenant.

The signature is recomputed from the request exactly as it arrived (method, raw path, raw
query pairs, the headers named in SignedHeaders with their received values, raw body) with
the same pure functions the client signs with, so a mismatch means the bytes differ.

Like the real gateway, an AK whose signature checks fail more than five times in a row is
locked for ``lock_seconds`` (five minutes): every request with it is refused meanwhile,
even a correctly signed one. Failures answer 401 ``APIG.0301`` (or the older
``APIGW.0301``, ``auth_code``) with the real messages.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sandbox.metastudio import apig, errors

MAX_CLOCK_SKEW = 15 * 60.0
# More than this many failed signature checks in a row lock the AK/SK.
LOCK_AFTER = 5
LOCK_SECONDS = 300.0
# Values of these headers are credentials; the echoed canonical request must not carry them.
SECRET_HEADERS = frozenset({"x-auth-token", "x-security-token"})


class TokenValidator(Protocol):
    def validate(self, token: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    raw_path: bytes
    raw_query: bytes
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key: str
    signed_headers: tuple[str, ...]
    signature: str


def decode_headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased name → value; the first occurrence wins, UTF-8 with a Latin-1 fallback."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key in headers:
            continue
        try:
            headers[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            headers[key] = value.decode("latin-1")
    return headers


def path_project_id(raw_path: bytes) -> str:
    parts = raw_path.split(b"/", 3)
    return parts[2].decode("latin-1") if len(parts) > 2 else ""


def _parse_authorization(value: str) -> _Authorization | None:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != apig.ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    access, signed, sig = fields.get("Access"), fields.get("SignedHeaders"), fields.get("Signature")
    if not access or not signed or not sig:
        return None
    return _Authorization(access, tuple(signed.split(";")), sig)


class Gateway:
    """``check(request)`` raises ``ApiError`` (401 APIG.0301 / 400 MSS.00010009) or returns."""

    def __init__(
        self,
        credentials: Mapping[str, str],
        project_id: str,
        tokens: TokenValidator | None = None,
        wall_clock: Callable[[], float] = time.time,
        *,
        lock_seconds: float = LOCK_SECONDS,
        auth_code: str = errors.AUTH_CODE,
    ) -> None:
        self._secrets = {ak: sk.encode("utf-8") for ak, sk in credentials.items()}
        self._project_id = project_id
        self._tokens = tokens
        self._wall_clock = wall_clock
        self.lock_seconds = lock_seconds
        self.auth_code = auth_code
        self._mutex = threading.Lock()
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self.lockouts = 0

    def __repr__(self) -> str:
        return f"Gateway(project_id={self._project_id!r}, keys={len(self._secrets)})"

    def set_credentials(self, credentials: Mapping[str, str]) -> None:
        """Replace the known AK/SK pairs (a key rotated or deleted in the console)."""
        with self._mutex:
            self._secrets = {ak: sk.encode("utf-8") for ak, sk in credentials.items()}

    def locked(self, access_key: str) -> bool:
        with self._mutex:
            return time.monotonic() < self._locked_until.get(access_key, 0.0)

    def lift_lock(self, access_key: str) -> None:
        """End a lockout now, as its five minutes running out would."""
        with self._mutex:
            self._locked_until.pop(access_key, None)

    def check(self, request: ReceivedRequest) -> None:
        try:
            self._check(request)
        except errors.ApiError as error:
            if error.status == 401 and error.code != self.auth_code:
                raise errors.ApiError(401, self.auth_code, error.message, error.headers) from None
            raise

    def _check(self, request: ReceivedRequest) -> None:
        headers = request.headers
        url_project = path_project_id(request.raw_path)
        if "authorization" in headers:
            self._verify_signature(request)
            claimed = headers.get("x-project-id")
            if claimed is None or claimed != url_project:
                raise errors.tenant_mismatch()
        elif "x-auth-token" in headers:
            if self._tokens is None or not self._tokens.validate(headers["x-auth-token"]):
                raise errors.token_invalid()
            claimed = headers.get("x-project-id")
            if claimed is not None and claimed != url_project:
                raise errors.tenant_mismatch()
        else:
            raise errors.missing_authorization()
        if url_project != self._project_id:
            raise errors.tenant_mismatch()

    def _verify_signature(self, request: ReceivedRequest) -> None:
        auth = _parse_authorization(request.headers["authorization"])
        if auth is None:
            raise errors.garbled_authorization()
        with self._mutex:
            secret = self._secrets.get(auth.access_key)
        if secret is None:
            raise errors.unknown_access_key()
        self._refuse_if_locked(auth.access_key)
        try:
            self._verify(request, auth, secret)
        except errors.ApiError:
            self._failed(auth.access_key)
            raise
        with self._mutex:
            self._failures.pop(auth.access_key, None)

    def _refuse_if_locked(self, access_key: str) -> None:
        with self._mutex:
            until = self._locked_until.get(access_key)
            if until is None:
                return
            if time.monotonic() < until:
                raise errors.locked_out()
            del self._locked_until[access_key]

    def _failed(self, access_key: str) -> None:
        with self._mutex:
            count = self._failures.get(access_key, 0) + 1
            self._failures[access_key] = count
            if count <= LOCK_AFTER:
                return
            self._failures.pop(access_key, None)
            self._locked_until[access_key] = time.monotonic() + self.lock_seconds
            self.lockouts += 1
        raise errors.locked_out()

    def _verify(self, request: ReceivedRequest, auth: _Authorization, secret: bytes) -> None:
        if "x-sdk-date" not in auth.signed_headers:
            raise errors.date_not_signed()
        sdk_date = request.headers.get("x-sdk-date", "").strip()
        try:
            signed_at = apig.parse_sdk_date(sdk_date).timestamp()
        except ValueError:
            raise errors.date_unreadable() from None
        if abs(self._wall_clock() - signed_at) > MAX_CLOCK_SKEW:
            raise errors.signature_expired()

        signed = {name: request.headers.get(name, "") for name in auth.signed_headers}
        try:
            canonical = apig.canonical_request(
                request.method,
                request.raw_path.decode("latin-1"),
                request.raw_query,
                request.headers,
                auth.signed_headers,
                request.body,
            )
        except UnicodeDecodeError:
            raise errors.garbled_authorization() from None
        expected = apig.signature(secret, apig.string_to_sign(canonical, sdk_date))
        given = auth.signature.lower().encode("utf-8")
        if not hmac.compare_digest(expected.encode("ascii"), given):
            raise errors.signature_mismatch(_redacted(canonical, signed))


def _redacted(canonical: str, signed: Mapping[str, str]) -> str:
    for name in SECRET_HEADERS & signed.keys():
        canonical = canonical.replace(f"\n{name}:{signed[name].strip()}\n", f"\n{name}:***\n")
    return canonical
