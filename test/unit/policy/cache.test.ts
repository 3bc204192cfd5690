import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../src/ip/address.ts';
import { PolicyCache } from '../../../src/policy/cache.ts';
import { compileList, type CompiledList } from '../../../src/policy/compile.ts';
import { isRefusal, MAX_PARENT_DEPTH, PolicyResolver } from '../../../src/policy/resolve.ts';
import type { AccountRecord, AccountSettings, AclEntry } from '../../../src/policy/types.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';

function entry(id: string, cidr: string, extra: Partial<AclEntry> = {}): AclEntry {
  return { id, ipAddress: cidr, cidrs: [cidr], action: 'allow', description: '', enabled: true, createdAt: 'x', updatedAt: 'x', ...extra };
}

async function put(store: MemoryStore, account: string, entries: AclEntry[], settings: AccountSettings = {}): Promise<void> {
  const out = await store.update(account, () => ({ ok: true, draft: { account, settings, entries } }));
  expect(out.ok).toBe(true);
}

/** Counts store reads, to prove caching and coalescing; `failing` makes every read reject. */
class CountingStore extends MemoryStore {
  reads = 0;
  failing = false;
  override async read(account: string): Promise<AccountRecord | null> {
    this.reads++;
    if (this.failing) throw new Error('store unreachable');
    return super.read(account);
  }
}

/** Reports versions for the sweep; while `deaf`, change notifications are lost (an outage). */
class SweepableStore extends CountingStore {
  deaf = false;
  versionCalls: string[][] = [];
  override subscribe(listener: (account: string, version: number) => void): () => void {
    return super.subscribe((account, version) => {
      if (!this.deaf) listener(account, version);
    });
  }
  async versions(accounts: readonly string[]): Promise<ReadonlyMap<string, number>> {
    this.versionCalls.push([...accounts]);
    return new Map(accounts.map((account) => [account, this.records.get(account)?.version ?? 0]));
  }
}

/** Serves ready-compiled lists, like a shared store that caches the compiled form. */
class CompiledStore extends CountingStore {
  compiledReads = 0;
  lastServed: CompiledList | null = null;
  async readCompiled(account: string): Promise<CompiledList | null> {
    this.compiledReads++;
    const record = this.records.get(account);
    this.lastServed = record ? compileList(record, 0) : null;
    return this.lastServed;
  }
}

const NET = '192.0.2.0/24';

/** What one compiled list with a single IPv4 /24 entry is charged against maxBytes. */
function oneEntryListBytes(): number {
  const record: AccountRecord = { account: 'X', version: 1, settings: {}, entries: [entry('e', NET)] };
  return compileList(record, 0).trie.byteLength + 64;
}

async function storeWith(accounts: string[]): Promise<CountingStore> {
  const store = new CountingStore();
  for (const account of accounts) await put(store, account, [entry(`${account}-e`, NET)]);
  return store;
}

describe('PolicyCache', () => {
  it('caches compiled lists and absent accounts, and drops them on change', async () => {
    const store = new CountingStore();
    const cache = new PolicyCache(store);
    expect(cache.peek('AC1')).toBeUndefined();
    expect(await cache.get('AC1')).toBeNull();
    expect(cache.peek('AC1')).toBeNull();
    expect(store.reads).toBe(1);

    await put(store, 'AC1', [entry('e1', '192.0.2.0/24')]);
    expect(cache.peek('AC1')).toBeUndefined();
    const list = await cache.get('AC1');
    expect(list?.version).toBe(1);
    expect(cache.get('AC1')).toBe(list);
    expect(store.reads).toBe(2);
  });

  it('shares one store read among concurrent misses', async () => {
    const store = new CountingStore();
    await put(store, 'AC1', [entry('e1', '192.0.2.0/24')]);
    const cache = new PolicyCache(store);
    const results = await Promise.all([cache.get('AC1'), cache.get('AC1'), cache.get('AC1')]);
    expect(store.reads).toBe(1);
    expect(new Set(results).size).toBe(1);
  });

  it('never caches a read that a change overtook', async () => {
    const store = new MemoryStore();
    await put(store, 'AC1', [entry('e1', '192.0.2.0/24')]);
    const cache = new PolicyCache(store);
    const stale = cache.load('AC1');
    await put(store, 'AC1', []);
    await stale;
    expect(cache.peek('AC1')).toBeUndefined();
    expect((await cache.get('AC1'))?.version).toBe(2);
  });

  it('recompiles when an entry expires', async () => {
    let now = Date.parse('2026-06-01T00:00:00Z');
    const store = new MemoryStore();
    await put(store, 'AC1', [entry('e1', '192.0.2.0/24', { expiresAt: '2026-06-01T00:01:00Z' })]);
    const cache = new PolicyCache(store, () => now);
    expect((await cache.get('AC1'))?.hasAllow).toBe(true);
    now += 120_000;
    expect(cache.peek('AC1')).toBeUndefined();
    expect((await cache.get('AC1'))?.hasAllow).toBe(false);
  });
});

