"""The API gateway's authentication check: AK/SK signature or IAM token, then the tenant.

The signature is recomputed from the request exactly as it arrived (method, raw path, raw
query pairs, the headers named in SignedHeaders with their received values, raw body) with
the same pure functions the client signs with, so a mismatch means the bytes differ.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.metastudio import signing
from bot.sandbox.metastudio import errors

MAX_CLOCK_SKEW = 15 * 60.0
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
    if algorithm != signing.ALGORITHM:
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
    """``check(request)`` raises ``ApiError`` (401 APIGW.0301 / 400 MSS.00010009) or returns."""

    def __init__(
        self,
        credentials: Mapping[str, str],
        project_id: str,
        tokens: TokenValidator | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = {ak: sk.encode("utf-8") for ak, sk in credentials.items()}
        self._project_id = project_id
        self._tokens = tokens
        self._wall_clock = wall_clock

    def __repr__(self) -> str:
        return f"Gateway(project_id={self._project_id!r}, keys={len(self._secrets)})"

    def check(self, request: ReceivedRequest) -> None:
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
        secret = self._secrets.get(auth.access_key)
        if secret is None:
            raise errors.unknown_access_key()
        if "x-sdk-date" not in auth.signed_headers:
            raise errors.date_not_signed()
        sdk_date = request.headers.get("x-sdk-date", "").strip()
        try:
            signed_at = signing.parse_sdk_date(sdk_date).timestamp()
        except ValueError:
            raise errors.date_out_of_range() from None
        if abs(self._wall_clock() - signed_at) > MAX_CLOCK_SKEW:
            raise errors.date_out_of_range()

        signed = {name: request.headers.get(name, "") for name in auth.signed_headers}
        try:
            pairs = signing.query_pairs(request.raw_query)
        except UnicodeDecodeError:
            raise errors.garbled_authorization() from None
        canonical, signed_names = signing.canonical_request(
            request.method,
            request.raw_path.decode("latin-1"),
            pairs,
            signed,
            request.body,
        )
        expected = signing.signature(secret, signing.string_to_sign(canonical, sdk_date))
        same_names = signed_names == ";".join(auth.signed_headers)
        given = auth.signature.lower().encode("utf-8")
        if not (hmac.compare_digest(expected.encode("ascii"), given) and same_names):
            raise errors.signature_mismatch(_redacted(canonical, signed))


def _redacted(canonical: str, signed: Mapping[str, str]) -> str:
    for name in SECRET_HEADERS & signed.keys():
        canonical = canonical.replace(f"\n{name}:{signed[name].strip()}\n", f"\n{name}:***\n")
    return canonical
