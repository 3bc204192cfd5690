import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditLog } from '../../src/store/redis/redis-audit.ts';
import { createAuditLog } from '../../src/store/open-audit.ts';
import { createClient, type RedisClient } from '../../src/store/redis/connection.ts';
import { Keys } from '../../src/store/redis/keys.ts';
import { auditEvent, describeAuditContract, listAll } from '../support/audit-contract.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';

let redis: RedisServer;
let prefixes = 0;
const clients: RedisClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await redis?.stop();
});

/** A client built as the store builds its own (no offline queue, auto-pipelining), connected. */
async function storeLikeClient(url = redis.url): Promise<RedisClient> {
  const client = createClient({
    kind: 'redis',
    topology: { mode: 'standalone', url },
    keyPrefix: 'unused:',
    connectTimeoutMs: 2_000,
    commandTimeoutMs: 1_000,
    sweepIntervalMs: 5_000,
  });
  clients.push(client);
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

const raw = (): Redis => new Redis(redis.url, { lazyConnect: false });

// Each log has a prefix of its own: the tests share one server without seeing each other's events.
describeAuditContract('redis', async (caps) => new RedisAuditLog(await storeLikeClient(), `a${++prefixes}:`, caps?.cap === undefined ? caps ?? {} : { cap: caps.cap, accountCap: caps.accountCap ?? caps.cap }), { retention: 'newest' });

describe('Redis audit log', () => {
  const opened: RedisAuditLog[] = [];
  const open = async (prefix: string, cap?: number): Promise<RedisAuditLog> => {
    const log = new RedisAuditLog(await storeLikeClient(), prefix, cap === undefined ? {} : { cap });
    opened.push(log);
    return log;
  };
  afterEach(async () => {
    for (const log of opened.splice(0)) await log.close();
  });

  it('keeps the change log and each account\'s stream capped, approximately', async () => {
    const log = new RedisAuditLog(await storeLikeClient(), 'capped:', { cap: 100, accountCap: 50 });
    opened.push(log);
    for (let n = 1; n <= 1000; n++) await log.append(auditEvent(n % 2 === 0 ? 'AC1' : 'AC2', n));
    const client = raw();
    try {
      const logged = await client.xlen('capped:changelog');
      expect(logged).toBeGreaterThanOrEqual(100);
      expect(logged).toBeLessThan(300);
      for (const key of ['capped:{AC1}:audit', 'capped:{AC2}:audit']) {
        const length = await client.xlen(key);
        expect(length, key).toBeGreaterThanOrEqual(50);
        expect(length, key).toBeLessThan(250);
      }
    } finally {
      client.disconnect();
    }
  });

  it('keeps an event in its account\'s stream under the id of its change-log entry, both views naming it so', async () => {
    const log = await open('doc:');
    expect(log.globalKey).toBe('doc:changelog');
    expect(log.accountKey('AC1')).toBe('doc:{AC1}:audit');
    await log.append(auditEvent('AC1', 1, { via: 'native' }));
    await log.append(auditEvent('AC2', 2));
    const client = raw();
    try {
      expect((await client.keys('doc:*')).sort()).toEqual(['doc:changelog', 'doc:{AC1}:audit', 'doc:{AC2}:audit']);
      // In the same Cluster slot as the account's store keys.
      expect(log.accountKey('AC1').startsWith(new Keys('doc:').of('AC1').record.replace(/:record$/, ':'))).toBe(true);
      const [[loggedId, loggedFields]] = (await client.xrange('doc:changelog', '-', '+', 'COUNT', 1)) as [[string, string[]]];
      expect(loggedFields).toEqual(['a', 'AC1', 'v', '1']);
      const [[entryId, accountFields]] = (await client.xrange('doc:{AC1}:audit', '-', '+')) as [[string, string[]]];
      expect(entryId).toBe(loggedId);
      expect(accountFields[0]).toBe('event');
      expect(accountFields).toHaveLength(2);
      expect(JSON.parse(accountFields[1]!)).toEqual(auditEvent('AC1', 1, { via: 'native' }));
      const listed = await log.list({ limit: 10 });
      expect(listed.events.map((e) => e.id)[1]).toBe(loggedId);
      expect((await log.list({ limit: 10, account: 'AC1' })).events[0]?.id).toBe(loggedId);
    } finally {
      client.disconnect();
    }
  });

  it('still lists an account\'s events recorded before the change log, by the ids they carry', async () => {
    const log = await open('old:');
    const client = raw();
    try {
      // As an earlier build wrote them: the global id inside the JSON, the entry id the stream's own.
      await client.xadd('old:{AC1}:audit', '*', 'event', JSON.stringify({ id: '1700000000000-0', ...auditEvent('AC1', 1) }));
    } finally {
      client.disconnect();
    }
    await log.append(auditEvent('AC1', 2));
    const page = await log.list({ limit: 10, account: 'AC1' });
    expect(page.events.map((e) => [e.version, e.id === '1700000000000-0'])).toEqual([[2, false], [1, true]]);
    expect((await log.list({ limit: 10 })).events.map((e) => e.version)).toEqual([2]);
  });

  it('keeps logs of different prefixes apart', async () => {
    const [a, b] = [await open('tenant-a:'), await open('tenant-b:')];
    await a.append(auditEvent('AC1', 1));
    expect(await b.list({ limit: 10 })).toEqual({ events: [], next: null });
    expect(await b.list({ limit: 10, account: 'AC1' })).toEqual({ events: [], next: null });
    expect((await a.list({ limit: 10, account: 'AC1' })).events).toHaveLength(1);
  });

  it('sees what other replicas append', async () => {
    const [a, b] = [await open('shared:'), await open('shared:')];
    await a.append(auditEvent('AC1', 1));
    await b.append(auditEvent('AC1', 2));
    await a.append(auditEvent('AC2', 3));
    expect((await listAll(b, { limit: 2 })).events.map((e) => e.version)).toEqual([3, 2, 1]);
    expect((await listAll(a, { limit: 1, account: 'AC1' })).events.map((e) => e.version)).toEqual([2, 1]);
  });

  it('skips entries that are not events, and change-log entries without one, instead of failing the page', async () => {
    const log = await open('foreign:');
    await log.append(auditEvent('AC1', 1));
    const client = raw();
    try {
      const id = await client.xadd('foreign:changelog', '*', 'a', 'AC1', 'v', '2');
      await client.xadd('foreign:{AC1}:audit', id!, 'event', 'not json');
      await client.xadd('foreign:changelog', '*', 'a', 'AC9', 'v', '1'); // a write that failed: no event
      await client.xadd('foreign:changelog', '*', 'other', 'x');
    } finally {
      client.disconnect();
    }
    await log.append(auditEvent('AC1', 3));
    const page = await log.list({ limit: 10 });
    expect(page.events.map((e) => e.version)).toEqual([3, 1]);
    expect(page.next).toBeNull();
    expect((await log.list({ limit: 10, account: 'AC1' })).events.map((e) => e.version)).toEqual([3, 1]);
  });

  it('leaves the client open on close: it belongs to the caller', async () => {
    const client = await storeLikeClient();
    const log = await createAuditLog({ kind: 'redis', client, keyPrefix: 'owned:', cap: 100 });
    expect(log.kind).toBe('redis');
    await log.append(auditEvent('AC1', 1));
    await log.close();
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
    await expect(log.append(auditEvent('AC1', 2))).rejects.toThrow(/closed/);
  });

  it('fails an append fast while Redis is unreachable, and works again once it is back', async () => {
    const own = await startRedis();
    try {
      const client = await storeLikeClient(own.url);
      const log = new RedisAuditLog(client, 'outage:');
      await log.append(auditEvent('AC1', 1));
      await own.kill();
      const started = Date.now();
      await expect(log.append(auditEvent('AC1', 2))).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(2_000);
      await own.restart();
      await new Promise<void>((resolve) => (client.status === 'ready' ? resolve() : client.once('ready', () => resolve())));
      await log.append(auditEvent('AC1', 3));
      // The restarted server is empty (no persistence in tests).
      expect((await log.list({ limit: 10 })).events.map((e) => e.version)).toEqual([3]);
    } finally {
      await own.stop();
    }
  });
});
