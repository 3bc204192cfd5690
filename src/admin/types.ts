import type { Explanation } from '../gateway/explain.ts';
import { allows, type Actor } from './credentials.ts';

/** A check's answer: what the proxy would decide for a caller of an account at an IP (the Gatekeeper's own conclusion, explained). */
export type CheckResult = Explanation;

/**
 * The check as `actor` may see it: an entry of the parent's or the global list is shown only to
 * credentials that may read those lists (owner, admin, read-only). An account credential learns
 * the decision and which list made it, not the other list's entry (it could not read that list
 * directly either).
 */
export function checkAsSeenBy(actor: Actor, result: CheckResult): CheckResult {
  const matched = result.matched;
  if (matched === null || matched.list === 'account' || matched.list === 'key' || allows(actor, null, false)) return result;
  return { ...result, matched: { action: matched.action, list: matched.list } };
}
