"""The audit stream: an append-only Redis stream of who did what, when and where.

Every entry goes to ``{prefix}audit`` (trimmed to about ``maxlen`` entries) and, when it
names a job, its stream id goes in the job's index so a job's history is one short read.
The index is one small hash per job, ``{prefix}job:{job_id}``, shared with the approval
store: ``a:{stream id}`` fields for audit entries, ``r:{request id}`` fields for the job's
requests. One small hash is Redis's most compact shape for both (a list and a set of
strings each cost more than the whole hash). Every entry carries every field (empty when
unset): Redis then stores the field names once per stream node instead of once per entry.
The field layout is defined once here and shared three ways, so a record always has the
same shape whoever writes it:

- ``AuditLog.append``: one event, on its own (a Lua script, so the stream and the index or
  neither);
- ``AuditLog.queue``: inside the caller's MULTI pipeline, atomic with its other writes;
- ``LUA_AUDIT_APPEND`` + ``AuditLog.script_keys``/``script_args``: inside the caller's Lua
  script, atomic with the change it records.

The time of an event is the Redis server's clock, read back from the stream id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.redis import Keys, StoreUnavailable, unavailable_on_redis_errors


class AuditAction(StrEnum):
    grant = "grant"
    revoke = "revoke"
    allowlist = "allowlist"
    policy = "policy"
    approval_counted = "approval_counted"
    requested = "requested"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    submitted = "submitted"
    submit_failed = "submit_failed"
    review_passed = "review_passed"
    review_failed = "review_failed"
    auto_approved = "auto_approved"
    decision_refused = "decision_refused"
    succeeded = "succeeded"
    training_failed = "training_failed"


AUDIT_FIELDS = (
    "actor",
    "action",
    "tenant",
    "channel",
    "target",
    "role",
    "job_id",
    "request_id",
    "payload_hash",
    "detail",
)

# A job keeps the ids of its newest entries, up to this many fields in its index; past it,
# the oldest are dropped down to nine tenths of it.
JOB_INDEX_MAXLEN = 1_000
# A job's index outlives its requests (30 days of retention) and then goes.
JOB_INDEX_TTL = 90 * 86400
# Field prefixes in a job's index hash.
AUDIT_ID_FIELD = "a:"
REQUEST_ID_FIELD = "r:"
_SCAN_PAGE = 500


class AuditEvent(BaseModel):
    """One audit record. ``id`` and ``ts`` are set by Redis when the event is stored."""

    model_config = ConfigDict(frozen=True)

    actor: str
    action: str
    tenant: str | None = None
    channel: str | None = None
    target: str | None = None
    role: str | None = None
    job_id: str | None = None
    request_id: str | None = None
    payload_hash: str | None = None
    detail: str | None = None
    id: str | None = None
    ts: datetime | None = None

    def fields(self) -> list[str]:
        """Stream field/value pairs, flat, every field of ``AUDIT_FIELDS`` in order."""
        flat: list[str] = []
        for name in AUDIT_FIELDS:
            value = getattr(self, name)
            flat += [name, "" if value is None else str(value)]
        return flat

    @classmethod
    def from_entry(cls, entry_id: str, values: Mapping[str, str]) -> AuditEvent:
        known = {name: values[name] for name in AUDIT_FIELDS if values.get(name)}
        return cls(id=entry_id, ts=stream_id_time(entry_id), **known)


def stream_id_time(entry_id: str) -> datetime:
    millis = int(entry_id.split("-", 1)[0])
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _stream_order(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def index_audit_ids(fields: list[str]) -> list[str]:
    """The audit stream ids among a job index's fields, oldest first."""
    ids = [f[len(AUDIT_ID_FIELD) :] for f in fields if f.startswith(AUDIT_ID_FIELD)]
    return sorted(ids, key=_stream_order)


def index_request_ids(fields: list[str]) -> list[str]:
    """The request ids among a job index's fields."""
    return sorted(f[len(REQUEST_ID_FIELD) :] for f in fields if f.startswith(REQUEST_ID_FIELD))


# Defines ``job_index_add(job_key, id, maxlen, ttl)``: records an audit stream id in the
# job's index hash, dropping the oldest ids past ``maxlen`` (a rare, whole-index pass).
LUA_JOB_INDEX_ADD = """
local function job_index_add(job_key, id, maxlen, ttl)
  redis.call('HSET', job_key, 'a:' .. id, '')
  redis.call('EXPIRE', job_key, ttl)
  if redis.call('HLEN', job_key) <= maxlen then
    return
  end
  local ids = {}
  for _, field in ipairs(redis.call('HKEYS', job_key)) do
    if string.sub(field, 1, 2) == 'a:' then
      local ms, seq = string.match(field, '^a:(%d+)-(%d+)$')
      ids[#ids + 1] = {tonumber(ms), tonumber(seq), field}
    end
  end
  table.sort(ids, function(x, y)
    return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2])
  end)
  -- Trim a tenth below the cap, so the scan above runs once per tenth of it appended.
  for i = 1, #ids - (maxlen - math.ceil(maxlen / 10)) do
    redis.call('HDEL', job_key, ids[i][3])
  end
end
"""

