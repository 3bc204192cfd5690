/**
 * Lua scripts: each runs atomically on the account's slot, so a compare-and-set and its
 * notification can never be separated or interleaved with another writer.
 */

/**
 * Commit a change computed from version ARGV[1]: refused (returns {0, current}) when another
 * writer got there first, so the caller re-reads and recomputes; otherwise writes version, record
 * and compiled blob and publishes the change, all or nothing.
 * KEYS: version, record, compiled. ARGV: expected, next, record JSON, compiled blob, channel, message.
 */
export const COMMIT = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
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
