-- actor_is_admin: whether the actor may manage roles (a bootstrap admin, or in the admins set).
local function actor_is_admin(admins_key, actor, actor_is_bootstrap)
  return actor_is_bootstrap == '1' or redis.call('SISMEMBER', admins_key, actor) == 1
end
