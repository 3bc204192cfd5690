import type { AccountChange, AclStore, CallerBatch, ChangeListener, RecentCaller, StateListener, StoreState, UpdateOutcome } from './store.ts';

/** Reports each store operation's duration and, when it failed, why (a refusal's reason and message, or the error). */
export type OperationObserver = (operation: string, seconds: number, failure: string | null) => void;

/** Refusals that mean the store, not the request, failed. */
const STORE_FAILURES = new Set(['store_unavailable', 'store_write_failed', 'store_contention', 'store_corrupt']);

/**
 * A store that times every operation for the metrics, and otherwise is the store it wraps. The
 * optional capabilities (`readCompiled`, `versions`) exist exactly when the inner store has them,
 * so the cache behaves the same wrapped or not.
 */
export function instrumentStore(inner: AclStore, observe: OperationObserver): AclStore {
  const timed = async <T>(operation: string, run: () => Promise<T>, failure: (value: T) => string | null = () => null): Promise<T> => {
    const start = performance.now();
    try {
      const value = await run();
      observe(operation, (performance.now() - start) / 1000, failure(value));
      return value;
    } catch (error) {
      observe(operation, (performance.now() - start) / 1000, error instanceof Error ? error.message : String(error));
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
      timed('update', () => inner.update(account, change, expectedVersion), (o: UpdateOutcome) => (!o.ok && STORE_FAILURES.has(o.refusal.reason) ? `${o.refusal.reason}: ${o.refusal.message}${o.refusal.cause === undefined ? '' : ` (${o.refusal.cause})`}` : null)),
    subscribe: (listener: ChangeListener) => inner.subscribe(listener),
    state: (): StoreState => inner.state(),
    onStateChange: (listener: StateListener) => inner.onStateChange(listener),
    recordCallers: (batch: CallerBatch) => timed('record_callers', () => inner.recordCallers(batch)),
    forgetCallers: (accounts: readonly string[]) => timed('forget_callers', () => inner.forgetCallers(accounts)),
    recentCallers: (account: string, limit: number): Promise<readonly RecentCaller[]> => timed('recent_callers', () => inner.recentCallers(account, limit)),
  };
  const { readCompiled, versions } = inner;
  return {
    ...store,
    ...(readCompiled ? { readCompiled: (account: string) => timed('read_compiled', () => readCompiled.call(inner, account)) } : {}),
    ...(versions ? { versions: (accounts: readonly string[]) => timed('versions', () => versions.call(inner, accounts)) } : {}),
  };
}
