import { refusal, type Refusal } from '../http/refusal.ts';
import type { AccountSettings, AclEntry } from '../list/types.ts';
import { networksOf, type ListIndex } from './list-index.ts';
import { cidrsOverlap, type ReservedRange } from './reserved.ts';

/** The gateway-wide rules; an account's settings may tighten or raise some of them. */
export interface ValidationPolicy {
  /** Entries per account unless the account sets `maxEntries`. */
  readonly maxEntries: number;
  readonly ipv4Only: boolean;
  /** Space refused in allow entries: the reserved ranges, plus private ones when so configured. */
  readonly refused: readonly ReservedRange[];
}

export type Verdict = { readonly ok: true; readonly superseded: readonly AclEntry[] } | { readonly ok: false; readonly refusal: Refusal };

function describe(entry: AclEntry): string {
  return `${entry.id} (${entry.ipAddress})`;
}

/** A subaccount's list is its parent's: entries are managed there. */
export function inheritedList(account: string, settings: AccountSettings): Refusal | null {
  if (settings.parent === undefined) return null;
  return refusal(409, 'inherited_list', `account ${account} is a subaccount of ${settings.parent} and uses its list: manage the entries on ${settings.parent}`);
}

export function entryLimit(account: string, count: number, settings: AccountSettings, policy: ValidationPolicy): Refusal | null {
  const limit = settings.maxEntries ?? policy.maxEntries;
  if (count <= limit) return null;
  return refusal(409, 'limit_reached', `account ${account} may hold at most ${limit} entries: remove one first (or raise the account's max_entries setting)`);
}

/**
 * Checks one entry (new or edited) against the rest of the list, held in `list`. Allow entries may
 * not repeat, sit inside, or swallow other allow entries; with `replace`, the narrower entries a
 * new one covers are returned as `superseded`, for the caller to remove in the same change. Deny
 * entries exist to carve holes in allow ranges, so only the duplicate rule applies to them.
 */
export function checkEntry(candidate: AclEntry, list: ListIndex, settings: AccountSettings, policy: ValidationPolicy, replace: boolean): Verdict {
  const mine = networksOf(candidate);
  if ((policy.ipv4Only || settings.ipv4Only === true) && mine.some((c) => c.family === 6)) {
    const by = settings.ipv4Only === true ? 'this account is' : 'the gateway is';
    return fail(refusal(400, 'ipv6_not_allowed', `${candidate.ipAddress} is IPv6, and ${by} configured for IPv4 only`));
  }
  if (candidate.action === 'allow') {
    for (const range of policy.refused) {
      const hit = mine.find((c) => cidrsOverlap(c, range.cidr));
      if (hit !== undefined) {
        const what = range.kind === 'private'
          ? 'private address space, which this gateway is configured to refuse (validation.refusePrivate, ALLOWGATE_REFUSE_PRIVATE)'
          : 'reserved address space (loopback, link-local, multicast, documentation, benchmarking or similar), which no API caller can come from; a gateway whose callers do (a test on one machine) can admit it with validation.reservedRanges (ALLOWGATE_RESERVED_RANGES)';
        return fail(refusal(400, 'reserved_range', `${candidate.ipAddress} overlaps ${range.text}, ${what}`));
      }
    }
  }
  const duplicate = list.duplicateOf(candidate);
  if (duplicate !== null) return fail(refusal(409, 'duplicate', `${candidate.ipAddress} is already in the list as entry ${describe(duplicate)}`));
  if (candidate.action === 'deny') return { ok: true, superseded: [] };

  const covering = list.coveringAllow(candidate.id, mine);
  if (covering !== null) return fail(refusal(409, 'subset_exists', `${candidate.ipAddress} is already covered by entry ${describe(covering)}`));
  const narrower = list.narrowerAllow(candidate.id, mine);
  if (narrower.length > 0 && !replace) {
    const shown = narrower.slice(0, 10).map(describe).join(', ') + (narrower.length > 10 ? ` and ${narrower.length - 10} more` : '');
    return fail(refusal(409, 'superset_conflict', `${candidate.ipAddress} would cover ${narrower.length === 1 ? 'entry' : 'entries'} ${shown}: remove ${narrower.length === 1 ? 'it' : 'them'} first, or send replace=true to replace ${narrower.length === 1 ? 'it' : 'them'} in the same change`));
  }
  return { ok: true, superseded: narrower };
}

function fail(refused: Refusal): Verdict {
  return { ok: false, refusal: refused };
}
