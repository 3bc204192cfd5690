import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIp } from '../../src/ip/address.ts';
import type { AclEntry } from '../../src/list/types.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { RedisStoreSpec, RedisTopology } from '../../src/store/redis/spec.ts';
import type { AccountChange, StoreState } from '../../src/store/store.ts';
import { redisCli, startCluster, startSentinelSetup, type ClusterSetup, type SentinelSetup } from '../support/redis-topologies.ts';
import { addEntry, describeStoreContract, draftOf, entry } from '../support/store-contract.ts';
import { openedRedisStores } from '../support/redis-stores.ts';
import { waitUntil } from '../support/wait.ts';

let prefixes = 0;

function specFor(topology: RedisTopology, prefix = `topo${++prefixes}:`): RedisStoreSpec {
  return {
    kind: 'redis',
    topology,
    keyPrefix: prefix,
    connectTimeoutMs: 3_000,
    commandTimeoutMs: 1_000,
    sweepIntervalMs: 5_000,
  };
}

/** Adds `e` unless the record already has it: safe to retry after an ambiguous (timed-out) write. */
const ensureEntry = (account: string, e: AclEntry): AccountChange => (current) => {
  const draft = draftOf(current, account);
  if (draft.entries.some((x) => x.id === e.id)) return { ok: true, draft };
  return { ok: true, draft: { ...draft, entries: [...draft.entries, e] } };
};

