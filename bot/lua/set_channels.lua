-- KEYS: admins, channels, then the audit keys.
-- ARGV: actor, actor is bootstrap, n, channel x n, then the audit arguments.
if not actor_is_admin(KEYS[1], ARGV[1], ARGV[2]) then
  return {'denied', redis.call('SMEMBERS', KEYS[1])}
end
local n = tonumber(ARGV[3])
redis.call('DEL', KEYS[2])
for i = 1, n do
  redis.call('SADD', KEYS[2], ARGV[3 + i])
end
audit_append(3, 4 + n)
return {'ok', 1}
