import { refusal } from '../http/refusal.ts';
import { parseIp } from '../ip/address.ts';
import type { AccountChange, RecentCaller } from '../store/store.ts';
import type { Effective, Evaluator } from './evaluator.ts';
import { describeList, parseKeyListId } from '../list/key-list-id.ts';

/** A recently seen caller the change would newly refuse. */
export interface CallerWarning {
  readonly reason: 'would_lock_out';
  readonly ip: string;
  readonly last_seen: string;
  /** What the caller gets after the change (always a refusal: that is why it is listed). */
  readonly decision: 'deny';
}

/** The change would leave an account that refuses some callers open to every address. */
export interface OpenWarning {
  readonly reason: 'would_open';
  readonly message: string;
}

/** The account's only allow entries in force are temporary: from `at` it refuses every caller. */
export interface EmptiesWarning {
  readonly reason: 'will_empty';
  /** ISO time of the last expiry. */
  readonly at: string;
  readonly message: string;
}

export type LockoutWarning = CallerWarning | OpenWarning | EmptiesWarning;

/**
 * Wraps a change so it reports what it would do to the account's callers, judged on the policy
 * the account actually gets before and after (its parent chain followed, read inside the atomic
 * change): recently seen callers it would newly refuse (a first allow entry, a delete, a disable,
 * a narrowing, a deny entry, a new parent with another list), and whether it would open an
 * account that refuses someone today to every address (opened with `restricted: false`, mode off
 * or report-only, a parent that does not restrict; an emptied list no longer opens by itself). In
 * strict mode (asked for, or the account's `guard` setting) either refuses the change with 409
 * `would_lock_out` or `would_open`. It also notes (`will_empty`, never refused) when the allow
 * entries left in force are all temporary, so the account will refuse everyone at the last one's
 * expiry. Pure like
 * the change itself: the recent callers and the evaluator are fixed before the store runs it
 * (possibly more than once); `warnings()` reads the last run's result.
 */
export function guarded(change: AccountChange, recent: readonly RecentCaller[], evaluator: Evaluator, forceStrict: boolean): { change: AccountChange; warnings: () => readonly LockoutWarning[] } {
  let last: LockoutWarning[] = [];
  const callers = recent.flatMap((c) => {
    const ip = parseIp(c.ip);
    return ip === null ? [] : [{ ip, text: c.ip, lastSeen: c.lastSeen }];
  });
  const wrapped: AccountChange = (current, view) => {
    last = [];
    const result = change(current, view);
    if (!result.ok) return result;
    const before = evaluator.effective(current, view);
    const after = evaluator.effective(result.draft, view);
    const blocked: CallerWarning[] = [];
    for (const caller of callers) {
      if (evaluator.decide(before, caller.ip) !== 'deny' && evaluator.decide(after, caller.ip) === 'deny') {
        blocked.push({ reason: 'would_lock_out', ip: caller.text, last_seen: new Date(caller.lastSeen).toISOString(), decision: 'deny' });
      }
    }
    const opens = evaluator.restricts(before) && !evaluator.restricts(after) ? openWarning(result.draft.account, after) : null;
    const empties = evaluator.emptiesAt(after);
    const noted: LockoutWarning[] = opens === null ? [...blocked] : [...blocked, opens];
    if (empties !== null && empties !== evaluator.emptiesAt(before)) noted.push(emptiesWarning(result.draft.account, empties));
    last = noted;
    const strict = forceStrict || current?.settings.guard === 'strict';
    if (strict && blocked.length > 0) {
      const shown = blocked.slice(0, 5).map((w) => `${w.ip} (last seen ${w.last_seen})`).join(', ');
      return {
        ok: false,
        refusal: refusal(409, 'would_lock_out', `the change would block ${blocked.length} recently seen caller${blocked.length === 1 ? '' : 's'}: ${shown}${blocked.length > 5 ? ', …' : ''}; allow them first, or apply it without guard=strict`),
      };
    }
    if (strict && opens !== null) return { ok: false, refusal: refusal(409, 'would_open', `${opens.message}; apply it without guard=strict if that is intended`) };
    return result;
  };
  return { change: wrapped, warnings: () => last };
}

function openWarning(account: string, after: Effective): OpenWarning {
  if (after.key) return { reason: 'would_open', message: `${describeList(account)} would no longer be restricted by a list of its own: it would be opened (restricted: false) with no allow entry in force, so the account's list alone would apply` };
  const why = after.mode === 'off' ? 'its mode would be off'
    : after.mode === 'report-only' ? 'its mode would be report-only (refusals only logged)'
      : after.inherited ? `it would inherit the list of ${after.root?.account ?? 'an account without a record'}, which does not restrict, with an open default`
        : 'it would be opened (restricted: false) with no allow entry in force, and its default is open';
  return { reason: 'would_open', message: `account ${account} would be open to every address: ${why}` };
}

function emptiesWarning(id: string, at: number): EmptiesWarning {
  const when = new Date(at).toISOString();
  const then = parseKeyListId(id) === null
    ? 'the account refuses every caller (list_empty) until an allow entry applies again or the account is opened'
    : 'requests with the key are refused (list_empty_for_key) until an allow entry applies again or the key\'s list is opened';
  return { reason: 'will_empty', at: when, message: `every allow entry of ${describeList(id)} in force is temporary: from ${when} ${then}` };
}
