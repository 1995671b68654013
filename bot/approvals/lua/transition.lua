-- ARGV[1..]: to, expected (JSON array, '' = any), actor, audit action ('' = none),
--            audit detail, now, fields (JSON object; null deletes).
local to, expected, actor, action = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local detail, now = ARGV[5], ARGV[6]
local h = load(KEYS[1])
if h == nil then
  return false
end
if expected ~= '' then
  local ok = false
  for _, status in ipairs(cjson.decode(expected)) do
    if status == h.status then
      ok = true
    end
  end
  if not ok then
    return false
  end
end
if not allowed(h.status, to) then
  return false
end
move(KEYS[1], KEYS[2], h, to, now)
set_fields(KEYS[1], ARGV[7])
keep(KEYS[1], h, now, RETENTION)
if action ~= '' then
  audit(event(h, actor, action, detail))
end
return redis.call('HGETALL', KEYS[1])
