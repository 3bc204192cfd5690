import type { EventLog } from '../observability/logger.ts';
import type { AclStore, StoreState } from '../store/store.ts';
import type { PolicyCache } from './cache.ts';
import { loadSnapshot, saveSnapshot } from './snapshot.ts';

/** How often the last-known-good snapshot is rewritten when the cache changed. */
const SNAPSHOT_INTERVAL_MS = 5_000;

export interface CacheKeeperOptions {
  /** Period of the repair sweep; only stores that report versions are swept. */
  readonly sweepIntervalMs: number;
  readonly snapshotPath?: string;
  readonly logger: EventLog;
  /** Named in the "store lost" log line, so an operator knows what uncached accounts get. */
  readonly onStoreUnavailable: string;
  readonly now?: () => number;
}

export interface StoreHealth {
  readonly kind: AclStore['kind'];
  readonly state: StoreState;
  readonly since: string;
  readonly error?: string;
  /** Lists this replica can enforce without the store (cached, or from the snapshot). */
  readonly lastKnownGood: number;
  /** True once the store has answered since start, or a snapshot was loaded. */
  readonly canEnforce: boolean;
}

/**
 * Keeps the policy cache honest about a store that can come and go: logs when it is lost and
 * regained, reloads the lists that changed while it was away, sweeps after a reconnect and
 * periodically (repairing notifications missed while away), and keeps the last-known-good lists
 * on disk for a restart during an outage.
 *
 * The sweep reads the store's change log from a cursor, so its cost follows the number of
 * changes, not of cached accounts; only when the log cannot vouch for the gap (first sweep, a
 * store that lost its log, a replica away for longer than the log reaches) are the versions of
 * every cached account compared.
 */
export class CacheKeeper {
  readonly #store: AclStore;
  readonly #cache: PolicyCache;
  readonly #options: CacheKeeperOptions;
  readonly #now: () => number;
  readonly #timers: NodeJS.Timeout[] = [];
  #unsubscribe: (() => void) | null = null;
  #since: number;
  #error: string | undefined;
  #everUp = false;
  #snapshotLoaded = false;
  #savedChanges = -1;
  #saving: Promise<void> = Promise.resolve();
  #lastSync: number | null = null;
  /** Where the change log was read up to (see AclStore.changes). */
  #cursor: string | null = null;
  #sweeping: Promise<void> | null = null;

  constructor(store: AclStore, cache: PolicyCache, options: CacheKeeperOptions) {
    this.#store = store;
    this.#cache = cache;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#since = this.#now();
  }

  /** Loads the snapshot (throws if it is damaged) and starts watching; call after store.open(). */
  start(): void {
    const { logger, snapshotPath } = this.#options;
    if (snapshotPath !== undefined) {
      const { lists, savedAt } = loadSnapshot(snapshotPath);
      this.#cache.seed(lists);
      this.#snapshotLoaded = lists.size > 0;
      if (lists.size > 0) logger.info({ path: snapshotPath, accounts: lists.size, saved_at: savedAt }, 'last-known-good snapshot loaded');
    }
    this.#everUp = this.#store.state() === 'up';
    if (!this.#everUp) {
      logger.error({ store: this.#store.kind, on_store_unavailable: this.#options.onStoreUnavailable, snapshot_accounts: this.#cache.lastKnownGood().size }, 'store unavailable at start: enforcing the snapshot where there is one');
    }
    this.#unsubscribe = this.#store.onStateChange((state, detail) => this.#onState(state, detail));
    if (this.#store.versions !== undefined) {
      this.#every(this.#options.sweepIntervalMs, () => this.sweep('periodic'));
      // Takes the change log's cursor now: the sweeps after it follow only what changes.
      if (this.#everUp) void this.sweep('start');
    }
    if (snapshotPath !== undefined) this.#every(SNAPSHOT_INTERVAL_MS, () => this.saveSnapshot());
  }

  /**
   * When the cache was last confirmed against the store's versions (epoch ms), if ever. A store
   * in this process (memory, file) tells the cache of every change as it commits it, so the cache
   * is in step with it at every moment: now.
   */
  lastSync(): number | null {
    return this.#store.versions === undefined ? this.#now() : this.#lastSync;
  }

  health(): StoreHealth {
    const state = this.#store.state();
    return {
      kind: this.#store.kind,
      state,
      since: new Date(this.#since).toISOString(),
      ...(state === 'down' && this.#error !== undefined ? { error: this.#error } : {}),
      lastKnownGood: this.#cache.lastKnownGood().size,
      canEnforce: state === 'up' || this.#everUp || this.#snapshotLoaded,
    };
  }

  /** One repair sweep (never two at once: a second call waits for the one running). */
  sweep(why: 'periodic' | 'reconnect' | 'start'): Promise<void> {
    this.#sweeping ??= this.#sweep(why).finally(() => {
      this.#sweeping = null;
    });
    return this.#sweeping;
  }

  async #sweep(why: 'periodic' | 'reconnect' | 'start'): Promise<void> {
    if (this.#store.state() !== 'up') return;
    try {
      let repaired: number;
      let compared: 'changed' | 'all' = 'all';
      if (this.#store.changes === undefined) {
        repaired = await this.#cache.sweep();
      } else {
        const feed = await this.#store.changes(this.#cursor);
        if (feed.changed === null) {
          repaired = await this.#cache.sweep();
        } else {
          compared = 'changed';
          const at = new Map<string, number>();
          for (const change of feed.changed) if (this.#cache.holdsOlder(change.account, change.version)) at.set(change.account, change.at);
          repaired = at.size === 0 ? 0 : await this.#cache.sweep([...at.keys()], at);
        }
        this.#cursor = feed.cursor;
      }
      this.#lastSync = this.#now();
      if (repaired > 0 || why === 'reconnect') this.#options.logger.info({ repaired, why, compared }, 'cache swept against store versions');
    } catch (error) {
      this.#options.logger.warn({ err: error, why }, 'cache sweep failed; will retry');
    }
  }

  /** Writes the snapshot if the cache changed since the last one; failures are logged, not thrown. */
  saveSnapshot(): Promise<void> {
    const path = this.#options.snapshotPath;
    if (path === undefined) return Promise.resolve();
    this.#saving = this.#saving.then(async () => {
      const changes = this.#cache.changes;
      if (changes === this.#savedChanges) return;
      try {
        await saveSnapshot(path, this.#cache.lastKnownGood(), this.#now());
        this.#savedChanges = changes;
      } catch (error) {
        this.#options.logger.warn({ err: error, path }, 'cannot write the last-known-good snapshot');
      }
    });
    return this.#saving;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    this.#unsubscribe?.();
    await this.saveSnapshot();
  }

  #onState(state: StoreState, detail: string | undefined): void {
    const { logger } = this.#options;
    const downFor = this.#now() - this.#since;
    this.#since = this.#now();
    if (state === 'down') {
      this.#error = detail;
      logger.error({ store: this.#store.kind, error: detail, on_store_unavailable: this.#options.onStoreUnavailable, last_known_good: this.#cache.lastKnownGood().size }, 'store lost: enforcing last-known-good lists');
      return;
    }
    this.#error = undefined;
    logger.info({ store: this.#store.kind, ...(this.#everUp ? { down_ms: downFor } : {}) }, this.#everUp ? 'store regained' : 'store connected');
    this.#everUp = true;
    this.#cache.storeBack();
    void this.sweep('reconnect');
  }

  #every(ms: number, run: () => Promise<void>): void {
    const timer = setInterval(() => void run(), ms);
    timer.unref();
    this.#timers.push(timer);
  }
}