describe('PolicyCache: temporary entries while the store is out of reach', () => {
  const at = (text: string) => parseIp(text)!;
  const slotOf = (list: CompiledList | null, ip: string): string | null => {
    const address = at(ip);
    const slot = list?.trie.lookup(address.family, address.words) ?? -1;
    return slot < 0 ? null : list!.trie.idOf(slot);
  };

  it('drops an expired entry from the last-known-good list at its time, keeping the others', async () => {
    let now = Date.parse('2026-06-01T00:00:00Z');
    const store = new CountingStore();
    await put(store, 'AC1', [
      entry('office', '192.0.2.0/24'),
      entry('contractor', '198.51.100.7/32', { expiresAt: '2026-06-01T00:01:00Z' }),
      entry('later', '203.0.113.0/24', { expiresAt: '2026-06-01T00:05:00Z' }),
    ]);
    const cache = new PolicyCache(store, () => now);
    const fresh = await cache.get('AC1');
    expect(slotOf(fresh, '198.51.100.7')).toBe('contractor');
    store.failing = true;

    now += 120_000; // the contractor's entry has expired; the store cannot be read
    expect(cache.peek('AC1')).toBeUndefined();
    const served = await cache.get('AC1');
    expect(cache.stats().staleServed).toBe(1);
    expect(slotOf(served, '198.51.100.7')).toBeNull();
    expect(slotOf(served, '192.0.2.9')).toBe('office');
    expect(slotOf(served, '203.0.113.9')).toBe('later');
    expect(served?.hasAllow).toBe(true);
    expect(served?.validUntil).toBe(Date.parse('2026-06-01T00:05:00Z'));

    now += 300_000; // past the second expiry too
    const later = await cache.get('AC1');
    expect([slotOf(later, '203.0.113.9'), slotOf(later, '192.0.2.9')]).toEqual([null, 'office']);
    expect(later?.expiries).toBeNull();

    store.failing = false;
    const back = await cache.get('AC1');
    expect([slotOf(back, '198.51.100.7'), slotOf(back, '203.0.113.9'), slotOf(back, '192.0.2.9')]).toEqual([null, null, 'office']);
  });

  it('leaves an account with no allow entry once its only temporary allow has expired', async () => {
    let now = Date.parse('2026-06-01T00:00:00Z');
    const store = new CountingStore();
    await put(store, 'AC1', [entry('temp', '198.51.100.7/32', { expiresAt: '2026-06-01T00:01:00Z' }), entry('block', '192.0.2.0/24', { action: 'deny' })]);
    const cache = new PolicyCache(store, () => now);
    expect((await cache.get('AC1'))?.hasAllow).toBe(true);
    store.failing = true;
    now += 120_000;
    const served = await cache.get('AC1');
    expect(served?.hasAllow).toBe(false);
    expect(slotOf(served, '192.0.2.1')).toBe('block');
  });
});

