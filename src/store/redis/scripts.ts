/**
 * Lua scripts: each runs atomically on the account's slot, so a compare-and-set and its
 * notification can never be separated or interleaved with another writer.
 */

/**
 * Commit a change computed from version ARGV[1] and from what else it read: refused (returns
 * {0, current}) when another writer got there first, so the caller re-reads and recomputes;
 * otherwise writes version, record and compiled blob, keeps the parent graph in step, and
 * publishes the change, all or nothing.
 *
 * KEYS: version, record, compiled; then (not on a Cluster, where they live in another slot)
 * graph version, graph parents, and the version key of every other account the change read.
 * ARGV: expected, next, record JSON, compiled blob, channel, message, account, parent link
 * ('' unchanged, 'set' or 'del'), new parent, graph version read ('' when the graph was not
 * read), then the version read of each account in KEYS[6..].
 */
export const COMMIT = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
for i = 6, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') ~= tonumber(ARGV[i + 5]) then return {0, current} end
end
if #KEYS >= 5 then
  if ARGV[10] ~= '' and tonumber(redis.call('GET', KEYS[4]) or '0') ~= tonumber(ARGV[10]) then return {0, current} end
  if ARGV[8] == 'set' then
    redis.call('HSET', KEYS[5], ARGV[7], ARGV[9])
    redis.call('INCR', KEYS[4])
  elseif ARGV[8] == 'del' then
    redis.call('HDEL', KEYS[5], ARGV[7])
    redis.call('INCR', KEYS[4])
  end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[3], 'version', ARGV[2], 'blob', ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {1, tonumber(ARGV[2])}
`;

/**
 * Read the version and the compiled blob together, so they describe the same moment.
 * KEYS: version, compiled. Returns {version} when absent, else {version, blob version, blob}.
 */
export const READ_COMPILED = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v == 0 then return {0} end
local c = redis.call('HMGET', KEYS[2], 'version', 'blob')
return {v, c[1], c[2]}
`;

/**
 * Replace a stale or damaged compiled blob, unless the account moved on meanwhile.
 * KEYS: version, compiled. ARGV: version, blob.
 */
export const REWRITE_COMPILED = `
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'version', ARGV[1], 'blob', ARGV[2])
return 1
`;

/**
 * Install the parent graph built from the records, unless it exists already (built by another
 * replica, or changed by a commit since). KEYS: graph version, graph parents.
 * ARGV: subaccount, parent, subaccount, parent, ...
 */
export const INSTALL_GRAPH = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[1], '1')
return 1
`;

/** Release a lease only if it is still this holder's. KEYS: lease. ARGV: token. */
export const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** The parent graph and its version, as of one moment. KEYS: graph version, graph parents. */
export const READ_GRAPH = `
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2])}
`;
