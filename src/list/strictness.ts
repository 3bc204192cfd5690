import type { Family } from '../ip/address.ts';
import { compareKey, type CompiledTrie } from '../ip/trie.ts';
import { withoutExpired, type CompiledList } from './compile.ts';
import { missAdmits } from './list-state.ts';
import type { DefaultPolicy, Mode } from './types.ts';

const MODES: readonly Mode[] = ['enforce', 'report-only', 'off'];
const DEFAULTS: readonly DefaultPolicy[] = ['open', 'closed'];
/** Past this many distinct expiry times the lists are not compared: "not known to be as strict". */
const MAX_EXPIRY_POINTS = 16;

/**
 * Whether enforcing `old` in place of `next` admits no caller that `next` refuses, now or later
 * (as temporary entries of either expire), whatever gateway defaults the unset settings inherit.
 * A replica told that an account moved from `old` to `next` may keep enforcing `old` until it
 * has `next` only when this holds; otherwise it refuses the account's callers meanwhile.
 *
 * `null` is an account without a record. `global` compares the gateway's global list, which
 * every request meets first: a deny there refuses, an allow admits whatever the account's list
 * says, a miss passes on; and callers without credentials may be checked against it alone.
 *
 * Exact rather than approximate: both lists' interval tables are walked side by side, and every
 * stretch of addresses on which both give one answer is judged once. Conservative only where the
 * answer cannot be known (a list without expiry data, or more than 16 expiry times).
 */
export function atLeastAsStrict(old: CompiledList | null, next: CompiledList | null, nowMs: number, global = false): boolean {
  if (old?.settings.parent !== next?.settings.parent) return false;
  if (!keysAsStrict(old, next)) return false;
  // A list that expires entries without saying which (compiled by an older build) cannot be
  // followed into the future; an old one is served as it is, so it is compared as it is.
  if (next !== null && next.expiries === null && next.validUntil !== Number.POSITIVE_INFINITY) return false;
  const times = new Set<number>([nowMs]);
  for (const list of [old, next]) {
    for (const at of Object.values(list?.expiries ?? {})) if (at > nowMs) times.add(at);
  }
  if (times.size > MAX_EXPIRY_POINTS + 1) return false;
  for (const at of times) {
    const o = old === null ? null : withoutExpired(old, at);
    const n = next === null ? null : withoutExpired(next, at);
    if (!(global ? globalAsStrict(o, n) : accountAsStrict(o, n))) return false;
  }
  return true;
}

/** Every key `old` lets through (registered and enabled), `next` lets through too. */
function keysAsStrict(old: CompiledList | null, next: CompiledList | null): boolean {
  if (old?.keys == null) return true;
  for (const [id, key] of old.keys) {
    if (key.enabled && next?.keys?.get(id)?.enabled !== true) return false;
  }
  return true;
}

function accountAsStrict(old: CompiledList | null, next: CompiledList | null): boolean {
  const subaccount = old?.settings.parent !== undefined;
  // An unset setting resolves to the same inherited value on both sides: try every one.
  for (const mode of MODES) {
    if ((next?.settings.mode ?? mode) !== 'enforce') continue; // next forwards everyone: nothing is stricter than old
    const oldForwardsAll = (old?.settings.mode ?? mode) !== 'enforce';
    for (const fallback of DEFAULTS) {
      const oldDefault = old?.settings.default ?? fallback;
      const nextDefault = next?.settings.default ?? fallback;
      if (subaccount) {
        // The parent's list is enforced, the same on both sides (and unknown here): only a miss
        // can differ, unless old forwarded everyone.
        if (oldForwardsAll || (oldDefault === 'open' && nextDefault === 'closed')) return false;
        continue;
      }
      const nextMiss = missAdmits(next, nextDefault);
      // Old forwarding everyone is as strict only as a next that admits everyone too.
      const oldMiss = oldForwardsAll || missAdmits(old, oldDefault);
      if (!includes(oldForwardsAll ? null : old, oldMiss, next, nextMiss)) return false;
    }
  }
  return true;
}

/**
 * For requests with an account, a global entry ranks deny < no match < allow (an allow admits
 * past the account's list); for callers without credentials it is a list of its own.
 */
function globalAsStrict(old: CompiledList | null, next: CompiledList | null): boolean {
  const rank = (list: CompiledList | null, slot: number): number => (slot < 0 ? 1 : list!.trie.actionOf(slot) === 'allow' ? 2 : 0);
  if (!everywhere(old, next, (a, b) => rank(old, a) <= rank(next, b))) return false;
  for (const fallback of DEFAULTS) {
    const oldMiss = missAdmits(old, old?.settings.default ?? fallback);
    const nextMiss = missAdmits(next, next?.settings.default ?? fallback);
    if (!includes(old, oldMiss, next, nextMiss)) return false;
  }
  return true;
}

/** Whether every address `old` admits (a miss admitted when `oldMiss`), `next` admits too. */
function includes(old: CompiledList | null, oldMiss: boolean, next: CompiledList | null, nextMiss: boolean): boolean {
  const admits = (list: CompiledList | null, slot: number, miss: boolean): boolean => (slot < 0 ? miss : list!.trie.actionOf(slot) === 'allow');
  return everywhere(old, next, (a, b) => !admits(old, a, oldMiss) || admits(next, b, nextMiss));
}

/** Whether `holds(slotInA, slotInB)` (-1: no rule) on every address of both families. */
function everywhere(a: CompiledList | null, b: CompiledList | null, holds: (slotA: number, slotB: number) => boolean): boolean {
  return sideBySide(a?.trie ?? null, b?.trie ?? null, 4, holds) && sideBySide(a?.trie ?? null, b?.trie ?? null, 6, holds);
}

const NO_RULES = { entries: new Uint32Array(5), count: 1 };

/**
 * Walks two interval tables of one family together: both start at address 0, so each step is a
 * stretch where neither answer changes, and the next step begins at the nearer of the two next
 * interval starts.
 */
function sideBySide(a: CompiledTrie | null, b: CompiledTrie | null, family: Family, holds: (slotA: number, slotB: number) => boolean): boolean {
  const W = family === 4 ? 1 : 4;
  const S = W + 1;
  const ta = a?.intervalTable(family) ?? NO_RULES;
  const tb = b?.intervalTable(family) ?? NO_RULES;
  let i = 0;
  let j = 0;
  for (;;) {
    if (!holds(ta.entries[i * S + W]! - 1, tb.entries[j * S + W]! - 1)) return false;
    const moreA = i + 1 < ta.count;
    const moreB = j + 1 < tb.count;
    if (!moreA && !moreB) return true;
    const order = !moreA ? 1 : !moreB ? -1 : compareKey(ta.entries, (i + 1) * S, tb.entries, (j + 1) * S, W);
    if (order <= 0) i++;
    if (order >= 0) j++;
  }
}
