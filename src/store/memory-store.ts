import type { Refusal } from '../http/refusal.ts';
import { isKeyListId } from '../list/key-list-id.ts';
import type { AccountRecord } from '../list/types.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { KeyIndex, KeyUseTable } from './key-index.ts';
import { createAuditLog } from './open-audit.ts';
import { RecentCallerTable } from './recent-callers.ts';
import { childrenByParent, nextExpiry, versionConflict, type AccountChange, type AccountPage, type AclStore, type AuditLogSettings, type CallerBatch, type ChangeListener, type KeyPointer, type KeyUse, type KeyUseBatch, type RecentCaller, type StoreState, type StoreView, type UpdateOutcome } from './store.ts';

/**
 * Accounts in a Map. Updates run one at a time, in arrival order, across all accounts, so a change
 * is always computed from the record it replaces and from other accounts as they are at its commit. Subclasses make a change durable in `persist` before it is
 * committed to memory: if that fails, memory keeps the old state and the caller is refused.
 */
export class MemoryStore implements AclStore {
  readonly kind: AclStore['kind'] = 'memory';
  protected readonly records = new Map<string, AccountRecord>();
  readonly #listeners = new Set<ChangeListener>();
  readonly #callers = new RecentCallerTable();
  readonly #keys = new KeyIndex();
  readonly #keyUse = new KeyUseTable();
  #tail: Promise<unknown> = Promise.resolve();

  async open(): Promise<void> {}

  openAuditLog({ path, logger, ...caps }: AuditLogSettings): Promise<AuditLog> {
    return createAuditLog(path === undefined ? { kind: 'memory', ...caps } : { kind: 'file', path, ...caps }, logger === undefined ? {} : { logger });
  }

  async close(): Promise<void> {
    await this.#tail;
    this.#listeners.clear();
  }

  async read(account: string): Promise<AccountRecord | null> {
    return this.records.get(account) ?? null;
  }

  async accounts(): Promise<readonly string[]> {
    return [...this.records.keys()].filter((id) => !isKeyListId(id)).sort();
  }

  async findKeys(indexKeys: readonly string[]): Promise<readonly KeyPointer[]> {
    return this.#keys.find(indexKeys);
  }

  async keyAccounts(): Promise<readonly string[]> {
    return this.#keys.accounts();
  }

  /** Kept in memory only, also by the file store, like the recent callers. */
  async recordKeyUse(batch: KeyUseBatch): Promise<void> {
    this.#keyUse.record(batch);
  }

  async keyUse(account: string, keyIds: readonly string[]): Promise<ReadonlyMap<string, KeyUse>> {
    return this.#keyUse.of(account, keyIds);
  }

  /** Takes a record read from storage (the file store's at open), with its keys indexed. */
  protected load(record: AccountRecord): void {
    this.#keys.apply(record.account, this.records.get(record.account) ?? null, record);
    this.records.set(record.account, record);
  }

  /** In memory already: one page. */
  async accountPage(): Promise<AccountPage> {
    return { accounts: [...this.records.keys()], cursor: null };
  }

  update(account: string, change: AccountChange, expectedVersion?: number): Promise<UpdateOutcome> {
    const run = this.#tail.then(() => this.#apply(account, change, expectedVersion));
    // The queue continues whatever this update's fate; its caller sees the failure.
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** A scan of records already in memory: no I/O, so no index is kept. */
  async dueForExpiry(nowMs: number, limit: number): Promise<readonly string[]> {
    const due: string[] = [];
    for (const [account, record] of this.records) {
      const next = nextExpiry(record);
      if (next !== null && next <= nowMs) due.push(account);
      if (due.length >= limit) break;
    }
    return due;
  }

  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Process memory cannot become unreachable. */
  state(): StoreState {
    return 'up';
  }

  onStateChange(): () => void {
    return () => undefined;
  }

  /** Kept in memory only, also by the file store: callers are a hint, not policy. */
  async recordCallers(batch: CallerBatch): Promise<void> {
    this.#callers.record(batch);
  }

  async recentCallers(account: string, limit: number): Promise<readonly RecentCaller[]> {
    return this.#callers.list(account, limit, Date.now());
  }

  async forgetCallers(accounts: readonly string[]): Promise<void> {
    this.#callers.forget(accounts);
  }

  /**
   * Makes the current state with `record` applied durable, or says why it could not; the default
   * keeps everything in memory only.
   */
  protected async persist(_record: AccountRecord): Promise<Refusal | null> {
    return null;
  }

  async #apply(account: string, change: AccountChange, expectedVersion: number | undefined): Promise<UpdateOutcome> {
    const current = this.records.get(account) ?? null;
    const version = current?.version ?? 0;
    if (expectedVersion !== undefined && expectedVersion !== version) return versionConflict(account, version, expectedVersion);
    const result = change(current, mapView(this.records));
    if (!result.ok) return result;
    const record: AccountRecord = { ...result.draft, account, version: version + 1 };
    // Nothing else runs between this check and the commit below.
    const clash = this.#keys.clash(account, current, record);
    if (clash !== null) return { ok: false, refusal: clash };
    const failed = await this.persist(record);
    if (failed !== null) return { ok: false, refusal: failed };
    this.records.set(account, record);
    this.#keys.apply(account, current, record);
    for (const listener of this.#listeners) listener(account, record.version);
    return { ok: true, record, previous: current };
  }
}

/** Other accounts straight from the map: nothing else writes while a change runs. */
function mapView(records: ReadonlyMap<string, AccountRecord>): StoreView {
  let byParent: Map<string, string[]> | null = null;
  return {
    read: (account) => records.get(account) ?? null,
    // Built once per change, and only by changes that ask (parent changes).
    children: (account) => (byParent ??= childrenByParent(parentLinks(records.values()))).get(account) ?? [],
  };
}

function* parentLinks(records: Iterable<AccountRecord>): Iterable<readonly [string, string]> {
  for (const record of records) {
    if (record.settings.parent !== undefined) yield [record.account, record.settings.parent];
  }
}
