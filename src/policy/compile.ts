import { parseCidr } from '../ip/cidr.ts';
import { compileTrie, type CompiledTrie, type TrieRule } from '../ip/trie.ts';
import type { AccountRecord, AccountSettings } from './types.ts';

/**
 * An account's list as the request path uses it: a trie of the entries in force, plus the
 * settings that decide what a miss means. Immutable; replaced whole when the account changes.
 */
export interface CompiledList {
  readonly account: string;
  readonly version: number;
  readonly settings: AccountSettings;
  readonly trie: CompiledTrie;
  /** Whether any enabled, unexpired allow entry exists: with none, the list does not restrict. */
  readonly hasAllow: boolean;
  /** Epoch ms at which an entry expires and this compilation goes stale (Infinity: never). */
  readonly validUntil: number;
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
  for (const entry of record.entries) {
    if (!entry.enabled) continue;
    if (entry.expiresAt !== undefined) {
      const expires = Date.parse(entry.expiresAt);
      if (!(expires > nowMs)) continue;
      if (expires < validUntil) validUntil = expires;
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
    validUntil,
  };
}
