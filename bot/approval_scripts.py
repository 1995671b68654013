"""The Lua sources behind every approval state change, each one atomic inside Redis.

A transition and its audit record are written by the same script, so no reader ever sees a
status change without its audit entry (or the other way round), and two processes racing on
the same request are serialised by Redis itself. The transition graph is not written here:
``build_sources`` renders it from the one Python dict in ``bot.approvals``.

The job's index key (``bot.audit``) depends on stored data (the job id), so the scripts
build it from a key prefix: they target a single Redis, not a Cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.audit import JOB_INDEX_TTL, LUA_JOB_INDEX_ADD

# Every script reads and writes a request's fields by name through these: ``C(name)`` is the
# code a field is stored under (``bot.approvals.FIELD_CODES``).
_CODES = r"""
local CODES = __CODES__
local NAMES = {}
for name, code in pairs(CODES) do
  NAMES[code] = name
end
local function C(name)
  return CODES[name] or name
end
"""

_PRELUDE = r"""
local GRAPH = __GRAPH__
local REVIEWING = __REVIEWING__
local RESUMABLE = __RESUMABLE__
local BASELINE = __BASELINE__
local AUDIT_FIELDS = __AUDIT_FIELDS__
local ACTIVE = __ACTIVE__
local JOB_INDEX_TTL = __JOB_INDEX_TTL__

