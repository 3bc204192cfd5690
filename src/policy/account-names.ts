import { ok, refusal, refused, type Result } from '../http/refusal.ts';
import type { AccountIdCase } from '../identity/types.ts';
import type { EventLog } from '../observability/logger.ts';
import type { PolicyCache } from './cache.ts';
import type { AclStore, StoreState } from '../store/store.ts';
import { numericReadings, numericValue } from './numeric-ids.ts';

/** Accounts held before the index stops growing: about 150 bytes each. */
export const DEFAULT_ACCOUNT_INDEX_LIMIT = 1_000_000;

/** Account names read per store round trip while listing. */
export const ACCOUNT_PAGE = 1_000;

/** Spellings under one key: one (the usual case), or several. */
type Spellings = string | string[];

/**
 * Every account that has a record (a list or settings), by its lower-case spelling and, for ids
 * that spell a number, by that number, so that an id that another reading would turn into a
 * stored account is told apart in one map read: no store round trip for unknown ids, however many
 * a caller makes up. Bounded: past `limit` accounts it stops growing and says it is incomplete.
 *
 * Kept from the store without blocking: listed a page at a time when it starts (no per-account
 * read), then every change the store announces, from this replica or another; when the store
 * comes back after an outage, the changes its log holds since the listing (or, when the log can no
 * longer vouch for the gap, a new listing). While it is listing or catching up it is incomplete.
 */
export class AccountIndex {
  readonly #byFolded = new Map<string, Spellings>();
  readonly #byNumber = new Map<string, Spellings>();
  readonly #limit: number;
  #size = 0;
  #loaded = false;
  #catchingUp = false;
  #full = false;
  /** Where the store's change log was when the index was last known complete (AclStore.changes). */
  #cursor: string | null = null;

  constructor(limit: number = DEFAULT_ACCOUNT_INDEX_LIMIT) {
    this.#limit = limit;
  }

  /** Whether every account with a record is in the index (listed, caught up, within the limit). */
  get complete(): boolean {
    return this.#loaded && !this.#catchingUp && !this.#full;
  }

  /** Whether the store was listed once (whatever the limit did to it). */
  get loaded(): boolean {
    return this.#loaded;
  }

  get full(): boolean {
    return this.#full;
  }

  get size(): number {
    return this.#size;
  }

