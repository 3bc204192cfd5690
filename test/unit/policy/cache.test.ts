import { describe, expect, it } from 'vitest';
import { PolicyCache } from '../../../src/policy/cache.ts';
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

/** Counts store reads, to prove caching and coalescing. */
class CountingStore extends MemoryStore {
  reads = 0;
  override async read(account: string): Promise<AccountRecord | null> {
    this.reads++;
    return super.read(account);
  }
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
