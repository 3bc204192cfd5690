import { describe, expect, it } from 'vitest';
import { KeyDigester, sha256Hex } from '../../../src/list/key-digest.ts';
import { KeyResolver, type KeyLookup } from '../../../src/keys/resolver.ts';
import { keyListId } from '../../../src/list/key-list-id.ts';
import { addKey, deleteKey, updateKey } from '../../../src/acl/key-changes.ts';
import { PolicyCache } from '../../../src/policy/cache.ts';
import type { ApiKeyRecord } from '../../../src/list/types.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';
import type { KeyPointer } from '../../../src/store/store.ts';

const SECRET = Buffer.from('resolver-test-secret-0123456789abcdef');

/** A digester that counts the keys it hashes. */
class CountingDigester extends KeyDigester {
  hashed = 0;
  override hmac(key: string): string {
    this.hashed++;
    return super.hmac(key);
  }
}
const digester = new CountingDigester(SECRET);

const registered = (account: string, keyId: string): KeyLookup => ({ kind: 'registered', account, keyId, listId: keyListId(account, keyId) });
const STAMP = '2026-01-01T00:00:00.000Z';

function byValue(id: string, key: string): ApiKeyRecord {
  return { id, name: id, hash: 'hmac-sha256', digest: digester.hmac(key), enabled: true, createdAt: STAMP, updatedAt: STAMP };
}

function byHash(id: string, key: string): ApiKeyRecord {
  return { id, name: id, hash: 'sha256', digest: sha256Hex(key), enabled: true, createdAt: STAMP, updatedAt: STAMP };
}

/** A store that counts key-index reads. */
class CountingStore extends MemoryStore {
  finds = 0;
  override async findKeys(indexKeys: readonly string[]): Promise<readonly KeyPointer[]> {
    this.finds++;
    return super.findKeys(indexKeys);
  }
}

async function setup(limits?: { maxEntries: number; maxNegativeEntries: number }) {
  const store = new CountingStore();
  const cache = new PolicyCache(store);
  const resolver = new KeyResolver(digester, store, cache, null, limits);
  return { store, cache, resolver };
}

async function settle(found: KeyLookup | Promise<KeyLookup>): Promise<KeyLookup> {
  return found;
}

