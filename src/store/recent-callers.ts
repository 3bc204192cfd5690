import type { CallerBatch, RecentCaller } from './store.ts';

export const RECENT_CALLERS_PER_ACCOUNT = 1000;
export const RECENT_CALLERS_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Recent callers per account in process memory, bounded: at most `perAccount` addresses each
 * (the least recently seen dropped first) and nothing older than `ttlMs`. Batches may arrive out
 * of time order, so a sighting only ever moves an address's last-seen time forward.
 */
export class RecentCallerTable {
  readonly #byAccount = new Map<string, Map<string, number>>();
  readonly #perAccount: number;
  readonly #ttlMs: number;

  constructor(perAccount = RECENT_CALLERS_PER_ACCOUNT, ttlMs = RECENT_CALLERS_TTL_MS) {
    this.#perAccount = perAccount;
    this.#ttlMs = ttlMs;
  }

  record(batch: CallerBatch): void {
    for (const [account, callers] of batch) {
      let seen = this.#byAccount.get(account);
      if (seen === undefined) this.#byAccount.set(account, (seen = new Map()));
      for (const [ip, at] of callers) {
        if ((seen.get(ip) ?? -1) < at) seen.set(ip, at);
      }
      // Trimmed once per batch rather than per address: sorting is paid only when over the bound.
      if (seen.size > this.#perAccount) {
        const kept = [...seen].sort((a, b) => b[1] - a[1]).slice(0, this.#perAccount);
        this.#byAccount.set(account, new Map(kept));
      }
    }
  }

  list(account: string, limit: number, now: number): RecentCaller[] {
    const seen = this.#byAccount.get(account);
    if (seen === undefined) return [];
    const cutoff = now - this.#ttlMs;
    const out: RecentCaller[] = [];
    for (const [ip, lastSeen] of seen) {
      if (lastSeen > cutoff) out.push({ ip, lastSeen });
      else seen.delete(ip);
    }
    if (seen.size === 0) this.#byAccount.delete(account);
    return out.sort((a, b) => b.lastSeen - a.lastSeen).slice(0, limit);
  }
}
