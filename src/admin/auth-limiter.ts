/**
 * Failed admin authentications per source address: after `maxFailures` within `windowMs` the
 * address is refused (429) until the window has passed, so tokens cannot be guessed at speed.
 * Bounded: the oldest addresses are forgotten first when `maxTracked` is reached.
 */
export class AuthLimiter {
  readonly #failures = new Map<string, { count: number; since: number }>();
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #maxTracked: number;
  readonly #now: () => number;

  constructor(options: { maxFailures?: number; windowMs?: number; maxTracked?: number; now?: () => number } = {}) {
    this.#maxFailures = options.maxFailures ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#maxTracked = options.maxTracked ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Seconds until `source` may try again, or 0 when it may try now. */
  blockedFor(source: string): number {
    const entry = this.#failures.get(source);
    if (entry === undefined) return 0;
    const left = entry.since + this.#windowMs - this.#now();
    if (left <= 0) {
      this.#failures.delete(source);
      return 0;
    }
    return entry.count >= this.#maxFailures ? Math.ceil(left / 1000) : 0;
  }

  /** Records a failure; returns how many `source` has in the current window. */
  fail(source: string): number {
    const now = this.#now();
    let entry = this.#failures.get(source);
    if (entry === undefined || entry.since + this.#windowMs <= now) {
      entry = { count: 0, since: now };
      this.#failures.delete(source);
      if (this.#failures.size >= this.#maxTracked) this.#failures.delete(this.#failures.keys().next().value!);
      this.#failures.set(source, entry);
    }
    entry.count++;
    return entry.count;
  }
}
