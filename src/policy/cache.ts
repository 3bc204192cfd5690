import type { AclStore } from '../store/store.ts';
import { compileList, withoutExpired, type CompiledList } from './compile.ts';

export interface CacheLimits {
  /** Most accounts kept compiled (negative entries included). */
  readonly maxEntries: number;
  /** Most bytes of compiled tries kept. */
  readonly maxBytes: number;
}

// maxBytes bounds memory for real lists; maxEntries mostly bounds accounts without one (a flood of
// made-up ids), whose entries are small: room for every account of a large deployment.
export const DEFAULT_CACHE_LIMITS: CacheLimits = { maxEntries: 100_000, maxBytes: 256 * 1024 * 1024 };

/** What a negative entry ("no record") is charged against maxBytes. */
const NEGATIVE_ENTRY_BYTES = 64;

export interface CacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  /** Loads answered from the last-known-good list because the store failed. */
  readonly staleServed: number;
  /** Rules in the compiled lists held. */
  readonly rules: number;
}

export interface CacheHooks {
  /** A list was compiled here (not fetched compiled from the store). */
  compiled?(seconds: number): void;
}

/**
 * Compiled lists by account, least recently used evicted first, kept fresh by the store's change
 * notifications. A cached `null` means "this account has no record" (negative caching),
 * invalidated like any other entry.
 *
 * `peek` is synchronous so the request path only waits on I/O for an account it has not seen
 * since its last change; concurrent misses for one account share a single store read.
 *
 * Last-known-good: an invalidated or expired list is kept aside until its replacement loads. If
 * the store fails meanwhile, the old list keeps being enforced rather than the account opening up
 * or being refused wholesale.
 */
export class PolicyCache {
  readonly #store: AclStore;
  readonly #now: () => number;
  readonly #limits: CacheLimits;
  // In insertion order; `used` is the CLOCK bit (see #insert).
  readonly #lists = new Map<string, Slot>();
  readonly #stale = new Map<string, CompiledList | null>();
  readonly #loading = new Map<string, Promise<CompiledList | null>>();
  readonly #unsubscribe: () => void;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #staleServed = 0;
  #changes = 0;

  readonly #hooks: CacheHooks;

  constructor(store: AclStore, now: () => number = Date.now, limits: CacheLimits = DEFAULT_CACHE_LIMITS, hooks: CacheHooks = {}) {
    this.#store = store;
    this.#hooks = hooks;
    this.#now = now;
    this.#limits = limits;
    this.#unsubscribe = store.subscribe((account, version, _publishedAt, list) => (list === undefined ? this.invalidate(account, version) : this.prime(account, list)));
  }

