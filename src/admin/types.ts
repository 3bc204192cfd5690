import type { Action } from '../policy/types.ts';
import { allows, type Actor } from './credentials.ts';

/** What the proxy would decide for a caller of an account at an IP, from the same policy code. */
export interface CheckResult {
  readonly decision: string;
  readonly reason: string;
  /** The deciding entry; `id` and `cidr` left out where the reader may not see that list (checkAsSeenBy). */
  readonly matched: null | { readonly id?: string; readonly cidr?: string; readonly action: Action; readonly list: 'account' | 'parent' | 'global' };
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
