import { refusal, type Refusal } from '../http/refusal.ts';

export interface WriteLimits {
  /** Admin writes in progress at once, all credentials together; beyond: 503 `admin_busy`. */
  readonly concurrent: number;
  /** Of which one credential may hold; beyond: 429 `writes_in_progress`. */
  readonly concurrentPerCredential: number;
  /** Sustained writes per second per credential; beyond the burst: 429 `write_rate_exceeded`. */
  readonly perSecond: number;
  readonly burst: number;
}

export const DEFAULT_WRITE_LIMITS: WriteLimits = { concurrent: 16, concurrentPerCredential: 4, perSecond: 50, burst: 500 };

/** A refusal with the seconds after which trying again makes sense. */
export interface GateRefusal {
  readonly ok: false;
  readonly refusal: Refusal;
  readonly retryAfter: number;
}

/** A write admitted: `release` when it is answered. */
export interface GateSlot {
  readonly ok: true;
  readonly release: () => void;
}

interface Bucket {
  tokens: number;
  at: number;
  inFlight: number;
}

/**
 * Admission of admin writes: a token bucket per credential (an account credential cannot make
 * 100,000 edits in a minute, flooding the audit trail and every replica's cache), a bound on one
 * credential's writes in progress (its slow uploads cannot take every slot), and a bound on all
 * writes in progress (list bodies are parsed and checked one slot each). Credentials come from the
 * configuration, so the table is as bounded as they are.
 */
export class WriteGate {
  readonly #limits: WriteLimits;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  #inFlight = 0;

  constructor(limits: WriteLimits = DEFAULT_WRITE_LIMITS, now: () => number = () => performance.now()) {
    this.#limits = limits;
    this.#now = now;
  }

  /** A slot for one write by `credential` (call `release` when it is answered), or why not. */
  enter(credential: string): GateSlot | GateRefusal {
    const limits = this.#limits;
    const now = this.#now();
    let bucket = this.#buckets.get(credential);
    if (bucket === undefined) {
      bucket = { tokens: limits.burst, at: now, inFlight: 0 };
      this.#buckets.set(credential, bucket);
    }
    bucket.tokens = Math.min(limits.burst, bucket.tokens + ((now - bucket.at) / 1000) * limits.perSecond);
    bucket.at = now;
    if (bucket.tokens < 1) {
      const wait = Math.max(1, Math.ceil((1 - bucket.tokens) / limits.perSecond));
      return { ok: false, retryAfter: wait, refusal: refusal(429, 'write_rate_exceeded', `credential ${credential} made more than ${limits.burst} writes in a burst (${limits.perSecond} a second sustained); retry in ${wait} s`) };
    }
    if (bucket.inFlight >= limits.concurrentPerCredential) {
      return { ok: false, retryAfter: 1, refusal: refusal(429, 'writes_in_progress', `credential ${credential} already has ${bucket.inFlight} writes in progress (at most ${limits.concurrentPerCredential}); wait for them to be answered`) };
    }
    if (this.#inFlight >= limits.concurrent) {
      return { ok: false, retryAfter: 1, refusal: refusal(503, 'admin_busy', `the admin API has ${this.#inFlight} writes in progress (at most ${limits.concurrent}); retry in a moment`) };
    }
    bucket.tokens -= 1;
    bucket.inFlight++;
    this.#inFlight++;
    let released = false;
    const held = bucket;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        held.inFlight--;
        this.#inFlight--;
      },
    };
  }
}
