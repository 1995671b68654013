-- KEYS: the request hash.  ARGV: field, value.  Sets the field only while the request
-- exists, so a marker never recreates a request hash without its expiry.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
