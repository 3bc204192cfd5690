import type { AclStore } from '../store/store.ts';

export interface CallerRecorderOptions {
  readonly flushIntervalMs: number;
  /** Most (account, IP) pairs held between flushes; beyond it new pairs are dropped and counted. */
  readonly maxPending: number;
  readonly now?: () => number;
  readonly onFlushError?: (error: unknown) => void;
}

/**
 * Remembers which client IPs called which account, for the store's recent-caller lists. The
 * request path only touches two Maps; a timer hands the batch to the store, so no request waits
 * on the store and a burst from one address costs one entry per flush.
 */
export class CallerRecorder {
  readonly #store: AclStore;
  readonly #options: CallerRecorderOptions;
  readonly #now: () => number;
  #pending = new Map<string, Map<string, number>>();
  #pairs = 0;
  #dropped = 0;
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: AclStore, options: CallerRecorderOptions) {
    this.#store = store;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  note(account: string, ip: string): void {
    let callers = this.#pending.get(account);
    if (callers === undefined) {
      if (this.#pairs >= this.#options.maxPending) {
        this.#dropped++;
        return;
      }
      this.#pending.set(account, (callers = new Map()));
    }
    if (!callers.has(ip)) {
      if (this.#pairs >= this.#options.maxPending) {
        this.#dropped++;
        return;
      }
      this.#pairs++;
    }
    callers.set(ip, this.#now());
  }

  /** Sightings dropped because the pending batch was full. */
  get dropped(): number {
    return this.#dropped;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.flush(), this.#options.flushIntervalMs);
    this.#timer.unref();
  }

  /**
   * Hands the pending batch to the store; failures are reported, never thrown, and never stop
   * later flushes (a lost batch is a few missing sightings, not a reason to stop recording).
   */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#pairs === 0) return;
      const batch = this.#pending;
      this.#pending = new Map();
      this.#pairs = 0;
      try {
        await this.#store.recordCallers(batch);
      } catch (error) {
        try {
          this.#options.onFlushError?.(error);
        } catch {
          // A failing reporter must not break the chain either.
        }
      }
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.flush();
  }
}
