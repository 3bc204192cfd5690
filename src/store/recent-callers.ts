import type { CallerBatch, RecentCaller } from './store.ts';

export const RECENT_CALLERS_PER_ACCOUNT = 1000;
export const RECENT_CALLERS_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Recent callers per account in process memory, bounded: at most `perAccount` addresses each
 * (the least recently seen dropped first) and nothing older than `ttlMs`. A Map keeps insertion
 * order, so re-inserting on every sighting makes the first key the stalest.
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
        if ((seen.get(ip) ?? -1) > at) continue;
        seen.delete(ip);
        seen.set(ip, at);
      }
      while (seen.size > this.#perAccount) seen.delete(seen.keys().next().value!);
    }
  }

  list(account: string, limit: number, now: number): RecentCaller[] {
    const seen = this.#byAccount.get(account);
    if (seen === undefined) return [];
    for (const [ip, at] of seen) {
      if (at > now - this.#ttlMs) break;
      seen.delete(ip);
    }
    const out: RecentCaller[] = [];
    for (const [ip, lastSeen] of seen) out.push({ ip, lastSeen });
    return out.reverse().slice(0, limit);
  }
}
