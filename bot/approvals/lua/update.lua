-- KEYS: hash.  ARGV: fields (JSON object; null deletes), now.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
set_fields(KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], C('updated_at'), ARGV[2])
return redis.call('HGETALL', KEYS[1])
