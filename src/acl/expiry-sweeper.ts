import type { EventLog } from '../observability/logger.ts';
import { removeExpired } from './changes.ts';
import type { AclService } from './service.ts';

/** Accounts handled per pass; more wait for the next one (enforcement does not wait for either). */
const EXPIRING_PER_PASS = 1_000;

/**
 * Removes temporary entries once their time has passed. Enforcement does not wait for this (a
 * compiled list stops matching an entry at its expiry); the sweep keeps listings, exports and
 * entry limits honest, and records each removal in the audit trail.
 */
export class ExpirySweeper {
  readonly #service: AclService;
  readonly #logger: EventLog | undefined;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;

  constructor(service: AclService, logger?: EventLog) {
    this.#service = service;
    this.#logger = logger;
  }

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.sweep(), intervalMs);
    this.#timer.unref();
  }

  /** One pass over the accounts with an entry due; returns how many had entries removed. */
  sweep(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
  }

  async #pass(): Promise<number> {
    const store = this.#service.store;
    if (store.state() === 'down') return 0;
    const nowMs = this.#service.now().getTime();
    let swept = 0;
    try {
      // The store knows which accounts have an entry due: a pass costs what expired, not what exists.
      for (const account of await store.dueForExpiry(nowMs, EXPIRING_PER_PASS)) {
        const applied = await this.#service.apply({ name: 'expiry', role: 'owner' }, account, {
          action: 'entry.expire',
          change: () => removeExpired(account, nowMs),
          snapshot: (r) => r?.entries.filter((e) => e.expiresAt !== undefined && Date.parse(e.expiresAt) <= nowMs).map((e) => ({ id: e.id, ip_address: e.ipAddress, expires_at: e.expiresAt })) ?? [],
        }, { via: 'expiry' });
        if (applied.ok) swept++;
      }
    } catch (error) {
      this.#logger?.warn({ err: error }, 'expiry sweep failed; will retry');
    }
    return swept;
  }
}
