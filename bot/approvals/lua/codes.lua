-- Every script reads and writes a request's fields by name: C(name) is the code a field is
-- stored under (bot.approvals.encoding.FIELD_CODES), rendered in as __CODES__.
local CODES = __CODES__
local NAMES = {}
for name, code in pairs(CODES) do
  NAMES[code] = name
end
local function C(name)
  return CODES[name] or name
end

-- Set a request's fields from a JSON object of values by name; null deletes the field.
local function set_fields(key, json)
  for name, value in pairs(cjson.decode(json)) do
    if value == cjson.null then
      redis.call('HDEL', key, C(name))
    else
      redis.call('HSET', key, C(name), value)
    end
  end
end
