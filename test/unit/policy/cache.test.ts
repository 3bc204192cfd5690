import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../src/ip/address.ts';
import { PolicyCache, SupersededList } from '../../../src/policy/cache.ts';
import { compileList, retainedBytes, type CompiledList } from '../../../src/list/compile.ts';
import { MAX_PARENT_DEPTH } from '../../../src/list/inherit.ts';
import { keyListId } from '../../../src/list/key-list-id.ts';
import { PolicyResolver } from '../../../src/policy/resolve.ts';
import type { AccountRecord, AccountSettings, AclEntry } from '../../../src/list/types.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';
import type { ChangeListener, ChangeNotice } from '../../../src/store/store.ts';

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
  readonly #heard = new Set<ChangeListener>();
  override async read(account: string): Promise<AccountRecord | null> {
    this.reads++;
    if (this.failing) throw new Error('store unreachable');
    return super.read(account);
  }
  override subscribe(listener: ChangeListener): () => void {
    this.#heard.add(listener);
    const unsubscribe = super.subscribe(listener);
    return () => {
      this.#heard.delete(listener);
      unsubscribe();
    };
  }
  /** A notice as a shared store delivers it (from another replica, or this one's commit). */
  notify(account: string, version: number, notice: ChangeNotice): void {
    for (const listener of this.#heard) listener(account, version, notice);
  }
}

