import { describe, expect, it } from 'vitest';
import { indexKeysOf, KeyDigester, sha256Hex } from '../../../src/list/key-digest.ts';
import { keyIndexChanges } from '../../../src/list/keys.ts';
import { parseStoredRecord } from '../../../src/list/record-format.ts';
import type { ApiKeyRecord } from '../../../src/list/types.ts';

const KEY = 'sk_live_claims_0123456789abcdef';

function keyRecord(id: string, fields: Pick<ApiKeyRecord, 'hash' | 'digest'> & { claim?: string }): ApiKeyRecord {
  return { id, name: '', enabled: true, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...fields };
}

describe('key claims', () => {
  const digester = new KeyDigester(Buffer.from('a key secret of at least 16 bytes'));
  const asSent = keyRecord('key_a', { hash: 'hmac-sha256', digest: digester.hmac(KEY), claim: digester.claim(sha256Hex(KEY)) });
  const byHash = keyRecord('key_b', { hash: 'sha256', digest: sha256Hex(KEY), claim: digester.claim(sha256Hex(KEY)) });

  it('names one key alike whether it was registered as sent or by hash, and apart from every digest', () => {
    const [sentDigest, sentClaim] = indexKeysOf(asSent);
    const [hashDigest, hashClaim] = indexKeysOf(byHash);
    expect(sentClaim).toBe(hashClaim);
    expect(sentDigest).not.toBe(hashDigest);
    expect(sentClaim).toMatch(/^claim:[0-9a-f]{64}$/);
    // Keyed by the secret: another deployment's claim differs, and no key's HMAC is a claim.
    expect(new KeyDigester(Buffer.from('another secret of at least 16 bytes')).claim(sha256Hex(KEY))).not.toBe(asSent.claim);
    expect(digester.hmac(sha256Hex(KEY))).not.toBe(asSent.claim);
    expect(indexKeysOf(keyRecord('key_c', { hash: 'sha256', digest: sha256Hex(KEY) }))).toEqual([`sha256:${sha256Hex(KEY)}`]);
  });

  it('adds and removes every name a key holds in the index', () => {
    const record = { keys: [asSent] };
    expect(keyIndexChanges(null, record).added).toEqual(indexKeysOf(asSent).map((indexKey) => ({ indexKey, keyId: 'key_a' })));
    expect(keyIndexChanges(record, { keys: [] }).removed.map((e) => e.indexKey)).toEqual([...indexKeysOf(asSent)]);
    expect(keyIndexChanges(record, { keys: [{ ...asSent, enabled: false }] })).toEqual({ added: [], removed: [] });
  });

  it('reads a stored claim back, and refuses one that is not a digest', () => {
    const stored = { account: 'AC1', version: 1, settings: {}, entries: [], keys: [asSent] };
    expect(parseStoredRecord(JSON.parse(JSON.stringify(stored)), 'AC1', 'test').keys).toEqual([asSent]);
    expect(() => parseStoredRecord({ ...stored, keys: [{ ...asSent, claim: 'x' }] }, 'AC1', 'test')).toThrow(/key 0 "claim" must be 64 lower-case hex digits/);
  });
});
