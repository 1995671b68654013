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
