import { parseCidr } from '../ip/cidr.ts';
import { compileTrie, type CompiledTrie, type TrieRule } from '../ip/trie.ts';
import { indexKeyOf } from './key-digest.ts';
import { isRestricted } from './list-state.ts';
import type { AccountRecord, AccountSettings, ApiKeyRecord } from './types.ts';

/**
 * An account's list as the request path uses it: a trie of the entries in force, plus the
 * settings that decide what a miss means. Immutable; replaced whole when the account changes.
 */
export interface CompiledList {
  readonly account: string;
  readonly version: number;
  readonly settings: AccountSettings;
  readonly trie: CompiledTrie;
  /** Whether any enabled, unexpired allow entry exists. */
  readonly hasAllow: boolean;
  /**
   * Whether the account has had an allow list and was not opened since (list-state.ts): with no
   * allow entry in force it then refuses every caller instead of opening.
   */
  readonly restricted: boolean;
  /** Epoch ms at which an entry expires and this compilation goes stale (Infinity: never). */
  readonly validUntil: number;
  /**
   * Expiry (epoch ms) of each temporary entry in the trie, by entry id; null when there is none.
   * Lets a list served during a store outage drop an entry at its time without the record.
   */
  readonly expiries: Readonly<Record<string, number>> | null;
  /**
   * The account's registered keys by id (null when it has none): whether each is enabled, and the
   * digest it is found by. The request path takes a key as the account's only while it is here.
   */
  readonly keys: ReadonlyMap<string, CompiledKey> | null;
  /**
   * This compilation's number, unique in the process (a list derived without its expired entries
   * keeps it: its keys are the same). A holder of an answer drawn from the list can tell by it,
   * without keeping the list alive, that the cache still holds that compilation.
   */
  readonly compilation: number;
}

let compilations = 0;

/** The number of a new compilation (see CompiledList.compilation). */
export function nextCompilation(): number {
  return ++compilations;
}

export interface CompiledKey {
  readonly enabled: boolean;
  /** `hmac:<hex>` or `sha256:<hex>` (src/list/key-digest.ts). */
  readonly indexKey: string;
}

// Beyond the trie, measured like its constants (see ip/trie.ts): the list and settings objects
// with a cache slot around them, and each temporary entry's key and time in the expiry table.
const LIST_BYTES = 380;
const EXPIRY_BYTES = 100;
// A key's map slot, its id and index key strings and the small object.
const KEY_BYTES = 260;

/**
 * Estimate of the heap a compiled list keeps alive (trie, objects, expiry table): what the
 * policy cache's byte bound counts, so the bound holds for the process and not just the tries.
 */
export function retainedBytes(list: CompiledList): number {
  let bytes = LIST_BYTES + list.trie.retainedBytes;
  if (list.expiries !== null) for (const id in list.expiries) bytes += EXPIRY_BYTES + id.length;
  if (list.keys !== null) bytes += list.keys.size * KEY_BYTES;
  return bytes;
}

/**
 * Compiles the entries in force at `nowMs`. Stored CIDRs were normalized when written, so a
 * CIDR that does not parse here means the store was corrupted: that throws, and the caller fails
 * closed rather than enforce a list with a hole in it.
 */
export function compileList(record: AccountRecord, nowMs: number): CompiledList {
  const rules: TrieRule[] = [];
  let hasAllow = false;
  let validUntil = Number.POSITIVE_INFINITY;
  let expiries: Record<string, number> | null = null;
  for (const entry of record.entries) {
    if (!entry.enabled) continue;
    if (entry.expiresAt !== undefined) {
      const expires = Date.parse(entry.expiresAt);
      if (!(expires > nowMs)) continue;
      if (expires < validUntil) validUntil = expires;
      (expiries ??= {})[entry.id] = expires;
    }
    for (const text of entry.cidrs) {
      const parsed = parseCidr(text);
      if (!parsed.ok) {
        throw new Error(`stored entry ${entry.id} of account ${record.account} has an invalid CIDR: ${parsed.error}`);
      }
      rules.push({ cidr: parsed.value, action: entry.action, id: entry.id });
    }
    if (entry.action === 'allow') hasAllow = true;
  }
  return {
    account: record.account,
    version: record.version,
    settings: record.settings,
    trie: compileTrie(rules),
    hasAllow,
    restricted: isRestricted(record.settings, record.entries),
    validUntil,
    expiries,
    keys: compileKeys(record.keys),
    compilation: nextCompilation(),
  };
}

export function compileKeys(keys: readonly ApiKeyRecord[] | undefined): ReadonlyMap<string, CompiledKey> | null {
  if (keys === undefined || keys.length === 0) return null;
  return new Map(keys.map((k) => [k.id, { enabled: k.enabled, indexKey: indexKeyOf(k) }]));
}

/**
 * The list without the temporary entries expired at `nowMs`, rebuilt from the trie itself: what a
 * replica enforces when the list is past its time and the store cannot be read for a fresh one.
 * A list without expiry data (written by an older version) comes back as it is.
 */
export function withoutExpired(list: CompiledList, nowMs: number): CompiledList {
  const { expiries, trie } = list;
  if (list.validUntil > nowMs || expiries === null) return list;
  const rules: TrieRule[] = [];
  let hasAllow = false;
  let validUntil = Number.POSITIVE_INFINITY;
  let kept: Record<string, number> | null = null;
  for (let slot = 0; slot < trie.ruleCount; slot++) {
    const id = trie.idOf(slot);
    const expires = expiries[id];
    if (expires !== undefined) {
      if (expires <= nowMs) continue;
      if (expires < validUntil) validUntil = expires;
      (kept ??= {})[id] = expires;
    }
    const action = trie.actionOf(slot);
    if (action === 'allow') hasAllow = true;
    rules.push({ cidr: trie.cidrOf(slot), action, id });
  }
  return { ...list, trie: compileTrie(rules), hasAllow, validUntil, expiries: kept };
}
