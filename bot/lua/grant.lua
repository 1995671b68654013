-- KEYS: target roles, admins, role members, then the audit keys.
-- ARGV: actor, actor is bootstrap, target, role, target is bootstrap admin, then the audit
-- arguments.
if not actor_is_admin(KEYS[2], ARGV[1], ARGV[2]) then
  return {'denied', redis.call('SMEMBERS', KEYS[2])}
end
if ARGV[5] == '1' then
  return {'ok', 0}
end
local changed = redis.call('SADD', KEYS[1], ARGV[4]) + redis.call('SADD', KEYS[3], ARGV[3])
if changed > 0 then
  audit_append(4, 6)
end
return {'ok', changed}
