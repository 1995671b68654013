"""SDK-HMAC-SHA256 request signing, byte-for-byte as Huawei Cloud's API gateway expects it.

``canonical_request`` and ``sign`` are pure functions shared by the client (``AKSKAuth``)
and the local MetaStudio's gateway check, so both sides agree on one definition; the
definition itself is pinned to the official SDK signer by the test suite.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Generator, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote

import httpx

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
HEADER_DATE = "X-Sdk-Date"
HEADER_CONTENT_SHA = "x-sdk-content-sha256"

# Headers a proxy or the HTTP stack may add, drop or rewrite in transit; signing them
# would make a valid request fail verification for reasons unrelated to its content.
UNSIGNED_TRANSPORT_HEADERS = frozenset(
    {
        "accept-encoding",
        "authorization",
        "connection",
        "content-length",
        "keep-alive",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
    }
)


@lru_cache(maxsize=4096)
def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Percent-decode, then encode each segment with only RFC 3986 unreserved chars kept."""
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """Return (canonical header block, SignedHeaders) for the headers to be signed."""
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    names = sorted(name for name in lowered if "_" not in name)
    block = "".join(f"{name}:{lowered[name]}\n" for name in names)
    return block, ";".join(names)


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    if not body:
        return EMPTY_HASH
    for name, value in headers.items():
        if name.lower() == HEADER_CONTENT_SHA:
            return value
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[str, str]:
    """Return (canonical request, SignedHeaders)."""
    header_block, signed = canonical_headers(headers)
    parts = (
        method.upper(),
        canonical_uri(path),
        canonical_query(query),
        header_block,
        signed,
        payload_hash(body, headers),
    )
    return "\n".join(parts), signed


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(sk: bytes, to_sign: str) -> str:
    return hmac.new(sk, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(ak: str, signed_headers: str, sig: str) -> str:
    return f"{ALGORITHM} Access={ak}, SignedHeaders={signed_headers}, Signature={sig}"


def sign(
    ak: str,
    sk: bytes,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """Return the Authorization header for a request whose headers include X-Sdk-Date."""
    sdk_date = next(v for k, v in headers.items() if k.lower() == "x-sdk-date").strip()
    canonical, signed = canonical_request(method, path, query, headers, body)
    return authorization(ak, signed, signature(sk, string_to_sign(canonical, sdk_date)))


def sdk_date_now() -> str:
    return datetime.now(UTC).strftime(DATE_FORMAT)


def parse_sdk_date(value: str) -> datetime:
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)


def query_pairs(raw_query: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw_query.decode("ascii"), keep_blank_values=True)


class AKSKAuth(httpx.Auth):
    """httpx auth that signs each request with an AK/SK pair (SDK-HMAC-SHA256).

    Adds ``X-Sdk-Date`` unless the request already carries one, and rewrites the query
    string into its canonical (sorted, RFC 3986) form, as the official SDK sends it.
    """

    requires_request_body = True

    def __init__(self, ak: str, sk: str) -> None:
        self._ak = ak
        self._sk = sk.encode("utf-8")

    def __repr__(self) -> str:
        return f"AKSKAuth(ak={self._ak[:4]}…)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if HEADER_DATE not in request.headers:
            request.headers[HEADER_DATE] = sdk_date_now()
        pairs = query_pairs(request.url.query)
        if pairs:
            request.url = request.url.copy_with(query=canonical_query(pairs).encode("ascii"))
        signed = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in UNSIGNED_TRANSPORT_HEADERS
        }
        request.headers["Authorization"] = sign(
            self._ak,
            self._sk,
            request.method,
            request.url.raw_path.split(b"?", 1)[0].decode("ascii"),
            pairs,
            signed,
            request.content,
        )
        yield request
