-- The notify lease: one process at a time updates a request's card and posts its replies.
-- KEYS: the lease.  ARGV: token, lease ms.  Replies 1 while the lease is still ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
