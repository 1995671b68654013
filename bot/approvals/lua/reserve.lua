-- One open request per job and workspace, and each requester's limits, checked and taken in
-- one step before the card is posted. The job's index holds the workspace's open request
-- under 'o:{tenant}': '~{id}@{deadline ms}' while its card is being posted (a reservation
-- that lapses by itself if that process dies), then the request id. The requester's zset
-- holds their recent request ids scored by creation time (ms).
-- KEYS: the job's index, the requester's zset.
-- ARGV: index field, request id, now (ms), reservation hold (ms), request key prefix,
--       max open requests, max requests per window, window (ms), the zset's lifetime (ms).
-- Replies {'ok'}, {'open', id}, {'busy', id}, {'too_many', open count, ms when the soonest
-- open request expires} or {'rate_limited', ms when the oldest recent request leaves the
-- window}.
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
