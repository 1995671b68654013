-- ARGV[5..]: to, expected (JSON array, '' = any), actor, audit action ('' = none),
--            audit detail, now, fields (JSON object; null deletes).
local to, expected, actor, action = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local detail, now = ARGV[9], ARGV[10]
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
for name, value in pairs(cjson.decode(ARGV[11])) do
  if value == cjson.null then
    redis.call('HDEL', KEYS[1], C(name))
  else
    redis.call('HSET', KEYS[1], C(name), value)
  end
end
keep(KEYS[1], h, now, ARGV[4])
if action ~= '' then
  audit(event(h, actor, action, detail))
end
return redis.call('HGETALL', KEYS[1])
