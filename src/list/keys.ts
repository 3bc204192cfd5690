import { refusal, type Refusal } from '../http/refusal.ts';
import { indexKeyOf } from './key-digest.ts';
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

/** The index keys (digest names) a record's keys are found by. */
export function keyIndexKeys(record: Pick<AccountRecord, 'keys'> | null): Set<string> {
  return new Set(keysOf(record).map(indexKeyOf));
}

/** What a change does to the key index: digests it adds (with the key they name) and removes. */
export function keyIndexChanges(previous: Pick<AccountRecord, 'keys'> | null, next: Pick<AccountRecord, 'keys'> | null): { readonly added: readonly ApiKeyRecord[]; readonly removed: readonly ApiKeyRecord[] } {
  const before = keyIndexKeys(previous);
  const after = keyIndexKeys(next);
  return {
    added: keysOf(next).filter((k) => !before.has(indexKeyOf(k))),
    removed: keysOf(previous).filter((k) => !after.has(indexKeyOf(k))),
  };
}

/** The refusal for a key another account (or another key of this one) already holds. */
export function keyHeldElsewhere(account: string, holder: { readonly account: string; readonly keyId: string }): Refusal {
  // Another tenant's id is not named: the caller may hold an account credential.
  const where = holder.account === account ? `as key ${holder.keyId} of account ${account}` : 'to another account';
  return refusal(409, 'duplicate', `this key is already registered ${where}: a key belongs to exactly one account; delete it there first`);
}
