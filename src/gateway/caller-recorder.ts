import { setImmediate as nextTurn } from 'node:timers/promises';
import { keyListId } from '../list/key-list-id.ts';
import type { AclStore, KeyUse } from '../store/store.ts';

export interface CallerRecorderOptions {
  readonly flushIntervalMs: number;
  /** Most (account, IP) pairs held between flushes; beyond it new pairs are dropped and counted. */
  readonly maxPending: number;
  /**
   * Accounts without a list whose callers are kept in the store. Past it the account recorded
   * first is forgotten: a flood of made-up account ids churns these, never a listed account's.
   */
  readonly maxUnlisted?: number;
  readonly now?: () => number;
  readonly onFlushError?: (error: unknown) => void;
}

export const DEFAULT_MAX_UNLISTED = 1_000;

interface Sighting {
  readonly account: string;
  readonly ip: string;
  readonly at: number;
}

/**
 * Sightings handed to the store at a time. Recording is synchronous work on the proxy's loop for
 * the embedded stores (about 1 ms per 1,000); 10,000 keys in use in one second made one flush a
 * 10-30 ms stall that every request in flight waited out. Slices with a turn of the loop between
 * them keep each pause short.
 */
export const FLUSH_SLICE = 1_000;

/**
 * A key seen again from the same address within this long is not recorded again: its last use and
 * its own recent callers are kept to this resolution (GitLab keeps a token's last use to ten
 * minutes for the same reason). With every key of a large deployment in use each second, recording
 * each sighting cost more than the request's decision (a map per key list per flush, and the
 * store's work on each); a key used from a new address is recorded at once.
 */
export const KEY_SIGHTING_RESOLUTION_MS = 10_000;

/**
 * Remembers which client IPs called which account, for the store's recent-caller lists. The
 * request path only touches two Maps; a timer hands the batch to the store, so no request waits
 * on the store and a burst from one address costs one entry per flush.
 *
 * Accounts whose list decided the request ("listed") are recorded without an account bound here:
 * there are as many as the store holds lists. Accounts without a list are recorded too, since a
 * first allow entry is the change most likely to lock callers out, but any caller can make such
 * ids up, so at most `maxUnlisted` of them are kept at a time.
 */
export class CallerRecorder {
  readonly #store: AclStore;
  readonly #options: CallerRecorderOptions;
  readonly #now: () => number;
  #pending = new Map<string, Map<string, number>>();
  /** Last use of each key since the last flush, by key-list id: at most one entry per registered key. */
  #keyUses = new Map<string, KeyUse>();
  /**
   * The last sighting of each key handed on for recording, by key id (the account compared too):
   * repeats from the same address within KEY_SIGHTING_RESOLUTION_MS are skipped. Two generations,
   * the current window's and the one before, swapped every window, so nothing older than two
   * windows is held; each holds at most maxPending (past that, sightings are simply recorded). A
   * sighting the batch could not hold is not remembered, and a failed flush forgets them all.
   */
  #sightings = new Map<string, Sighting>();
  #earlierSightings = new Map<string, Sighting>();
  #sightingsFrom: number;
  #pairs = 0;
  #dropped = 0;
  // Unlisted accounts whose callers the store keeps, oldest first, and those to drop at the next flush.
  readonly #unlisted = new Map<string, true>();
  #forget: string[] = [];
  readonly #maxUnlisted: number;
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: AclStore, options: CallerRecorderOptions) {
    this.#store = store;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#maxUnlisted = options.maxUnlisted ?? DEFAULT_MAX_UNLISTED;
    this.#sightingsFrom = this.#now();
  }

  /**
   * A forwarded request of `account` from `ip`; `listed`: the account's own (or parent's) list
   * allowed it. False when the pending batch was full and the sighting was dropped.
   */
  note(account: string, ip: string, listed = true): boolean {
    if (listed) {
      if (this.#unlisted.size > 0) this.#unlisted.delete(account);
    } else if (!this.#unlisted.has(account)) {
      if (this.#unlisted.size >= this.#maxUnlisted) {
        const oldest = this.#unlisted.keys().next().value!;
        this.#unlisted.delete(oldest);
        this.#forget.push(oldest);
        this.#pairs -= this.#pending.get(oldest)?.size ?? 0;
        this.#pending.delete(oldest);
      }
      this.#unlisted.set(account, true);
    }
    let callers = this.#pending.get(account);
    if (callers === undefined) {
      if (this.#pairs >= this.#options.maxPending) {
        this.#dropped++;
        return false;
      }
      this.#pending.set(account, (callers = new Map()));
    }
    if (!callers.has(ip)) {
      if (this.#pairs >= this.#options.maxPending) {
        this.#dropped++;
        return false;
      }
      this.#pairs++;
    }
    callers.set(ip, this.#now());
    return true;
  }

  /**
   * A forwarded request presenting a registered key: the key's own recent callers (for its list's
   * lockout guard, bounded like an account's) and its last use.
   */
  noteKey(account: string, keyId: string, ip: string): void {
    const now = this.#now();
    if (now - this.#sightingsFrom >= KEY_SIGHTING_RESOLUTION_MS) {
      this.#earlierSightings = this.#sightings;
      this.#sightings = new Map();
      this.#sightingsFrom = now;
    }
    const seen = this.#sightings.get(keyId) ?? this.#earlierSightings.get(keyId);
    if (seen !== undefined && seen.account === account && seen.ip === ip && now - seen.at < KEY_SIGHTING_RESOLUTION_MS) return;
    const id = keyListId(account, keyId);
    const held = this.note(id, ip, true);
    if (this.#keyUses.size >= this.#options.maxPending && !this.#keyUses.has(id)) {
      this.#dropped++;
      return;
    }
    this.#keyUses.set(id, { at: now, ip });
    // Remembered only when both the caller and the use are on their way to the store.
    if (held && this.#sightings.size < this.#options.maxPending) this.#sightings.set(keyId, { account, ip, at: now });
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
      if (this.#pairs === 0 && this.#forget.length === 0 && this.#keyUses.size === 0) return;
      const batch = this.#pending;
      const forget = this.#forget;
      const keyUses = this.#keyUses;
      this.#pending = new Map();
      this.#pairs = 0;
      this.#forget = [];
      this.#keyUses = new Map();
      try {
        for (const slice of slices(batch, (callers) => callers.size)) {
          await this.#store.recordCallers(slice);
          await nextTurn();
        }
        if (forget.length > 0) await this.#store.forgetCallers(forget);
        for (const slice of slices(keyUses, () => 1)) {
          await this.#store.recordKeyUse(slice);
          await nextTurn();
        }
      } catch (error) {
        // The sightings behind the lost batch were never recorded: the next ones must be.
        this.#sightings.clear();
        this.#earlierSightings.clear();
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

/**
 * The map in parts of about FLUSH_SLICE units, a unit being what `weight` counts for an entry (the
 * addresses of an account, or 1 for a key's use); an entry is never split across parts.
 */
function* slices<V>(map: ReadonlyMap<string, V>, weight: (value: V) => number): Generator<Map<string, V>> {
  let slice = new Map<string, V>();
  let units = 0;
  for (const [key, value] of map) {
    slice.set(key, value);
    units += weight(value);
    if (units >= FLUSH_SLICE) {
      yield slice;
      slice = new Map();
      units = 0;
    }
  }
  if (slice.size > 0) yield slice;
}
