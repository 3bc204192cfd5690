import type { AccountRecord } from '../../list/types.ts';
import type { StoreView } from '../store.ts';

/**
 * Thrown by the view when a change reads something not fetched yet: the store fetches it and runs
 * the change again (changes are pure, so a re-run is harmless). `account` null means the graph.
 */
export class NotFetched {
  readonly account: string | null;

  constructor(account: string | null) {
    this.account = account;
  }
}

/** A record as read, with the version key's value at that moment (0: no record). */
export interface Fetched {
  readonly record: AccountRecord | null;
  readonly version: number;
}

/** The parent graph as read: subaccounts by parent, and the graph's version. */
export interface FetchedGraph {
  readonly version: number;
  readonly children: ReadonlyMap<string, readonly string[]>;
}

/** What a run of a change read besides its own account, with the versions it saw. */
export interface Dependencies {
  readonly accounts: readonly (readonly [string, number])[];
  /** Null when the change did not look at the graph. */
  readonly graphVersion: number | null;
}

/**
 * The view a change gets on a store whose reads are asynchronous: records and the graph are
 * fetched on first use (the change re-runs each time), and everything the last run used is
 * reported, so the commit can check that none of it moved.
 */
export class FetchingView implements StoreView {
  readonly #own: string;
  readonly #records = new Map<string, Fetched>();
  readonly #used = new Set<string>();
  #graph: FetchedGraph | null = null;
  #graphUsed = false;

  constructor(own: string, current: Fetched) {
    this.#own = own;
    this.#records.set(own, current);
  }

  read(account: string): AccountRecord | null {
    const fetched = this.#records.get(account);
    if (fetched === undefined) throw new NotFetched(account);
    if (account !== this.#own) this.#used.add(account);
    return fetched.record;
  }

  children(account: string): readonly string[] {
    if (this.#graph === null) throw new NotFetched(null);
    this.#graphUsed = true;
    return this.#graph.children.get(account) ?? [];
  }

  /** Called before each run: only the last run's reads count. */
  beginRun(): void {
    this.#used.clear();
    this.#graphUsed = false;
  }

  add(account: string, fetched: Fetched): void {
    this.#records.set(account, fetched);
  }

  setGraph(graph: FetchedGraph): void {
    this.#graph = graph;
  }

  dependencies(): Dependencies {
    return {
      accounts: [...this.#used].sort().map((account) => [account, this.#records.get(account)!.version] as const),
      graphVersion: this.#graphUsed ? this.#graph!.version : null,
    };
  }
}