  add(account: string): void {
    // The global list's id is no account's (ids start with a letter or digit).
    if (account.charCodeAt(0) === 95 /* _ */) return;
    const folded = account.toLowerCase();
    const held = this.#byFolded.get(folded);
    if (held === account || (Array.isArray(held) && held.includes(account))) return;
    if (this.#size >= this.#limit) {
      this.#full = true;
      return;
    }
    this.#size++;
    put(this.#byFolded, folded, held, account);
    const number = numericValue(account);
    if (number !== null) put(this.#byNumber, number, this.#byNumber.get(number), account);
  }

  /** The spellings stored for a lower-case id: one, several (differing in case), or none. */
  spellings(folded: string): string | readonly string[] | undefined {
    return this.#byFolded.get(folded);
  }

  /** Whether exactly this spelling is stored. */
  holds(account: string): boolean {
    const held = this.#byFolded.get(account.toLowerCase());
    return held === account || (Array.isArray(held) && held.includes(account));
  }

  /** A stored account, other than `account`, whose number is one `account` may be read as; null for none. */
  numericTwin(account: string): string | null {
    if (this.#byNumber.size === 0) return null;
    // Plain digits (the usual numeric id) have one reading: their value; no parsing needed.
    if (isCanonicalNumber(account)) return other(this.#byNumber.get(account), account);
    for (const value of numericReadings(account)) {
      const twin = other(this.#byNumber.get(value), account);
      if (twin !== null) return twin;
    }
    return null;
  }

  /**
   * Lists every account the store holds, a page at a time (each page one round trip, so the event
   * loop is never held for long), taking the store's change-log cursor first: the changes after
   * it are the ones a later catch-up reads. Complete from then on (within its limit).
   */
  async load(store: Pick<AclStore, 'accountPage'> & Partial<Pick<AclStore, 'changes'>>): Promise<void> {
    const cursor = store.changes === undefined ? null : (await store.changes(null)).cursor;
    let page: string | null = null;
    do {
      const next = await store.accountPage(page, ACCOUNT_PAGE);
      for (const account of next.accounts) this.add(account);
      page = next.cursor;
    } while (page !== null);
    this.#cursor = cursor;
    this.#loaded = true;
    this.#catchingUp = false;
  }

  /**
   * After an outage: the accounts written since the index was complete, from the store's change
   * log; a new listing when there is no log, or it no longer reaches back that far. Until it is
   * done the index is incomplete, so ids it cannot tell apart are refused rather than guessed.
   */
  async catchUp(store: Pick<AclStore, 'accountPage'> & Partial<Pick<AclStore, 'changes'>>): Promise<'changes' | 'listing'> {
    this.#catchingUp = true;
    if (this.#loaded && this.#cursor !== null && store.changes !== undefined) {
      const feed = await store.changes(this.#cursor);
      if (feed.changed !== null) {
        for (const change of feed.changed) this.add(change.account);
        this.#cursor = feed.cursor;
        this.#catchingUp = false;
        return 'changes';
      }
    }
    await this.load(store);
    return 'listing';
  }

  /**
   * Keeps the index in step with the store: every announced change adds its account, and a store
   * that comes back is caught up (changes announced while it was away were missed). Catch-ups run
   * one at a time; a failed one is retried when the store is back again.
   */
  follow(store: Pick<AclStore, 'accountPage' | 'subscribe' | 'onStateChange' | 'state'> & Partial<Pick<AclStore, 'changes'>>, logger: EventLog): () => void {
    let running: Promise<void> | null = null;
    let again = false;
    const catchUp = (): void => {
      if (running !== null) {
        again = true;
        return;
      }
      const started = performance.now();
      running = this.catchUp(store).then(
        (how) => {
          logger.info({ accounts: this.#size, how, ms: Math.round(performance.now() - started) }, 'account index caught up with the store');
          if (this.#full) logger.error({ accounts: this.#size }, 'account index full: ids missing from it are refused (503 account_index_full) where a second reading of an id must be ruled out; raise identity.accountIndexLimit');
        },
        (error: unknown) => logger.warn({ err: error }, 'account index not caught up; will retry when the store is back'),
      ).finally(() => {
        running = null;
        if (again && store.state() === 'up') {
          again = false;
          catchUp();
        }
      });
    };
    const unsubscribe = store.subscribe((account) => this.add(account));
    const unwatch = store.onStateChange((state) => {
      if (state === 'up') catchUp();
    });
    if (!this.#loaded && store.state() === 'up') catchUp();
    return () => {
      unsubscribe();
      unwatch();
    };
  }
}

/** A spelling under a key other than `account`, or null. */
function other(held: Spellings | undefined, account: string): string | null {
  if (held === undefined) return null;
  if (typeof held === 'string') return held === account ? null : held;
  return held.find((spelling) => spelling !== account) ?? null;
}

/** Digits only, without a leading zero: a number's canonical text. */
function isCanonicalNumber(id: string): boolean {
  if (id.charCodeAt(0) === 48 /* 0 */) return id.length === 1;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function put(map: Map<string, Spellings>, key: string, held: Spellings | undefined, account: string): void {
  if (held === undefined) map.set(key, account);
  else if (Array.isArray(held)) held.push(account);
  else map.set(key, [held, account]);
}

const LISTING = refused(refusal(503, 'store_unavailable', 'the gateway is still listing the store\'s accounts, so it cannot tell yet whether this account id is another spelling of a stored account; retry shortly'));

/**
 * The account whose list a request is checked against, from the id it named (and whether the id
 * is the path's last segment, where a `.suffix` reads as a format); or why not.
 */
export type AccountNaming = (account: string, suffixed?: boolean) => Result<string>;

export interface AccountNamingOptions {
  /** identity.accountIdCase */
  readonly case: AccountIdCase;
  /** identity.accountIdNumeric */
  readonly numeric: 'refuse' | 'exact';
}

/**
 * How an id is matched to a stored account. An id that another reading turns into a stored account
 * other than the one it names exactly is refused (400 `ambiguous_account`): the gateway would
 * check one account's list while the upstream serves the other.
 *
 * Letter case (identity.accountIdCase; the identity strategies have already brought the id to the
 * case `lower`, `upper` and `fold` call for):
 * - `refuse` (the default): an id that matches no account exactly but equals one with a record
 *   when case is ignored is refused: an upstream that compares ids exactly would serve another
 *   account than one that ignores case, and the gateway cannot tell which it is.
 * - `fold`: the upstream ignores case, so the id is the stored account that equals it ignoring
 *   case; two stored accounts differing only in case are refused.
 * - `exact`, `lower`, `upper`: the id as it is.
 *
 * Numbers (identity.accountIdNumeric `refuse`, the default): an id that matches no account
 * exactly but may be read as the number of one that has a record (`0123`, `123.0`, `1.23e2`,
 * `123abc` for 123: PHP's `==`, Ruby's `to_i`, SQL casts) is refused.
 *
 * Format suffixes: an id in the path's last segment with a `.` whose part before a dot names an
 * account with a record (`AC1.json` when AC1 has a list: Rails' `.:format`, Spring's suffix
 * patterns) is refused, even when the whole id is an account of its own.
 *
 * An id the index does not hold while the index is incomplete cannot be told apart: past the
 * limit it is refused (503 `account_index_full`); while the store is down and has not been listed
 * yet it goes on to the policy step, which cannot read its list either and follows
 * onStoreUnavailable; while the store is being listed or caught up it is refused (503
 * `store_unavailable`). Ids no other reading applies to (no digit first, no suffix) never wait
 * for the index under `exact`, `lower` and `upper`.
 */
export function compileAccountNaming(options: AccountNamingOptions | AccountIdCase, index: AccountIndex, storeState: () => StoreState): AccountNaming {
  const { case: mode, numeric } = typeof options === 'string' ? { case: options, numeric: 'refuse' as const } : options;
  const caseless = mode === 'refuse' || mode === 'fold';
  const numbers = numeric === 'refuse';
  const untold = (account: string): Result<string> => {
    if (index.full) return refused(refusal(503, 'account_index_full', `the gateway holds more accounts than identity.accountIndexLimit, so it cannot tell whether ${account} is another spelling of a stored account; raise the limit`));
    if (storeState() === 'down') return ok(account);
    return LISTING;
  };
  /** Whether `name` is a stored account under this mode's comparison. */
  const stored = caseless ? (name: string) => index.spellings(name.toLowerCase()) !== undefined : (name: string) => index.holds(name);

  return (account, suffixed = false) => {
    const digit = isDigit(account.charCodeAt(0));
    // The common case under exact, lower and upper: nothing to look up.
    if (!caseless && !suffixed && !(numbers && digit)) return ok(account);
    let named = account;
    let held: boolean;
    if (mode === 'fold') {
      const spellings = index.spellings(account);
      held = spellings !== undefined;
      if (typeof spellings === 'string') named = spellings;
      else if (spellings !== undefined) return refused(refusal(400, 'ambiguous_account', `account ids ${spellings.slice(0, 4).join(', ')} differ only in letter case, and the upstream ignores case (identity.accountIdCase: fold): merge them`));
    } else {
      const spellings = index.spellings(account.toLowerCase());
      held = spellings === account || (Array.isArray(spellings) && spellings.includes(account));
      if (!held && spellings !== undefined && caseless) {
        const other = typeof spellings === 'string' ? spellings : spellings[0]!;
        return refused(refusal(400, 'ambiguous_account', `account ${account} does not exist, but ${other} does, and an upstream that ignores letter case would serve it; send the id exactly as the account is spelled (or set identity.accountIdCase to how the upstream compares ids)`));
      }
    }
    if (held && !suffixed) return ok(named);
    if (!held && (caseless || (numbers && digit)) && !index.complete) return untold(named);
    if (numbers && digit && !held) {
      const twin = index.numericTwin(named);
      if (twin !== null) return refused(refusal(400, 'ambiguous_account', `account ${named} does not exist, but ${twin} does, and an upstream that compares ids as numbers (PHP's ==, Ruby's to_i, SQL casts, JavaScript's Number) would serve it; send the id exactly as the account is spelled (or set identity.accountIdNumeric: exact)`));
    }
    if (suffixed) {
      for (let dot = named.indexOf('.'); dot > 0; dot = named.indexOf('.', dot + 1)) {
        const prefix = named.slice(0, dot);
        const other = stored(prefix) ? prefix : numbers && isDigit(prefix.charCodeAt(0)) ? index.numericTwin(prefix) : null;
        if (other !== null) return refused(refusal(400, 'ambiguous_account', `the path ends in ${named}, which routers read as account ${other} with a format suffix (Rails' .:format, Spring's suffix patterns), and ${other} has its own list; send the path without the suffix`));
      }
      if (!index.complete) return untold(named);
    }
    return ok(named);
  };
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** How the admin surfaces map an account id from a request to the account they act on. */
export type AdminAccountNaming = (account: string) => Result<string>;

/**
 * The management side of identity.accountIdCase, so that lists are stored under the spelling the
 * gateway looks up: `lower` and `upper` bring ids to that case, `fold` acts on the stored account
 * that equals the id ignoring case (a new account keeps the spelling given); `refuse` and `exact`
 * take ids as given.
 */
export function compileAdminAccountNaming(mode: AccountIdCase, index: AccountIndex): AdminAccountNaming {
  switch (mode) {
    case 'lower':
      return (account) => ok(account.toLowerCase());
    case 'upper':
      return (account) => ok(account.toUpperCase());
    case 'fold':
      return (account) => {
        const held = index.spellings(account.toLowerCase());
        if (held === undefined) return ok(account);
        if (typeof held === 'string') return ok(held);
        return held.includes(account) ? ok(account) : refused(refusal(409, 'ambiguous_account', `account ids ${held.slice(0, 4).join(', ')} differ only in letter case, and the upstream ignores case (identity.accountIdCase: fold): name one exactly`));
      };
    default:
      return ok;
  }
}

/** The account naming of the request path and of the admin API, and how to stop following the store. */
export interface AccountNames {
  readonly gateway: AccountNaming;
  readonly admin: AdminAccountNaming;
  stop(): void;
}

/**
 * How request and admin ids map to stored accounts (identity.accountIdCase, accountIdNumeric and
 * path format suffixes). The index of every account with a record is seeded from the
 * last-known-good lists, listed from the store (a page per round trip) before the listeners open
 * when the store answers, then kept up by its change notices and, after an outage, by its change
 * log. Not needed when ids are compared as given, as strings, with no path strategy.
 */
export async function followAccountNames(options: AccountNamingOptions & { readonly limit: number; readonly pathStrategy: boolean }, store: AclStore, cache: PolicyCache, logger: EventLog): Promise<AccountNames> {
  const index = new AccountIndex(options.limit);
  let stop = (): void => undefined;
  if (options.case === 'refuse' || options.case === 'fold' || options.numeric === 'refuse' || options.pathStrategy) {
    for (const [account, list] of cache.lastKnownGood()) if (list !== null) index.add(account);
    if (store.state() === 'up') {
      const started = performance.now();
      await index.load(store).then(
        () => logger.info({ accounts: index.size, ms: Math.round(performance.now() - started) }, 'account index listed'),
        (error: unknown) => logger.warn({ err: error }, 'account index not listed at start; will list when the store is back'),
      );
    }
    stop = index.follow(store, logger);
  }
  return { gateway: compileAccountNaming(options, index, () => store.state()), admin: compileAdminAccountNaming(options.case, index), stop };
}
