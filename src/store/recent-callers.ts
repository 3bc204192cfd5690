import type { CallerBatch, RecentCaller } from './store.ts';

export const RECENT_CALLERS_PER_ACCOUNT = 1000;
export const RECENT_CALLERS_TTL_MS = 24 * 60 * 60 * 1000;
/** Addresses kept over all accounts by the in-process table (memory and file stores). */
export const RECENT_CALLERS_TOTAL = 200_000;

/**
 * Recent callers per account in process memory, bounded: at most `perAccount` addresses each
 * (the least recently seen dropped first), `total` over all accounts (the account recorded least
 * recently dropped whole first), and nothing older than `ttlMs`. Batches may arrive out of time
 * order, so a sighting only ever moves an address's last-seen time forward.
 */
export class RecentCallerTable {
  // In order of last recording: the first account is the one to drop at the total bound.
  readonly #byAccount = new Map<string, Map<string, number>>();
  readonly #perAccount: number;
  readonly #ttlMs: number;
  readonly #total: number;
  #size = 0;

  constructor(perAccount = RECENT_CALLERS_PER_ACCOUNT, ttlMs = RECENT_CALLERS_TTL_MS, total = RECENT_CALLERS_TOTAL) {
    this.#perAccount = perAccount;
    this.#ttlMs = ttlMs;
    this.#total = total;
  }

  record(batch: CallerBatch): void {
    for (const [account, callers] of batch) {
      let seen = this.#byAccount.get(account);
      if (seen === undefined) seen = new Map();
      else this.#byAccount.delete(account);
      this.#byAccount.set(account, seen);
      this.#size -= seen.size;
      for (const [ip, at] of callers) {
        if ((seen.get(ip) ?? -1) < at) seen.set(ip, at);
      }
      // Trimmed once per batch rather than per address: sorting is paid only when over the bound.
      if (seen.size > this.#perAccount) {
        seen = new Map([...seen].sort((a, b) => b[1] - a[1]).slice(0, this.#perAccount));
        this.#byAccount.set(account, seen);
      }
      this.#size += seen.size;
    }
    while (this.#size > this.#total) {
      const [oldest, seen] = this.#byAccount.entries().next().value!;
      this.#byAccount.delete(oldest);
      this.#size -= seen.size;
    }
  }

  forget(accounts: readonly string[]): void {
    for (const account of accounts) {
      const seen = this.#byAccount.get(account);
      if (seen === undefined) continue;
      this.#byAccount.delete(account);
      this.#size -= seen.size;
    }
  }

  /** Accounts and addresses held. */
  get size(): { readonly accounts: number; readonly addresses: number } {
    return { accounts: this.#byAccount.size, addresses: this.#size };
  }

  list(account: string, limit: number, now: number): RecentCaller[] {
    const seen = this.#byAccount.get(account);
    if (seen === undefined) return [];
    const cutoff = now - this.#ttlMs;
    const out: RecentCaller[] = [];
    for (const [ip, lastSeen] of seen) {
      if (lastSeen > cutoff) out.push({ ip, lastSeen });
      else {
        seen.delete(ip);
        this.#size--;
      }
    }
    if (seen.size === 0) this.#byAccount.delete(account);
    return out.sort((a, b) => b.lastSeen - a.lastSeen).slice(0, limit);
  }
}