  /** The compiled list, `null` when the account has none, `undefined` when not cached (or stale). */
  peek(account: string): CompiledList | null | undefined {
    const slot = this.#lists.get(account);
    if (slot === undefined) {
      this.#misses++;
      return undefined;
    }
    const list = slot.list;
    // Only a list with a temporary entry has a finite validUntil: the others never read the clock.
    if (list !== null && list.validUntil !== Number.POSITIVE_INFINITY && list.validUntil <= this.#now()) {
      // An entry expired since compilation: recompile rather than enforce it past its time.
      this.invalidate(account);
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    slot.used = true;
    return list;
  }

  get(account: string): CompiledList | null | Promise<CompiledList | null> {
    const cached = this.peek(account);
    return cached === undefined ? this.load(account) : cached;
  }

  load(account: string): Promise<CompiledList | null> {
    const pending = this.#loading.get(account);
    if (pending) return pending;
    const promise: Promise<CompiledList | null> = this.#fetch(account).then(
      (list) => {
        // Only the load still registered may fill the cache: an invalidation in between means a
        // newer version exists and this read may predate it.
        if (this.#loading.get(account) === promise) {
          this.#loading.delete(account);
          this.#stale.delete(account);
          this.#insert(account, list);
        }
        return list;
      },
      (error: unknown) => {
        if (this.#loading.get(account) === promise) this.#loading.delete(account);
        const stale = this.#stale.get(account);
        if (stale === undefined) throw error;
        this.#staleServed++;
        // Past its time, a temporary entry stops counting even while the store is out of reach.
        const fallback = stale === null ? null : withoutExpired(stale, this.#now());
        if (fallback !== stale) this.#stale.set(account, fallback);
        return fallback;
      },
    );
    this.#loading.set(account, promise);
    return promise;
  }

  /**
   * Puts a list this replica just committed straight into the cache, replacing an older one (and
   * any last-known-good copy or load in flight, which predate it): enforced from now on, even if
   * the store becomes unreachable before the next request.
   */
  prime(account: string, list: CompiledList): void {
    const current = this.#lists.get(account)?.list;
    if (current !== undefined && current !== null && current.version >= list.version) return;
    this.#loading.delete(account);
    this.#stale.delete(account);
    this.#insert(account, list);
  }

  /**
   * Drops the account's list so the next request reloads it. A notice for a version the cache
   * already holds (this replica's own write echoed back by the shared store) changes nothing.
   */
  invalidate(account: string, version?: number): void {
    const current = this.#lists.get(account)?.list;
    if (version !== undefined && current !== undefined && current !== null && current.version >= version) return;
    this.#loading.delete(account);
    if (current !== undefined) {
      this.#changes++;
      this.#remove(account, current);
      this.#stale.set(account, current);
      // Bounded like the cache itself: the oldest last-known-good entries go first.
      while (this.#stale.size > this.#limits.maxEntries) this.#stale.delete(this.#stale.keys().next().value!);
    }
  }

  /**
   * Compares every cached list with the store's versions and drops those that changed: repairs
   * whatever notifications were missed while the store was unreachable.
   */
  async sweep(): Promise<number> {
    if (this.#store.versions === undefined || this.#lists.size === 0) return 0;
    const accounts = [...this.#lists.keys()];
    const versions = await this.#store.versions(accounts);
    let repaired = 0;
    for (const account of accounts) {
      const current = this.#lists.get(account)?.list;
      if (current === undefined) continue;
      const stored = versions.get(account) ?? 0;
      if ((current?.version ?? 0) !== stored) {
        this.invalidate(account);
        repaired++;
      }
    }
    return repaired;
  }

  /**
   * Seeds last-known-good lists (a snapshot from disk): never served while the store answers,
   * only when a load fails. Current entries are not overwritten.
   */
  seed(lists: ReadonlyMap<string, CompiledList | null>): void {
    for (const [account, list] of lists) {
      if (this.#lists.has(account) || this.#stale.has(account)) continue;
      if (this.#stale.size >= this.#limits.maxEntries) break;
      this.#stale.set(account, list);
    }
  }

  /** What this cache would enforce if the store went away now: current lists, else kept ones. */
  lastKnownGood(): Map<string, CompiledList | null> {
    const out = new Map(this.#stale);
    for (const [account, slot] of this.#lists) out.set(account, slot.list);
    return out;
  }

  /** Grows on every fill and invalidation, so a snapshot writer can tell whether anything moved. */
  get changes(): number {
    return this.#changes;
  }

  stats(): CacheStats {
    let rules = 0;
    for (const slot of this.#lists.values()) rules += slot.list?.trie.ruleCount ?? 0;
    return { entries: this.#lists.size, bytes: this.#bytes, hits: this.#hits, misses: this.#misses, evictions: this.#evictions, staleServed: this.#staleServed, rules };
  }

  close(): void {
    this.#unsubscribe();
    this.#lists.clear();
    this.#stale.clear();
    this.#loading.clear();
    this.#bytes = 0;
  }

  async #fetch(account: string): Promise<CompiledList | null> {
    if (this.#store.readCompiled) return this.#store.readCompiled(account);
    const record = await this.#store.read(account);
    if (record === null) return null;
    const start = performance.now();
    const list = compileList(record, this.#now());
    this.#hooks.compiled?.((performance.now() - start) / 1000);
    return list;
  }

  /**
   * Eviction is CLOCK, an approximation of least-recently-used that keeps hits cheap: a hit only
   * sets the slot's `used` bit (reordering a Map on every request costs a delete and an insert).
   * The oldest slot goes first unless it was used since it last came up, in which case it gets a
   * second chance at the back of the order with its bit cleared.
   */
  #insert(account: string, list: CompiledList | null): void {
    this.#changes++;
    const previous = this.#lists.get(account);
    if (previous !== undefined) this.#remove(account, previous.list);
    this.#lists.set(account, { list, used: false });
    this.#bytes += sizeOf(list);
    while (this.#lists.size > this.#limits.maxEntries || (this.#bytes > this.#limits.maxBytes && this.#lists.size > 1)) {
      const [oldest, slot] = this.#lists.entries().next().value!;
      if (slot.used) {
        slot.used = false;
        this.#lists.delete(oldest);
        this.#lists.set(oldest, slot);
        continue;
      }
      this.#remove(oldest, slot.list);
      this.#evictions++;
    }
  }

  #remove(account: string, list: CompiledList | null): void {
    this.#lists.delete(account);
    this.#bytes -= sizeOf(list);
  }
}

interface Slot {
  readonly list: CompiledList | null;
  used: boolean;
}

function sizeOf(list: CompiledList | null): number {
  return list === null ? NEGATIVE_ENTRY_BYTES : list.trie.byteLength + NEGATIVE_ENTRY_BYTES;
}
