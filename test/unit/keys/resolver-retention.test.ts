/*
 * A remembered key's answer stands while the cache holds the compilation it was drawn from
 * (Pointer.checked). The resolver must not keep that list alive once the cache lets it go, or the
 * cache's byte bound (cache.maxBytes) would no longer bound the heap the lists take. Lists are
 * followed with weak references and a forced collection.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { addKey } from '../../../src/acl/key-changes.ts';
import { KeyResolver } from '../../../src/keys/resolver.ts';
import { KeyDigester } from '../../../src/list/key-digest.ts';
import type { AclEntry, ApiKeyRecord } from '../../../src/list/types.ts';
import { PolicyCache } from '../../../src/policy/cache.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const digester = new KeyDigester(Buffer.from('retention-test-secret-0123456789abcdef'));
const STAMP = '2026-01-01T00:00:00.000Z';

function entries(n: number, salt: number): AclEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const cidr = `10.${salt % 256}.${(i >> 8) & 255}.${i & 255}/32`;
    return { id: `e${i}`, ipAddress: cidr, cidrs: [cidr], action: 'allow', description: '', enabled: true, createdAt: STAMP, updatedAt: STAMP } as AclEntry;
  });
}

function key(id: string, text: string): ApiKeyRecord {
  return { id, name: id, hash: 'hmac-sha256', digest: digester.hmac(text), enabled: true, createdAt: STAMP, updatedAt: STAMP };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('KeyResolver memo and the policy cache byte bound', () => {
  it('does not keep alive the compiled lists the cache evicted', async () => {
    const store = new MemoryStore();
    const ACCOUNTS = 40;
    for (let a = 0; a < ACCOUNTS; a++) {
      const account = `AC${a}`;
      await store.update(account, () => ({ ok: true, draft: { account, settings: {}, entries: entries(500, a) } }));
      await store.update(account, addKey(account, key(`key_${a}`, `sk_live_${a}_0123456789`), 10));
    }
    // Room for about 13 of these lists (about 30 kB each).
    const cache = new PolicyCache(store, Date.now, { maxEntries: 1000, maxBytes: 400_000 });
    const resolver = new KeyResolver(digester, store, cache);
    const refs: WeakRef<object>[] = [];
    for (let a = 0; a < ACCOUNTS; a++) {
      const text = `sk_live_${a}_0123456789`;
      expect(await resolver.resolve(text)).toMatchObject({ kind: 'registered', account: `AC${a}` });
      await cache.get(`AC${a}`);
      // The next request is answered from the cached list, and remembered against it.
      expect(resolver.resolve(text)).toMatchObject({ kind: 'registered', account: `AC${a}` });
      const list = cache.peek(`AC${a}`);
      expect(list).toBeTruthy();
      refs.push(new WeakRef(list!));
    }
    const held = cache.stats().entries;
    await tick();
    gc();
    await tick();
    gc();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    // The cache holds 13 of the 40 (its byte bound); the others should be collectable.
    expect(held).toBeLessThan(ACCOUNTS);
    expect({ alive, held }).toEqual({ alive: held, held });
    resolver.close();
    cache.close();
  });

  it('does not keep alive every former version of one account list (one per key used between changes)', async () => {
    const store = new MemoryStore();
    const KEYS = 20;
    await store.update('ACME', () => ({ ok: true, draft: { account: 'ACME', settings: {}, entries: entries(500, 1) } }));
    for (let k = 0; k < KEYS; k++) await store.update('ACME', addKey('ACME', key(`key_${k}`, `sk_acme_${k}_0123456789`), 100));
    const cache = new PolicyCache(store);
    const resolver = new KeyResolver(digester, store, cache);
    const refs: WeakRef<object>[] = [];
    for (let k = 0; k < KEYS; k++) {
      const text = `sk_acme_${k}_0123456789`;
      await resolver.resolve(text);
      await cache.get('ACME');
      expect(resolver.resolve(text)).toMatchObject({ kind: 'registered', account: 'ACME', keyId: `key_${k}` });
      refs.push(new WeakRef(cache.peek('ACME')!));
      // Any change to the account (an entry added, here): a new compiled list replaces the old one.
      await store.update('ACME', (record) => ({ ok: true, draft: { account: 'ACME', settings: {}, entries: [...(record?.entries ?? []).slice(0, 499), ...entries(1, 100 + k).map((e) => ({ ...e, id: `x${k}` }))], keys: record?.keys ?? [] } }));
      await cache.get('ACME');
    }
    await tick();
    gc();
    await tick();
    gc();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    // The cache holds one list for ACME (the newest, not among these): the 20 old versions are garbage.
    expect(alive).toBe(0);
    resolver.close();
    cache.close();
  });
});
