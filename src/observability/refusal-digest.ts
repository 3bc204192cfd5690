import type { EventLog } from './logger.ts';

export interface DigestOptions {
  /** How long identical events are counted before their count is logged. */
  readonly intervalMs: number;
  /** Distinct (account, client, reason) keys counted per interval; further ones are counted together. */
  readonly maxKeys: number;
}

export const DEFAULT_DIGEST: DigestOptions = { intervalMs: 10_000, maxKeys: 10_000 };

interface Counted {
  readonly fields: { readonly account: string | null; readonly client_ip: string | null; readonly reason: string };
  readonly msg: string;
  repeats: number;
}

/**
 * Keeps refusal logging useful under a flood: the first of identical events (same account,
 * client and reason) within an interval is logged in full at once; the ones after it are only
 * counted, and one line per key says how many there were when the interval ends. Bounded: past
 * `maxKeys` distinct keys in one interval, events are counted together and summed in one line.
 */
export class RefusalDigest {
  readonly #log: EventLog;
  readonly #options: DigestOptions;
  #counted = new Map<string, Counted>();
  #uncounted = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(log: EventLog, options: DigestOptions = DEFAULT_DIGEST) {
    this.#log = log;
    this.#options = options;
  }

  /** Logs `entry` at warn level unless an identical event was logged in this interval. */
  note(account: string | null, client: string | null, reason: string, entry: object, msg: string): void {
    const key = `${reason}\u0000${account ?? ''}\u0000${client ?? ''}`;
    const counted = this.#counted.get(key);
    if (counted !== undefined) {
      counted.repeats++;
      return;
    }
    if (this.#counted.size >= this.#options.maxKeys) {
      this.#uncounted++;
      return;
    }
    this.#counted.set(key, { fields: { account, client_ip: client, reason }, msg, repeats: 0 });
    this.#log.warn(entry, msg);
    this.#arm();
  }

  /** Logs the counts of the interval that ends now and starts a new one. */
  flush(): void {
    const counted = this.#counted;
    const uncounted = this.#uncounted;
    this.#counted = new Map();
    this.#uncounted = 0;
    const seconds = this.#options.intervalMs / 1000;
    for (const { fields, msg, repeats } of counted.values()) {
      if (repeats > 0) this.#log.warn({ ...fields, repeats, interval_s: seconds }, `${msg} (repeated)`);
    }
    if (uncounted > 0) {
      this.#log.warn({ events: uncounted, distinct_keys_logged: counted.size, interval_s: seconds }, 'further refusals not itemized: too many distinct callers in one interval');
    }
  }

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.flush();
  }

  #arm(): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.flush();
    }, this.#options.intervalMs);
    this.#timer.unref();
  }
}
