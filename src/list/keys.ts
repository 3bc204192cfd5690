import { refusal, type Refusal } from '../http/refusal.ts';
import { indexKeysOf } from './key-digest.ts';
import type { AccountRecord, ApiKeyRecord } from './types.ts';

/**
 * The keys an account's record holds (its API key registry), read: which keys, which digests
 * they are found by, and what a change does to that index. The changes themselves are
 * src/acl/key-changes.ts; that a key is held by no other account is the store's check.
 */

/** Keys one account may hold unless configured otherwise (`keys.maxPerAccount`). */
export const DEFAULT_MAX_KEYS_PER_ACCOUNT = 100;
export const MAX_KEY_NAME_LENGTH = 255;

export function keysOf(record: Pick<AccountRecord, 'keys'> | null): readonly ApiKeyRecord[] {
  return record?.keys ?? [];
}

export function findKey(record: Pick<AccountRecord, 'keys'> | null, keyId: string): ApiKeyRecord | undefined {
  return keysOf(record).find((k) => k.id === keyId);
}

export function keyNotFound(account: string, keyId: string): Refusal {
  return refusal(404, 'key_not_found', `account ${account} has no key ${keyId.slice(0, 64)}`);
}

/** A name in the key index (a digest's or a claim's, see indexKeysOf) and the key it names. */
export interface IndexedKey {
  readonly indexKey: string;
  readonly keyId: string;
}

/** The names a record's keys hold in the key index. */
function keyIndexEntries(record: Pick<AccountRecord, 'keys'> | null): IndexedKey[] {
  return keysOf(record).flatMap((k) => indexKeysOf(k).map((indexKey) => ({ indexKey, keyId: k.id })));
}

/** What a change does to the key index: the names it adds (with the key they name) and removes. */
export function keyIndexChanges(previous: Pick<AccountRecord, 'keys'> | null, next: Pick<AccountRecord, 'keys'> | null): { readonly added: readonly IndexedKey[]; readonly removed: readonly IndexedKey[] } {
  const before = keyIndexEntries(previous);
  const after = keyIndexEntries(next);
  const held = (entries: readonly IndexedKey[]): Set<string> => new Set(entries.map((e) => e.indexKey));
  const had = held(before);
  const has = held(after);
  return { added: after.filter((e) => !had.has(e.indexKey)), removed: before.filter((e) => !has.has(e.indexKey)) };
}

/** The refusal for a key another account (or another key of this one) already holds. */
export function keyHeldElsewhere(account: string, holder: { readonly account: string; readonly keyId: string }): Refusal {
  // Another tenant's id is not named: the caller may hold an account credential.
  const where = holder.account === account ? `as key ${holder.keyId} of account ${account}` : 'to another account';
  return refusal(409, 'duplicate', `this key is already registered ${where}: a key belongs to exactly one account; delete it there first`);
}
