"""How a request is stored: one small Redis hash of flat string fields under short codes,
each body field a field of its own, and what is hashed to bind an approval to its payload.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.approvals.model import TERMINAL_STATUSES, ApprovalStatus
from bot.i18n import Language

# A button value may carry a shortened hash; anything shorter would be guessable.
MIN_HASH_PREFIX = 16


# Fields a transition (or ``update``) may set; identity and binding fields never change.
MUTABLE_FIELDS: frozenset[str] = frozenset(
    {
        "decided_by",
        "decided_at",
        "reason",
        "submit_error",
        "submit_hint",
        "job_state",
        "outcome",
        "held",
        "submit_sent_at",
    }
)
# Markers live in the request's own hash, so they go when it goes and cost no key each.
MARKER_PREFIX = "m:"
SHOWN_FIELD = MARKER_PREFIX + "card"


def payload_hash(job_id: str, body: Mapping[str, str], app_user_id: str | None) -> str:
    """sha256 hex of the canonical JSON of exactly what will be submitted."""
    canonical = json.dumps(
        {"job_id": job_id, "body": dict(body), "app_user_id": app_user_id},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def new_request_id() -> str:
    """``r`` + 12 lowercase base32 characters (60 random bits): short and safe in a URL."""
    return "r" + base64.b32encode(secrets.token_bytes(8)).decode("ascii")[:12].lower()


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    tenant: str
    team_id: str | None = None
    enterprise_id: str | None = None
    requester: str
    origin_channel: str
    card_channel: str
    card_ts: str | None = None
    job_id: str
    body: dict[str, str]
    app_user_id: str | None = None
    payload_hash: str
    status: ApprovalStatus
    created_at: float
    expires_at: float
    decided_by: str | None = None
    decided_at: float | None = None
    reason: str | None = None
    submit_error: str | None = None
    submit_hint: str | None = None
    job_state: str | None = None
    # The job as read when the request was made: the baseline a resumed submit compares a
    # fresh read with, to tell whether an earlier attempt landed (``submit_took_effect``).
    baseline_state: str | None = None
    baseline_reject_times: int | None = None
    baseline_updated: int | None = None
    outcome: str | None = None
    # Why an approved submit waits instead of being sent: the kind of credentials failure
    # (``bot.metastudio.errors.CREDENTIAL_KINDS``) while MetaStudio refuses the bot's keys.
    held: str | None = None
    # When the last submit POST was sent whose answer did not say whether it landed: no
    # submit is sent again until ``VOICEBOT_SUBMIT_SETTLE`` seconds after it.
    submit_sent_at: float | None = None
    # How many distinct approvers the request needs: the policy in force when it was made.
    required_approvals: int = 1
    # Who has approved so far, space-separated user ids in click order (decide.lua).
    approvers: str | None = None
    # The language of the card and the thread: the channel's when the request was made.
    language: Language = "en"
    updated_at: float
    version: int = 0

    @property
    def short_hash(self) -> str:
        """The hash prefix a button value carries; ``decide`` accepts it."""
        return self.payload_hash[:MIN_HASH_PREFIX]

    @property
    def approver_ids(self) -> tuple[str, ...]:
        """Who has approved, in click order."""
        return tuple((self.approvers or "").split())

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def render_key(self) -> str:
        """Changes whenever what the card shows changes (the status, the job's state, or
        the submit being held)."""
        held = f":held:{self.held}" if self.held else ""
        return f"{self.version}:{self.job_state or ''}{held}"

    def as_fields(self) -> dict[str, str]:
        """Flat string fields by name, stored under ``FIELD_CODES``: ``None`` fields and
        fields equal to their default (``IMPLIED``) are left out, and each body field is one
        ``b:{name}`` field."""
        out: dict[str, str] = {}
        values = self.model_dump(mode="python")
        for name, value in values.items():
            if name == "body":
                out.update({BODY_FIELD + key: item for key, item in value.items()})
            elif value is not None and value != values.get(IMPLIED.get(name, "")):
                out[name] = _encode(value)
        return out

    @classmethod
    def from_stored(cls, flat: Mapping[str, str]) -> ApprovalRequest:
        """The request from its hash as stored: fields under their codes, markers ignored."""
        data: dict[str, Any] = {"body": {}}
        for code, value in flat.items():
            if code.startswith(BODY_FIELD):
                data["body"][code.removeprefix(BODY_FIELD)] = value
            elif code in _NAMES:
                data[_NAMES[code]] = value
        for name, default in IMPLIED.items():
            if name not in data and default in data:
                data[name] = data[default]
        return cls.model_validate(data)


# A request is one small hash, which Redis keeps in its compact listpack encoding only while
# every value is at most 64 bytes: so each body field is a field of its own (``b:{name}``)
# rather than one JSON value, and every other field is stored under a short code (the long
# names were a third of the hash). Markers (``m:...``) are left alone.
BODY_FIELD = "b:"
FIELD_CODES: Mapping[str, str] = {
    "id": "i",
    "tenant": "t",
    "team_id": "tm",
    "enterprise_id": "e",
    "requester": "q",
    "origin_channel": "oc",
    "card_channel": "cc",
    "card_ts": "ct",
    "job_id": "j",
    "app_user_id": "u",
    "payload_hash": "h",
    "status": "s",
    "created_at": "ca",
    "expires_at": "xa",
    "decided_by": "db",
    "decided_at": "da",
    "reason": "r",
    "submit_error": "se",
    "submit_hint": "sh",
    "job_state": "js",
    "baseline_state": "bs",
    "baseline_reject_times": "br",
    "baseline_updated": "bu",
    "outcome": "o",
    "updated_at": "ua",
    "version": "v",
    "held": "hd",
    "submit_sent_at": "ss",
    "required_approvals": "n",
    "approvers": "ap",
    "language": "lg",
}
_NAMES: Mapping[str, str] = {code: name for name, code in FIELD_CODES.items()}
# Fields not stored when equal to another (the usual case): read back as that one.
IMPLIED: Mapping[str, str] = {"tenant": "team_id", "card_channel": "origin_channel"}
# Kept only while a submit may have to be resumed; dropped once its outcome is known.
BASELINE_FIELDS = ("baseline_state", "baseline_reject_times", "baseline_updated")


def _stamp(seconds: float) -> float:
    """A stored time: to the millisecond, which is all any reader needs."""
    return round(float(seconds), 3)


def _encode(value: object) -> str:
    if isinstance(value, float):
        # repr round-trips a float exactly, so stored timestamps compare equal after a read.
        return repr(value)
    return str(value)
