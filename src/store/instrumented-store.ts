import type { AccountChange, AclStore, CallerBatch, ChangeListener, RecentCaller, StateListener, StoreState, UpdateOutcome } from './store.ts';

/** Reports each store operation's duration and whether it failed. */
export type OperationObserver = (operation: string, seconds: number, failed: boolean) => void;

/** Refusals that mean the store, not the request, failed. */
const STORE_FAILURES = new Set(['store_unavailable', 'store_write_failed', 'store_contention', 'store_corrupt']);

/**
 * A store that times every operation for the metrics, and otherwise is the store it wraps. The
 * optional capabilities (`readCompiled`, `versions`) exist exactly when the inner store has them,
 * so the cache behaves the same wrapped or not.
 */
export function instrumentStore(inner: AclStore, observe: OperationObserver): AclStore {
  const timed = async <T>(operation: string, run: () => Promise<T>, failed: (value: T) => boolean = () => false): Promise<T> => {
    const start = performance.now();
    try {
      const value = await run();
      observe(operation, (performance.now() - start) / 1000, failed(value));
      return value;
    } catch (error) {
      observe(operation, (performance.now() - start) / 1000, true);
      throw error;
    }
  };
  const store: AclStore = {
    kind: inner.kind,
    open: () => inner.open(),
    close: () => inner.close(),
    read: (account) => timed('read', () => inner.read(account)),
    accounts: () => timed('accounts', () => inner.accounts()),
    update: (account: string, change: AccountChange, expectedVersion?: number) =>
      timed('update', () => inner.update(account, change, expectedVersion), (o: UpdateOutcome) => !o.ok && STORE_FAILURES.has(o.refusal.reason)),
    subscribe: (listener: ChangeListener) => inner.subscribe(listener),
    state: (): StoreState => inner.state(),
    onStateChange: (listener: StateListener) => inner.onStateChange(listener),
    recordCallers: (batch: CallerBatch) => timed('record_callers', () => inner.recordCallers(batch)),
    recentCallers: (account: string, limit: number): Promise<readonly RecentCaller[]> => timed('recent_callers', () => inner.recentCallers(account, limit)),
  };
  const { readCompiled, versions } = inner;
  return {
    ...store,
    ...(readCompiled ? { readCompiled: (account: string) => timed('read_compiled', () => readCompiled.call(inner, account)) } : {}),
    ...(versions ? { versions: (accounts: readonly string[]) => timed('versions', () => versions.call(inner, accounts)) } : {}),
  };
}
