import { createHash } from 'node:crypto';

/** A Lua script the store runs with EVALSHA, falling back to EVAL when the server has not cached it. */
export interface RedisScript {
  readonly lua: string;
  readonly sha: string;
}

function script(body: string): RedisScript {
  const lua = `${PRELUDE}\n${body}`;
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/*
 * One record is one hash under KEYS[1]:
 *   state        'in_flight' | 'completed'
 *   fingerprint  of the request that claimed it
 *   owner        the claim's owner token (fencing, R20)
 *   route        a label for operators
 *   created_at, lease_at, expires_at   ms since the epoch, by the Redis server's clock (R19)
 *   status, headers (JSON), body (raw bytes)   once completed
 * Its Redis expiry (PEXPIREAT) is the moment the SQL store's purge could first delete it: the end of
 * the ttl for a completed record, the later of lease end and ttl end for an in-flight one.
 *
 * Each script is one atomic step: Redis runs no other command while it runs. Where a script
 * writes, HSET comes first because it is the only command Redis can refuse (out of memory), so a
 * refused script has changed nothing; HDEL, DEL and PEXPIREAT are never refused.
 *
 * Every script touches KEYS[1] only, so on Redis Cluster each one runs on the master of the
 * record's slot, whatever the key holds.
 *
 * A script sent twice (ioredis resends a command whose connection dropped before its reply, and
 * the store re-sends a completion whose replication it could not confirm) recognises its own
 * earlier effect by the owner token and reports it as done; it then rewrites the owner field to
 * the same value, a write Redis replicates, so that a WAIT sent after it on the same connection
 * counts replicas that have the record, not only the replies of older writes.
 */

// TIME inside a script is allowed since Redis 5 (scripts replicate their effects, not their text).
const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function found(key, state, fingerprint, lease_at, expires_at, now)
  if state == 'completed' then
    local response = redis.call('HMGET', key, 'status', 'headers', 'body')
    return {0, state, fingerprint, lease_at - now, expires_at - now, response[1], response[2], response[3]}
  end
  return {0, state, fingerprint, lease_at - now, expires_at - now}
end`;

/**
 * ARGV: fingerprint, owner token, route, lease ms, ttl ms. Returns {1} when this caller claimed the
 * key (by this call, or by an earlier send of it: the owner token is new for each claim), else the
 * record found, untouched: {0, state, fingerprint, lease left, ttl left[, status, headers, body]}.
 */
export const CLAIM_SCRIPT = script(`
local now = now_ms()
local record = redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'lease_at', 'expires_at', 'owner')
local state, fingerprint = record[1], record[2]
if state == 'in_flight' and record[5] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'owner', ARGV[2])
  return {1}
end
if state then
  local lease_at, expires_at = tonumber(record[3]), tonumber(record[4])
  -- A dead claim is taken over by a retry of the same request only: another body gets the record
  -- (and a 422) until the ttl has passed too, as in the SQL store.
  local takeover = (state == 'completed' and expires_at <= now)
    or (state == 'in_flight' and lease_at <= now and (fingerprint == ARGV[1] or expires_at <= now))
  if not takeover then
    -- A live record: nothing is written, not even its expiry (R16a).
    return found(KEYS[1], state, fingerprint, lease_at, expires_at, now)
  end
end
local lease_at = now + tonumber(ARGV[4])
local expires_at = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'fingerprint', ARGV[1], 'owner', ARGV[2], 'route', ARGV[3],
  'created_at', now, 'lease_at', lease_at, 'expires_at', expires_at)
redis.call('HDEL', KEYS[1], 'status', 'headers', 'body')
redis.call('PEXPIREAT', KEYS[1], math.max(lease_at, expires_at))
return {1}
`);

/** No ARGV. Returns nil when there is no live record, else the record as CLAIM_SCRIPT finds it. Writes nothing. */
export const INSPECT_SCRIPT = script(`
local now = now_ms()
local record = redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'lease_at', 'expires_at')
local state, expires_at = record[1], tonumber(record[4])
if not state or (state == 'completed' and expires_at <= now) then return false end
return found(KEYS[1], state, record[2], tonumber(record[3]), expires_at, now)
`);

/**
 * ARGV: owner token, status, headers JSON, body, ttl ms. Returns 1 when stored, 2 when this owner
 * had already stored this very response (a completion sent again), 0 when fenced or when the
 * owner's record holds another response. The lease is not checked.
 */
export const COMPLETE_SCRIPT = script(`
local record = redis.call('HMGET', KEYS[1], 'state', 'owner')
if record[2] ~= ARGV[1] then return 0 end
if record[1] == 'completed' then
  local stored = redis.call('HMGET', KEYS[1], 'status', 'headers', 'body')
  if stored[1] ~= ARGV[2] or stored[2] ~= ARGV[3] or stored[3] ~= ARGV[4] then return 0 end
  redis.call('HSET', KEYS[1], 'owner', ARGV[1])
  return 2
end
if record[1] ~= 'in_flight' then return 0 end
local now = now_ms()
local expires_at = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'state', 'completed', 'status', ARGV[2], 'headers', ARGV[3], 'body', ARGV[4],
  'lease_at', now, 'expires_at', expires_at)
redis.call('PEXPIREAT', KEYS[1], expires_at)
return 1
`);

/** ARGV: owner token. Returns 1 when the claim was deleted, 0 when fenced. */
export const RELEASE_SCRIPT = script(`
local record = redis.call('HMGET', KEYS[1], 'state', 'owner')
if record[1] ~= 'in_flight' or record[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`);

/** ARGV: owner token, lease ms. Returns 1 when the lease moved, 0 when fenced. The old lease is not checked. */
export const RENEW_SCRIPT = script(`
local record = redis.call('HMGET', KEYS[1], 'state', 'owner', 'expires_at')
if record[1] ~= 'in_flight' or record[2] ~= ARGV[1] then return 0 end
local lease_at = now_ms() + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'lease_at', lease_at)
redis.call('PEXPIREAT', KEYS[1], math.max(lease_at, tonumber(record[3])))
return 1
`);
