import type { IpAddress } from '../ip/address.ts';
import { formatCidr } from '../ip/cidr.ts';
import type { CompiledList } from '../list/compile.ts';
import type { Decision, Outcome, Reason } from '../list/decide.ts';
import { listStateOf, type ListState } from '../list/list-state.ts';
import type { Action } from '../list/types.ts';
import type { Gatekeeper } from './gatekeeper.ts';

/** A decision as the admin API's check reports it: the outcome, why, the entry that decided, and the enforced list's state. */
export interface Explanation {
  readonly decision: Outcome | 'error';
  /** The decision's reason, or the policy's refusal (`policy_error`: a parent chain too deep or cyclic, policy/resolve.ts). */
  readonly reason: Reason | 'policy_error';
  /** The deciding entry; `id` and `cidr` may be left out where the reader may not see that list. */
  readonly matched: null | { readonly id?: string; readonly cidr?: string; readonly action: Action; readonly list: 'account' | 'parent' | 'global' | 'key' };
  /** The state of the list enforced for the account (its parent's for a subaccount; the key's own for a key's check); null when it cannot be told. */
  readonly listState: ListState | null;
}

/** Explains what the Gatekeeper concludes for a caller of `account` at `ip`, presenting key `keyId` when given (its own conclusion, not a second reading). */
export async function explain(gatekeeper: Gatekeeper, account: string, ip: IpAddress, keyId?: string): Promise<Explanation> {
  const concluded = await gatekeeper.conclude(account, ip, keyId);
  return concluded.ok ? explainDecision(concluded.decision, concluded.enforced) : { decision: 'error', reason: concluded.refusal.reason as 'policy_error', matched: null, listState: null };
}

/** A decision explained; `enforced` is the list that applied to the account. */
export function explainDecision(decision: Decision, enforced: CompiledList | null): Explanation {
  const source = decision.source;
  const matched = source !== null && decision.slot >= 0 && decision.list !== null
    ? { id: source.trie.idOf(decision.slot), cidr: formatCidr(source.trie.cidrOf(decision.slot)), action: source.trie.actionOf(decision.slot), list: decision.list }
    : null;
  return { decision: decision.outcome, reason: decision.reason, matched, listState: listStateOf(enforced?.hasAllow ?? false, enforced?.restricted ?? false) };
}
