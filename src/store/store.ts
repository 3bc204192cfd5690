import { refusal, type Refusal } from '../http/refusal.ts';
import type { CompiledList } from '../policy/compile.ts';
import type { AccountDraft, AccountRecord } from '../policy/types.ts';

/**
 * A change to one account, computed from its current record and, where it needs them, from other
 * accounts' records read through `view` (a parent change checks the parent graph and judges the
 * list the account will inherit). Everything it reads is read inside the store's atomic change:
 * the commit happens only if none of it moved meanwhile. Pure: a store may call it more than once
 * (a Redis store re-runs it when another writer got there first, or when it read a record that
 * was not fetched yet), so it must not have effects. Returning a refusal aborts the change with
 * nothing written.
 */
export type AccountChange = (current: AccountRecord | null, view: StoreView) => ChangeResult;

/**
 * Other accounts as a change sees them: the records as of the commit (a store checks at commit
 * time that nothing read here moved, and re-runs the change if it did).
 */
export interface StoreView {
  /** Another account's record, or null when it has none. */
  read(account: string): AccountRecord | null;
  /** The accounts whose record names `account` as its parent, sorted. */
  children(account: string): readonly string[];
}

export type ChangeResult =
  | { readonly ok: true; readonly draft: AccountDraft }
  | { readonly ok: false; readonly refusal: Refusal };

export type UpdateOutcome =
  | { readonly ok: true; readonly record: AccountRecord; readonly previous: AccountRecord | null }
  | { readonly ok: false; readonly refusal: Refusal };

/**
 * `publishedAt` (epoch ms, the writer's clock) is given for changes made by another replica, so
 * a listener can tell how long the news took to arrive. `list` is given for a change this replica
 * committed to a shared store: the new list itself, compiled, so it is enforced without a read
 * that an outage right after the commit could prevent.
 */
export type ChangeListener = (account: string, version: number, publishedAt?: number, list?: CompiledList) => void;

/** Whether the store can be reached; a shared store reports outages and recoveries. */
export type StoreState = 'up' | 'down';

/** One account's callers seen since the last flush: client IP text → last-seen epoch ms. */
export type CallerBatch = ReadonlyMap<string, ReadonlyMap<string, number>>;

export type StateListener = (state: StoreState, detail: string | undefined) => void;

/** The refusal for a write computed from a version the account has since left. */
export function versionConflict(account: string, version: number, expected: number): UpdateOutcome {
  return {
    ok: false,
    refusal: refusal(412, 'version_conflict', `account ${account} is at version ${version}, not ${expected}: reload it and apply the change again`),
  };
}

/** Subaccounts by parent, each list sorted, from `subaccount → parent` pairs. */
export function childrenByParent(pairs: Iterable<readonly [string, string]>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [child, parent] of pairs) {
    const list = out.get(parent) ?? [];
    list.push(child);
    out.set(parent, list);
  }
  for (const list of out.values()) list.sort();
  return out;
}

export interface RecentCaller {
  readonly ip: string;
  readonly lastSeen: number;
}

/**
 * Where access lists live. The request path never calls a store directly: it reads compiled lists
 * from the policy cache, which a store keeps fresh through `subscribe`.
 */
export interface AclStore {
  readonly kind: 'memory' | 'file' | 'redis';
  open(): Promise<void>;
  /** Flushes anything pending and releases resources; the store is unusable afterwards. */
  close(): Promise<void>;
  read(account: string): Promise<AccountRecord | null>;
  /** Every account that has a record, sorted. */
  accounts(): Promise<readonly string[]>;
  /**
   * Applies `change` atomically: the record it was computed from is the one replaced, and the
   * change is durable before the promise resolves. With `expectedVersion`, a record at any other
   * version (or absent, unless expectedVersion is 0) is refused with 412 `version_conflict`.
   */
  update(account: string, change: AccountChange, expectedVersion?: number): Promise<UpdateOutcome>;
  /** Called after every committed change, on this replica and (for shared stores) on the others. */
  subscribe(listener: ChangeListener): () => void;
  state(): StoreState;
  /**
   * Called when the state changes (a shared store losing or regaining its server); `detail` says
   * why it went down.
   */
  onStateChange(listener: StateListener): () => void;
  /**
   * The account's compiled list, for stores that keep one (a shared store caches the compiled
   * form so replicas need not recompile); absent means the policy cache compiles `read`'s record.
   */
  readCompiled?(account: string): Promise<CompiledList | null>;
  /** Current versions (0 for no record), for the cache's repair sweep after missed notifications. */
  versions?(accounts: readonly string[]): Promise<ReadonlyMap<string, number>>;
  /** Remembers who called which account (bounded per account, expiring); fire and forget. */
  recordCallers(batch: CallerBatch): Promise<void>;
  /** Drops what `recordCallers` kept for these accounts (the recorder's bound on accounts without a list). */
  forgetCallers(accounts: readonly string[]): Promise<void>;
  /** The account's recent callers, most recent first. */
  recentCallers(account: string, limit: number): Promise<readonly RecentCaller[]>;
}