describe('Redis Sentinel topology', () => {
  let setup: SentinelSetup;
  beforeAll(async () => {
    setup = await startSentinelSetup();
  });
  afterAll(async () => {
    await setup?.stop();
  });
  const topology = (): RedisTopology => ({ mode: 'sentinel', masterName: setup.masterName, sentinels: setup.sentinels, db: 0 });

  describeStoreContract('redis sentinel', () => new RedisStore(specFor(topology())));

  describe('failover', () => {
    const open = openedRedisStores();

    it('keeps working across a Sentinel failover, with the same store instance', async () => {
      const spec = specFor(topology());
      const store = await open(spec);
      expect(store.state()).toBe('up');
      const states: [StoreState, number][] = [];
      store.onStateChange((state) => states.push([state, Date.now()]));
      const heard: [string, number][] = [];
      store.subscribe((account, version) => heard.push([account, version]));

      expect((await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')))).ok).toBe(true);
      expect((await store.read('AC1'))?.entries.map((e) => e.id)).toEqual(['e1']);

      // Make sure the write reached the replica before the master dies: a write of our own on the
      // master comes after the store's in the replication stream, and WAIT confirms it arrived.
      const master = new Redis(setup.master.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      const replica = new Redis(setup.replica.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
      master.on('error', () => undefined);
      replica.on('error', () => undefined);
      try {
        await master.connect();
        await master.set(`${spec.keyPrefix}fence`, '1');
        expect(await master.wait(1, 1_000)).toBe(1);
        await replica.connect();
        expect(await replica.get(store.keys.of('AC1').version)).toBe('1');
      } finally {
        master.disconnect();
      }

      try {
        const killedAt = Date.now();
        await setup.master.kill();
        const promoted = await setup.waitForNewMaster(setup.master.port, 15_000);
        const switchedAt = Date.now();
        expect(promoted.port).toBe(setup.replica.port);

        // The same instance, no restart: retry (idempotently) until the first write goes through.
        let attempts = 0;
        let written = false;
        let lastRefusal = '';
        while (!written) {
          attempts++;
          const out = await store.update('AC1', ensureEntry('AC1', entry('e2', '198.51.100.0/24')));
          if (out.ok) written = true;
          else {
            lastRefusal = out.refusal.message;
            if (Date.now() - switchedAt > 10_000) throw new Error(`no write accepted 10 s after the failover (${attempts} attempts; last refusal: ${lastRefusal})`);
            await sleep(50);
          }
        }
        const writtenAt = Date.now();
        await waitUntil('store back up', () => store.state() === 'up', 5_000);
        const upAt = states.findLast(([s]) => s === 'up')?.[1] ?? Date.now();
        console.log(`[sentinel failover] master killed → sentinel switch: ${switchedAt - killedAt} ms; `
          + `switch → first successful write: ${writtenAt - switchedAt} ms (${attempts} attempts); `
          + `kill → first successful write: ${writtenAt - killedAt} ms; kill → store 'up': ${upAt - killedAt} ms; `
          + `states: ${states.map(([s, at]) => `${s}@+${at - killedAt}ms`).join(', ')}`);

        // It noticed the outage and recovered.
        expect(states.map(([s]) => s)).toContain('down');
        expect(states.at(-1)?.[0]).toBe('up');
        // The data written before the failover survived (it was replicated), and the new write is on top.
        const record = await store.read('AC1');
        expect(record?.version).toBe(2);
        expect(record?.entries.map((e) => e.id)).toEqual(['e1', 'e2']);
        expect((await store.readCompiled('AC1'))?.version).toBe(2);
        expect(await replica.get(store.keys.of('AC1').version)).toBe('2');
        expect(await store.accounts()).toEqual(['AC1']);

        // The subscriber followed the master too: a change made by another replica is heard.
        const other = await open(spec);
        expect(other.state()).toBe('up');
        await other.update('AC2', addEntry('AC2', entry('e3', '203.0.113.0/24')));
        await waitUntil('change from the other store heard after the failover', () => heard.some(([a]) => a === 'AC2'), 5_000);
        // Its own notices come back too (harmless: versions it holds): each change once or twice, in order.
        expect([...new Set(heard.map(([a, v]) => `${a}@${v}`))]).toEqual(['AC1@1', 'AC1@2', 'AC2@1']);
      } finally {
        replica.disconnect();
      }
    });
  });
});

describe('Redis Cluster topology', () => {
  let cluster: ClusterSetup;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  const topology = (): RedisTopology => ({ mode: 'cluster', nodes: cluster.startupNodes });

  describeStoreContract('redis cluster', () => new RedisStore(specFor(topology())));

  /** For each node port, the keys it holds under `prefix`. */
  async function keysPerNode(prefix: string): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>();
    for (const port of cluster.ports) {
      out.set(port, (await redisCli(port, ['--raw', 'keys', `${prefix}*`])).split(/\r?\n/).filter((k) => k !== ''));
    }
    return out;
  }

  describe('store operations across slots', () => {
    const open = openedRedisStores();

    it('opens up and runs every store operation on accounts spread over all nodes', async () => {
      const spec = specFor(topology());
      const store = await open(spec);
      expect(store.state()).toBe('up');

      const accounts = Array.from({ length: 12 }, (_, i) => `AC${i + 1}`);
      const outcomes = await Promise.all(accounts.map((a, i) => store.update(a, addEntry(a, entry(`e${i}`, `10.${i}.0.0/16`)))));
      expect(outcomes.filter((o) => !o.ok)).toEqual([]);
      // A second write to each, computed from the first (MGET of version and record in one slot).
      const seconds = await Promise.all(accounts.map((a, i) => store.update(a, addEntry(a, entry(`f${i}`, `172.16.${i}.0/24`)), 1)));
      expect(seconds.filter((o) => !o.ok)).toEqual([]);

      // The accounts really live on different nodes, each account's keys together in one slot.
      const perNode = await keysPerNode(spec.keyPrefix);
      const nodesWithAccounts = [...perNode.values()].filter((keys) => keys.some((k) => k.includes('{AC'))).length;
      expect(nodesWithAccounts).toBe(cluster.ports.length);
      for (const account of accounts) {
        const holders = [...perNode.entries()].filter(([, keys]) => keys.some((k) => k.includes(`{${account}}`)));
        expect(holders).toHaveLength(1);
        expect(holders[0]![1].filter((k) => k.includes(`{${account}}`)).sort()).toEqual(['compiled', 'record', 'version'].map((s) => `${spec.keyPrefix}{${account}}:${s}`));
      }

      for (const [i, account] of accounts.entries()) {
        const record = await store.read(account);
        expect(record?.version).toBe(2);
        expect(record?.entries.map((e) => e.id)).toEqual([`e${i}`, `f${i}`]);
        const list = await store.readCompiled(account);
        expect(list?.version).toBe(2);
        expect(list?.trie.idOf(list.trie.lookupIp(parseIp(`10.${i}.3.4`)!))).toBe(`e${i}`);
        expect(list?.trie.idOf(list.trie.lookupIp(parseIp(`172.16.${i}.9`)!))).toBe(`f${i}`);
      }
      expect(await store.readCompiled('nobody')).toBeNull();

      // A damaged compiled blob is rebuilt and written back on the account's node.
      const keys = store.keys.of('AC5');
      const port = [...perNode.entries()].find(([, ks]) => ks.includes(keys.compiled))![0];
      await redisCli(port, ['del', keys.compiled]);
      expect((await store.readCompiled('AC5'))?.version).toBe(2);
      expect((await redisCli(port, ['--raw', 'hget', keys.compiled, 'version'])).trim()).toBe('2');

      // versions() over more accounts than one sweep chunk (500), in every slot, absent ones 0.
      const many = [...accounts, ...Array.from({ length: 700 }, (_, i) => `ghost${i}`)];
      const versions = await store.versions(many);
      expect(versions.size).toBe(many.length);
      for (const account of accounts) expect(versions.get(account)).toBe(2);
      expect([...versions.entries()].filter(([a, v]) => a.startsWith('ghost') && v !== 0)).toEqual([]);

      expect(await store.accounts()).toEqual([...accounts].sort());

      // Recent callers, for accounts on different nodes in one batch.
      const now = Date.now();
      await store.recordCallers(new Map(accounts.map((a, i) => [a, new Map([[`192.0.2.${i}`, now - 1000], [`198.51.100.${i}`, now - 500]])])));
      for (const [i, account] of accounts.entries()) {
        expect(await store.recentCallers(account, 10)).toEqual([
          { ip: `198.51.100.${i}`, lastSeen: now - 500 },
          { ip: `192.0.2.${i}`, lastSeen: now - 1000 },
        ]);
      }
    });

    it('loses no update when two replicas write the same accounts at once', async () => {
      const spec = specFor(topology());
      const [a, b] = [await open(spec), await open(spec)];
      const accounts = ['AC1', 'AC2', 'AC3', 'AC4', 'AC5', 'AC6'];
      const outcomes = await Promise.all(accounts.flatMap((account) => [a, b].flatMap((store, r) => Array.from({ length: 5 }, (_, i) =>
        store.update(account, addEntry(account, entry(`r${r}e${i}`, `10.${r}.${i}.0/24`)))))));
      expect(outcomes.filter((o) => !o.ok)).toEqual([]);
      for (const account of accounts) expect((await a.read(account))?.version).toBe(10);
    });

    it('delivers a change made through one store to another store\'s subscribers, from every node', async () => {
      const spec = specFor(topology());
      const [writer, reader] = [await open(spec), await open(spec)];
      expect(reader.state()).toBe('up');
      const heard: [string, number][] = [];
      reader.subscribe((account, version) => heard.push([account, version]));
      const accounts = Array.from({ length: 9 }, (_, i) => `AC${i + 1}`);
      for (const account of accounts) expect((await writer.update(account, addEntry(account, entry('e1', '192.0.2.0/24')))).ok).toBe(true);
      // The commit scripts ran on (and published from) every node, not just the subscriber's.
      const perNode = await keysPerNode(spec.keyPrefix);
      expect([...perNode.values()].filter((keys) => keys.some((k) => k.includes('{AC'))).length).toBe(cluster.ports.length);
      await waitUntil('every change heard by the other store', () => heard.length === accounts.length, 5_000);
      expect(heard.sort()).toEqual(accounts.map((a) => [a, 1] as [string, number]).sort());
    });
  });
});

/**
 * Failure cases that ioredis's defaults get wrong on these topologies; each test guards one of
 * the options set in src/store/redis/connection.ts.
 */
describe('Sentinel failover with the old master still alive', () => {
  let setup: SentinelSetup;
  beforeAll(async () => {
    setup = await startSentinelSetup();
  });
  afterAll(async () => {
    await setup?.stop();
  });
  const open = openedRedisStores();

  // Guards `failoverDetector: true`: without it the client stays on the demoted master until
  // Sentinel reconfigures it (up to ~10 s), and what it writes there is silently discarded.
  it('sends writes to the new master once Sentinel has switched (none acknowledged and lost)', async () => {
    const store = await open(specFor({ mode: 'sentinel', masterName: setup.masterName, sentinels: setup.sentinels, db: 0 }));
    expect((await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')))).ok).toBe(true);
    const promoted = new Redis(setup.replica.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
    promoted.on('error', () => undefined);
    try {
      await promoted.connect();
      await waitUntil('replicated', async () => (await promoted.get(store.keys.of('AC1').version)) === '1', 3_000);
      expect((await redisCli(setup.sentinelPort, ['sentinel', 'failover', setup.masterName])).trim()).toBe('OK');
      await setup.waitForNewMaster(setup.master.port, 10_000);
      await sleep(1_000);
      const out = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
      expect(out.ok && out.record.version).toBe(2);
      // An acknowledged write made a second after the switch must be on the new master.
      await waitUntil('acknowledged write present on the new master', async () => (await promoted.get(store.keys.of('AC1').version)) === '2', 3_000);
    } finally {
      promoted.disconnect();
    }
  });
});

describe('Cluster node outage', () => {
  let cluster: ClusterSetup;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  const open = openedRedisStores();
  const accounts = Array.from({ length: 9 }, (_, i) => `AC${i + 1}`);

  async function setUp(prefix: string): Promise<{ store: RedisStore; victimAccounts: string[] }> {
    const store = await open({ ...specFor({ mode: 'cluster', nodes: cluster.startupNodes }, prefix), commandTimeoutMs: 500 });
    for (const a of accounts) expect((await store.update(a, addEntry(a, entry('e1', '192.0.2.0/24')))).ok).toBe(true);
    const onVictim = (await redisCli(cluster.ports[0]!, ['--raw', 'keys', `${prefix}*:version`])).split(/\r?\n/).filter((k) => k !== '');
    const victimAccounts = accounts.filter((a) => onVictim.includes(store.keys.of(a).version));
    expect(victimAccounts.length).toBeGreaterThan(1);
    return { store, victimAccounts };
  }

  async function restartVictim(): Promise<void> {
    await cluster.nodes[0]!.restart();
    await waitUntil('cluster_state:ok everywhere after the restart', async () => {
      for (const port of cluster.ports) if (!(await redisCli(port, ['cluster', 'info'])).includes('cluster_state:ok')) return false;
      return true;
    }, 15_000);
  }

  // Guards `retryDelayOnFailover: 0` and `retryDelayOnClusterDown: 0`: by default ioredis's Cluster
  // retries on "Connection is closed" and CLUSTERDOWN up to 16 times, 100 ms apart.
  it('fails a command within commandTimeoutMs while a node is down', async () => {
    const { store, victimAccounts } = await setUp('outage:');
    const live = accounts.find((a) => !victimAccounts.includes(a))!;
    await cluster.nodes[0]!.kill();
    try {
      let t = Date.now();
      await expect(store.readCompiled(victimAccounts[0]!)).rejects.toThrow();
      const onDeadNode = Date.now() - t;
      // Once the node timeout passes, the cluster refuses every slot (cluster-require-full-coverage).
      await waitUntil('cluster_state:fail', async () => (await redisCli(cluster.ports[1]!, ['cluster', 'info'])).includes('cluster_state:fail'), 10_000);
      t = Date.now();
      await expect(store.readCompiled(live)).rejects.toThrow(/CLUSTERDOWN/);
      const clusterDown = Date.now() - t;
      console.log(`[cluster outage] readCompiled failed after ${onDeadNode} ms (slot on the dead node) and ${clusterDown} ms (CLUSTERDOWN); commandTimeoutMs is 500; store state: ${store.state()}`);
      expect(onDeadNode).toBeLessThan(800);
      expect(clusterDown).toBeLessThan(800);
    } finally {
      await restartVictim();
    }
  });

  // Guards `slotsRefreshInterval`. An auto-pipeline groups commands for many slots of one node;
  // when that node died and came back, the batch is sent elsewhere, every command gets `MOVED
  // <its own slot>`, the errors differ, so ioredis neither retries nor refreshes its slot map:
  // without a periodic refresh the MOVED error is returned on every call, indefinitely.
  it('serves multi-account calls again once a restarted node has rejoined', async () => {
    const { store, victimAccounts } = await setUp('rejoin:');
    await cluster.nodes[0]!.kill();
    await restartVictim();
    // The node restarted empty (no persistence in tests): its accounts now have no record.
    let last = '';
    await waitUntil('versions() answering after the restart', async () => {
      try {
        await store.versions(accounts);
        return true;
      } catch (error) {
        last = (error as Error).message;
        return false;
      }
    }, 5_000).catch((error: Error) => {
      throw new Error(`${error.message}; last error: ${last}`);
    });
    const versions = await store.versions(accounts);
    for (const a of accounts) expect(versions.get(a)).toBe(victimAccounts.includes(a) ? 0 : 1);
    expect(await Promise.all(victimAccounts.map((a) => store.readCompiled(a)))).toEqual(victimAccounts.map(() => null));
  });
});
