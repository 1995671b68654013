-- KEYS: the lease, the request hash.  ARGV: token, the render key the holder caught up with
-- ('{version}:{job_state}[:held:{held}]'; '*' releases regardless).  Replies 1 (released),
-- 0 (the request changed meanwhile: the lease is kept and the holder goes round again) or
-- -1 (the lease was no longer ours).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local now = redis.call('HMGET', KEYS[2], C('version'), C('job_state'), C('held'))
if ARGV[2] ~= '*' and now[1] then
  local render = now[1] .. ':' .. (now[2] or '')
  if now[3] then
    render = render .. ':held:' .. now[3]
  end
  if render ~= ARGV[2] then
    return 0
  end
end
redis.call('DEL', KEYS[1])
return 1
