import { refusal } from '../http/refusal.ts';
import { findKey, keyNotFound, keysOf } from '../list/keys.ts';
import { indexKeysOf } from '../list/key-digest.ts';
import type { ApiKeyRecord } from '../list/types.ts';
import type { AccountChange } from '../store/store.ts';
import { draftOf } from './changes.ts';

/**
 * Pure changes to an account's key registry (the `keys` of its record), for the store's atomic
 * change like the list changes (changes.ts): each is checked against the record it replaces.
 * That a key is held by no other account is the store's check, made in the same atomic step (it
 * alone sees every account).
 */

export interface KeyFields {
  readonly name?: string;
  readonly enabled?: boolean;
}

export function addKey(account: string, key: ApiKeyRecord, maxKeys: number): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const keys = keysOf(draft);
    const names = indexKeysOf(key);
    const same = keys.find((k) => indexKeysOf(k).some((n) => names.includes(n)));
    if (same !== undefined) return { ok: false, refusal: refusal(409, 'duplicate', `this key is already registered as key ${same.id} (${same.name || 'unnamed'}) of account ${account}`) };
    if (keys.length + 1 > maxKeys) {
      return { ok: false, refusal: refusal(409, 'limit_reached', `account ${account} may hold at most ${maxKeys} keys: delete one first (or raise keys.maxPerAccount)`) };
    }
    return { ok: true, draft: { ...draft, keys: [...keys, key] } };
  };
}

export function updateKey(account: string, keyId: string, fields: KeyFields, now: string): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const keys = keysOf(draft);
    const existing = keys.find((k) => k.id === keyId);
    if (existing === undefined) return { ok: false, refusal: keyNotFound(account, keyId) };
    const changed: ApiKeyRecord = {
      ...existing,
      ...(fields.name === undefined ? {} : { name: fields.name }),
      ...(fields.enabled === undefined ? {} : { enabled: fields.enabled }),
      updatedAt: now,
    };
    return { ok: true, draft: { ...draft, keys: keys.map((k) => (k.id === keyId ? changed : k)) } };
  };
}

export function deleteKey(account: string, keyId: string): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const keys = keysOf(draft);
    if (!keys.some((k) => k.id === keyId)) return { ok: false, refusal: keyNotFound(account, keyId) };
    const rest = keys.filter((k) => k.id !== keyId);
    const { keys: _keys, ...withoutKeys } = draft;
    return { ok: true, draft: rest.length === 0 ? withoutKeys : { ...draft, keys: rest } };
  };
}

/**
 * A change to a key's own list, applied only while the key is registered: the account's record is
 * read inside the same atomic change (a store re-runs the change if it moved), so an entry is
 * never added to the list of a key being deleted at the same moment.
 */
export function forKeyList(account: string, keyId: string, change: AccountChange): AccountChange {
  return (current, view) => {
    if (findKey(view.read(account), keyId) === undefined) return { ok: false, refusal: keyNotFound(account, keyId) };
    return change(current, view);
  };
}