local function load(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then
    return nil, flat
  end
  local h = {}
  for i = 1, #flat, 2 do
    h[NAMES[flat[i]] or flat[i]] = flat[i + 1]
  end
  return h, flat
end

local function allowed(from, to)
  local nexts = GRAPH[from]
  return nexts ~= nil and nexts[to] == true
end

-- Same layout as bot.audit: every field (empty when unset), the server clock in the stream
-- id, and the id recorded in the job's index.
local function audit(ev)
  local args = {}
  for _, name in ipairs(AUDIT_FIELDS) do
    local value = ev[name]
    if value == nil then
      value = ''
    end
    args[#args + 1] = name
    args[#args + 1] = value
  end
  local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(args))
  if ev.job_id ~= nil and ev.job_id ~= '' then
    job_index_add(ARGV[1] .. ev.job_id, id, tonumber(ARGV[3]), JOB_INDEX_TTL)
  end
  return id
end

local function event(h, actor, action, detail)
  return {
    actor = actor, action = action, tenant = h.tenant or h.team_id,
    channel = h.card_channel or h.origin_channel, target = h.requester, role = '',
    job_id = h.job_id, request_id = h.id, payload_hash = h.payload_hash,
    detail = detail or '',
  }
end

-- Records outlive their expiry by the retention window so nothing stays forever.
local function keep(key, h, now, retention)
  local left = tonumber(h.expires_at) - tonumber(now)
  if left < 0 then
    left = 0
  end
  local seconds = math.ceil(left + tonumber(retention))
  redis.call('EXPIRE', key, seconds)
  return seconds
end

-- The tracked index lists the requests a worker must still be tracking: request id -> the
-- job id while the job is under review (the review sweep watches it), else '' (it has a
-- queue job of its own, which a periodic pass re-enqueues if it was lost).
local function index_active(tracked_key, h, status)
  if ACTIVE[status] then
    local watched = ''
    if REVIEWING[status] then
      watched = h.job_id
    end
    redis.call('HSET', tracked_key, h.id, watched)
  else
    redis.call('HDEL', tracked_key, h.id)
  end
end

-- The baseline only serves a submit that may have to be resumed; past that it goes.
local function move(key, expiry_key, h, to, now)
  redis.call('HSET', key, C('status'), to, C('updated_at'), now)
  redis.call('HINCRBY', key, C('version'), 1)
  if not RESUMABLE[to] then
    for _, name in ipairs(BASELINE) do
      redis.call('HDEL', key, C(name))
    end
  end
  if h.status == 'pending' then
    redis.call('ZREM', expiry_key, h.id)
  end
  index_active(KEYS[4], h, to)
  h.status = to
end
"""

# Scripts that audit share one calling convention:
#   KEYS[1] the request hash, KEYS[2] the expiry zset, KEYS[3] the audit stream,
#   KEYS[4] the tracked index;
#   ARGV[1] the job index key prefix, ARGV[2] the audit stream maxlen,
#   ARGV[3] the job index's audit maxlen, ARGV[4] the retention in seconds; their own ARGV follow.
# They reply with the flat hash after the change (HGETALL), or false when nothing changed.

# KEYS[5]: the job's index.  ARGV[5]: the fields (JSON object of strings), ARGV[6]: the
# job index field of the workspace's open request, which must hold this request's
# reservation (see _RESERVE).  Replies 1 (stored), 0 (the id is taken) or -1 (the
# reservation ran out and another request holds the job now).
_CREATE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local fields = cjson.decode(ARGV[5])
local held = redis.call('HGET', KEYS[5], ARGV[6])
local mine = '~' .. fields.id .. '@'
if not held or string.sub(held, 1, #mine) ~= mine then
  return -1
end
redis.call('HSET', KEYS[5], ARGV[6], fields.id)
local args = {}
for name, value in pairs(fields) do
  args[#args + 1] = C(name)
  args[#args + 1] = value
end
redis.call('HSET', KEYS[1], unpack(args))
if fields.status == 'pending' then
  redis.call('ZADD', KEYS[2], fields.expires_at, fields.id)
end
index_active(KEYS[4], fields, fields.status)
redis.call('HSET', KEYS[5], 'r:' .. fields.id, '')
redis.call('EXPIRE', KEYS[5], JOB_INDEX_TTL)
keep(KEYS[1], fields, fields.created_at, ARGV[4])
audit(event(fields, fields.requester, 'requested', ''))
if fields.status == 'auto_approved' then
  audit(event(fields, 'voicebot', 'auto_approved', 'approval not required'))
end
return 1
"""

# KEYS: hash.  ARGV: fields (JSON object; null deletes), now.
_UPDATE = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
for name, value in pairs(cjson.decode(ARGV[1])) do
  if value == cjson.null then
    redis.call('HDEL', KEYS[1], C(name))
  else
    redis.call('HSET', KEYS[1], C(name), value)
  end
end
redis.call('HSET', KEYS[1], C('updated_at'), ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""

# ARGV[5..]: payload hash (full, or a prefix of at least min_hash chars), actor,
#            approve ('1'/'0'), reason ('' = none), now, allow self ('1'/'0'), min_hash,
#            the actor's workspace (enterprise or team id), the channel of the click.
# Replies {outcome, flat hash}; the hash is left out for not_found and wrong_workspace.
_DECIDE = r"""
local retention, given, actor, approve = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local reason, now, allow_self, min_hash = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local tenant, channel = ARGV[12], ARGV[13]
local h, flat = load(KEYS[1])
if h == nil then
  return {'not_found'}
end
-- Only the request's own workspace (or Grid org) decides, and only from the card's channel
-- (a Slack Connect channel shows the card to other organisations too). A click from
-- elsewhere learns nothing of the request.
if tenant ~= (h.tenant or h.team_id) then
  audit(event(h, actor, 'decision_refused', 'another workspace: ' .. tenant))
  return {'wrong_workspace'}
end
if channel ~= (h.card_channel or h.origin_channel) then
  audit(event(h, actor, 'decision_refused', 'another channel: ' .. channel))
  return {'wrong_channel', flat}
end
if #given < min_hash or string.sub(h.payload_hash, 1, #given) ~= given then
  audit(event(h, actor, 'decision_refused', 'hash_mismatch'))
  return {'hash_mismatch', flat}
end
if h.status == 'pending' and tonumber(now) >= tonumber(h.expires_at) then
  move(KEYS[1], KEYS[2], h, 'expired', now)
  keep(KEYS[1], h, now, retention)
  audit(event(h, 'voicebot', 'expired', 'decision by ' .. actor .. ' came after expiry'))
  return {'expired', redis.call('HGETALL', KEYS[1])}
end
if h.status == 'expired' then
  return {'expired', flat}
end
if h.status ~= 'pending' then
  return {'already_decided', flat}
end
if actor == h.requester and allow_self ~= '1' then
  audit(event(h, actor, 'decision_refused', 'self_approval'))
  return {'self_approval', flat}
end
local to = 'rejected'
if approve == '1' then
  to = 'approved'
end
move(KEYS[1], KEYS[2], h, to, now)
redis.call('HSET', KEYS[1], C('decided_by'), actor, C('decided_at'), now)
if reason ~= '' then
  redis.call('HSET', KEYS[1], C('reason'), reason)
end
keep(KEYS[1], h, now, retention)
audit(event(h, actor, to, reason))
return {to, redis.call('HGETALL', KEYS[1])}
"""

# ARGV[5..]: to, expected (JSON array, '' = any), actor, audit action ('' = none),
#            audit detail, now, fields (JSON object; null deletes).
_TRANSITION = r"""
local to, expected, actor, action = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local detail, now = ARGV[9], ARGV[10]
local h = load(KEYS[1])
if h == nil then
  return false
end
if expected ~= '' then
  local ok = false
  for _, status in ipairs(cjson.decode(expected)) do
    if status == h.status then
      ok = true
    end
  end
  if not ok then
    return false
  end
end
if not allowed(h.status, to) then
  return false
end
move(KEYS[1], KEYS[2], h, to, now)
for name, value in pairs(cjson.decode(ARGV[11])) do
  if value == cjson.null then
    redis.call('HDEL', KEYS[1], C(name))
  else
    redis.call('HSET', KEYS[1], C(name), value)
  end
end
keep(KEYS[1], h, now, ARGV[4])
if action ~= '' then
  audit(event(h, actor, action, detail))
end
return redis.call('HGETALL', KEYS[1])
"""

# ARGV[5..]: request id, now.
_EXPIRE = r"""
local id, now = ARGV[5], ARGV[6]
local h = load(KEYS[1])
if h == nil or h.status ~= 'pending' then
  -- The record is gone (retention ran out) or was decided: the index entry is stale.
  redis.call('ZREM', KEYS[2], id)
  return false
end
if tonumber(now) < tonumber(h.expires_at) then
  return false
end
move(KEYS[1], KEYS[2], h, 'expired', now)
keep(KEYS[1], h, now, ARGV[4])
audit(event(h, 'voicebot', 'expired', 'no decision before expiry'))
return redis.call('HGETALL', KEYS[1])
"""


# One open request per job and workspace, and each requester's limits, checked and taken in
# one step before the card is posted. The job's index holds the workspace's open request
# under 'o:{tenant}': '~{id}@{deadline ms}' while its card is being posted (a reservation
# that lapses by itself if that process dies), then the request id. The requester's zset
# holds their recent request ids scored by creation time (ms).
# KEYS: the job's index, the requester's zset.
# ARGV: index field, request id, now (ms), reservation hold (ms), request key prefix,
#       max open requests, max requests per window, window (ms), the zset's lifetime (ms).
# Replies {'ok'}, {'open', id}, {'busy', id}, {'too_many', open count, ms when the soonest
# open request expires} or {'rate_limited', ms when the oldest recent request leaves the window}.
_RESERVE = r"""
local field, id, now, hold = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix, max_open, rate_max = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local window, lifetime = tonumber(ARGV[8]), ARGV[9]
local function open_state(rid)
  local got = redis.call('HMGET', prefix .. rid, C('status'), C('expires_at'))
  local status, expires = got[1], got[2]
  if not status or GRAPH[status] == nil then
    return nil
  end
  if status == 'pending' and tonumber(expires) * 1000 <= now then
    return nil
  end
  return status, tonumber(expires) * 1000
end
local held = redis.call('HGET', KEYS[1], field)
if held then
  local rid, deadline = string.match(held, '^~(.-)@(%d+)$')
  if rid then
    if tonumber(deadline) > now then
      return {'busy', rid}
    end
  elseif open_state(held) then
    return {'open', held}
  end
end
local open, recent, oldest, soonest = 0, 0, nil, nil
local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local rid, at = entries[i], tonumber(entries[i + 1])
  local status, expires = open_state(rid)
  local live = false
  if status == 'pending' then
    live = true
    if soonest == nil or expires < soonest then
      soonest = expires
    end
  elseif status == nil and redis.call('EXISTS', prefix .. rid) == 0 and at + hold > now then
    live = true
    if soonest == nil or at + hold < soonest then
      soonest = at + hold
    end
  end
  if live then
    open = open + 1
  end
  if at > now - window then
    recent = recent + 1
    if oldest == nil or at < oldest then
      oldest = at
    end
  elseif not live then
    redis.call('ZREM', KEYS[2], rid)
  end
end
if open >= max_open then
  return {'too_many', tostring(open), tostring(soonest)}
end
if recent >= rate_max then
  return {'rate_limited', tostring(oldest + window)}
end
redis.call('HSET', KEYS[1], field, '~' .. id .. '@' .. tostring(now + hold))
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], JOB_INDEX_TTL)
end
redis.call('ZADD', KEYS[2], now, id)
redis.call('PEXPIRE', KEYS[2], lifetime)
return {'ok'}
"""

# Gives a reservation back when no card could be posted: the request never existed.
# KEYS: the job's index, the requester's zset.  ARGV: index field, request id.
_UNRESERVE = r"""
local held = redis.call('HGET', KEYS[1], ARGV[1])
local mine = '~' .. ARGV[2] .. '@'
if held and string.sub(held, 1, #mine) == mine then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""


# The notify lease: one process at a time updates a request's card and posts its replies.
# KEYS: the lease.  ARGV: token, lease ms.  Replies 1 while the lease is still ours.
_RENEW = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: the lease, the request hash.  ARGV: token, the render key the holder caught up with
# ('{version}:{job_state}[:held:{held}]'; '*' releases regardless).  Replies 1 (released),
# 0 (the request changed meanwhile: the lease is kept and the holder goes round again) or
# -1 (the lease was no longer ours).
_RELEASE = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local now = redis.call('HMGET', KEYS[2], C('version'), C('job_state'), C('held'))
if ARGV[2] ~= '*' and now[1] then
  local render = now[1] .. ':' .. (now[2] or '')
  if now[3] then
    render = render .. ':held:' .. now[3]
  end
  if render ~= ARGV[2] then
    return 0
  end
end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: the request hash.  ARGV: field, value.  Sets the field only while the request
# exists, so a marker never recreates a request hash without its expiry.
_MARK = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class ScriptSources:
    """The complete Lua text of each approval script, graph and audit layout included."""

    create: str
    update: str
    decide: str
    transition: str
    expire: str
    renew: str
    release: str
    reserve: str
    unreserve: str = _UNRESERVE
    mark: str = _MARK


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _lua_graph(graph: Mapping[str, Sequence[str]]) -> str:
    rows = []
    for source, targets in graph.items():
        inner = ", ".join(f"[{_lua_string(t)}] = true" for t in targets)
        rows.append(f"[{_lua_string(source)}] = {{{inner}}}")
    return "{" + ", ".join(rows) + "}"


def _lua_set(items: Sequence[str]) -> str:
    return "{" + ", ".join(f"[{_lua_string(i)}] = true" for i in items) + "}"


def _lua_map(items: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in items.items()) + "}"


def _lua_list(items: Sequence[str]) -> str:
    return "{" + ", ".join(_lua_string(i) for i in items) + "}"


def build_sources(
    graph: Mapping[str, Sequence[str]],
    audit_fields: Sequence[str],
    active: Sequence[str],
    reviewing: Sequence[str],
    codes: Mapping[str, str],
    resumable: Sequence[str],
    baseline: Sequence[str],
) -> ScriptSources:
    """Render every script with ``graph`` (status -> allowed next statuses), the audit layout,
    the ``active`` statuses (those a worker is still tracking), the ``reviewing`` ones among
    them (left to the review sweep), the field ``codes``, and the ``baseline`` fields kept
    only in ``resumable`` statuses baked in."""
    fields = _CODES.replace("__CODES__", _lua_map(codes))
    prelude = fields + LUA_JOB_INDEX_ADD + (
        _PRELUDE.replace("__GRAPH__", _lua_graph(graph))
        .replace("__RESUMABLE__", _lua_set(resumable))
        .replace("__REVIEWING__", _lua_set(reviewing))
        .replace("__BASELINE__", _lua_list(baseline))
        .replace("__AUDIT_FIELDS__", _lua_list(audit_fields))
        .replace("__ACTIVE__", _lua_set(active))
        .replace("__JOB_INDEX_TTL__", str(JOB_INDEX_TTL))
    )
    return ScriptSources(
        create=prelude + _CREATE,
        update=fields + _UPDATE,
        decide=prelude + _DECIDE,
        transition=prelude + _TRANSITION,
        expire=prelude + _EXPIRE,
        renew=_RENEW,
        release=fields + _RELEASE,
        reserve=prelude + _RESERVE,
    )
