/*
 * A remembered key's answer, kept while the cache holds the same compilation of its account's
 * list, is never stale: every change, expiry, eviction or reload gives a new compilation.
 */
import { describe, expect, it } from 'vitest';
import { addKey, deleteKey, updateKey } from '../../../src/acl/key-changes.ts';
import { KeyResolver, type KeyLookup } from '../../../src/keys/resolver.ts';
import { KeyDigester } from '../../../src/list/key-digest.ts';
import { keyListId } from '../../../src/list/key-list-id.ts';
import type { AclEntry, ApiKeyRecord } from '../../../src/list/types.ts';
import { PolicyCache } from '../../../src/policy/cache.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';
import type { AccountRecord } from '../../../src/list/types.ts';

const digester = new KeyDigester(Buffer.from('redteam-memo-secret-0123456789abcdef'));
const STAMP = '2026-01-01T00:00:00.000Z';
const KEY = 'sk_live_memo_0123456789';
const reg = (account: string, keyId: string): KeyLookup => ({ kind: 'registered', account, keyId, listId: keyListId(account, keyId) });
const byValue = (id: string, text = KEY, enabled = true): ApiKeyRecord => ({ id, name: id, hash: 'hmac-sha256', digest: digester.hmac(text), enabled, createdAt: STAMP, updatedAt: STAMP });
const entry = (id: string, cidr: string, expiresAt?: string): AclEntry => ({ id, ipAddress: cidr, cidrs: [cidr], action: 'allow', description: '', enabled: true, createdAt: STAMP, updatedAt: STAMP, ...(expiresAt === undefined ? {} : { expiresAt }) }) as AclEntry;

class FlakyStore extends MemoryStore {
  down = false;
  override async read(account: string): Promise<AccountRecord | null> {
    if (this.down) throw new Error('down');
    return super.read(account);
  }
  override async findKeys(k: readonly string[]) {
    if (this.down) throw new Error('down');
    return super.findKeys(k);
  }
}

async function setup(now = () => Date.now()) {
  const store = new FlakyStore();
  const cache = new PolicyCache(store, now);
  const resolver = new KeyResolver(digester, store, cache);
  const ask = async (text = KEY): Promise<KeyLookup> => {
    await resolver.resolve(text);
    // Twice more: the second is the memo's answer.
    const a = await resolver.resolve(text);
    const b = await resolver.resolve(text);
    expect(b).toEqual(a);
    return b;
  };
  return { store, cache, resolver, ask };
}

describe('KeyResolver memo: no stale answer', () => {
  it('disable, enable, delete, re-register, move to another account', async () => {
    const { store, ask } = await setup();
    await store.update('A', addKey('A', byValue('key_1'), 10));
    expect(await ask()).toEqual(reg('A', 'key_1'));
    await store.update('A', updateKey('A', 'key_1', { enabled: false }, STAMP));
    expect(await ask()).toMatchObject({ kind: 'refused', refusal: { reason: 'key_disabled' } });
    await store.update('A', updateKey('A', 'key_1', { name: 'renamed' }, STAMP));
    expect(await ask()).toMatchObject({ kind: 'refused', refusal: { reason: 'key_disabled' } });
    await store.update('A', updateKey('A', 'key_1', { enabled: true }, STAMP));
    expect(await ask()).toEqual(reg('A', 'key_1'));
    await store.update('A', deleteKey('A', 'key_1'));
    expect(await ask()).toEqual({ kind: 'unknown' });
    await store.update('A', addKey('A', byValue('key_2'), 10));
    expect(await ask()).toEqual(reg('A', 'key_2'));
    await store.update('A', deleteKey('A', 'key_2'));
    await store.update('B', addKey('B', byValue('key_3'), 10));
    expect(await ask()).toEqual(reg('B', 'key_3'));
    // Disabled on B while its memo is warm, then moved back to A disabled.
    await store.update('B', updateKey('B', 'key_3', { enabled: false }, STAMP));
    expect(await ask()).toMatchObject({ kind: 'refused', refusal: { reason: 'key_disabled' } });
    await store.update('B', deleteKey('B', 'key_3'));
    await store.update('A', addKey('A', byValue('key_4', KEY, false), 10));
    expect(await ask()).toMatchObject({ kind: 'refused', refusal: { reason: 'key_disabled' } });
  });

  it('a temporary entry expiring recompiles the list; the memo follows', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const { store, cache, ask } = await setup(() => now);
    await store.update('A', () => ({ ok: true, draft: { account: 'A', settings: {}, entries: [entry('t', '10.0.0.0/8', '2026-01-01T00:01:00Z'), entry('p', '10.1.0.0/16')], keys: [byValue('key_1')] } }));
    expect(await ask()).toEqual(reg('A', 'key_1'));
    const before = cache.peek('A');
    now += 120_000;
    expect(await ask()).toEqual(reg('A', 'key_1'));
    expect(cache.peek('A')).not.toBe(before);
    await store.update('A', updateKey('A', 'key_1', { enabled: false }, STAMP));
    now += 1;
    expect(await ask()).toMatchObject({ kind: 'refused', refusal: { reason: 'key_disabled' } });
  });

  it('a list superseded while the store is down is not answered from the memo', async () => {
    const { store, cache, resolver, ask } = await setup();
    await store.update('A', addKey('A', byValue('key_1'), 10));
    expect(await ask()).toEqual(reg('A', 'key_1'));
    store.down = true;
    cache.invalidate('A');
    await expect(Promise.resolve().then(() => resolver.resolve(KEY))).rejects.toThrow();
    store.down = false;
    await store.update('A', updateKey('A', 'key_1', { enabled: false }, STAMP));
    expect(await ask()).toMatchObject({ kind: 'refused', refusal: { reason: 'key_disabled' } });
  });
});
