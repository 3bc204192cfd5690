import type { AclStore, ChangeNotice } from '../store/store.ts';
import { compileList, retainedBytes, withoutExpired, type CompiledList } from '../list/compile.ts';
import { isKeyListId } from '../list/key-list-id.ts';
import type { CacheFigures } from '../observability/metrics.ts';

export interface CacheLimits {
  /** Most accounts kept compiled (negative entries included); as many more may be kept aside. */
  readonly maxEntries: number;
  /** Most bytes of heap the cached lists keep alive, current and kept aside (see retainedBytes). */
  readonly maxBytes: number;
  /**
   * Most "no record" answers for accounts among the entries: any caller can make account ids up,
   * so a flood of them churns these and never evicts a real list. A key's "no list of its own" is
   * not one of them: only registered keys are looked up (at most one per key), so those are
   * ordinary entries, and 10,000 keys in use without lists do not churn each other out.
   */
  readonly maxNegativeEntries?: number;
}

// maxBytes bounds memory for real lists, within the old generation the runtime allows (128 MiB,
// src/cli/runtime.ts: raise both together); maxEntries leaves room for every account of a large
// deployment; made-up ids only ever hold maxNegativeEntries.
export const DEFAULT_CACHE_LIMITS = { maxEntries: 100_000, maxBytes: 48 * 1024 * 1024, maxNegativeEntries: 10_000 } as const satisfies CacheLimits;

/** What an entry without a list (no record, or a refusal marker) keeps alive: map entry and slot. */
const SMALL_ENTRY_BYTES = 160;
/** Backoff after a failed load of one account, doubled per failure up to the cap. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** The cache's counters and sizes: the figures the metrics read at scrape time. */
export type CacheStats = CacheFigures;

export interface CacheHooks {
  /** A list was compiled here (not fetched compiled from the store). */
  compiled?(seconds: number): void;
  /** A change heard of (notice or repair sweep) is enforced here now, `lagSeconds` after it was published. */
  enforced?(lagSeconds: number): void;
}

/**
 * The account's list changed, the new one could not be loaded, and the one it replaced may admit
 * callers the new one refuses: the account's callers are refused until it loads.
 */
export class SupersededList extends Error {
  readonly account: string;

  constructor(account: string, cause: unknown) {
    super(`account ${account} changed and its new list could not be loaded (${cause instanceof Error ? cause.message : String(cause)})`);
    this.name = 'SupersededList';
    this.account = account;
  }
}

/** Marker kept aside for an account whose list changed in a way the old one cannot stand in for. */
const REFUSE = 'refuse';

/**
 * Compiled lists by account, least recently used evicted first, kept fresh by the store's change
 * notices. A cached `null` means "this account has no record" (negative caching), replaced like
 * any other entry on change.
 *
 * `peek` is synchronous so the request path only waits on I/O for an account it has not seen
 * since its last change; concurrent misses for one account share a single store read, and after
 * a failed read the account is not read again until a backoff has passed (the store is not asked
 * once per request while it is down).
 *
 * Kept aside: a list that left the cache for a reason other than eviction, with what the account
 * gets if the store cannot be read for its replacement:
 * - past an entry's expiry: the same list, which drops that entry when served;
 * - replaced by a change not yet loaded: the old list only when the change said it is at least as
 *   strict as the new one (ChangeNotice.loosens); otherwise a marker that refuses the account's
 *   callers, so a change notice never makes this replica less strict than the change. The new
 *   list is loaded at once, not at the next request, and again when the store comes back;
 * - seeded from a snapshot at start: the list as it was saved.
 */
export class PolicyCache {
  readonly #store: AclStore;
  readonly #now: () => number;
  readonly #limits: CacheLimits;
  readonly #hooks: CacheHooks;
  // In insertion order; `used` is the CLOCK bit (see #insert).
  readonly #lists = new Map<string, Slot>();
  /** The accounts (not key lists) of #lists whose entry is "no record", oldest first. */
  readonly #negatives = new Set<string>();
  readonly #aside = new Map<string, Aside>();
  readonly #loading = new Map<string, Promise<CompiledList | null>>();
  readonly #retry = new Map<string, Retry>();
  /** Changes heard of and not yet enforced, for the propagation-lag hook: the version and when it was published. */
  readonly #awaited = new Map<string, { readonly version: number; readonly publishedAt: number }>();
  readonly #unsubscribe: () => void;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #staleServed = 0;
  #changes = 0;

