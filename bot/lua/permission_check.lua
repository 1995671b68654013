-- KEYS: roles, admins, channels.  ARGV: guarded ('1'/'0'), channel id.
-- Replies {roles, admins, blocked (1/0), the channels allowed}.
local roles = redis.call('SMEMBERS', KEYS[1])
local admins = redis.call('SMEMBERS', KEYS[2])
local blocked = 0
local allowed_channels = {}
if ARGV[1] == '1' and redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 0 then
  allowed_channels = redis.call('SMEMBERS', KEYS[3])
  if #allowed_channels > 0 then blocked = 1 end
end
return {roles, admins, blocked, allowed_channels}
