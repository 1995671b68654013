-- ARGV[1..]: request id, now.
local id, now = ARGV[1], ARGV[2]
local h = load(KEYS[1])
if h == nil or not allowed(h.status, 'expired') then
  -- The record is gone (retention ran out) or was decided: the index entry is stale.
  redis.call('ZREM', KEYS[2], id)
  return false
end
if tonumber(now) < tonumber(h.expires_at) then
  return false
end
move(KEYS[1], KEYS[2], h, 'expired', now)
keep(KEYS[1], h, now, RETENTION)
audit(event(h, 'voicebot', 'expired', 'no decision before expiry'))
return redis.call('HGETALL', KEYS[1])