/** Reports versions for the sweep; while `deaf`, change notifications are lost (an outage). */
class SweepableStore extends CountingStore {
  deaf = false;
  versionCalls: string[][] = [];
  override subscribe(listener: ChangeListener): () => void {
    return super.subscribe((account, version, notice) => {
      if (!this.deaf) listener(account, version, notice);
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
const DEFAULT_LIMITS = { maxEntries: 100, maxBytes: Number.MAX_SAFE_INTEGER };

/** What one compiled list with a single IPv4 /24 entry is charged against maxBytes. */
function oneEntryListBytes(account = 'X'): number {
  const record: AccountRecord = { account, version: 1, settings: {}, entries: [entry(`${account}-e`, NET)] };
  return retainedBytes(compileList(record, 0));
}

/** Lets the loads a notice starts run to their end. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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
    expect((await stale)?.version).toBe(1); // the request that was waiting gets what it asked for
    expect(cache.peek('AC1')?.version).not.toBe(1);
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
  it('keeps at most maxNegativeEntries "no record" answers: a flood of made-up accounts churns only those, never the lists', async () => {
    const store = await storeWith(['A', 'B']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: Number.MAX_SAFE_INTEGER, maxNegativeEntries: 3 });
    await cache.get('A');
    await cache.get('B');
    for (let i = 0; i < 50; i++) expect(await cache.get(`MADEUP${i}`)).toBeNull();
    expect(cache.stats()).toMatchObject({ entries: 5, evictions: 47 });
    expect(cache.peek('A')?.account).toBe('A');
    expect(cache.peek('B')?.account).toBe('B');
    expect(cache.peek('MADEUP49')).toBeNull();
    expect(cache.peek('MADEUP0')).toBeUndefined();
  });

  it('holds a key\'s "no list of its own" as an ordinary entry: more keys in use than maxNegativeEntries do not churn each other out', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 20, maxBytes: Number.MAX_SAFE_INTEGER, maxNegativeEntries: 3 });
    await cache.get('A');
    const keyLists = Array.from({ length: 10 }, (_, i) => keyListId('A', `key_${i}`));
    for (const id of keyLists) expect(await cache.get(id)).toBeNull();
    const reads = store.reads;
    // Round after round over every key, as a replica serving ten keys sees them: all answered here.
    for (let round = 0; round < 3; round++) for (const id of keyLists) expect(cache.peek(id)).toBeNull();
    expect(store.reads).toBe(reads);
    expect(cache.stats()).toMatchObject({ entries: 11, evictions: 0 });
    // Made-up accounts still churn only their own bound, never the keys' entries.
    for (let i = 0; i < 10; i++) expect(await cache.get(`MADEUP${i}`)).toBeNull();
    expect(cache.stats()).toMatchObject({ entries: 14, evictions: 7 });
    for (const id of keyLists) expect(cache.peek(id)).toBeNull();
    // And they are bounded with everything else by maxEntries.
    for (let i = 10; i < 20; i++) expect(await cache.get(keyListId('A', `key_${i}`))).toBeNull();
    expect(cache.stats().entries).toBe(20);
  });

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

  it('charges what a list retains (its trie, ids and objects), and a little for a negative entry', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: Number.MAX_SAFE_INTEGER });
    const list = await cache.get('A');
    expect(cache.stats().bytes).toBe(retainedBytes(list!));
    expect(retainedBytes(list!)).toBeGreaterThan(list!.trie.byteLength + 300);
    expect(await cache.get('NOBODY')).toBeNull();
    const negative = cache.stats().bytes - retainedBytes(list!);
    expect(negative).toBeGreaterThan(0);
    expect(negative).toBeLessThan(retainedBytes(list!));
  });

  it('evicts the oldest lists beyond maxBytes', async () => {
    const size = oneEntryListBytes('A');
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
    const size = oneEntryListBytes('A');
    const store = await storeWith(['A', 'B']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: 1 });
    await cache.get('A');
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: size, evictions: 0 });
    await cache.get('B');
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: size, evictions: 1 });
    expect(cache.peek('B')?.account).toBe('B');
  });

  it('gives the bytes back when a list is replaced', async () => {
    const size = oneEntryListBytes('A');
    const store = await storeWith(['A', 'B']);
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: Number.MAX_SAFE_INTEGER });
    await cache.get('A');
    await cache.get('B');
    expect(cache.stats().bytes).toBe(2 * size);
    await put(store, 'B', []); // the store's notice: B reloaded at once, now without entries
    await settle();
    const b = cache.peek('B')!;
    expect(b.version).toBe(2);
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: size + retainedBytes(b) });
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

  it('ignores a change notice for a version it already holds, and reloads the list at once on a newer one', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    const list = await cache.get('A');
    const changes = cache.changes;
    cache.invalidate('A', 1); // this replica's own write, echoed back
    cache.invalidate('A', 0);
    expect(cache.peek('A')).toBe(list);
    expect(cache.changes).toBe(changes);
    expect(store.reads).toBe(1);
    cache.invalidate('A', 2);
    expect(cache.peek('A')).toBeUndefined();
    expect(cache.changes).toBeGreaterThan(changes);
    expect(store.reads).toBe(2); // not waiting for a request: the read has started
    await settle();
    expect(cache.peek('A')?.version).toBe(1); // what the store holds
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
  it('refuses an account whose list changed while the store fails, instead of enforcing the list it replaced', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    await cache.get('A');
    store.failing = true;
    await put(store, 'A', []); // a revocation; its notice says nothing of what the new list allows
    await expect(cache.get('A')).rejects.toBeInstanceOf(SupersededList);
    await expect(cache.get('A')).rejects.toThrow(/account A changed and its new list could not be loaded \(store unreachable\)/);
    expect(cache.stats()).toMatchObject({ staleServed: 0, refusing: 1 });
    expect(cache.lastKnownGood().get('A')).toBe('superseded');
    expect(cache.peek('A')).toBeUndefined();
    store.failing = false;
    cache.storeBack();
    await settle();
    expect(cache.peek('A')?.version).toBe(2);
    expect(cache.stats().refusing).toBe(0);
  });

  it('keeps enforcing the old list while the store fails when the change said it is at least as strict', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    const old = await cache.get('A');
    store.failing = true;
    cache.invalidate('A', 3); // not the next version: what came between is unknown
    await expect(cache.get('A')).rejects.toBeInstanceOf(SupersededList);
    store.failing = false;
    cache.storeBack();
    await settle();
    expect(cache.peek('A')?.version).toBe(1);
    store.failing = true;
    // A notice from another replica: version 2, which only adds an allow entry.
    store.notify('A', 2, { publishedAt: Date.now(), loosens: true });
    // The same list as before the notice (reloaded once the store was back: another compilation of it).
    expect(await cache.get('A')).toStrictEqual({ ...old, compilation: expect.any(Number) });
    expect(cache.stats().staleServed).toBe(1);
    expect(cache.peek('A')).toBeUndefined(); // a stand-in is never cached as current
  });

  it('enforces a list that arrives with its notice without reading the store, and reports the lag to enforcement', async () => {
    const lags: number[] = [];
    let now = 1_000_000;
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store, () => now, DEFAULT_LIMITS, { enforced: (seconds) => lags.push(seconds) });
    await cache.get('A');
    store.failing = true;
    const next = compileList({ account: 'A', version: 2, settings: {}, entries: [] }, now);
    now += 7;
    store.notify('A', 2, { publishedAt: now - 7, list: next });
    expect(cache.peek('A')).toBe(next);
    expect(lags).toEqual([0.007]);
    expect(store.reads).toBe(1);
  });

  it('reports the lag when the change is enforced, not when it was heard of', async () => {
    const lags: number[] = [];
    let now = 1_000_000;
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store, () => now, DEFAULT_LIMITS, { enforced: (seconds) => lags.push(seconds) });
    await cache.get('A');
    store.failing = true;
    await put(store, 'A', []);
    store.notify('A', 2, { publishedAt: now });
    await settle();
    expect(lags).toEqual([]);
    now += 2_500; // the store comes back 2.5 s later
    store.failing = false;
    cache.storeBack();
    await settle();
    expect(lags).toEqual([2.5]);
  });

  it('asks a failing store once per account and backoff, not once per request', async () => {
    let now = 1_000_000;
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store, () => now);
    store.failing = true;
    await Promise.all(Array.from({ length: 20 }, () => Promise.resolve(cache.get('A')).catch(() => null)));
    expect(store.reads).toBe(1); // one read in flight, shared
    for (let i = 0; i < 20; i++) await Promise.resolve(cache.get('A')).catch(() => null);
    expect(store.reads).toBe(1); // within the backoff: answered without the store
    now += 150;
    await Promise.resolve(cache.get('A')).catch(() => null);
    expect(store.reads).toBe(2);
    now += 150; // the backoff doubled: not yet
    await Promise.resolve(cache.get('A')).catch(() => null);
    expect(store.reads).toBe(2);
    store.failing = false;
    cache.storeBack(); // back: backoffs forgotten
    expect((await cache.get('A'))?.version).toBe(1);
    expect(store.reads).toBe(3);
  });

  it('caches a list this replica committed for an account it does not hold only if it fits without evicting', async () => {
    const store = await storeWith(['A']);
    const size = oneEntryListBytes('A');
    const cache = new PolicyCache(store, Date.now, { maxEntries: 10, maxBytes: size + size / 2 });
    const notify = store.notify.bind(store);
    notify('B', 1, { list: compileList({ account: 'B', version: 1, settings: {}, entries: [entry('b', NET)] }, 0) });
    expect(cache.peek('B')?.version).toBe(1);
    notify('C', 1, { list: compileList({ account: 'C', version: 1, settings: {}, entries: [entry('c', NET)] }, 0) });
    expect(cache.peek('C')).toBeUndefined();
    expect(cache.peek('B')?.version).toBe(1);
    // Another replica's list is not cached for an account this one never served.
    notify('D', 1, { publishedAt: Date.now(), list: compileList({ account: 'D', version: 1, settings: {}, entries: [] }, 0) });
    expect(cache.peek('D')).toBeUndefined();
    expect(cache.stats().evictions).toBe(0);
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
    expect((lkg.get('A') as CompiledList).version).toBe(1);
    expect(lkg.get('S')).toBe(seededS);
    expect(lkg.get('N')).toBeNull();
  });

  it('never lets a seed replace a list the cache held itself', async () => {
    const store = await storeWith(['A']);
    const cache = new PolicyCache(store);
    await cache.get('A');
    await put(store, 'A', []); // reloaded at once: v2 is current
    await settle();
    cache.seed(new Map([['A', compileList({ account: 'A', version: 9, settings: {}, entries: [] }, 0)]]));
    store.failing = true;
    expect(cache.get('A')).toMatchObject({ version: 2 });
  });

  it('counts fills and changes in `changes`, not hits or notices for accounts it does not hold', async () => {
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
    expect(cache.changes).toBeGreaterThan(2);
  });
});

describe('PolicyCache sweep and compiled reads', () => {
  it('reloads exactly the lists whose store version moved while notices were lost', async () => {
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
    expect(cache.peek('A')?.version).toBe(1); // the notice was lost

    expect(await cache.sweep()).toBe(2);
    expect(store.versionCalls.map((accounts) => [...accounts].sort())).toEqual([['A', 'B', 'N']]);
    await settle();
    expect(cache.peek('A')?.version).toBe(2);
    expect(cache.peek('N')?.version).toBe(1);
    expect(cache.peek('B')).toBe(b);
    expect(await cache.sweep()).toBe(0);
    // Only the accounts named are compared.
    expect(await cache.sweep(['B'])).toBe(0);
    expect(store.versionCalls.at(-1)).toEqual(['B']);
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
    if (!policy.ok) throw new Error('unexpected refusal');
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
    expect(await resolver.resolve('A')).toMatchObject({ ok: false, refusal: { status: 500, reason: 'policy_error' } });
    expect(await resolver.resolve('L0')).toMatchObject({ ok: false, refusal: { status: 500, reason: 'policy_error' } });
    expect((await resolver.resolve('L1')).ok).toBe(true);
  });
});
