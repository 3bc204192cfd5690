import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditLog } from '../../src/audit/redis-audit.ts';
import { createAuditLog } from '../../src/audit/open-audit.ts';
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
describeAuditContract('redis', async (cap) => new RedisAuditLog(await storeLikeClient(), `a${++prefixes}:`, cap === undefined ? {} : { cap }), { exactCap: false });

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

  it('keeps each stream capped, approximately', async () => {
    const log = await open('capped:', 100);
    for (let n = 1; n <= 1000; n++) await log.append(auditEvent(n % 2 === 0 ? 'AC1' : 'AC2', n));
    const client = raw();
    try {
      for (const key of ['capped:audit', 'capped:{AC1}:audit', 'capped:{AC2}:audit']) {
        const length = await client.xlen(key);
        expect(length, key).toBeGreaterThanOrEqual(100);
        expect(length, key).toBeLessThan(300);
      }
    } finally {
      client.disconnect();
    }
  });

  it('uses the configured prefix and the account\'s hash tag, one JSON field per entry', async () => {
    const log = await open('doc:');
    expect(log.globalKey).toBe('doc:audit');
    expect(log.accountKey('AC1')).toBe('doc:{AC1}:audit');
    await log.append(auditEvent('AC1', 1, { via: 'native' }));
    await log.append(auditEvent('AC2', 2));
    const client = raw();
    try {
      expect((await client.keys('doc:*')).sort()).toEqual(['doc:audit', 'doc:{AC1}:audit', 'doc:{AC2}:audit']);
      // In the same Cluster slot as the account's store keys.
      expect(log.accountKey('AC1').startsWith(new Keys('doc:').of('AC1').record.replace(/:record$/, ':'))).toBe(true);
      const [[globalId, globalFields]] = (await client.xrange('doc:audit', '-', '+', 'COUNT', 1)) as [[string, string[]]];
      expect(globalFields[0]).toBe('event');
      expect(globalFields).toHaveLength(2);
      expect(JSON.parse(globalFields[1]!)).toEqual(auditEvent('AC1', 1, { via: 'native' }));
      const [[, accountFields]] = (await client.xrange('doc:{AC1}:audit', '-', '+')) as [[string, string[]]];
      // The account's entry names the event by its global id.
      expect(JSON.parse(accountFields[1]!)).toEqual({ id: globalId, ...auditEvent('AC1', 1, { via: 'native' }) });
      const listed = await log.list({ limit: 10 });
      expect(listed.events.map((e) => e.id)[1]).toBe(globalId);
      expect((await log.list({ limit: 10, account: 'AC1' })).events[0]?.id).toBe(globalId);
    } finally {
      client.disconnect();
    }
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

  it('skips entries that are not events instead of failing the page', async () => {
    const log = await open('foreign:');
    await log.append(auditEvent('AC1', 1));
    const client = raw();
    try {
      await client.xadd('foreign:audit', '*', 'event', 'not json');
      await client.xadd('foreign:audit', '*', 'other', '{}');
    } finally {
      client.disconnect();
    }
    await log.append(auditEvent('AC1', 2));
    const page = await log.list({ limit: 10 });
    expect(page.events.map((e) => e.version)).toEqual([2, 1]);
    expect(page.next).toBeNull();
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
