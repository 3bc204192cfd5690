import { keyHeldElsewhere, keyIndexChanges, keysOf } from '../list/keys.ts';
import type { Refusal } from '../http/refusal.ts';
import type { AccountRecord } from '../list/types.ts';
import type { KeyPointer, KeyUse, KeyUseBatch } from './store.ts';
import { keyListId, parseKeyListId } from '../list/key-list-id.ts';

/**
 * Which account holds each registered key, by digest (and claim), for a store whose records are all in this
 * process (memory, file): built from the records, kept in step by each commit. Its size is the
 * number of registered keys, each bounded per account.
 */
export class KeyIndex {
  readonly #byDigest = new Map<string, { readonly account: string; readonly keyId: string }>();
  /** Accounts holding keys, with how many. */
  readonly #holders = new Map<string, number>();

  /** A refusal when `next` adds a key another account (or another key of this one) holds. */
  clash(account: string, previous: AccountRecord | null, next: AccountRecord): Refusal | null {
    for (const added of keyIndexChanges(previous, next).added) {
      const holder = this.#byDigest.get(added.indexKey);
      if (holder !== undefined && !(holder.account === account && holder.keyId === added.keyId)) return keyHeldElsewhere(account, holder);
    }
    return null;
  }

  apply(account: string, previous: AccountRecord | null, next: AccountRecord): void {
    const { added, removed } = keyIndexChanges(previous, next);
    for (const { indexKey } of removed) this.#byDigest.delete(indexKey);
    for (const { indexKey, keyId } of added) this.#byDigest.set(indexKey, { account, keyId });
    const count = keysOf(next).length;
    if (count === 0) this.#holders.delete(account);
    else this.#holders.set(account, count);
  }

  find(indexKeys: readonly string[]): KeyPointer[] {
    const out: KeyPointer[] = [];
    for (const indexKey of indexKeys) {
      const holder = this.#byDigest.get(indexKey);
      if (holder !== undefined) out.push({ indexKey, ...holder });
    }
    return out;
  }

  accounts(): string[] {
    return [...this.#holders.keys()].sort();
  }
}

/** Key uses kept by the in-process table at most (a registered key is one entry). */
export const KEY_USES_TOTAL = 1_000_000;

/**
 * When each key was last used, and from where, in process memory: one entry per key that was
 * used, the key used least recently dropped first past `total`. Later sightings only ever move a
 * key's time forward (batches may arrive out of order).
 */
export class KeyUseTable {
  // In order of last recording: the first is the one to drop at the bound.
  readonly #uses = new Map<string, KeyUse>();
  readonly #total: number;

  constructor(total = KEY_USES_TOTAL) {
    this.#total = total;
  }

  record(batch: KeyUseBatch): void {
    for (const [listId, use] of batch) {
      const held = this.#uses.get(listId);
      if (held !== undefined && held.at >= use.at) continue;
      this.#uses.delete(listId);
      this.#uses.set(listId, use);
    }
    while (this.#uses.size > this.#total) this.#uses.delete(this.#uses.keys().next().value!);
  }

  /** The account's keys' last uses, by key id. */
  of(account: string, keyIds: readonly string[]): Map<string, KeyUse> {
    const out = new Map<string, KeyUse>();
    for (const keyId of keyIds) {
      const use = this.#uses.get(keyListId(account, keyId));
      if (use !== undefined) out.set(keyId, use);
    }
    return out;
  }

  forget(listIds: readonly string[]): void {
    for (const id of listIds) if (parseKeyListId(id) !== null) this.#uses.delete(id);
  }
}
