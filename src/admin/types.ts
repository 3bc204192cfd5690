import { formatCidr } from '../ip/cidr.ts';
import type { CompiledList } from '../list/compile.ts';
import type { Decision } from '../list/decide.ts';
import { listStateOf, type ListState } from '../list/list-state.ts';
import type { Action } from '../list/types.ts';
import { allows, type Actor } from './credentials.ts';

/** What the proxy would decide for a caller of an account at an IP, from the same policy code. */
export interface CheckResult {
  readonly decision: string;
  readonly reason: string;
  /** The deciding entry; `id` and `cidr` left out where the reader may not see that list (checkAsSeenBy). */
  readonly matched: null | { readonly id?: string; readonly cidr?: string; readonly action: Action; readonly list: 'account' | 'parent' | 'global' };
  /** The state of the list enforced for the account (its parent's for a subaccount); null when it cannot be told. */
  readonly listState: ListState | null;
}

/**
 * The check as `actor` may see it: an entry of the parent's or the global list is shown only to
 * credentials that may read those lists (owner, admin, read-only). An account credential learns
 * the decision and which list made it, not the other list's entry (it could not read that list
 * directly either).
 */
export function checkAsSeenBy(actor: Actor, result: CheckResult): CheckResult {
  const matched = result.matched;
  if (matched === null || matched.list === 'account' || allows(actor, null, false)) return result;
  return { ...result, matched: { action: matched.action, list: matched.list } };
}

/** A decision as the check endpoints report it; `enforced` is the list that applied to the account. */
export function checkResultOf(decision: Decision, enforced: CompiledList | null): CheckResult {
  const source = decision.source;
  const matched = source !== null && decision.slot >= 0 && decision.list !== null
    ? { id: source.trie.idOf(decision.slot), cidr: formatCidr(source.trie.cidrOf(decision.slot)), action: source.trie.actionOf(decision.slot), list: decision.list }
    : null;
  return { decision: decision.outcome, reason: decision.reason, matched, listState: listStateOf(enforced?.hasAllow ?? false, enforced?.restricted ?? false) };
}
