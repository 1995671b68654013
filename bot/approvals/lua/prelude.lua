-- What every auditing script shares: the graph (__GRAPH__, from bot.approvals.model), the
-- derived status sets, load/allowed/audit/move.
--
-- The calling convention of every approval script:
--   constants are rendered into the text at load time (__NAME__ placeholders);
--   the script's own KEYS and ARGV first, in the order its header gives: for the scripts
--   that change a request, KEYS[1] the request hash, KEYS[2] the expiry zset, KEYS[3] the
--   tracked index;
--   then what auditing needs, last, as in bot.audit (and the permission scripts): the
--   audit stream is the last KEY; the job index key prefix, the stream's maxlen and the
--   job index's audit maxlen are the last three ARGV.
-- They reply with the flat hash after the change (HGETALL), or false when nothing changed.
local GRAPH = __GRAPH__
local REVIEWING = __REVIEWING__
local RESUMABLE = __RESUMABLE__
local BASELINE = __BASELINE__
local AUDIT_FIELDS = __AUDIT_FIELDS__
local ACTIVE = __ACTIVE__
local JOB_INDEX_TTL = __JOB_INDEX_TTL__
-- Seconds a request outlives its expiry (the store's retention).
local RETENTION = __RETENTION__

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
  local id = redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[#ARGV - 1], '*', unpack(args))
  if ev.job_id ~= nil and ev.job_id ~= '' then
    job_index_add(ARGV[#ARGV - 2] .. ev.job_id, id, tonumber(ARGV[#ARGV]), JOB_INDEX_TTL)
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
  index_active(KEYS[3], h, to)
  h.status = to
end