describe('KeyResolver', () => {
  it('reads the store once per key, then answers synchronously without hashing the key again', async () => {
    const { store, resolver } = await setup();
    await store.update('ACME', addKey('ACME', byValue('key_1', 'sk_one_0123456789'), 10));
    const first = resolver.resolve('sk_one_0123456789');
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toEqual(registered('ACME', 'key_1'));
    const hashed = digester.hashed;
    // A key built anew, as a request's header is: remembered by its text, not by the string object.
    for (let i = 0; i < 3; i++) expect(resolver.resolve(['sk_one', '0123456789'].join('_'))).toEqual(registered('ACME', 'key_1'));
    expect(digester.hashed).toBe(hashed);
    expect(store.finds).toBe(1);
    expect(resolver.counts).toMatchObject({ located: 1, cached: 3 });
  });

  it('remembers by its text only a key the store vouched for: made-up keys are held as digests', async () => {
    const { resolver } = await setup({ maxEntries: 100, maxNegativeEntries: 100 });
    for (let i = 0; i < 50; i++) expect(await settle(resolver.resolve(`sk_fake_${i}_0123456789`))).toEqual({ kind: 'unknown' });
    expect(resolver.size).toEqual({ keys: 0, unknown: 50 });
    // A remembered made-up key costs its HMAC again (that is how it is recognised), never a store read.
    const hashed = digester.hashed;
    expect(resolver.resolve('sk_fake_7_0123456789')).toEqual({ kind: 'unknown' });
    expect(digester.hashed).toBe(hashed + 1);
  });

  it('bounds the characters of the keys it remembers, not only their count', async () => {
    // 5 entries allow 5 × 128 characters: two keys of 300 fit, a third evicts the oldest.
    const { store, resolver } = await setup({ maxEntries: 5, maxNegativeEntries: 10 });
    const long = (i: number): string => `sk_long_${i}_${'k'.repeat(290)}`;
    for (let i = 0; i < 4; i++) await store.update(`L${i}`, addKey(`L${i}`, byValue(`key_${i}`, long(i)), 10));
    for (let i = 0; i < 4; i++) expect(await settle(resolver.resolve(long(i)))).toEqual(registered(`L${i}`, `key_${i}`));
    expect(resolver.size.keys).toBe(2);
    expect(resolver.resolve(long(3))).toEqual(registered('L3', 'key_3'));
    expect(resolver.resolve(long(0))).toBeInstanceOf(Promise);
  });

  it('refuses a key holding what no key holds before hashing it, naming where it was sent and never quoting it', async () => {
    const { store, resolver } = await setup();
    for (const bad of ['', 'sk live secret', 'sk_live_é', `sk_${'x'.repeat(5000)}`, 'sk\u0000x', 'sk\tx']) {
      const found = await settle(resolver.resolve(bad, undefined, 'the x-api-key header'));
      expect(found, JSON.stringify(bad.slice(0, 20))).toMatchObject({ kind: 'refused', refusal: { status: 401, reason: 'invalid_key' } });
      const message = found.kind === 'refused' ? found.refusal.message : '';
      expect(message).toContain('the x-api-key header');
      expect(message).not.toContain('secret');
    }
    expect(store.finds).toBe(0);
    expect(resolver.counts.located).toBe(0);
  });

  it('finds keys registered by hash from the SHA-256 of the presented key', async () => {
    const { store, resolver } = await setup();
    await store.update('ACME', addKey('ACME', byHash('key_h', 'sk_hashed_0123456789'), 10));
    expect(await settle(resolver.resolve('sk_hashed_0123456789'))).toEqual(registered('ACME', 'key_h'));
    expect(resolver.resolve('sk_hashed_0123456789')).toEqual(registered('ACME', 'key_h'));
  });

  it('follows disabling, deleting and registering elsewhere from the account\'s list, not from its own memory', async () => {
    const { store, resolver } = await setup();
    await store.update('ACME', addKey('ACME', byValue('key_1', 'sk_one_0123456789'), 10));
    await settle(resolver.resolve('sk_one_0123456789'));
    // Answered from memory against the list it was checked against: every change gives a new list.
    expect(resolver.resolve('sk_one_0123456789')).toEqual(registered('ACME', 'key_1'));
    await store.update('ACME', updateKey('ACME', 'key_1', { enabled: false }, STAMP));
    for (let i = 0; i < 2; i++) {
      const disabled = await settle(resolver.resolve('sk_one_0123456789'));
      expect(disabled).toMatchObject({ kind: 'refused', refusal: { status: 401, reason: 'key_disabled' } });
    }
    await store.update('ACME', updateKey('ACME', 'key_1', { enabled: true }, STAMP));
    expect(await settle(resolver.resolve('sk_one_0123456789'))).toEqual(registered('ACME', 'key_1'));
    await store.update('ACME', updateKey('ACME', 'key_1', { enabled: false }, STAMP));
    await store.update('ACME', deleteKey('ACME', 'key_1'));
    expect(await settle(resolver.resolve('sk_one_0123456789'))).toEqual({ kind: 'unknown' });
    // Unknown is remembered (no store read), until a change anywhere: a registration is one.
    const finds = store.finds;
    expect(resolver.resolve('sk_one_0123456789')).toEqual({ kind: 'unknown' });
    expect(store.finds).toBe(finds);
    await store.update('OTHER', addKey('OTHER', byValue('key_2', 'sk_one_0123456789'), 10));
    expect(await settle(resolver.resolve('sk_one_0123456789'))).toEqual(registered('OTHER', 'key_2'));
  });

  it('refuses a key registered to two accounts (once by value, once by hash)', async () => {
    const { store, resolver } = await setup();
    await store.update('A1', addKey('A1', byValue('key_v', 'sk_twice_0123456789'), 10));
    await store.update('A2', addKey('A2', byHash('key_h', 'sk_twice_0123456789'), 10));
    expect(await settle(resolver.resolve('sk_twice_0123456789'))).toMatchObject({ kind: 'refused', refusal: { status: 400, reason: 'ambiguous_credentials' } });
    expect(resolver.counts.conflicting).toBe(1);
  });

  it('shares one store read among concurrent lookups of one key', async () => {
    const { store, resolver } = await setup();
    await store.update('ACME', addKey('ACME', byValue('key_1', 'sk_one_0123456789'), 10));
    const all = await Promise.all(Array.from({ length: 20 }, () => settle(resolver.resolve('sk_one_0123456789'))));
    expect(new Set(all.map((l) => JSON.stringify(l))).size).toBe(1);
    expect(store.finds).toBe(1);
  });

  it('stays within its bounds however many keys callers make up', async () => {
    const { store, resolver } = await setup({ maxEntries: 5, maxNegativeEntries: 10 });
    for (let i = 0; i < 20; i++) await store.update(`A${i}`, addKey(`A${i}`, byValue(`key_${i}`, `sk_real_${i}_0123456789`), 10));
    for (let i = 0; i < 20; i++) await settle(resolver.resolve(`sk_real_${i}_0123456789`));
    for (let i = 0; i < 500; i++) await settle(resolver.resolve(`sk_fake_${i}_0123456789`));
    expect(resolver.size).toEqual({ keys: 5, unknown: 10 });
    // Evicted keys still resolve (one more store read).
    expect(await settle(resolver.resolve('sk_real_0_0123456789'))).toEqual(registered('A0', 'key_0'));
  });

  it('rejects while the store cannot be read, for the gateway to fail closed', async () => {
    const { store, resolver } = await setup();
    store.findKeys = async () => {
      throw new Error('store down');
    };
    await expect(settle(resolver.resolve('sk_any_0123456789'))).rejects.toThrow('store down');
  });
});
