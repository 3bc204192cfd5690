import { isStoreFailure, type AccountChange, type AclStore, type AuditDescriber, type CallerBatch, type ChangeListener, type KeyUseBatch, type RecentCaller, type StateListener, type StoreState, type UpdateOutcome } from './store.ts';

/** Why a store operation failed: a refusal that means the store failed, or an error thrown ('error'). */
export interface StoreFailure {
  readonly reason: string;
  readonly message: string;
  /** The underlying error, for the log. */
  readonly cause?: string;
  readonly account?: string;
  /** For a write whose outcome is unknown: the version read afterwards. */
  readonly currentVersion?: number;
}

/** Reports each store operation's duration and, when it failed, why. */
export type OperationObserver = (operation: string, seconds: number, failure: StoreFailure | null) => void;


/**
 * A store that times every operation for the metrics, and otherwise is the store it wraps. The
 * optional capabilities (`readCompiled`, `versions`) exist exactly when the inner store has them,
 * so the cache behaves the same wrapped or not.
 */
export function instrumentStore(inner: AclStore, observe: OperationObserver): AclStore {
  const timed = async <T>(operation: string, run: () => Promise<T>, failure: (value: T) => StoreFailure | null = () => null): Promise<T> => {
    const start = performance.now();
    try {
      const value = await run();
      observe(operation, (performance.now() - start) / 1000, failure(value));
      return value;
    } catch (error) {
      observe(operation, (performance.now() - start) / 1000, { reason: 'error', message: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  };
  const store: AclStore = {
    kind: inner.kind,
    open: () => inner.open(),
    close: () => inner.close(),
    read: (account) => timed('read', () => inner.read(account)),
    accounts: () => timed('accounts', () => inner.accounts()),
    accountPage: (cursor: string | null, count: number) => timed('account_page', () => inner.accountPage(cursor, count)),
    update: (account: string, change: AccountChange, expectedVersion?: number, describe?: AuditDescriber) =>
      timed('update', () => inner.update(account, change, expectedVersion, describe), (o: UpdateOutcome) => (!o.ok && isStoreFailure(o.refusal.reason) ? { ...o.refusal, account } : null)),
    subscribe: (listener: ChangeListener) => inner.subscribe(listener),
    state: (): StoreState => inner.state(),
    onStateChange: (listener: StateListener) => inner.onStateChange(listener),
    recordCallers: (batch: CallerBatch) => timed('record_callers', () => inner.recordCallers(batch)),
    forgetCallers: (accounts: readonly string[]) => timed('forget_callers', () => inner.forgetCallers(accounts)),
    recentCallers: (account: string, limit: number): Promise<readonly RecentCaller[]> => timed('recent_callers', () => inner.recentCallers(account, limit)),
    dueForExpiry: (nowMs: number, limit: number) => timed('due_for_expiry', () => inner.dueForExpiry(nowMs, limit)),
    openAuditLog: (settings) => inner.openAuditLog(settings),
    findKeys: (indexKeys: readonly string[]) => timed('find_keys', () => inner.findKeys(indexKeys)),
    keyAccounts: () => timed('key_accounts', () => inner.keyAccounts()),
    recordKeyUse: (batch: KeyUseBatch) => timed('record_key_use', () => inner.recordKeyUse(batch)),
    keyUse: (account: string, keyIds: readonly string[]) => timed('key_use', () => inner.keyUse(account, keyIds)),
  };
  const { readCompiled, versions, changes } = inner;
  return {
    ...store,
    ...(readCompiled ? { readCompiled: (account: string) => timed('read_compiled', () => readCompiled.call(inner, account)) } : {}),
    ...(versions ? { versions: (accounts: readonly string[]) => timed('versions', () => versions.call(inner, accounts)) } : {}),
    ...(changes ? { changes: (cursor: string | null) => timed('changes', () => changes.call(inner, cursor)) } : {}),
  };
}
