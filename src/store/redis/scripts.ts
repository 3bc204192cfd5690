/**
 * Lua scripts: each runs atomically on the account's slot, so a compare-and-set and its
 * notification can never be separated or interleaved with another writer.
 */

/**
 * Commit a change computed from version ARGV[1] and from what else it read: refused (returns
 * {0, current}) when another writer got there first, so the caller re-reads and recomputes;
 * otherwise records the change's audit event, writes version, record and compiled blob, keeps the
 * parent graph in step, and publishes the change, all or nothing. The notice is ARGV[6], followed
 * by a newline and the compiled blob itself when ARGV[11] is '1' (small enough to travel with it).
 * The audit event (ARGV[13], none when empty) goes into the account's stream under the id of the
 * write's change-log entry (ARGV[12]), so the global view derived from the change log names the
 * same event; an id the stream cannot take (a log behind the stream) returns {2, current}, before
 * anything is written, and the writer goes round again.
 *
 * KEYS: version, record, compiled, audit stream; then (not on a Cluster, where they live in
 * another slot) graph version, graph parents, and the version key of every other account the
 * change read.
 * ARGV: expected, next, record JSON, compiled blob, channel, notice, account, parent link
 * ('' unchanged, 'set' or 'del'), new parent, graph version read ('' when the graph was not
 * read), inline ('1' or '0'), event id, event JSON, events kept per account, then the version
 * read of each account in KEYS[7..].
 */
export const COMMIT = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
for i = 7, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') ~= tonumber(ARGV[i + 8]) then return {0, current} end
end
if #KEYS >= 6 and ARGV[10] ~= '' and tonumber(redis.call('GET', KEYS[5]) or '0') ~= tonumber(ARGV[10]) then return {0, current} end
if ARGV[13] ~= '' then
  local added = redis.pcall('XADD', KEYS[4], 'MAXLEN', '~', ARGV[14], ARGV[12], 'event', ARGV[13])
  if type(added) == 'table' and added.err then return {2, current} end
end
if #KEYS >= 6 then
  if ARGV[8] == 'set' then
    redis.call('HSET', KEYS[6], ARGV[7], ARGV[9])
    redis.call('INCR', KEYS[5])
  elseif ARGV[8] == 'del' then
    redis.call('HDEL', KEYS[6], ARGV[7])
    redis.call('INCR', KEYS[5])
  end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[3], 'version', ARGV[2], 'blob', ARGV[4])
if ARGV[11] == '1' then
  redis.call('PUBLISH', ARGV[5], ARGV[6] .. '\\n' .. ARGV[4])
else
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
return {1, tonumber(ARGV[2])}
`;

/**
 * The change log from a cursor on, with what tells whether the cursor still covers everything:
 * the last id ever added, how many entries were ever added, and how many are left (the log is
 * only ever trimmed from its head, so added - left entries are gone, the oldest first).
 * KEYS: change log. ARGV: cursor id ('' for none), most entries to return.
 * Returns {last id, entries added, length, entries}.
 */
export const CHANGES_SINCE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', 0, 0, {}} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last, added, length = '0-0', 0, 0
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] end
  if info[i] == 'entries-added' then added = info[i + 1] end
  if info[i] == 'length' then length = info[i + 1] end
end
local entries = {}
if ARGV[1] ~= '' then entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2]) end
return {last, added, length, entries}
`;

/**
 * Moves an account's score in the expiry index to its record's next expiry (ARGV[3], '' for
 * none), unless a writer changed the score since it was read as ARGV[2]: a writer lowers it
 * before committing an earlier expiry, and that must not be undone.
 * KEYS: expiries. ARGV: account, score read, next expiry.
 */
export const SETTLE_EXPIRY = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1
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

/**
 * Claim digests for an account's new keys, unless another key holds one: returns {1} when every
 * digest is now this key's, else {0, digest, holder} (nothing claimed).
 * KEYS: key index. ARGV: account, now (epoch ms), then digest, key id, digest, key id, ...
 */
export const CLAIM_KEYS = `
for i = 3, #ARGV, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held then
    local account, key = string.match(held, '^(%S+) (%S+)')
    if account ~= ARGV[1] or key ~= ARGV[i + 1] then return {0, ARGV[i], held} end
  end
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1] .. ' ' .. ARGV[i + 1] .. ' ' .. ARGV[2]) end
return {1}
`;

/**
 * Replace a claim, only if it is still the value read (a stale claim: its commit never happened).
 * KEYS: key index. ARGV: digest, value read, new value.
 */
export const TAKE_OVER_KEY = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`;

/**
 * Drop digests, each only while it still names this account's key (a later claim by another
 * account is left alone). KEYS: key index. ARGV: account, then digest, key id, ...
 */
export const RELEASE_KEYS = `
local released = 0
for i = 2, #ARGV, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held then
    local account, key = string.match(held, '^(%S+) (%S+)')
    if account == ARGV[1] and key == ARGV[i + 1] then
      redis.call('HDEL', KEYS[1], ARGV[i])
      released = released + 1
    end
  end
end
return released
`;

/**
 * Record a key's use unless a later one is recorded already (replicas flush out of order).
 * KEYS: the account's key-use hash. ARGV: key id, epoch ms, client ip.
 */
export const RECORD_KEY_USE = `
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and tonumber(string.match(held, '^(%d+)')) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
return 1
`;
