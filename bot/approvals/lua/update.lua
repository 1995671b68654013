-- KEYS: hash.  ARGV: fields (JSON object; null deletes), now.
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
