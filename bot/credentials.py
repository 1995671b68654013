"""Never lock the bot's AK/SK: a breaker in Redis, shared by every process, that stops all
MetaStudio calls once the gateway refuses the credentials.

After more than five authentication failures in a row, MetaStudio's gateway locks the AK/SK
for five minutes, for every user of it; so a refusal is never retried as such. The first
refusal anywhere opens the breaker (one hash, ``{prefix}metastudio:auth``) and from then on
no web or worker process sends any call with those credentials. It closes:

- at once when a process runs with other credentials (the hash keeps a fingerprint of the
  credentials, a truncated HMAC that cannot be turned back into them), i.e. after an
  operator fixed the key and restarted;
- after a single probe succeeds: once ``probe_after`` seconds (the gateway's lockout window)
  have passed, one process (a ``SET NX`` lease) lets one real call through. Each refused
  probe doubles the wait, and after five refusals in a row the next probe waits a day, so
  the bot alone never reaches the gateway's limit.

A worker that starts with the same credentials probes at once (the operator may have fixed
the clock or the account), unless the refusals already reached five.
Knows nothing of Slack; the MetaStudio client consults it before every call.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.metastudio.errors import CredentialsHeld
from bot.redis import Keys
from bot.settings import Settings

log = logging.getLogger("bot.credentials")

# The gateway locks after more than five failures in a row; the bot stops probing at five.
MAX_REFUSALS = 5
# The longest wait between probes, and how long the breaker outlives its last refusal.
LONGEST_WAIT = 86400.0
PROBE_LEASE_MS = 60_000
_FINGERPRINT_KEY = b"voicebot credentials fingerprint v1"

# KEYS: state hash, probe lease.  ARGV: fingerprint, now, lease ms, lease token.
# Replies {'closed'} | {'changed'} | {'probe'|'held', kind, code, probe_at}.
_BEFORE = r"""
local fp = redis.call('HGET', KEYS[1], 'fp')
if not fp then
  return {'closed'}
end
if fp ~= ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'changed'}
end
local h = redis.call('HMGET', KEYS[1], 'kind', 'code', 'probe_at')
local probe_at = tonumber(h[3]) or 0
if tonumber(ARGV[2]) >= probe_at and
   redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[3]) then
  return {'probe', h[1] or '', h[2] or '', tostring(probe_at)}
end
return {'held', h[1] or '', h[2] or '', tostring(probe_at)}
"""

# KEYS: state hash, probe lease, refusal counter.
# ARGV: fingerprint, now, kind, code, request id, probe_after, max refusals, longest wait.
# Replies {refusals in a row, probe_at}.
_REFUSED = r"""
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
end
local now = tonumber(ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], 'refusals', 1)
local longest = tonumber(ARGV[8])
local wait = math.min(tonumber(ARGV[6]) * (2 ^ (n - 1)), longest)
if n >= tonumber(ARGV[7]) then
  wait = longest
end
local probe_at = now + wait
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'kind', ARGV[3], 'code', ARGV[4], 'rid', ARGV[5],
           'last', ARGV[2], 'probe_at', tostring(probe_at))
redis.call('HSETNX', KEYS[1], 'opened', ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(wait + longest))
redis.call('DEL', KEYS[2])
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], 2592000)
return {n, tostring(probe_at)}
"""

# KEYS: state hash, probe lease.  ARGV: fingerprint.
_ACCEPTED = r"""
if redis.call('HGET', KEYS[1], 'fp') == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
"""

# KEYS: state hash.  ARGV: fingerprint, now, max refusals.
_PROBE_SOON = r"""
local h = redis.call('HMGET', KEYS[1], 'fp', 'refusals')
if h[1] == ARGV[1] and (tonumber(h[2]) or 0) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'probe_at', ARGV[2])
  return 1