describe('PolicyCache bounds', () => {
  it('evicts the least recently used list beyond maxEntries, peek and get both counting as use', async () => {
    const store = await storeWith(['A', 'B', 'C', 'D']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 2, maxBytes: Number.MAX_SAFE_INTEGER });
    await cache.get('A');
    await cache.get('B');
    expect(cache.peek('A')?.account).toBe('A'); // A is now the most recent: B goes first
    await cache.get('C');
    expect(cache.stats()).toMatchObject({ entries: 2, evictions: 1 });
    expect(cache.peek('B')).toBeUndefined();
    expect(cache.get('A')).toMatchObject({ account: 'A' }); // synchronous: still cached, and used again
    await cache.get('D');
    expect(cache.stats()).toMatchObject({ entries: 2, evictions: 2 });
    expect(cache.peek('C')).toBeUndefined();
    expect(cache.peek('A')?.account).toBe('A');
    expect(cache.peek('D')?.account).toBe('D');
    expect(store.reads).toBe(4);
  });

  it('keeps a list in use while a stream of one-off accounts passes through (second chance)', async () => {
    const oneOff = Array.from({ length: 12 }, (_, i) => `X${i}`);
    const store = await storeWith(['HOT', ...oneOff]);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 3, maxBytes: Number.MAX_SAFE_INTEGER });
    await cache.get('HOT');
    for (const account of oneOff) {
      expect(cache.peek('HOT')?.account).toBe('HOT');
      await cache.get(account);
    }
    expect(cache.stats()).toMatchObject({ entries: 3, evictions: 10 });
    expect(cache.peek('HOT')?.account).toBe('HOT');
    expect(cache.peek('X0')).toBeUndefined();
    expect(store.reads).toBe(13);
  });

  it('charges trie bytes plus 64 per list, and 64 per negative entry', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: Number.MAX_SAFE_INTEGER });
    const list = await cache.get('A');
    expect(cache.stats().bytes).toBe(list!.trie.byteLength + 64);
    expect(await cache.get('NOBODY')).toBeNull();
    expect(cache.stats().bytes).toBe(list!.trie.byteLength + 128);
  });

  it('evicts the oldest lists beyond maxBytes', async () => {
    const size = oneEntryListBytes();
    const store = await storeWith(['A', 'B', 'C']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: 2 * size + size / 2 });
    await cache.get('A');
    await cache.get('B');
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 2 * size, evictions: 0 });
    await cache.get('C');
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 2 * size, evictions: 1 });
    expect(cache.peek('A')).toBeUndefined();
    expect(cache.peek('B')?.account).toBe('B');
  });

  it('always keeps the newest list, even one larger than maxBytes alone', async () => {
    const size = oneEntryListBytes();
    const store = await storeWith(['A', 'B']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: 1 });
    await cache.get('A');
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: size, evictions: 0 });
    await cache.get('B');
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: size, evictions: 1 });
    expect(cache.peek('B')?.account).toBe('B');
  });

  it('gives the bytes back when a list is invalidated', async () => {
    const size = oneEntryListBytes();
    const store = await storeWith(['A', 'B']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: Number.MAX_SAFE_INTEGER });
    await cache.get('A');
    await cache.get('B');
    expect(cache.stats().bytes).toBe(2 * size);
    cache.invalidate('A');
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: size });
    await put(store, 'B', []); // the store's notice invalidates B as well
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });
});

describe('PolicyCache negative entries and versions', () => {
  it('caches "no record" without asking the store again, until a first entry is added', async () => {
    const store = new CountingStore();
    const cache = new PolicyCache(store);
    expect(await cache.get('AC1')).toBeNull();
    expect(cache.get('AC1')).toBeNull(); // synchronous: answered from the cache
    expect(store.reads).toBe(1);
    expect(cache.stats()).toMatchObject({ entries: 1, hits: 1, misses: 1 });

    await put(store, 'AC1', [entry('e1', NET)]);
    const list = await cache.get('AC1');
    expect(store.reads).toBe(2);
    expect(list?.version).toBe(1);
    expect(list?.trie.idOf(list.trie.lookupIp(parseIp('192.0.2.7')!))).toBe('e1');
  });

  it('ignores a change notice for a version it already holds, and drops the list on a newer one', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    const list = await cache.get('A');
    const changes = cache.changes;
    cache.invalidate('A', 1); // this replica's own write, echoed back
    cache.invalidate('A', 0);
    expect(cache.peek('A')).toBe(list);
    expect(cache.changes).toBe(changes);
    cache.invalidate('A', 2);
    expect(cache.peek('A')).toBeUndefined();
    expect(cache.changes).toBe(changes + 1);
    await cache.get('A');
    expect(store.reads).toBe(2);
  });

  it('drops a negative entry on any versioned notice', async () => {
    const store = new CountingStore();
    const cache = new PolicyCache(store);
    await cache.get('AC1');
    cache.invalidate('AC1', 1);
    expect(cache.peek('AC1')).toBeUndefined();
  });
});

