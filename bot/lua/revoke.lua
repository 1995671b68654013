-- KEYS: target roles, admins, role members, then the audit keys.
-- ARGV: actor, actor is bootstrap, target, role, target is bootstrap admin, any bootstrap
-- admin configured, then the audit arguments.
if not actor_is_admin(KEYS[2], ARGV[1], ARGV[2]) then
  return {'denied', redis.call('SMEMBERS', KEYS[2])}
end
if ARGV[5] == '1' then
  return {'bootstrap'}
end
if ARGV[4] == 'admin' and ARGV[6] ~= '1'
    and redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1
    and redis.call('SCARD', KEYS[2]) <= 1 then
  return {'last_admin'}
end
local changed = redis.call('SREM', KEYS[1], ARGV[4]) + redis.call('SREM', KEYS[3], ARGV[3])
if changed > 0 then
  audit_append(4, 7)
end
return {'ok', changed}