# Defines ``audit_append(key_index, arg_index)``. The audit keys must be the last KEYS
# (main stream, then the job index if the event names a job) and the audit args the last
# ARGV, as built by ``AuditLog.script_keys``/``script_args``. Returns the stream id.
LUA_AUDIT_APPEND = (
    LUA_JOB_INDEX_ADD
    + """
local function audit_append(key_index, arg_index)
  local stream_key = KEYS[key_index]
  local job_key = KEYS[key_index + 1]
  local maxlen = ARGV[arg_index]
  local job_maxlen = tonumber(ARGV[arg_index + 1])
  local job_ttl = tonumber(ARGV[arg_index + 2])
  local fields = {}
  for i = arg_index + 3, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  local id = redis.call('XADD', stream_key, 'MAXLEN', '~', maxlen, '*', unpack(fields))
  if job_key then
    job_index_add(job_key, id, job_maxlen, job_ttl)
  end
  return id
end
"""
)


class AuditLog:
    def __init__(
        self, redis: Redis, prefix: str, maxlen: int = 100_000, job_maxlen: int = JOB_INDEX_MAXLEN
    ) -> None:
        self._redis = redis
        self._keys = Keys(prefix)
        self.maxlen = maxlen
        self.job_maxlen = job_maxlen
        self.stream_key = self._keys("audit")
        self._append = redis.register_script(LUA_AUDIT_APPEND + "return audit_append(1, 1)")

    def job_index_key(self, job_id: str) -> str:
        """The job's index hash: its audit entries' stream ids and its request ids."""
        return self._keys("job", job_id)

    def script_keys(self, event: AuditEvent) -> list[str]:
        """The KEYS to put last when calling a script that uses ``LUA_AUDIT_APPEND``."""
        if event.job_id:
            return [self.stream_key, self.job_index_key(event.job_id)]
        return [self.stream_key]

    def script_args(self, event: AuditEvent) -> list[str]:
        """The ARGV to put last when calling a script that uses ``LUA_AUDIT_APPEND``."""
        return [str(self.maxlen), str(self.job_maxlen), str(JOB_INDEX_TTL), *event.fields()]

    async def append(self, event: AuditEvent) -> str:
        """Store the event; returns its stream id. Raises ``StoreUnavailable``."""
        with unavailable_on_redis_errors(StoreUnavailable):
            entry_id = await self._append(
                keys=self.script_keys(event), args=self.script_args(event)
            )
        return str(entry_id)

    async def queue(self, pipe: Pipeline, event: AuditEvent) -> None:
        """Add the event's writes to a MULTI pipeline the caller executes."""
        # A script bound to a pipeline is loaded before the MULTI runs (redis-py).
        await self._append(keys=self.script_keys(event), args=self.script_args(event), client=pipe)

    async def read(
        self,
        *,
        job_id: str | None = None,
        request_id: str | None = None,
        tenant: str | None = None,
        limit: int = 50,
        scan_limit: int = 10_000,
    ) -> list[AuditEvent]:
        """The newest ``limit`` matching events, oldest first; ``tenant`` keeps only one
        workspace's (or Grid org's) events.

        Filtering by request or tenant without a job scans at most ``scan_limit`` recent
        entries.
        """
        if limit <= 0:
            return []
        if job_id is not None:
            return await self._read_job(job_id, request_id, tenant, limit)

        def wanted(values: Mapping[str, str]) -> bool:
            return (request_id is None or values.get("request_id") == request_id) and (
                tenant is None or values.get("tenant") == tenant
            )

        found: list[AuditEvent] = []
        upper = "+"
        scanned = 0
        with unavailable_on_redis_errors(StoreUnavailable):
            while len(found) < limit and scanned < scan_limit:
                page_size = min(_SCAN_PAGE, scan_limit - scanned)
                if request_id is None and tenant is None:
                    page_size = min(page_size, limit - len(found))
                page = await self._redis.xrevrange(
                    self.stream_key, max=upper, min="-", count=page_size
                )
                for entry_id, values in page:
                    if wanted(values):
                        found.append(AuditEvent.from_entry(entry_id, values))
                        if len(found) == limit:
                            break
                scanned += len(page)
                if len(page) < page_size:
                    break
                upper = "(" + page[-1][0]
        found.reverse()
        return found

    async def _read_job(
        self, job_id: str, request_id: str | None, tenant: str | None, limit: int
    ) -> list[AuditEvent]:
        """A job's entries through its index; entries trimmed from the stream are gone."""
        with unavailable_on_redis_errors(StoreUnavailable):
            fields = await self._redis.hkeys(self.job_index_key(job_id))  # type: ignore[misc]
            ids = index_audit_ids(list(fields))
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry_id in ids:
                    pipe.xrange(self.stream_key, min=entry_id, max=entry_id, count=1)
                pages = await pipe.execute()
        found = [
            AuditEvent.from_entry(entry_id, values)
            for page in pages
            for entry_id, values in page
            if (request_id is None or values.get("request_id") == request_id)
            and (tenant is None or values.get("tenant") == tenant)
        ]
        return found[-limit:]