describe('PolicyCache last-known-good', () => {
  it('serves the invalidated list while the store fails, and the new one once it answers', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    const old = await cache.get('A');
    await put(store, 'A', [entry('A-e2', '198.51.100.0/24')]); // notice: A invalidated
    store.failing = true;
    expect(await cache.get('A')).toBe(old);
    expect(await cache.get('A')).toBe(old);
    expect(cache.stats().staleServed).toBe(2);
    expect(cache.peek('A')).toBeUndefined(); // a fallback is never cached as current
    store.failing = false;
    expect((await cache.get('A'))?.version).toBe(2);
    expect(cache.lastKnownGood().get('A')?.version).toBe(2);
  });

  it('rejects a load for an account it never had while the store fails', async () => {
    const store = new CountingStore();
    store.failing = true;
    const cache = new PolicyCache(store);
    await expect(cache.get('A')).rejects.toThrow('store unreachable');
    expect(cache.stats().staleServed).toBe(0);
    expect(cache.peek('A')).toBeUndefined();
  });

  it('uses seeded lists only when a load fails, never over a current list', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    const seededA = compileList({ account: 'A', version: 7, settings: {}, entries: [] }, 0);
    const seededS = compileList({ account: 'S', version: 3, settings: {}, entries: [entry('s1', NET)] }, 0);
    cache.seed(new Map([['A', seededA], ['S', seededS], ['N', null]]));

    // The store answers: the seed is not served.
    expect((await cache.get('A'))?.version).toBe(1);
    expect(cache.stats().staleServed).toBe(0);

    store.failing = true;
    expect(await cache.get('S')).toBe(seededS);
    expect(await cache.get('N')).toBeNull();
    expect(cache.stats().staleServed).toBe(2);

    const lkg = cache.lastKnownGood();
    expect([...lkg.keys()].sort()).toEqual(['A', 'N', 'S']);
    expect(lkg.get('A')?.version).toBe(1);
    expect(lkg.get('S')).toBe(seededS);
    expect(lkg.get('N')).toBeNull();
  });

  it('never lets a seed replace a list the cache held itself', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    const held = await cache.get('A');
    await put(store, 'A', []); // invalidated: v1 is now kept as last known good
    cache.seed(new Map([['A', compileList({ account: 'A', version: 9, settings: {}, entries: [] }, 0)]]));
    store.failing = true;
    expect(await cache.get('A')).toBe(held);
  });

  it('counts every fill and invalidation in `changes`', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    expect(cache.changes).toBe(0);
    await cache.get('A');
    expect(cache.changes).toBe(1);
    await cache.get('NOBODY');
    expect(cache.changes).toBe(2);
    cache.get('A'); // a hit changes nothing
    cache.invalidate('NOT-CACHED');
    expect(cache.changes).toBe(2);
    cache.invalidate('A');
    expect(cache.changes).toBe(3);
    await put(store, 'NOBODY', []);
    expect(cache.changes).toBe(4);
  });
});