  constructor(store: AclStore, now: () => number = Date.now, limits: CacheLimits = DEFAULT_CACHE_LIMITS, hooks: CacheHooks = {}) {
    this.#store = store;
    this.#hooks = hooks;
    this.#now = now;
    this.#limits = limits;
    this.#unsubscribe = store.subscribe((account, version, notice) => this.#heard(account, version, notice ?? {}));
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
      this.#remove(account, slot);
      this.#setAside(account, list, false);
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
    const retry = this.#retry.get(account);
    if (retry !== undefined && retry.at > this.#now()) return this.#withoutStore(account, retry.error);
    const promise: Promise<CompiledList | null> = this.#fetch(account).then(
      (list) => {
        // Only the load still registered may fill the cache: a change notice in between means a
        // newer version exists and this read may predate it.
        if (this.#loading.get(account) === promise) {
          this.#loading.delete(account);
          this.#retry.delete(account);
          this.#put(account, list);
        }
        return list;
      },
      (error: unknown) => {
        if (this.#loading.get(account) === promise) {
          this.#loading.delete(account);
          this.#backOff(account, error);
        }
        return this.#fromAside(account, error);
      },
    );
    this.#loading.set(account, promise);
    return promise;
  }

  /**
   * Tells the cache that the account moved to `version`, with nothing known of the new list: as
   * a notice without a list. For tests and tools; the store's notices arrive by subscription.
   */
  invalidate(account: string, version?: number): void {
    const slot = this.#lists.get(account);
    this.#heard(account, version ?? (slot === undefined ? 1 : versionOf(slot.list) + 1), {});
  }

