import { refusal } from '../http/refusal.ts';
import { parseIp, type IpAddress } from '../ip/address.ts';
import type { Outcome } from '../policy/decide.ts';
import type { AccountDraft, AccountRecord } from '../policy/types.ts';
import type { AccountChange, RecentCaller } from '../store/store.ts';

/** What the gateway would decide for a caller at `ip` if the account's record were `record`. */
export type Evaluate = (record: AccountDraft | null, ip: IpAddress) => Outcome;

export interface LockoutWarning {
  readonly ip: string;
  readonly last_seen: string;
  /** What the caller gets after the change (always a refusal: that is why it is listed). */
  readonly decision: 'deny';
}

/**
 * Wraps a change so it reports the recently seen callers it would newly block (first allow
 * entry, delete, disable, narrowing, deny entry), and in strict mode refuses it with 409
 * `would_lock_out` (when asked to, or when the account's `guard` setting is strict). Pure like the change itself: the recent callers and the evaluator are fixed
 * before the store runs it (possibly more than once); `warnings()` reads the last run's result.
 */
export function guarded(change: AccountChange, recent: readonly RecentCaller[], evaluate: Evaluate, forceStrict: boolean): { change: AccountChange; warnings: () => readonly LockoutWarning[] } {
  let last: LockoutWarning[] = [];
  const callers = recent.flatMap((c) => {
    const ip = parseIp(c.ip);
    return ip === null ? [] : [{ ip, text: c.ip, lastSeen: c.lastSeen }];
  });
  const wrapped: AccountChange = (current: AccountRecord | null) => {
    last = [];
    const result = change(current);
    if (!result.ok) return result;
    for (const caller of callers) {
      if (evaluate(current, caller.ip) !== 'deny' && evaluate(result.draft, caller.ip) === 'deny') {
        last.push({ ip: caller.text, last_seen: new Date(caller.lastSeen).toISOString(), decision: 'deny' });
      }
    }
    const strict = forceStrict || current?.settings.guard === 'strict';
    if (strict && last.length > 0) {
      const shown = last.slice(0, 5).map((w) => `${w.ip} (last seen ${w.last_seen})`).join(', ');
      return {
        ok: false,
        refusal: refusal(409, 'would_lock_out', `the change would block ${last.length} recently seen caller${last.length === 1 ? '' : 's'}: ${shown}${last.length > 5 ? ', …' : ''}; allow them first, or apply it without guard=strict`),
      };
    }
    return result;
  };
  return { change: wrapped, warnings: () => last };
}
