-- Gives a reservation back when no card could be posted: the request never existed.
-- KEYS: the job's index, the requester's zset.  ARGV: index field, request id.
local held = redis.call('HGET', KEYS[1], ARGV[1])
local mine = '~' .. ARGV[2] .. '@'
if held and string.sub(held, 1, #mine) == mine then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
