import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIp } from '../../src/ip/address.ts';
import { decodeCompiledList } from '../../src/list/compiled-blob.ts';
import { changeSettings } from '../../src/acl/changes.ts';
import { RedisAuditLog } from '../../src/store/redis/redis-audit.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { RedisStoreSpec } from '../../src/store/redis/spec.ts';
import type { ChangeNotice, StoreState } from '../../src/store/store.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { openedRedisStores } from '../support/redis-stores.ts';
import { addEntry, describeStoreContract, draftOf, entry } from '../support/store-contract.ts';
import { waitUntil } from '../support/wait.ts';

let redis: RedisServer;
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** A spec with a prefix of its own: tests share one server without seeing each other's keys. */
function spec(overrides: Partial<RedisStoreSpec> = {}, prefix = `t${++prefixes}:`): RedisStoreSpec {
  return {
    kind: 'redis',
    topology: { mode: 'standalone', url: redis.url },
    keyPrefix: prefix,
    connectTimeoutMs: 2_000,
    commandTimeoutMs: 1_000,
    sweepIntervalMs: 5_000,
    ...overrides,
  };
}

describeStoreContract('redis', () => new RedisStore(spec()));

describe('Redis store', () => {
  const raw = (): Redis => new Redis(redis.url, { lazyConnect: false });
  const open = openedRedisStores();

  it('keeps the parent graph beside the records, and builds it from them when it is missing', async () => {
    const store = await open(spec({}, 'graph:'));
    const chain = ['C1', 'C2', 'C3', 'C4', 'C5'];
    for (const [i, account] of chain.entries()) {
      const change = i === 0 ? addEntry(account, entry('e1', '10.1.0.0/24')) : changeSettings(account, { parent: chain[i - 1]! });
      expect((await store.update(account, change)).ok).toBe(true);
    }
    expect((await store.update('D', addEntry('D', entry('d', '10.2.0.0/24')))).ok).toBe(true);
    const client = raw();
    try {
      expect(await client.hgetall('graph:{_graph}:parents')).toEqual({ C2: 'C1', C3: 'C2', C4: 'C3', C5: 'C4' });
      expect(await client.get('graph:{_graph}:version')).toBe('5'); // 1 when built, +1 per link
      // A store written before the graph existed: the first change that needs it builds it.
      await client.del('graph:{_graph}:parents', 'graph:{_graph}:version');
      expect(await store.update('C1', changeSettings('C1', { parent: 'D' }))).toMatchObject({ ok: false, refusal: { reason: 'invalid_parent' } });
      expect(await client.hgetall('graph:{_graph}:parents')).toEqual({ C2: 'C1', C3: 'C2', C4: 'C3', C5: 'C4' });
      expect((await store.update('C3', changeSettings('C3', { parent: null }))).ok).toBe(true);
      expect(await client.hgetall('graph:{_graph}:parents')).toEqual({ C2: 'C1', C4: 'C3', C5: 'C4' });
      expect((await store.update('C1', changeSettings('C1', { parent: 'D' }))).ok).toBe(true);
    } finally {
      client.disconnect();
    }
  });

  it('saves every one of many parent changes made at once through two replicas: one replica\'s take turns, so they race only the other\'s', async () => {
    // Every parent change depends on the graph's one version; 32 at once through one store would
    // otherwise mostly race each other, and a write losing every round answers store_contention.
    const [a, b] = await Promise.all([open(spec({}, 'turns:')), open(spec({}, 'turns:'))]);
    const parents = ['P1', 'P2', 'P3', 'P4'];
    for (const parent of parents) expect((await a.update(parent, addEntry(parent, entry('p', '10.1.0.0/24')))).ok).toBe(true);
    const children = Array.from({ length: 64 }, (_, i) => `K${i}`);
    const outcomes = await Promise.all(children.map((child, i) => (i % 2 === 0 ? a : b).update(child, changeSettings(child, { parent: parents[i % parents.length]! }))));
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    const client = raw();
    try {
      expect(await client.hgetall('turns:{_graph}:parents')).toEqual(Object.fromEntries(children.map((child, i) => [child, parents[i % parents.length]])));
      expect(await client.get('turns:{_graph}:version')).toBe(String(1 + children.length)); // 1 when built, +1 per link
    } finally {
      client.disconnect();
    }
  });

  it('works with an ACL user granted only the commands docs/redis.md lists', async () => {
    const doc = readFileSync(fileURLToPath(new URL('../../docs/redis.md', import.meta.url)), 'utf8');
    const grant = /commands (`\+[^`]+`(?:\s*`\+[^`]+`)*|`[^`]*`)/.exec(doc.replace(/\n/g, ' '))?.[1]?.replace(/`/g, '').split(/\s+/).filter(Boolean) ?? [];
    expect(grant).toContain('+evalsha');
    const admin = raw();
    const prefix = 'acl:';
    try {
      await admin.call('ACL', 'SETUSER', 'allowgate-test', 'reset', 'on', '>acl-test-password', `~${prefix}*`, `&${prefix}changes`, ...grant);
      const store = await open(spec({ username: 'allowgate-test', password: 'acl-test-password' }, prefix));
      const audit = new RedisAuditLog(store.client, prefix);
      const soon = new Date(Date.now() + 60_000).toISOString();
      expect((await store.update('AC1', addEntry('AC1', { ...entry('e1', '192.0.2.0/24'), expiresAt: soon }))).ok).toBe(true);
      expect((await store.update('C1', changeSettings('C1', { parent: 'AC1' }))).ok).toBe(true);
      expect(await store.update('AC1', changeSettings('AC1', { parent: 'C1' }))).toMatchObject({ ok: false, refusal: { reason: 'invalid_parent' } });
      expect((await store.update('C1', changeSettings('C1', { parent: null }))).ok).toBe(true);
      await audit.append({ at: new Date().toISOString(), actor: { name: 't', role: 'owner' }, account: 'AC1', action: 'entry.create', version: 1, before: null, after: null });
      expect((await audit.list({ account: 'AC1', limit: 5 })).events).toHaveLength(1);
      expect((await store.read('AC1'))?.version).toBe(1);
      expect((await store.readCompiled('AC1'))?.version).toBe(1);
      expect(await store.versions(['AC1'])).toEqual(new Map([['AC1', 1]]));
      expect(await store.accounts()).toEqual(['AC1', 'C1']);
      const feed = await store.changes(null);
      expect((await store.changes(feed.cursor)).changed).toEqual([]);
      expect(await store.dueForExpiry(Date.now() + 120_000, 10)).toEqual(['AC1']);
      await store.recordCallers(new Map([['AC1', new Map([['192.0.2.7', Date.now()]])]]));
      expect((await store.recentCallers('AC1', 5)).map((c) => c.ip)).toEqual(['192.0.2.7']);
      expect(store.state()).toBe('up');
    } finally {
      await admin.call('ACL', 'DELUSER', 'allowgate-test');
      admin.disconnect();
    }
  });

  it('writes the documented keys, all in the account\'s hash-tag slot', async () => {
    const store = await open(spec({}, 'doc:'));
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const client = raw();
    try {
      expect((await client.keys('doc:*')).sort()).toEqual(['doc:accounts', 'doc:changelog', 'doc:{AC1}:compiled', 'doc:{AC1}:record', 'doc:{AC1}:version']);
      const logged = await client.xrange('doc:changelog', '-', '+');
      expect(logged.map(([, fields]) => fields)).toEqual([['a', 'AC1', 'v', '1']]);
      expect(await client.get('doc:{AC1}:version')).toBe('1');
      expect(JSON.parse((await client.get('doc:{AC1}:record'))!)).toMatchObject({ account: 'AC1', version: 1, entries: [{ id: 'e1' }] });
      expect(await client.hget('doc:{AC1}:compiled', 'version')).toBe('1');
      const list = decodeCompiledList((await client.hgetBuffer('doc:{AC1}:compiled', 'blob'))!);
      expect(list.trie.idOf(list.trie.lookupIp(parseIp('192.0.2.7')!))).toBe('e1');
      expect(await client.smembers('doc:accounts')).toEqual(['AC1']);
    } finally {
      client.disconnect();
    }
  });

  it('loses no update when several replicas write one account at once', async () => {
    const s = spec();
    const replicas = await Promise.all([open(s), open(s), open(s), open(s)]);
    const outcomes = await Promise.all(replicas.flatMap((store, r) => Array.from({ length: 15 }, (_, i) =>
      store.update('AC1', addEntry('AC1', entry(`r${r}e${i}`, `10.${r}.${i}.0/24`))))));
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    const record = await replicas[0]!.read('AC1');
    expect(record?.version).toBe(60);
    expect(new Set(record?.entries.map((e) => e.id)).size).toBe(60);
    // Every version was handed out exactly once.
    expect(outcomes.map((o) => (o.ok ? o.record.version : 0)).sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });

  it('refuses If-Match from another replica\'s stale read with 412', async () => {
    const s = spec();
    const [a, b] = [await open(s), await open(s)];
    await a.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const seenByB = (await b.read('AC1'))!.version;
    await a.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    const stale = await b.update('AC1', addEntry('AC1', entry('e3', '203.0.113.0/24')), seenByB);
    expect(stale).toMatchObject({ ok: false, refusal: { status: 412, reason: 'version_conflict' } });
    expect((await b.read('AC1'))?.entries.map((e) => e.id)).toEqual(['e1', 'e2']);
  });

  it('tells every replica about a change, the writer first (with the list) and again through Redis, small lists with the notice', async () => {
    const s = spec();
    const [writer, other] = [await open(s), await open(s)];
    const atWriter: [number, boolean][] = [];
    const atOther: [number, ChangeNotice | undefined][] = [];
    writer.subscribe((_account, version, notice) => atWriter.push([version, notice?.list !== undefined]));
    const arrived = new Promise<void>((resolve) => other.subscribe((_account, version, notice) => {
      atOther.push([version, notice]);
      if (version === 2) resolve();
    }));
    await writer.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    expect(atWriter).toEqual([[1, true]]); // synchronously, before the acknowledgement
    await writer.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    await arrived;
    await waitUntil('the writer hears its own notices too', () => atWriter.length === 4, 2_000);
    expect(atWriter.map(([v]) => v).sort()).toEqual([1, 1, 2, 2]);
    expect(atOther.map(([v]) => v)).toEqual([1, 2]);
    // Small enough to travel with the notice: the other replica needs no read to enforce it.
    const [, notice] = atOther[1]!;
    expect(notice?.list?.version).toBe(2);
    expect(notice?.list?.trie.idOf(notice.list.trie.lookupIp(parseIp('198.51.100.9')!))).toBe('e2');
    expect(notice?.publishedAt).toBeGreaterThan(Date.now() - 60_000);
  });

  it('publishes a list larger than noticeListMaxBytes without it, saying whether the old list may stand in', async () => {
    const s = spec({ noticeListMaxBytes: 0 });
    const [writer, other] = [await open(s), await open(s)];
    const heard: [number, ChangeNotice | undefined][] = [];
    other.subscribe((_account, version, notice) => heard.push([version, notice]));
    await writer.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    await writer.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24'))); // adds an allow: the old list is stricter
    await writer.update('AC1', (current) => ({ ok: true, draft: { ...draftOf(current, 'AC1'), entries: current!.entries.slice(1) } })); // revokes e1
    await waitUntil('three notices', () => heard.length === 3, 2_000);
    expect(heard.map(([v, n]) => [v, n?.list === undefined, n?.loosens === true])).toEqual([[1, true, false], [2, true, true], [3, true, false]]);
  });

  it('serves the compiled blob, and rebuilds one that is stale, damaged or missing', async () => {
    const s = spec();
    const store = await open(s);
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    expect((await store.readCompiled('AC1'))?.version).toBe(1);
    expect(await store.readCompiled('nobody')).toBeNull();
    const keys = store.keys.of('AC1');
    const client = raw();
    try {
      for (const damage of [
        () => client.hset(keys.compiled, 'version', '0'),
        () => client.hset(keys.compiled, 'blob', 'garbage'),
        () => client.del(keys.compiled),
      ]) {
        await damage();
        const list = await store.readCompiled('AC1');
        expect(list?.version).toBe(1);
        expect(list?.trie.idOf(list.trie.lookupIp(parseIp('192.0.2.7')!))).toBe('e1');
        // Written back for the next reader.
        expect(await client.hget(keys.compiled, 'version')).toBe('1');
        expect(decodeCompiledList((await client.hgetBuffer(keys.compiled, 'blob'))!).version).toBe(1);
      }
    } finally {
      client.disconnect();
    }
  });

  it('refuses a record damaged by hand instead of enforcing part of it', async () => {
    const store = await open(spec());
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const client = raw();
    try {
      await client.set(store.keys.of('AC1').record, '{"account":"AC1","version":1,"settings":{},"entries":[{"id":1}]}');
      await expect(store.read('AC1')).rejects.toThrow(/\{AC1\}:record.*entry 0/);
      const out = await store.update('AC1', (c) => ({ ok: true, draft: draftOf(c, 'AC1') }));
      expect(out).toMatchObject({ ok: false, refusal: { status: 500, reason: 'store_corrupt' } });
    } finally {
      client.disconnect();
    }
  });

  it('keeps accounts of different key prefixes apart', async () => {
    const [a, b] = [await open(spec({}, 'tenant-a:')), await open(spec({}, 'tenant-b:'))];
    await a.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    expect(await b.read('AC1')).toBeNull();
    expect(await b.accounts()).toEqual([]);
    expect(await a.accounts()).toEqual(['AC1']);
  });

  it('goes down and comes back with the server, failing fast in between', async () => {
    const own = await startRedis();
    try {
      const store = await open({ ...spec(), topology: { mode: 'standalone', url: own.url } });
      const states: StoreState[] = [];
      store.onStateChange((state) => states.push(state));
      expect(store.state()).toBe('up');
      await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
      await own.kill();
      await waitUntil('store down', () => store.state() === 'down');
      await expect(store.readCompiled('AC1')).rejects.toThrow();
      const write = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
      expect(write).toMatchObject({ ok: false, refusal: { status: 503, reason: 'store_unavailable' } });
      await own.restart();
      await waitUntil('store up', () => store.state() === 'up');
      expect(states).toEqual(['down', 'up']);
      // The restarted server is empty (no persistence in tests): the store works against it.
      expect((await store.update('AC1', addEntry('AC1', entry('e3', '203.0.113.0/24')))).ok).toBe(true);
    } finally {
      await own.stop();
    }
  });

  it('starts down, without throwing, when Redis is not there', async () => {
    const own = await startRedis();
    await own.kill();
    try {
      const store = await open({ ...spec(), topology: { mode: 'standalone', url: own.url }, connectTimeoutMs: 300 });
      expect(store.state()).toBe('down');
      await own.restart();
      await waitUntil('store up', () => store.state() === 'up');
      expect(await store.read('AC1')).toBeNull();
    } finally {
      await own.stop();
    }
  });
});
