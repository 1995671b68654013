-- KEYS[4]: the job's index.  ARGV[1]: the fields (JSON object of strings), ARGV[2]: the
-- job index field of the workspace's open request, which must hold this request's
-- reservation (see reserve.lua).  Replies 1 (stored), 0 (the id is taken) or -1 (the
-- reservation ran out and another request holds the job now).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local fields = cjson.decode(ARGV[1])
local held = redis.call('HGET', KEYS[4], ARGV[2])
local mine = '~' .. fields.id .. '@'
if not held or string.sub(held, 1, #mine) ~= mine then
  return -1
end
redis.call('HSET', KEYS[4], ARGV[2], fields.id)
local args = {}
for name, value in pairs(fields) do
  args[#args + 1] = C(name)
  args[#args + 1] = value
end
redis.call('HSET', KEYS[1], unpack(args))
if fields.status == 'pending' then
  redis.call('ZADD', KEYS[2], fields.expires_at, fields.id)
end
index_active(KEYS[3], fields, fields.status)
redis.call('HSET', KEYS[4], 'r:' .. fields.id, '')
redis.call('EXPIRE', KEYS[4], JOB_INDEX_TTL)
keep(KEYS[1], fields, fields.created_at, RETENTION)
audit(event(fields, fields.requester, 'requested', ''))
if fields.status == 'auto_approved' then
  audit(event(fields, 'voicebot', 'auto_approved', 'approval not required'))
end
return 1
