import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditLog } from '../../src/store/redis/redis-audit.ts';
import type { RedisStoreSpec } from '../../src/store/redis/spec.ts';
import type { ChangeNotice } from '../../src/store/store.ts';
import { auditEvent, listAll } from '../support/audit-contract.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { openedRedisStores } from '../support/redis-stores.ts';
import { addEntry, draftOf, entry } from '../support/store-contract.ts';
import { startRelay, type Relay } from '../support/tcp-relay.ts';
import { waitUntil } from '../support/wait.ts';

/*
 * The Redis store with a fault-injecting relay between it and a real redis-server: what a write
 * reports when the connection fails at each point, what it tells the cache, and the change log
 * and expiry index it keeps beside the data.
 */

let redis: RedisServer;
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

function spec(url: string, overrides: Partial<RedisStoreSpec> = {}, prefix = `f${++prefixes}:`): RedisStoreSpec {
  return {
    kind: 'redis',
    topology: { mode: 'standalone', url },
    keyPrefix: prefix,
    connectTimeoutMs: 2_000,
    commandTimeoutMs: 400,
    sweepIntervalMs: 5_000,
    ...overrides,
  };
}

describe('Redis store writes through a failing connection', () => {
  let relay: Relay;
  const open = openedRedisStores();
  beforeAll(async () => {
    relay = await startRelay(redis.port);
  });
  afterAll(async () => {
    await relay?.close();
  });

  it('reports "may or may not have been applied", with the version, when the reply to the commit is lost (it was applied)', async () => {
    const store = await open(spec(relay.url));
    const heard: [number, ChangeNotice | undefined][] = [];
    store.subscribe((_account, version, notice) => heard.push([version, notice]));
    expect((await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')))).ok).toBe(true); // the script is loaded
    const fired = relay.onCommand('EVALSHA', 'lose-reply', 'command');
    const out = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    await fired;
    expect(out).toMatchObject({
      ok: false,
      refusal: {
        status: 503,
        reason: 'outcome_unknown',
        message: expect.stringMatching(/^the change to account AC1 was sent to Redis but no answer came back \(the connection to Redis is unavailable\): it may or may not have been applied; it is at version 2 now \(the change would have made it 2\)\. Read the account before retrying$/),
        currentVersion: 2,
      },
    });
    // The library's words stay in the log, out of the message.
    expect(out.ok || out.refusal.cause).toMatch(/Connection is closed|max retries/i);
    expect((await store.read('AC1'))?.entries.map((e) => e.id)).toEqual(['e1', 'e2']);
    // The writer's cache is told at once (no list: it must reload), and the notice Redis published
    // reaches it too once its subscriber hears it.
    expect(heard.find(([v, n]) => v === 2 && n?.list === undefined)).toBeDefined();
    await waitUntil('the published notice heard', () => heard.some(([v, n]) => v === 2 && n?.list?.version === 2), 3_000);
  });

  it('reports the same when the connection drops with the commit unsent (it was not applied): the version tells', async () => {
    const store = await open(spec(relay.url));
    expect((await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')))).ok).toBe(true);
    const fired = relay.onCommand('EVALSHA', 'swallow', 'command');
    const out = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    await fired;
    expect(out).toMatchObject({ ok: false, refusal: { status: 503, reason: 'outcome_unknown', currentVersion: 1, message: expect.stringContaining('it is at version 1 now (the change would have made it 2)') } });
    expect((await store.read('AC1'))?.entries.map((e) => e.id)).toEqual(['e1']);
  });

  it('reports the version as unreadable when Redis stays silent after the commit was sent', async () => {
    const store = await open(spec(relay.url));
    expect((await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')))).ok).toBe(true);
    const fired = relay.onCommand('EVALSHA', 'freeze-after', 'command');
    const out = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    await fired;
    expect(out).toMatchObject({ ok: false, refusal: { status: 503, reason: 'outcome_unknown', message: expect.stringContaining('Redis did not answer within redis.commandTimeoutMs): it may or may not have been applied; its current version could not be read either') } });
    expect(out.ok || out.refusal.currentVersion).toBeUndefined();
    relay.drop('all');
  });

  it('reports a definite "not saved" when the connection fails before the commit is sent', async () => {
    const store = await open(spec(relay.url));
    expect((await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')))).ok).toBe(true);
    const fired = relay.onCommand('MGET', 'swallow', 'command');
    const out = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    await fired;
    expect(out).toMatchObject({ ok: false, refusal: { status: 503, reason: 'store_unavailable', message: 'the change to account AC1 was not saved: the connection to Redis is unavailable; nothing was changed, retry once Redis is back' } });
  });

  it('computes a write again when a read before its commit timed out while Redis still answers: saved once, nothing lost', async () => {
    const store = await open(spec(relay.url));
    expect((await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')))).ok).toBe(true);
    // Right after a heartbeat, so the next PING comes after the held replies are delivered: the
    // store stays up, and only the write's own read has timed out.
    await relay.onCommand('PING', 'none', 'command');
    const fired = relay.onCommand('MGET', 'hold-reply', 'command', 400 + 150);
    const out = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    await fired;
    expect(out).toMatchObject({ ok: true, record: { version: 2 } });
    expect(store.state()).toBe('up');
    const stored = await store.read('AC1');
    expect([stored?.version, stored?.entries.map((e) => e.id)]).toEqual([2, ['e1', 'e2']]);
  });
});

describe('Redis store audit trail, written with the change', () => {
  const open = openedRedisStores();
  const eventOf = (n: number) => (_previous: unknown, record: { account: string; version: number }) => auditEvent(record.account, record.version, { after: { n } });

  it('records the event in the commit, under the id of the write\'s change-log entry, seen the same by both views', async () => {
    const s = spec(redis.url);
    const store = await open(s);
    const audit = new RedisAuditLog(store.client, s.keyPrefix);
    const out = await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')), undefined, eventOf(1));
    expect(out).toMatchObject({ ok: true, audited: true });
    expect((await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')))).ok && true).toBe(true); // no describe: no event
    const [own] = (await audit.list({ limit: 10, account: 'AC1' })).events;
    expect(own).toMatchObject({ account: 'AC1', version: 1, after: { n: 1 } });
    expect((await audit.list({ limit: 10 })).events).toEqual([own]);
    const client = new Redis(redis.url);
    try {
      const logged = await client.xrange(store.keys.changeLog, '-', '+');
      expect(logged.map(([id, fields]) => [id === own!.id, fields])).toEqual([[true, ['a', 'AC1', 'v', '1']], [false, ['a', 'AC1', 'v', '2']]]);
    } finally {
      client.disconnect();
    }
  });

  it('keeps every acknowledged change\'s event, in version order, with several replicas writing one account at once', async () => {
    const s = spec(redis.url);
    const stores = await Promise.all([open(s), open(s), open(s)]);
    const outcomes = await Promise.all(stores.flatMap((store, r) => Array.from({ length: 15 }, (_, i) =>
      store.update('AC1', addEntry('AC1', entry(`r${r}e${i}`, `10.${r}.${i}.0/24`)), undefined, eventOf(r * 100 + i)))));
    expect(outcomes.every((o) => o.ok && o.audited === true)).toBe(true);
    const audit = new RedisAuditLog(stores[0]!.client, s.keyPrefix);
    const perAccount = await listAll(audit, { account: 'AC1', limit: 7 });
    expect(perAccount.events.map((e) => e.version)).toEqual(Array.from({ length: 45 }, (_, i) => 45 - i));
    const global = await listAll(audit, { limit: 7 });
    expect(global.events).toEqual(perAccount.events);
  });

  it('has the event of a write whose answer was lost: it was committed with it, in one step', async () => {
    const relay = await startRelay(redis.port);
    try {
      const s = spec(relay.url);
      const store = await open(s);
      expect((await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')), undefined, eventOf(1))).ok).toBe(true);
      const fired = relay.onCommand('EVALSHA', 'lose-reply', 'command');
      const out = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')), undefined, eventOf(2));
      await fired;
      expect(out).toMatchObject({ ok: false, refusal: { reason: 'outcome_unknown', currentVersion: 2 } });
      const audit = new RedisAuditLog(store.client, s.keyPrefix);
      expect((await audit.list({ limit: 10, account: 'AC1' })).events.map((e) => [e.version, e.after])).toEqual([[2, { n: 2 }], [1, { n: 1 }]]);
    } finally {
      await relay.close();
    }
  });

  it('keeps a large event within the per-event bound, with the snapshots summarised', async () => {
    const s = spec(redis.url);
    const store = await open(s);
    const big = { entries: Array.from({ length: 2_000 }, (_, i) => ({ id: `e${i}`, ip_address: `10.0.${i >> 8}.${i & 255}` })) };
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')), undefined, (_p, record) => auditEvent('AC1', record.version, { before: null, after: big }));
    const [event] = (await new RedisAuditLog(store.client, s.keyPrefix).list({ limit: 1, account: 'AC1' })).events;
    expect(event?.after).toEqual({ omitted: expect.stringMatching(/^snapshot larger than the audit trail keeps/), bytes: JSON.stringify(big).length, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(event?.before).toBeNull();
  });
});

describe('Redis store change log and expiry index', () => {
  const open = openedRedisStores();

  it('lists the accounts written since a cursor, and cannot vouch for a cursor the log no longer covers', async () => {
    const s = spec(redis.url);
    const store = await open(s);
    const first = await store.changes(null);
    expect(first.changed).toBeNull(); // no cursor yet: compare everything (nothing, at start)
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    await store.update('AC2', addEntry('AC2', entry('e1', '192.0.2.0/24')));
    await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    const since = await store.changes(first.cursor);
    expect(since.changed?.map((c) => [c.account, c.version])).toEqual([['AC1', 1], ['AC2', 1], ['AC1', 2]]);
    expect(since.changed?.[0]?.at).toBeGreaterThan(Date.now() - 60_000);
    const idle = await store.changes(since.cursor);
    expect(idle).toEqual({ cursor: since.cursor, changed: [] });
    // Trimming that leaves every entry after the cursor costs nothing.
    const client0 = new Redis(redis.url);
    await client0.xtrim(store.keys.changeLog, 'MAXLEN', '1');
    client0.disconnect();
    await store.update('AC2', addEntry('AC2', entry('e2', '198.51.100.0/24')));
    const trimmedBefore = await store.changes(idle.cursor);
    expect(trimmedBefore.changed?.map((c) => [c.account, c.version])).toEqual([['AC2', 2]]);

    // Entries trimmed past the cursor (a replica away for longer than the log reaches).
    await store.update('AC3', addEntry('AC3', entry('e1', '192.0.2.0/24')));
    const client = new Redis(redis.url);
    try {
      await client.xtrim(store.keys.changeLog, 'MAXLEN', '0');
      expect((await store.changes(trimmedBefore.cursor)).changed).toBeNull();
      // A cursor from another server (Redis restarted or failed over: its log may have lost entries).
      expect((await store.changes(idle.cursor.replace(/^[^/]*/, 'someotherserver'))).changed).toBeNull();
      // A log that was lost altogether.
      await client.del(store.keys.changeLog);
      expect((await store.changes(trimmedBefore.cursor)).changed).toBeNull();
    } finally {
      client.disconnect();
    }
  });

  it('finds accounts with an entry due from the index alone, and settles scores found early', async () => {
    const store = await open(spec(redis.url));
    const now = Date.now();
    const at = (ms: number): string => new Date(ms).toISOString();
    const temporary = (id: string, cidr: string, expires: number) => ({ ...entry(id, cidr), expiresAt: at(expires) });
    await store.update('AC1', addEntry('AC1', temporary('t1', '192.0.2.0/24', now + 60_000)));
    await store.update('AC2', addEntry('AC2', entry('p', '192.0.2.0/24')));
    await store.update('AC3', addEntry('AC3', temporary('t3', '192.0.2.0/24', now + 30_000)));
    expect(await store.dueForExpiry(now, 100)).toEqual([]);
    expect([...(await store.dueForExpiry(now + 45_000, 100))]).toEqual(['AC3']);
    expect([...(await store.dueForExpiry(now + 90_000, 100))].sort()).toEqual(['AC1', 'AC3']);
    // AC3's entry is removed by an admin before it expires: its score stays early until a pass
    // finds nothing due there and drops it from the index.
    await store.update('AC3', (current) => ({ ok: true, draft: { ...draftOf(current, 'AC3'), entries: [] } }));
    expect(await store.dueForExpiry(now + 45_000, 100)).toEqual([]);
    const client = new Redis(redis.url);
    try {
      expect(await client.zrange(store.keys.expiries, '0', '-1')).toEqual(['AC1']);
    } finally {
      client.disconnect();
    }
  });

  it('builds the expiry index once from the records when an older build left none', async () => {
    const s = spec(redis.url);
    const store = await open(s);
    const soon = new Date(Date.now() + 1_000).toISOString();
    await store.update('AC1', addEntry('AC1', { ...entry('t1', '192.0.2.0/24'), expiresAt: soon }));
    const client = new Redis(redis.url);
    try {
      await client.del(store.keys.expiries, store.keys.expiriesIndexed); // as an older build leaves it
      const fresh = await open(s);
      expect(await fresh.dueForExpiry(Date.now() + 5_000, 100)).toEqual(['AC1']);
      expect(await client.get(store.keys.expiriesIndexed)).toBe('1');
    } finally {
      client.disconnect();
    }
  });
});
