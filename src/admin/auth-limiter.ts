import { sourceOf } from '../ip/source.ts';

/** Failed guesses one source may make in a window before further failed ones are answered 429. */
export const AUTH_MAX_FAILURES = 10;
export const AUTH_WINDOW_MS = 60_000;
/** Sources tracked at once; past it the one whose window began first is forgotten. */
export const AUTH_MAX_TRACKED = 10_000;

/**
 * Failed admin authentications per source: a token presented and matching no credential. After
 * `maxFailures` within `windowMs`, further *failed* guesses from the source are answered 429 until
 * the window has passed; a valid credential is still checked and served, so guesses sent from an
 * address an operator shares (127.0.0.1 behind a port-forward, a NAT) never lock the operator out.
 * Requests that present no token at all (a browser's /favicon.ico) are no guess and are not counted.
 *
 * A source is an IPv4 address or an IPv6 /64 (one host usually holds a whole /64, so counting its
 * addresses apart would give it 2^64 budgets). The table is bounded by `maxTracked` sources.
 */
export class AuthLimiter {
  readonly #failures = new Map<string, { count: number; since: number }>();
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #maxTracked: number;
  readonly #now: () => number;

  constructor(options: { maxFailures?: number; windowMs?: number; maxTracked?: number; now?: () => number } = {}) {
    this.#maxFailures = options.maxFailures ?? AUTH_MAX_FAILURES;
    this.#windowMs = options.windowMs ?? AUTH_WINDOW_MS;
    this.#maxTracked = options.maxTracked ?? AUTH_MAX_TRACKED;
    this.#now = options.now ?? Date.now;
  }

  /** Sources tracked now (never more than `maxTracked`). */
  get size(): number {
    return this.#failures.size;
  }

  /** Seconds until a failed guess from `address` is answered 401 again, or 0 when it is now. */
  blockedFor(address: string): number {
    const key = sourceOf(address);
    const entry = this.#failures.get(key);
    if (entry === undefined) return 0;
    const left = entry.since + this.#windowMs - this.#now();
    if (left <= 0) {
      this.#failures.delete(key);
      return 0;
    }
    return entry.count >= this.#maxFailures ? Math.ceil(left / 1000) : 0;
  }

  /** Records a failed guess; returns how many the source has in the current window. */
  fail(address: string): number {
    const key = sourceOf(address);
    const now = this.#now();
    let entry = this.#failures.get(key);
    if (entry === undefined || entry.since + this.#windowMs <= now) {
      entry = { count: 0, since: now };
      // Re-inserted, so the map's order stays the order windows began in.
      this.#failures.delete(key);
      if (this.#failures.size >= this.#maxTracked) this.#failures.delete(this.#failures.keys().next().value!);
      this.#failures.set(key, entry);
    }
    entry.count++;
    return entry.count;
  }
}
