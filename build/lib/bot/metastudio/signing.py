"""SDK-HMAC-SHA256 request signing, byte-for-byte as Huawei Cloud's API gateway expects it.

``canonical_request`` and ``sign`` are pure functions shared by the client (``AKSKAuth``)
and the local MetaStudio's gateway check, so both sides agree on one definition; the
definition itself is pinned to the official SDK signer by the test suite.

Signing sits on every MetaStudio call, so the hot path avoids work the official signer
repeats per request: the SK's HMAC pads are computed once per ``AKSKAuth``, already-safe
paths skip percent re-encoding, the date string is formatted once per second, and httpx
headers are read in one pass.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
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
_DATE_KEY = HEADER_DATE.lower()

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

# A path made only of RFC 3986 unreserved characters and slashes is its own canonical
# form: percent-decoding leaves it unchanged and encoding each segment keeps every char.
_ALREADY_CANONICAL_PATH = re.compile(r"[A-Za-z0-9\-_.~/]*")


@lru_cache(maxsize=4096)
def _encode(value: str) -> str:
    return quote(value, safe="~")


@lru_cache(maxsize=1024)
def canonical_uri(path: str) -> str:
    """Percent-decode, then encode each segment with only RFC 3986 unreserved chars kept."""
    if _ALREADY_CANONICAL_PATH.fullmatch(path):
        encoded = path
    else:
        encoded = "/".join([_encode(segment) for segment in unquote(path).split("/")])
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join([f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs)])


def _signable(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased name → stripped value; the last of names equal but for case wins."""
    return {name.lower(): str(value).strip() for name, value in headers.items()}


@lru_cache(maxsize=256)
def _signed_names(names: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    # The official signer skips names containing "_" because many proxies drop them.
    signed = tuple(sorted([name for name in names if "_" not in name]))
    return signed, ";".join(signed)


def _header_block(signable: Mapping[str, str]) -> tuple[str, str]:
    # A client sends the same few header sets over and over, so their sorted order is cached.
    names, signed = _signed_names(tuple(signable))
    return "".join([f"{name}:{signable[name]}\n" for name in names]), signed


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """Return (canonical header block, SignedHeaders) for the headers to be signed."""
    return _header_block(_signable(headers))


def _payload_hash(body: bytes, signable: Mapping[str, str]) -> str:
    if not body:
        return EMPTY_HASH
    declared = signable.get(HEADER_CONTENT_SHA)
    if declared:
        # The official signer reads this header after re-encoding every header value as
        # UTF-8 bytes shown as Latin-1, so a non-ASCII value is hashed in that form.
        return declared if declared.isascii() else declared.encode().decode("latin-1")
    return hashlib.sha256(body).hexdigest()


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    return _payload_hash(body, _signable(headers))


def _canonical(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    signable: Mapping[str, str],
    body: bytes,
) -> tuple[str, str]:
    header_block, signed = _header_block(signable)
    canonical = (
        f"{method.upper()}\n{canonical_uri(path)}\n{canonical_query(query) if query else ''}\n"
        f"{header_block}\n{signed}\n{_payload_hash(body, signable)}"
    )
    return canonical, signed


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[str, str]:
    """Return (canonical request, SignedHeaders)."""
    return _canonical(method, path, query, _signable(headers), body)


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
    signable = _signable(headers)
    canonical, signed = _canonical(method, path, query, signable, body)
    return authorization(ak, signed, signature(sk, string_to_sign(canonical, signable[_DATE_KEY])))


class _DateClock:
    """Formats the current UTC second once; strftime costs more than the HMAC itself."""

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")

    def now(self) -> str:
        second = int(time.time())
        cached = self._cached
        if cached[0] == second:
            return cached[1]
        text = time.strftime(DATE_FORMAT, time.gmtime(second))
        # One tuple assignment, so concurrent threads never see a torn (second, text) pair.
        self._cached = (second, text)
        return text


_clock = _DateClock()


def sdk_date_now() -> str:
    return _clock.now()


def parse_sdk_date(value: str) -> datetime:
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)


def query_pairs(raw_query: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw_query.decode("ascii"), keep_blank_values=True)


def _merge_repeated(decoded: list[tuple[str, str]]) -> dict[str, str]:
    """Join a repeated header's values with ", " before stripping, as httpx's items() does."""
    merged: dict[str, str] = {}
    for name, value in decoded:
        key = name.lower()
        if key not in UNSIGNED_TRANSPORT_HEADERS:
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return {key: value.strip() for key, value in merged.items()}


class _HmacKey:
    """HMAC-SHA256 keyed once: each message copies the keyed state instead of deriving the
    padded key from the SK again, and the raw SK stays out of the object's attributes."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "_HmacKey(***)"

    def hexdigest(self, message: str) -> str:
        mac = self._keyed.copy()
        mac.update(message.encode("utf-8"))
        return mac.hexdigest()


class AKSKAuth(httpx.Auth):
    """httpx auth that signs each request with an AK/SK pair (SDK-HMAC-SHA256).

    Adds ``X-Sdk-Date`` unless the request already carries one, and rewrites the query
    string into its canonical (sorted, RFC 3986) form, as the official SDK sends it.
    Signs every header except ``UNSIGNED_TRANSPORT_HEADERS``; a name sent twice is
    signed as its values joined by ", ", the way httpx and most servers merge them.
    """

    requires_request_body = True

    def __init__(self, ak: str, sk: str) -> None:
        self._ak = ak
        self._key = _HmacKey(sk.encode("utf-8"))

    def __repr__(self) -> str:
        return f"AKSKAuth(ak={self._ak[:4]}…)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = request.headers
        raw = headers.raw
        try:
            # Nearly every request is pure ASCII, and then httpx's own encoding detection
            # (which re-decodes every header) would pick a codec that decodes it the same.
            decoded = [(name.decode("ascii"), value.decode("ascii")) for name, value in raw]
        except UnicodeDecodeError:
            encoding = headers.encoding
            decoded = [(name.decode(encoding), value.decode(encoding)) for name, value in raw]
        signable: dict[str, str] = {}
        for name, value in decoded:
            key = name.lower()
            if key in UNSIGNED_TRANSPORT_HEADERS:
                continue
            if key in signable:
                signable = _merge_repeated(decoded)
                break
            signable[key] = value.strip()
        sdk_date = signable.get(_DATE_KEY)
        if sdk_date is None:
            sdk_date = signable[_DATE_KEY] = sdk_date_now()
            headers[HEADER_DATE] = sdk_date

        raw_path, _, raw_query = request.url.raw_path.partition(b"?")
        pairs = query_pairs(raw_query) if raw_query else []
        if pairs:
            query = canonical_query(pairs).encode("ascii")
            if query != raw_query:
                request.url = request.url.copy_with(query=query)

        canonical, signed = _canonical(
            request.method, raw_path.decode("ascii"), pairs, signable, request.content
        )
        headers["Authorization"] = authorization(
            self._ak, signed, self._key.hexdigest(string_to_sign(canonical, sdk_date))
        )
        yield request
