import type { CompiledList } from './compile.ts';
import { missAdmits } from './list-state.ts';
import type { DefaultPolicy, Mode } from './types.ts';

export type Outcome = 'allow' | 'deny' | 'report_only';

export type Reason =
  /** An allow entry matched. */
  | 'ip_allowed'
  /** A deny entry matched (the account's, its parent's or the global one). */
  | 'ip_denied'
  /** The list restricts (or the default is closed) and nothing matched. */
  | 'ip_not_allowed'
  /** The account has no allow entry and its default is open: the list does not restrict yet. */
  | 'no_list'
  /**
   * The account has had an allow list and none of its allow entries is in force any more: every
   * caller is refused until one is, or the account is opened explicitly.
   */
  | 'list_empty'
  /** A global allow entry matched: operator-listed callers every account accepts. */
  | 'global_allow'
  /** The account's mode is `off`. */
  | 'mode_off'
  /** The account's list let an API key's caller through, and the key's own list has allow entries without this address. */
  | 'ip_not_allowed_for_key'
  /** A deny entry of the key's own list matched. */
  | 'ip_denied_for_key'
  /** The key's own list has had allow entries and none is in force any more: the key refuses every caller until one is, or its list is opened. */
  | 'list_empty_for_key';

export type ListKind = 'global' | 'account' | 'parent' | 'key';

/**
 * `ok` is always true: a decision is the successful side of a policy conclusion (see
 * gateway/gatekeeper.ts), carried inline so the request path allocates no wrapper.
 */
export interface Decision {
  readonly ok: true;
  readonly outcome: Outcome;
  readonly reason: Reason;
  /** The list whose entry matched, or that refused on a miss; null when no list decided. */
  readonly list: ListKind | null;
  readonly source: CompiledList | null;
  /** Trie slot of the matching entry in `source`, or -1. */
  readonly slot: number;
}

export interface PolicyDefaults {
  readonly mode: Mode;
  readonly default: DefaultPolicy;
}

/** The lists that apply to one account, with its parent chain already followed. */
export interface AccountPolicy {
  /** The account's own record, if it has one (its settings decide mode and default first). */
  readonly own: CompiledList | null;
  /** The list that is enforced: the root ancestor's for a subaccount, else `own`. */
  readonly list: CompiledList | null;
  readonly listKind: 'account' | 'parent';
  readonly mode: Mode;
  readonly default: DefaultPolicy;
}

const MODE_OFF: Decision = { ok: true, outcome: 'allow', reason: 'mode_off', list: null, source: null, slot: -1 };

function matched(list: CompiledList, kind: ListKind, slot: number): Decision {
  const deny = list.trie.actionOf(slot) === 'deny';
  return { ok: true, outcome: deny ? 'deny' : 'allow', reason: deny ? 'ip_denied' : kind === 'global' ? 'global_allow' : 'ip_allowed', list: kind, source: list, slot };
}

function miss(list: CompiledList | null, kind: ListKind, fallback: DefaultPolicy): Decision {
  if (list !== null && list.hasAllow) return { ok: true, outcome: 'deny', reason: 'ip_not_allowed', list: kind, source: list, slot: -1 };
  if (list !== null && list.restricted) return { ok: true, outcome: 'deny', reason: 'list_empty', list: kind, source: list, slot: -1 };
  if (!missAdmits(list, fallback)) return { ok: true, outcome: 'deny', reason: 'ip_not_allowed', list: null, source: list, slot: -1 };
  return { ok: true, outcome: 'allow', reason: 'no_list', list: null, source: list, slot: -1 };
}

/**
 * The decision for a caller of a known account. The global list comes first and is enforced
 * whatever the account's mode: an account owner can relax their own list, never the operator's
 * deny entries. Then the account's list: most specific entry wins; on a miss a list with allow
 * entries refuses, and one without follows the default. `report-only` turns the account list's
 * refusals into `report_only` (forwarded, logged, counted).
 */
