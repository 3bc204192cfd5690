import { ok, refusal, refused, type Result } from '../http/refusal.ts';
import type { AccountIdCase } from '../identity/types.ts';
import type { EventLog } from '../observability/logger.ts';
import type { PolicyCache } from './cache.ts';
import type { AclStore, StoreState } from '../store/store.ts';

/** Accounts held before the index stops growing: about 150 bytes each. */
export const DEFAULT_ACCOUNT_INDEX_LIMIT = 1_000_000;

/**
 * Every account that has a record (a list or settings), by its lower-case spelling, so that an id
 * differing from one only in letter case is told apart in one map read: no store round trip for
 * unknown ids, however many a caller makes up. Kept from the store: its account list at start (and
 * after the store comes back), then every change it announces, from this replica or another.
 * Bounded: past `limit` accounts it stops growing and says it is incomplete.
 */
export class AccountIndex {
  readonly #byFolded = new Map<string, string | string[]>();
  readonly #limit: number;
  #size = 0;
  #loaded = false;
  #full = false;

  constructor(limit: number = DEFAULT_ACCOUNT_INDEX_LIMIT) {
    this.#limit = limit;
  }

  /** Whether every account with a record is in the index (loaded once, and within the limit). */
  get complete(): boolean {
    return this.#loaded && !this.#full;
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
    if (held === undefined) this.#byFolded.set(folded, account);
    else if (Array.isArray(held)) held.push(account);
    else this.#byFolded.set(folded, [held, account]);
  }

  /** The spellings stored for a lower-case id: one, several (differing in case), or none. */
  spellings(folded: string): string | readonly string[] | undefined {
    return this.#byFolded.get(folded);
  }

  /** Adds every account the store holds; the index is complete from then on (within its limit). */
  async load(store: Pick<AclStore, 'accounts'>): Promise<void> {
    for (const account of await store.accounts()) this.add(account);
    this.#loaded = true;
  }

  /**
   * Keeps the index in step with the store: every announced change adds its account, and a store
   * that comes back is listed again (changes announced while it was away were missed).
   */
  follow(store: Pick<AclStore, 'accounts' | 'subscribe' | 'onStateChange' | 'state'>, logger: EventLog): () => void {
    const reload = (): void => {
      this.load(store).then(
        () => {
          if (this.#full) logger.error({ accounts: this.#size }, 'account index full: ids missing from it are refused (503 account_index_full) while identity.accountIdCase is refuse or fold; raise identity.accountIndexLimit');
        },
        (error: unknown) => logger.warn({ err: error }, 'account index not loaded; will retry when the store is back'),
      );
    };
    const unsubscribe = store.subscribe((account) => this.add(account));
    const unwatch = store.onStateChange((state) => {
      if (state === 'up') reload();
    });
    if (!this.#loaded && store.state() === 'up') reload();
    return () => {
      unsubscribe();
      unwatch();
    };
  }
}

const LISTING = refused(refusal(503, 'store_unavailable', 'the gateway is still listing the store\'s accounts, so it cannot tell yet whether this account id differs from another only in case; retry shortly'));

/** The account whose list a request is checked against, from the id it named; or why not. */
export type AccountNaming = (account: string) => Result<string>;

/**
 * How an id is matched to a stored account (identity.accountIdCase; the identity strategies have
 * already brought it to the case `lower`, `upper` and `fold` call for):
 *
 * - `refuse` (the default): an id that matches no account exactly but equals one with a record
 *   when case is ignored is 400 `ambiguous_account`. An upstream that compares ids exactly would
 *   serve another account than one that ignores case, and the gateway cannot tell which it is.
 * - `fold`: the upstream ignores case, so the id is the stored account that equals it ignoring
 *   case; two stored accounts differing only in case are 400 `ambiguous_account`.
 * - `exact`, `lower`, `upper`: the id as it is.
 *
 * An id the index does not hold while the index is incomplete cannot be told apart: past the
 * limit it is refused (503 `account_index_full`); while the store is down and has not been listed
 * yet it goes on to the policy step, which cannot read its list either and follows
 * onStoreUnavailable; in the moment between the store coming up and the listing it is refused
 * (503 `store_unavailable`).
 */
export function compileAccountNaming(mode: AccountIdCase, index: AccountIndex, storeState: () => StoreState): AccountNaming {
  if (mode !== 'refuse' && mode !== 'fold') return ok;
  const untold = (account: string): Result<string> => {
    if (index.full) return refused(refusal(503, 'account_index_full', `the gateway holds more accounts than identity.accountIndexLimit, so it cannot tell whether ${account} differs from another only in case; raise the limit`));
    if (storeState() === 'down') return ok(account);
    return LISTING;
  };
  if (mode === 'fold') {
    return (account) => {
      const held = index.spellings(account);
      if (held === undefined) return index.complete ? ok(account) : untold(account);
      if (typeof held === 'string') return ok(held);
      return refused(refusal(400, 'ambiguous_account', `account ids ${held.slice(0, 4).join(', ')} differ only in letter case, and the upstream ignores case (identity.accountIdCase: fold): merge them`));
    };
  }
  return (account) => {
    const held = index.spellings(account.toLowerCase());
    if (held === account) return ok(account);
    if (held === undefined) return index.complete ? ok(account) : untold(account);
    if (Array.isArray(held) && held.includes(account)) return ok(account);
    const other = typeof held === 'string' ? held : held[0]!;
    return refused(refusal(400, 'ambiguous_account', `account ${account} does not exist, but ${other} does, and an upstream that ignores letter case would serve it; send the id exactly as the account is spelled (or set identity.accountIdCase to how the upstream compares ids)`));
  };
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
 * How request and admin ids map to stored accounts (identity.accountIdCase). `refuse` and `fold`
 * need the index of every account with a record: seeded from the last-known-good lists, listed
 * from the store once it answers, then kept up by its change notices.
 */
export async function followAccountNames(mode: AccountIdCase, limit: number, store: AclStore, cache: PolicyCache, logger: EventLog): Promise<AccountNames> {
  const index = new AccountIndex(limit);
  let stop = (): void => undefined;
  if (mode === 'refuse' || mode === 'fold') {
    for (const [account, list] of cache.lastKnownGood()) if (list !== null) index.add(account);
    if (store.state() === 'up') await index.load(store).catch((error: unknown) => logger.warn({ err: error }, 'account index not loaded at start'));
    stop = index.follow(store, logger);
  }
  return { gateway: compileAccountNaming(mode, index, () => store.state()), admin: compileAdminAccountNaming(mode, index), stop };
}
