import { refusal, type Refusal } from '../http/refusal.ts';
import type { CompiledList } from '../list/compile.ts';
import type { AuditLog, NewAuditEvent } from '../audit/audit-log.ts';
import type { EventLog } from '../observability/logger.ts';
import type { AccountDraft, AccountRecord } from '../list/types.ts';

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

/**
 * `audited`: the store recorded the change's audit event itself, in the same atomic step as the
 * change (the Redis store, given a `describe`); otherwise the caller appends it to its audit log.
 */
export type UpdateOutcome =
  | { readonly ok: true; readonly record: AccountRecord; readonly previous: AccountRecord | null; readonly audited?: boolean }
  | { readonly ok: false; readonly refusal: Refusal };

/** A change's audit event, built from the record it replaced and the one it made (pure). */
export type AuditDescriber = (previous: AccountRecord | null, record: AccountRecord) => NewAuditEvent;

/** What a change notice may carry besides the account and the version it reached. */
export interface ChangeNotice {
  /** Epoch ms (the writer's clock) at which another replica published the change. */
  readonly publishedAt?: number;
  /**
   * The new list, compiled, so it is enforced without a read that an outage could prevent: for
   * a change this replica committed, and for another replica's when it was small enough to be
   * published with the notice.
   */
  readonly list?: CompiledList;
  /**
   * The list at `version - 1` is at least as strict as the new one (list/strictness.ts), so a
   * replica holding it may keep enforcing it until the new one loads; otherwise it must refuse
   * the account's callers meanwhile.
   */
  readonly loosens?: boolean;
}

/**
 * Called after every committed change, and after a write whose outcome is unknown (its version is
 * then the one it would have reached). A notice may arrive for a version a replica already holds
 * (its own commit echoed back): version checks make that a no-op.
 */
export type ChangeListener = (account: string, version: number, notice?: ChangeNotice) => void;

/**
 * Which accounts may have changed since a cursor: `changed` lists them with the version the
 * change would give and when it was logged (epoch ms, the store's clock); null when the store
 * cannot tell (no cursor yet, or its log no longer reaches back to the cursor), and every cached
 * account must be compared instead. `cursor` is where the next call goes on from.
 */
export interface ChangeFeed {
  readonly cursor: string;
  readonly changed: readonly { readonly account: string; readonly version: number; readonly at: number }[] | null;
}

export interface AccountPage {
  readonly accounts: readonly string[];
  readonly cursor: string | null;
}

/** Whether the store can be reached; a shared store reports outages and recoveries. */
export type StoreState = 'up' | 'down';

/** One account's callers seen since the last flush: client IP text → last-seen epoch ms. */
export type CallerBatch = ReadonlyMap<string, ReadonlyMap<string, number>>;

export type StateListener = (state: StoreState, detail: string | undefined) => void;

/**
 * Refusals that mean the store, not the request, failed (`outcome_unknown`: the write may or may
 * not have been applied): store errors, never validation refusals.
 */
const STORE_FAILURES = new Set(['store_unavailable', 'store_write_failed', 'store_contention', 'store_corrupt', 'outcome_unknown']);

export function isStoreFailure(reason: string): boolean {
  return STORE_FAILURES.has(reason);
}

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

/** The earliest expiry among the record's temporary entries (epoch ms), null when it has none. */
export function nextExpiry(record: AccountRecord | null): number | null {
  let next: number | null = null;
  for (const entry of record?.entries ?? []) {
    if (entry.expiresAt === undefined) continue;
    const at = Date.parse(entry.expiresAt);
    if (next === null || at < next) next = at;
  }
  return next;
}

/** The audit trail's bounds (events in all, per account) and, for the embedded stores, its file. */
export interface AuditLogSettings {
  readonly cap?: number;
  readonly accountCap?: number;
  /** A JSONL file for the memory and file stores; unset: kept in memory. Not used with Redis. */
  readonly path?: string;
  /** Told about stored events that are skipped because they do not read as events. */
  readonly logger?: EventLog;
}

export interface RecentCaller {
  readonly ip: string;
  readonly lastSeen: number;
}

/**
 * Where a registered key's digest (`hmac:<hex>` or `sha256:<hex>`) points. A hint, not the truth:
 * the account's record is, and the request path checks the key is still there (and enabled) in
 * the account's compiled list before using it.
 */
export interface KeyPointer {
  readonly indexKey: string;
  readonly account: string;
  readonly keyId: string;
}

/** A key's last use: when (epoch ms) and from which client address. */
export interface KeyUse {
  readonly at: number;
  readonly ip: string;
}

/** Key uses seen since the last flush, by key-list id (src/list/key-list-id.ts). */
export type KeyUseBatch = ReadonlyMap<string, KeyUse>;

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
  /** Every account that has a record, sorted (keys' lists are not accounts: not listed). */
  accounts(): Promise<readonly string[]>;
  /**
   * The names of the accounts, a page at a time (`cursor` null to start; the answer's cursor null
   * when done), for listing many without a read per account or a long pause. Every account that
   * has a record when the listing starts is named; a page may also name an account whose first
   * write is still under way or failed, and may repeat a name.
   */
  accountPage(cursor: string | null, count: number): Promise<AccountPage>;
  /**
   * Applies `change` atomically: the record it was computed from is the one replaced, and the
   * change is durable before the promise resolves. With `expectedVersion`, a record at any other
   * version (or absent, unless expectedVersion is 0) is refused with 412 `version_conflict`.
   * `describe` gives the change's audit event, which a store that keeps the audit trail beside
   * the lists records in the same atomic step (then `audited` is true in the outcome).
   */
  update(account: string, change: AccountChange, expectedVersion?: number, describe?: AuditDescriber): Promise<UpdateOutcome>;
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
  /**
   * The accounts written since `cursor` (see ChangeFeed): lets the repair sweep re-check only
   * what changed instead of every cached account.
   */
  changes?(cursor: string | null): Promise<ChangeFeed>;
  /** Accounts holding a temporary entry whose time has passed at `nowMs` (at most `limit`). */
  dueForExpiry(nowMs: number, limit: number): Promise<readonly string[]>;
  /** Remembers who called which account (bounded per account, expiring); fire and forget. */
  recordCallers(batch: CallerBatch): Promise<void>;
  /** Drops what `recordCallers` kept for these accounts (the recorder's bound on accounts without a list). */
  forgetCallers(accounts: readonly string[]): Promise<void>;
  /** The account's recent callers, most recent first. */
  recentCallers(account: string, limit: number): Promise<readonly RecentCaller[]>;
  /**
   * Opens the audit trail that goes with this store: Redis streams on the Redis store's own
   * connection (its commits record their events there in the same atomic step, and closing the
   * log leaves the connection open), a JSONL file or memory for the embedded stores.
   */
  openAuditLog(settings: AuditLogSettings): Promise<AuditLog>;
  /**
   * The registered keys found under these index keys (src/list/key-digest.ts, indexKey), at most one
   * each. A key is held by one account at most: `update` refuses (409 duplicate) a change that
   * would register a digest another key holds, in the same atomic step as the change.
   */
  findKeys(indexKeys: readonly string[]): Promise<readonly KeyPointer[]>;
  /** The accounts holding at least one registered key, sorted. */
  keyAccounts(): Promise<readonly string[]>;
  /** Remembers each key's last use (kept until the key is deleted); fire and forget. */
  recordKeyUse(batch: KeyUseBatch): Promise<void>;
  /** The last uses of these keys of the account, by key id (a key never used is absent). */
  keyUse(account: string, keyIds: readonly string[]): Promise<ReadonlyMap<string, KeyUse>>;
}