  /**
   * Compares the versions of `accounts` (every cached account by default) with the store's and
   * treats each that differs as changed (kept aside refused, reloaded at once): repairs notices
   * missed while the store was out of reach. `changedAt` (epoch ms) dates changes for the
   * propagation-lag hook. Returns how many were repaired.
   */
  async sweep(accounts?: readonly string[], changedAt?: ReadonlyMap<string, number>): Promise<number> {
    if (this.#store.versions === undefined) return 0;
    const candidates = accounts ?? [...this.#lists.keys()];
    if (candidates.length === 0) return 0;
    const versions = await this.#store.versions(candidates);
    let repaired = 0;
    for (const account of candidates) {
      const slot = this.#lists.get(account);
      if (slot === undefined) continue;
      const stored = versions.get(account) ?? 0;
      if (versionOf(slot.list) === stored) continue;
      const at = changedAt?.get(account);
      if (at !== undefined) this.#awaited.set(account, { version: stored, publishedAt: at });
      this.#supersede(account, undefined);
      repaired++;
    }
    return repaired;
  }

  /** Whether this cache holds the account at a version older than `version`. */
  holdsOlder(account: string, version: number): boolean {
    const slot = this.#lists.get(account);
    return slot !== undefined && versionOf(slot.list) < version;
  }

  /**
   * The store is reachable again: every account waiting for a newer list is reloaded now, and
   * backoffs from the outage are forgotten.
   */
  storeBack(): void {
    this.#retry.clear();
    for (const [account, aside] of this.#aside) {
      if (aside.pending) void this.load(account).catch(() => undefined);
    }
  }

  /**
   * Seeds last-known-good lists (a snapshot from disk): never served while the store answers,
   * only when a load fails. Current entries are not overwritten.
   */
  seed(lists: ReadonlyMap<string, CompiledList | null | 'superseded'>): void {
    for (const [account, list] of lists) {
      if (this.#lists.has(account) || this.#aside.has(account)) continue;
      if (this.#aside.size >= this.#limits.maxEntries || this.#bytes >= this.#limits.maxBytes) break;
      this.#setAside(account, list === 'superseded' ? REFUSE : list, list === 'superseded');
    }
  }

  /**
   * What this cache would enforce if the store went away now: current lists, else kept ones;
   * 'superseded' for an account whose callers it would refuse.
   */
  lastKnownGood(): Map<string, CompiledList | null | 'superseded'> {
    const out = new Map<string, CompiledList | null | 'superseded'>();
    for (const [account, aside] of this.#aside) out.set(account, aside.kept === REFUSE ? 'superseded' : aside.kept);
    for (const [account, slot] of this.#lists) out.set(account, slot.list);
    return out;
  }

  /** Grows on every fill and change, so a snapshot writer can tell whether anything moved. */
  get changes(): number {
    return this.#changes;
  }

  stats(): CacheStats {
    let rules = 0;
    for (const slot of this.#lists.values()) rules += slot.list?.trie.ruleCount ?? 0;
    let refusing = 0;
    for (const aside of this.#aside.values()) if (aside.kept === REFUSE) refusing++;
    return { entries: this.#lists.size, bytes: this.#bytes, hits: this.#hits, misses: this.#misses, evictions: this.#evictions, staleServed: this.#staleServed, rules, refusing };
  }

  close(): void {
    this.#unsubscribe();
    this.#lists.clear();
    this.#negatives.clear();
    this.#aside.clear();
    this.#loading.clear();
    this.#retry.clear();
    this.#awaited.clear();
    this.#bytes = 0;
  }

  /** A change notice (see ChangeNotice), from another replica or from this one's own write. */
  #heard(account: string, version: number, notice: ChangeNotice): void {
    const slot = this.#lists.get(account);
    if (slot !== undefined && versionOf(slot.list) >= version) return; // already enforced
    const aside = this.#aside.get(account);
    if (slot === undefined && aside === undefined && !this.#loading.has(account)) {
      // Not cached here: the first request loads it. A list this replica just committed is kept
      // only if it fits without evicting anything (a bulk seeding must not churn the cache).
      if (notice.list !== undefined && notice.publishedAt === undefined && this.#fits(notice.list)) this.#put(account, notice.list);
      return;
    }
    if (notice.publishedAt !== undefined) this.#awaited.set(account, { version, publishedAt: notice.publishedAt });
    this.#retry.delete(account); // news from the store: worth asking it again now
    if (notice.list !== undefined && notice.list.version >= version) {
      this.#loading.delete(account);
      this.#put(account, notice.list);
      return;
    }
    // A newer list exists and is not at hand: the old one may stand in only where it is as strict.
    const previous = slot !== undefined ? slot.list : aside !== undefined && aside.kept !== REFUSE ? aside.kept : undefined;
    const standIn = previous !== undefined && notice.loosens === true && versionOf(previous) === version - 1 ? previous : undefined;
    this.#supersede(account, standIn);
  }

  /** Sets the account's list aside as replaced (by `standIn`, or refused without one) and reloads it now. */
  #supersede(account: string, standIn: CompiledList | null | undefined): void {
    const slot = this.#lists.get(account);
    if (slot !== undefined) this.#remove(account, slot);
    this.#loading.delete(account); // a read in flight may predate the change
    this.#setAside(account, standIn === undefined ? REFUSE : standIn, true);
    void this.load(account).catch(() => undefined);
  }

  #withoutStore(account: string, error: unknown): Promise<CompiledList | null> {
    try {
      return Promise.resolve(this.#fromAside(account, error));
    } catch (refused) {
      return Promise.reject(refused);
    }
  }

  /** What the account gets when its list cannot be read: the list kept aside, or `error`. */
  #fromAside(account: string, error: unknown): CompiledList | null {
    const aside = this.#aside.get(account);
    if (aside === undefined) throw error;
    if (aside.kept === REFUSE) throw new SupersededList(account, error);
    this.#staleServed++;
    // Past its time, a temporary entry stops counting even while the store is out of reach.
    const kept = aside.kept === null ? null : withoutExpired(aside.kept, this.#now());
    if (kept !== aside.kept) this.#setAside(account, kept, aside.pending);
    return kept;
  }

  #backOff(account: string, error: unknown): void {
    const delay = Math.min(RETRY_MAX_MS, (this.#retry.get(account)?.delay ?? RETRY_MIN_MS / 2) * 2);
    this.#retry.delete(account); // re-inserted at the back: the oldest are dropped first
    this.#retry.set(account, { at: this.#now() + delay, delay, error });
    if (this.#retry.size > this.#limits.maxEntries) this.#retry.delete(this.#retry.keys().next().value!);
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

  /** Enforces `list` from now on, replacing whatever the account had (current or kept aside). */
  #put(account: string, list: CompiledList | null): void {
    const aside = this.#aside.get(account);
    if (aside !== undefined) this.#dropAside(account, aside);
    this.#insert(account, list);
    const awaited = this.#awaited.get(account);
    if (awaited !== undefined && versionOf(list) >= awaited.version) {
      this.#awaited.delete(account);
      this.#hooks.enforced?.(Math.max(0, this.#now() - awaited.publishedAt) / 1000);
    }
  }

  #fits(list: CompiledList): boolean {
    return this.#lists.size < this.#limits.maxEntries && this.#bytes + sizeOf(list) <= this.#limits.maxBytes;
  }

  /**
   * Eviction is CLOCK, an approximation of least-recently-used that keeps hits cheap: a hit only
   * sets the slot's `used` bit (reordering a Map on every request costs a delete and an insert).
   * The oldest slot goes first unless it was used since it last came up, in which case it gets a
   * second chance at the back of the order with its bit cleared. Lists kept aside go before any
   * current one, refusal markers last of all.
   */
  #insert(account: string, list: CompiledList | null): void {
    this.#changes++;
    const previous = this.#lists.get(account);
    if (previous !== undefined) this.#remove(account, previous);
    const bytes = sizeOf(list);
    this.#lists.set(account, { list, used: false, bytes });
    this.#bytes += bytes;
    if (list === null && !isKeyListId(account)) {
      // Oldest first, without a second chance: a "no record" answer costs one store read to get back.
      this.#negatives.add(account);
      while (this.#negatives.size > (this.#limits.maxNegativeEntries ?? DEFAULT_CACHE_LIMITS.maxNegativeEntries)) {
        const oldest = this.#negatives.values().next().value!;
        this.#remove(oldest, this.#lists.get(oldest)!);
        this.#evictions++;
      }
    }
    this.#trimAside(() => this.#bytes > this.#limits.maxBytes);
    while (this.#lists.size > this.#limits.maxEntries || (this.#bytes > this.#limits.maxBytes && this.#lists.size > 1)) {
      const [oldest, slot] = this.#lists.entries().next().value!;
      if (slot.used) {
        slot.used = false;
        this.#lists.delete(oldest);
        this.#lists.set(oldest, slot);
        continue;
      }
      this.#remove(oldest, slot);
      this.#evictions++;
    }
  }

  #remove(account: string, slot: Slot): void {
    if (slot.list === null) this.#negatives.delete(account);
    this.#lists.delete(account);
    this.#bytes -= slot.bytes;
  }

  #setAside(account: string, kept: Kept, pending: boolean): void {
    const previous = this.#aside.get(account);
    if (previous !== undefined) this.#dropAside(account, previous);
    const bytes = kept === REFUSE ? SMALL_ENTRY_BYTES : sizeOf(kept);
    this.#aside.set(account, { kept, pending, bytes });
    this.#bytes += bytes;
    this.#changes++;
    // Bounded like the cache itself: the oldest go first, refusals only when nothing else is left.
    this.#trimAside(() => this.#aside.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes);
  }

  #dropAside(account: string, aside: Aside): void {
    this.#aside.delete(account);
    this.#bytes -= aside.bytes;
  }

  #trimAside(over: () => boolean): void {
    if (!over()) return;
    for (const [account, aside] of this.#aside) {
      if (aside.kept === REFUSE) continue;
      this.#dropAside(account, aside);
      if (!over()) return;
    }
    // Only refusals left: past maxEntries of them, the oldest go (their accounts then follow onStoreUnavailable).
    while (this.#aside.size > this.#limits.maxEntries) {
      const [account, aside] = this.#aside.entries().next().value!;
      this.#dropAside(account, aside);
    }
  }
}

type Kept = CompiledList | null | typeof REFUSE;

interface Slot {
  readonly list: CompiledList | null;
  used: boolean;
  readonly bytes: number;
}

interface Aside {
  readonly kept: Kept;
  /** A newer version is known to exist: reloaded when the store comes back. */
  readonly pending: boolean;
  readonly bytes: number;
}

interface Retry {
  readonly at: number;
  readonly delay: number;
  readonly error: unknown;
}

function versionOf(list: CompiledList | null): number {
  return list?.version ?? 0;
}

function sizeOf(list: CompiledList | null): number {
  return list === null ? SMALL_ENTRY_BYTES : retainedBytes(list);
}
