"""The gateway's side of SDK-HMAC-SHA256: the signature recomputed from a request as it was
received, written from Huawei's API Request Signing Guide (the shared reference, section 5)
and not from the bot's signer, so a bug in one is not copied into the check of the other.
``tests/test_sandbox_metastudio.py`` holds it to the official SDK's signatures too.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote

ALGORITHM = "SDK-HMAC-SHA256"
SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.~")


def _percent(text: str) -> str:
    """RFC 3986: unreserved characters as they are, every other byte of the UTF-8 as %XX."""
    return "".join(
        char if char in _UNRESERVED else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in text
    )


def canonical_uri(raw_path: str) -> str:
    """Each segment decoded and encoded again; always ending in '/' (in the canonical form
    only: the path sent keeps its own)."""
    uri = "/".join(_percent(unquote(segment)) for segment in raw_path.split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(raw_query: bytes) -> str:
    """Pairs sorted by key, then value (raw strings), each side encoded."""
    pairs = parse_qsl(raw_query.decode("ascii"), keep_blank_values=True)
    return "&".join(f"{_percent(key)}={_percent(value)}" for key, value in sorted(pairs))


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: bytes,
    headers: Mapping[str, str],
    signed_names: Sequence[str],
    body: bytes,
) -> str:
    """``headers``: every header received, names lower-case; ``signed_names``: the ones the
    Authorization header says were signed."""
    names = sorted(name.lower() for name in signed_names)
    block = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in names)
    payload = headers.get("x-sdk-content-sha256") or hashlib.sha256(body).hexdigest()
    return "\n".join(
        (
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            block,
            ";".join(names),
            payload,
        )
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret: bytes, to_sign: str) -> str:
    return hmac.new(secret, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def parse_sdk_date(value: str) -> datetime:
    return datetime.strptime(value, SDK_DATE_FORMAT).replace(tzinfo=UTC)