describe('PolicyCache sweep and compiled reads', () => {
  it('drops exactly the lists whose store version moved while notices were lost', async () => {
    const store = new SweepableStore();
    await put(store, 'A', [entry('a', NET)]);
    await put(store, 'B', [entry('b', NET)]);
    const cache = new PolicyCache(store);
    const b = await cache.get('B');
    await cache.get('A');
    await cache.get('N');
    store.deaf = true;
    await put(store, 'A', []);
    await put(store, 'N', []);
    expect(cache.peek('A')).not.toBeUndefined(); // the notice was lost

    expect(await cache.sweep()).toBe(2);
    expect(store.versionCalls.map((accounts) => [...accounts].sort())).toEqual([['A', 'B', 'N']]);
    expect(cache.peek('A')).toBeUndefined();
    expect(cache.peek('N')).toBeUndefined();
    expect(cache.peek('B')).toBe(b);
    expect(await cache.sweep()).toBe(0); // B still current; A and N no longer cached
  });

  it('does not sweep a store that reports no versions', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    await cache.get('A');
    expect(await cache.sweep()).toBe(0);
    expect(cache.peek('A')?.version).toBe(1);
  });

  it('takes the store\'s compiled list instead of reading and compiling the record', async () => {
    const store = new CompiledStore();
    await put(store, 'A', [entry('a', NET)]);
    const cache = new PolicyCache(store);
    const list = await cache.get('A');
    expect(list).toBe(store.lastServed);
    expect(await cache.get('NOBODY')).toBeNull();
    expect(store.compiledReads).toBe(2);
    expect(store.reads).toBe(0);
  });
});

describe('PolicyResolver', () => {
  const defaults = { mode: 'enforce', default: 'open' } as const;

  it('enforces the root ancestor list and inherits the nearest mode and default', async () => {
    const store = new MemoryStore();
    await put(store, 'ROOT', [entry('r1', '192.0.2.0/24')], { mode: 'report-only' });
    await put(store, 'MID', [], { parent: 'ROOT', default: 'closed' });
    await put(store, 'LEAF', [entry('ignored', '198.51.100.0/24')], { parent: 'MID' });
    const resolver = new PolicyResolver(new PolicyCache(store), defaults);
    const first = resolver.resolve('LEAF');
    expect(first).toBeInstanceOf(Promise);
    const policy = await first;
    if (isRefusal(policy)) throw new Error('unexpected refusal');
    expect(policy.list?.account).toBe('ROOT');
    expect(policy.listKind).toBe('parent');
    expect(policy.own?.account).toBe('LEAF');
    expect(policy.mode).toBe('report-only');
    expect(policy.default).toBe('closed');
    // Warm: answered synchronously from the cache.
    const warm = resolver.resolve('LEAF');
    expect(warm).not.toBeInstanceOf(Promise);
  });

  it('counts each list once: one miss per list loaded, one hit per list read warm', async () => {
    const store = new MemoryStore();
    await put(store, 'ROOT', [entry('r1', '192.0.2.0/24')]);
    await put(store, 'LEAF', [], { parent: 'ROOT' });
    const cache = new PolicyCache(store);
    const resolver = new PolicyResolver(cache, defaults);
    await resolver.resolve('ROOT');
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 1 });
    // LEAF is cold, its parent warm: the miss is LEAF's alone, ROOT is read once.
    await resolver.resolve('LEAF');
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2 });
    resolver.resolve('LEAF');
    expect(cache.stats()).toMatchObject({ hits: 3, misses: 2 });
  });

  it('uses configured defaults for an unknown account', async () => {
    const resolver = new PolicyResolver(new PolicyCache(new MemoryStore()), defaults);
    expect(await resolver.resolve('NOBODY')).toMatchObject({ own: null, list: null, listKind: 'account', mode: 'enforce', default: 'open' });
  });

  it('fails closed on a parent chain that is too deep or loops', async () => {
    const store = new MemoryStore();
    await put(store, 'A', [], { parent: 'B' });
    await put(store, 'B', [], { parent: 'A' });
    const chain = Array.from({ length: MAX_PARENT_DEPTH + 2 }, (_, i) => `L${i}`);
    for (let i = 0; i < chain.length - 1; i++) await put(store, chain[i]!, [], { parent: chain[i + 1]! });
    const resolver = new PolicyResolver(new PolicyCache(store), defaults);
    expect(await resolver.resolve('A')).toMatchObject({ status: 500, reason: 'policy_error' });
    expect(await resolver.resolve('L0')).toMatchObject({ status: 500, reason: 'policy_error' });
    expect(isRefusal(await resolver.resolve('L1'))).toBe(false);
  });
});
