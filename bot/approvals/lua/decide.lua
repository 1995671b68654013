-- ARGV[1..]: payload hash (full, or a prefix of at least min_hash chars), actor,
--            approve ('1'/'0'), reason ('' = none), now, allow self ('1'/'0'), min_hash,
--            the actor's workspace (enterprise or team id), the channel of the click.
-- Replies {outcome, flat hash}; the hash is left out for not_found and wrong_workspace.
local retention, given, actor, approve = RETENTION, ARGV[1], ARGV[2], ARGV[3]
local reason, now, allow_self, min_hash = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local tenant, channel = ARGV[8], ARGV[9]
local h, flat = load(KEYS[1])
if h == nil then
  return {'not_found'}
end
-- Only the request's own workspace (or Grid org) decides, and only from the card's channel
-- (a Slack Connect channel shows the card to other organisations too). A click from
-- elsewhere learns nothing of the request.
if tenant ~= (h.tenant or h.team_id) then
  audit(event(h, actor, 'decision_refused', 'another workspace: ' .. tenant))
  return {'wrong_workspace'}
end
if channel ~= (h.card_channel or h.origin_channel) then
  audit(event(h, actor, 'decision_refused', 'another channel: ' .. channel))
  return {'wrong_channel', flat}
end
if #given < min_hash or string.sub(h.payload_hash, 1, #given) ~= given then
  audit(event(h, actor, 'decision_refused', 'hash_mismatch'))
  return {'hash_mismatch', flat}
end
local to = 'rejected'
if approve == '1' then
  to = 'approved'
end
if allowed(h.status, 'expired') and tonumber(now) >= tonumber(h.expires_at) then
  move(KEYS[1], KEYS[2], h, 'expired', now)
  keep(KEYS[1], h, now, retention)
  audit(event(h, 'voicebot', 'expired', 'decision by ' .. actor .. ' came after expiry'))
  return {'expired', redis.call('HGETALL', KEYS[1])}
end
if h.status == 'expired' then
  return {'expired', flat}
end
-- The graph decides which statuses take a decision (pending only, today).
if not allowed(h.status, to) then
  return {'already_decided', flat}
end
if actor == h.requester and allow_self ~= '1' then
  audit(event(h, actor, 'decision_refused', 'self_approval'))
  return {'self_approval', flat}
end
-- N of M: an approval counts once per approver; the request stays pending, the approvers
-- recorded on it, until the number it was made with is reached.
if to == 'approved' then
  local approvers = {}
  for id in string.gmatch(h.approvers or '', '%S+') do
    if id == actor then
      return {'already_approved', flat}
    end
    approvers[#approvers + 1] = id
  end
  approvers[#approvers + 1] = actor
  redis.call('HSET', KEYS[1], C('approvers'), table.concat(approvers, ' '))
  if #approvers < tonumber(h.required_approvals or '1') then
    redis.call('HSET', KEYS[1], C('updated_at'), now)
    redis.call('HINCRBY', KEYS[1], C('version'), 1)
    audit(event(h, actor, 'approval_counted',
      #approvers .. ' of ' .. (h.required_approvals or '1')))
    return {'counted', redis.call('HGETALL', KEYS[1])}
  end
end
move(KEYS[1], KEYS[2], h, to, now)
redis.call('HSET', KEYS[1], C('decided_by'), actor, C('decided_at'), now)
if reason ~= '' then
  redis.call('HSET', KEYS[1], C('reason'), reason)
end
keep(KEYS[1], h, now, retention)
audit(event(h, actor, to, reason))
return {to, redis.call('HGETALL', KEYS[1])}
