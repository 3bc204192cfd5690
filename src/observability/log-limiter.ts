/**
 * Keeps a repeating log line to one per key per interval: during an outage every failed request
 * has the same cause, and a line each (with a stack) drowns the log. The line that goes out
 * says how many of its kind were held back since the last one.
 */
export class LogLimiter {
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** Bounded: keys are a handful of causes, and the oldest go first past the limit. */
  readonly #keys = new Map<string, { last: number; held: number }>();

  constructor(intervalMs = 10_000, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Null to hold the line back; otherwise how many lines of this key were held back before it. */
  take(key: string): { readonly suppressed: number } | null {
    const now = this.#now();
    const seen = this.#keys.get(key);
    if (seen !== undefined && now - seen.last < this.#intervalMs) {
      seen.held++;
      return null;
    }
    this.#keys.delete(key);
    this.#keys.set(key, { last: now, held: 0 });
    if (this.#keys.size > MAX_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
    return { suppressed: seen?.held ?? 0 };
  }
}

const MAX_KEYS = 256;