export function decideForAccount(family: 4 | 6, words: Uint32Array, global: CompiledList | null, policy: AccountPolicy): Decision {
  if (global !== null) {
    const slot = global.trie.lookup(family, words);
    if (slot >= 0) return matched(global, 'global', slot);
  }
  if (policy.mode === 'off') return MODE_OFF;
  const list = policy.list;
  const decision = list !== null && list.trie.ruleCount > 0
    ? decideOnSlot(list, policy.listKind, list.trie.lookup(family, words), policy.default)
    : miss(list, policy.listKind, policy.default);
  if (decision.outcome === 'deny' && policy.mode === 'report-only') return { ...decision, outcome: 'report_only' };
  return decision;
}

function decideOnSlot(list: CompiledList, kind: ListKind, slot: number, fallback: DefaultPolicy): Decision {
  return slot >= 0 ? matched(list, kind, slot) : miss(list, kind, fallback);
}

/**
 * For a caller without credentials under the `pass` anonymous policy: the global list's deny
 * entry that matches it (the most specific matching entry, so a global allow entry inside a
 * denied range admits), or null: let through.
 */
export function decideGlobalDenyOnly(family: 4 | 6, words: Uint32Array, global: CompiledList | null): Decision | null {
  if (global === null || global.trie.ruleCount === 0) return null;
  const slot = global.trie.lookup(family, words);
  return slot >= 0 && global.trie.actionOf(slot) === 'deny' ? matched(global, 'global', slot) : null;
}

/** The decision for a caller without credentials under the `global` anonymous policy. */
export function decideGlobalOnly(family: 4 | 6, words: Uint32Array, global: CompiledList | null, defaults: PolicyDefaults): Decision {
  if (global === null) return miss(null, 'global', defaults.default);
  return decideOnSlot(global, 'global', global.trie.lookup(family, words), global.settings.default ?? defaults.default);
}

/**
 * The decision for a caller presenting one of the account's API keys: the account's decision
 * first (global list, mode, the account's or its parent's list); a caller it lets through must
 * pass the key's own list too. The account's mode governs both: `off` checks neither, and under
 * `report-only` the key's refusals are only reported. A global allow entry admits past both.
 */
export function decideForKey(family: 4 | 6, words: Uint32Array, global: CompiledList | null, policy: AccountPolicy, keyList: CompiledList | null): Decision {
  const account = decideForAccount(family, words, global, policy);
  if (account.outcome !== 'allow' || account.reason === 'global_allow' || account.reason === 'mode_off') return account;
  const key = decideKeyList(family, words, keyList);
  if (key === null) return account;
  return policy.mode === 'report-only' ? { ...key, outcome: 'report_only' } : key;
}

/**
 * The key's own list alone: its refusal, or null when it lets the caller through. A matching deny
 * entry refuses; on a miss, a list with allow entries in force refuses, and so does a list that
 * has had some and none is in force any more (restricted, as an account's: no list opens by
 * itself). A key list that never had an allow entry (or was opened) leaves the account's list alone
 * to decide.
 */
export function decideKeyList(family: 4 | 6, words: Uint32Array, keyList: CompiledList | null): Decision | null {
  if (keyList === null) return null;
  if (keyList.trie.ruleCount > 0) {
    const slot = keyList.trie.lookup(family, words);
    if (slot >= 0) return keyList.trie.actionOf(slot) === 'deny' ? { ok: true, outcome: 'deny', reason: 'ip_denied_for_key', list: 'key', source: keyList, slot } : null;
  }
  if (keyList.hasAllow) return { ok: true, outcome: 'deny', reason: 'ip_not_allowed_for_key', list: 'key', source: keyList, slot: -1 };
  if (keyList.restricted) return { ok: true, outcome: 'deny', reason: 'list_empty_for_key', list: 'key', source: keyList, slot: -1 };
  return null;
}