end
return 0
"""


def fingerprint(settings: Settings) -> str:
    """A short, one-way tag of the MetaStudio credentials in use: equal tags, same keys."""
    if settings.huaweicloud_sdk_ak and settings.huaweicloud_sdk_sk:
        parts = [
            "aksk",
            settings.huaweicloud_sdk_ak.get_secret_value(),
            settings.huaweicloud_sdk_sk.get_secret_value(),
        ]
    else:
        password = settings.iam_password.get_secret_value() if settings.iam_password else ""
        parts = [
            "iam",
            settings.iam_user or "",
            settings.iam_domain or "",
            password,
            settings.metastudio_region,
        ]
    parts.append(settings.huaweicloud_sdk_project_id or "")
    payload = "\0".join(parts).encode("utf-8")
    return hmac.new(_FINGERPRINT_KEY, payload, hashlib.sha256).hexdigest()[:16]


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class CredentialsBreaker:
    """The client's guard (``bot.metastudio.client.CredentialsGuard``), kept in Redis.

    ``ok`` is what this process last saw (for the metrics); ``on_refused`` callbacks get
    the kind of each refusal this process received.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        fingerprint: str,
        *,
        probe_after: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys = Keys(prefix)
        self._redis = redis
        self._key = keys("metastudio", "auth")
        self._probe_key = keys("metastudio", "auth", "probe")
        self.count_key = keys("metastudio", "auth", "refused")
        self._fingerprint = fingerprint
        self._probe_after = probe_after
        self._clock = clock
        self._before = redis.register_script(_BEFORE)
        self._refused = redis.register_script(_REFUSED)
        self._accepted = redis.register_script(_ACCEPTED)
        self._probe_soon = redis.register_script(_PROBE_SOON)
        self.ok = True
        self.on_refused: list[Callable[[str], None]] = []

    def __repr__(self) -> str:
        return f"CredentialsBreaker(key={self._key!r})"

    async def before_call(self) -> bool:
        """Raise ``CredentialsHeld`` while the credentials are refused; True when this call
        is the one probe that may find them working again."""
        now = self._clock()
        try:
            reply = await self._before(
                keys=[self._key, self._probe_key],
                args=[self._fingerprint, repr(now), PROBE_LEASE_MS, secrets.token_hex(8)],
            )
        except (RedisError, OSError) as error:
            # Without Redis the breaker cannot tell; a refusal is still never retried.
            log.warning(
                "credentials breaker unavailable (%s); calling MetaStudio", type(error).__name__
            )
            return False
        state = _text(reply[0])
        if state == "changed":
            log.warning("MetaStudio credentials changed; calls resume")
        if state in ("closed", "changed"):
            self.ok = True
            return False
        kind, code, probe_at = _text(reply[1]), _text(reply[2]), float(_text(reply[3]))
        if state == "probe":
            log.info("MetaStudio credentials were refused (%s); sending one probe", kind)
            return True
        self.ok = False
        wait = max(0.0, probe_at - now)
        raise CredentialsHeld(
            f"MetaStudio refused the bot's credentials ({code or kind}); no call is sent "
            "until an operator fixes them or a single probe finds them working.",
            kind=kind,
            error_code=code,
            retry_in=wait if math.isfinite(wait) else None,
        )

    async def refused(self, kind: str, error_code: str, request_id: str | None) -> None:
        """Open the breaker (or keep it open) after the gateway refused the credentials."""
        self.ok = False
        for callback in self.on_refused:
            callback(kind)
        try:
            count, probe_at = await self._refused(
                keys=[self._key, self._probe_key, self.count_key],
                args=[
                    self._fingerprint,
                    repr(self._clock()),
                    kind,
                    error_code,
                    request_id or "",
                    self._probe_after,
                    MAX_REFUSALS,
                    LONGEST_WAIT,
                ],
            )
        except (RedisError, OSError) as error:
            log.error(
                "MetaStudio refused the credentials (%s) and the breaker could not be opened (%s)",
                kind,
                type(error).__name__,
            )
            return
        log.error(
            "MetaStudio refused the bot's credentials (%s %s, request id %s; %s in a row); "
            "no calls until they change or a probe in %.0fs succeeds",
            error_code,
            kind,
            request_id,
            _text(count),
            float(_text(probe_at)) - self._clock(),
        )

    async def accepted(self) -> None:
        """The probe got past the gateway: close the breaker for everyone."""
        self.ok = True
        try:
            closed = await self._accepted(
                keys=[self._key, self._probe_key], args=[self._fingerprint]
            )
        except (RedisError, OSError) as error:
            log.warning("credentials breaker could not be closed (%s)", type(error).__name__)
            return
        if closed:
            log.warning("MetaStudio accepts the bot's credentials again; calls resume")

    async def probe_soon(self) -> None:
        """A process started: let the next call probe, unless the refusals reached five."""
        try:
            await self._probe_soon(
                keys=[self._key], args=[self._fingerprint, repr(self._clock()), MAX_REFUSALS]
            )
        except (RedisError, OSError) as error:
            log.warning("credentials breaker unavailable (%s)", type(error).__name__)

    async def refresh(self) -> None:
        """Bring ``ok`` up to date with the breaker in Redis (for the metrics)."""
        try:
            stored = await self._redis.hget(self._key, "fp")  # type: ignore[misc]
        except (RedisError, OSError):
            return
        self.ok = stored is None or _text(stored) != self._fingerprint

    async def refusals(self) -> int:
        """Refused authentications counted so far, by every process."""
        value = await self._redis.get(self.count_key)
        return int(value) if value is not None else 0
