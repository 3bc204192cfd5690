import { AuditCursorError, boundedEvent, checkCap, checkLimit, decodeEvent, encodeEvent, MAX_EVENT_BYTES, type AuditEvent, type AuditLog, type AuditPage, type AuditQuery, type NewAuditEvent } from './audit-log.ts';

export const DEFAULT_MEMORY_AUDIT_CAP = 10_000;

/** Ids of the memory and file logs: a sequence number, zero-padded so ids also sort as text. */
const ID_DIGITS = 12;

export function formatSeq(seq: number): string {
  return String(seq).padStart(ID_DIGITS, '0');
}

/** The sequence number of a memory or file id, or null for anything else. */
export function parseSeq(id: string): number | null {
  if (!/^[0-9]{1,16}$/.test(id)) return null;
  const seq = Number(id);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : null;
}

export interface Indexed {
  readonly seq: number;
  readonly account: string;
  /** What holding it costs, for a log bounded in bytes (the memory log); 0 otherwise. */
  readonly bytes: number;
}

/** How much a log keeps: events per account, events in all, and bytes in all. */
export interface Retention {
  readonly cap: number;
  readonly accountCap: number;
  readonly maxBytes: number;
}

interface Slot<T> {
  readonly item: T;
  alive: boolean;
}

interface AccountItems<T> {
  readonly slots: Slot<T>[];
  start: number;
}

/**
 * The events a log keeps, in sequence order, paged newest first. Each account keeps at most
 * `accountCap` of its newest events; all together at most `cap` events and `maxBytes` bytes,
 * and when over, the account holding the most events loses its oldest one. So one account
 * flooding the trail pushes out its own history, never another account's: every account keeps
 * at least its share (cap / accounts), an account with few events keeps them all. Appends cost
 * O(1) (amortized); dropped events are compacted away now and then.
 */
export class RetentionIndex<T extends Indexed> {
  readonly #retention: Retention;
  #all: Slot<T>[] = [];
  #dead = 0;
  readonly #accounts = new Map<string, AccountItems<T>>();
  /** Accounts by how many events they hold, and the largest such count. */
  readonly #bySize = new Map<number, Set<string>>();
  #maxSize = 0;
  #size = 0;
  #bytes = 0;

  constructor(retention: Retention) {
    this.#retention = retention;
  }

  get size(): number {
    return this.#size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** `item.seq` must exceed every seq already pushed. */
  push(item: T): void {
    const slot: Slot<T> = { item, alive: true };
    this.#all.push(slot);
    let mine = this.#accounts.get(item.account);
    if (mine === undefined) {
      mine = { slots: [], start: 0 };
      this.#accounts.set(item.account, mine);
    }
    mine.slots.push(slot);
    this.#resize(item.account, mine.slots.length - mine.start - 1, 1);
    this.#size++;
    this.#bytes += item.bytes;
    while (mine.slots.length - mine.start > this.#retention.accountCap) this.#dropOldest(item.account);
    while (this.#size > this.#retention.cap || (this.#bytes > this.#retention.maxBytes && this.#size > 1)) this.#dropOldest(this.#largest());
    if (this.#dead >= 1024 && this.#dead * 2 >= this.#all.length) {
      this.#all = this.#all.filter((s) => s.alive);
      this.#dead = 0;
    }
  }

  /**
   * Up to `limit` items older than the cursor (all, without one), newest first, of `account` when
   * given. A cursor is the id of the last item of the previous page; one whose item has since been
   * dropped still works, as paging goes by sequence number, not position.
   */
  page(query: AuditQuery): { readonly items: readonly T[]; readonly next: string | null } {
    checkLimit(query.limit);
    let before = Number.POSITIVE_INFINITY;
    if (query.cursor !== undefined) {
      const seq = parseSeq(query.cursor);
      if (seq === null) throw new AuditCursorError(query.cursor);
      before = seq;
    }
    const mine = query.account === undefined ? null : this.#accounts.get(query.account);
    if (mine === undefined) return { items: [], next: null };
    const slots = mine === null ? this.#all : mine.slots;
    const from = mine === null ? 0 : mine.start;
    const items: T[] = [];
    // One past the page tells whether another page exists, so the last page says next: null.
    for (let i = firstAtOrAfter(slots, from, before) - 1; i >= from && items.length <= query.limit; i--) {
      const slot = slots[i]!;
      if (slot.alive) items.push(slot.item);
    }
    if (items.length <= query.limit) return { items, next: null };
    items.pop();
    return { items, next: formatSeq(items[items.length - 1]!.seq) };
  }

  #dropOldest(account: string): void {
    const mine = this.#accounts.get(account)!;
    const slot = mine.slots[mine.start]!;
    mine.start++;
    slot.alive = false;
    this.#dead++;
    this.#size--;
    this.#bytes -= slot.item.bytes;
    const left = mine.slots.length - mine.start;
    this.#resize(account, left + 1, -1);
    if (left === 0) this.#accounts.delete(account);
    else if (mine.start >= 1024 && mine.start * 2 >= mine.slots.length) {
      mine.slots.splice(0, mine.start);
      mine.start = 0;
    }
  }

  /** Moves `account` from the bucket of `from` events to that of `from + by`. */
  #resize(account: string, from: number, by: 1 | -1): void {
    if (from > 0) {
      const bucket = this.#bySize.get(from)!;
      bucket.delete(account);
      if (bucket.size === 0) this.#bySize.delete(from);
    }
    const to = from + by;
    if (to > 0) {
      let bucket = this.#bySize.get(to);
      if (bucket === undefined) {
        bucket = new Set();
        this.#bySize.set(to, bucket);
      }
      bucket.add(account);
    }
    if (to > this.#maxSize) this.#maxSize = to;
    while (this.#maxSize > 0 && !this.#bySize.has(this.#maxSize)) this.#maxSize--;
  }

  /** The account holding the most events (the earliest to get there, among equals). */
  #largest(): string {
    return this.#bySize.get(this.#maxSize)!.values().next().value!;
  }
}

/** The position of the first slot at or after `from` with seq >= `seq` (seqs only grow). */
function firstAtOrAfter<T extends Indexed>(slots: readonly Slot<T>[], from: number, seq: number): number {
  let lo = from;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (slots[mid]!.item.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface Held extends Indexed {
  /** Kept as JSON: what the log returns cannot be changed by the caller's later mutations, and
   * the memory log answers exactly what the file and Redis logs would. */
  readonly json: string;
}

/** Bytes of events the memory log holds at most (their JSON), whatever the caps say. */
export const MEMORY_AUDIT_MAX_BYTES = 32 * 1024 * 1024;

export interface MemoryAuditOptions {
  /** Events kept in all (see RetentionIndex). */
  readonly cap?: number;
  /** Events kept per account; default: `cap`. */
  readonly accountCap?: number;
  readonly maxBytes?: number;
}

/** The audit trail in process memory: for tests and for a gateway without persistent storage. */
export class MemoryAuditLog implements AuditLog {
  readonly kind = 'memory' as const;
  readonly #index: RetentionIndex<Held>;
  #seq = 0;
  #closed = false;

  constructor(options: MemoryAuditOptions = {}) {
    const cap = checkCap(options.cap ?? DEFAULT_MEMORY_AUDIT_CAP, 'memory');
    this.#index = new RetentionIndex({ cap, accountCap: checkCap(options.accountCap ?? cap, 'memory per-account'), maxBytes: options.maxBytes ?? MEMORY_AUDIT_MAX_BYTES });
  }

  async append(event: NewAuditEvent): Promise<void> {
    if (this.#closed) throw new Error(`the audit log is closed: event ${event.action} for account ${event.account} was not recorded`);
    const seq = this.#seq + 1;
    // The same bound per event as every kind of log: larger snapshots are summarised.
    const json = encodeEvent(formatSeq(seq), boundedEvent(event, MAX_EVENT_BYTES));
    this.#seq = seq;
    // UTF-16 code units, two bytes each: what the string holds in memory, near enough.
    this.#index.push({ seq, account: event.account, json, bytes: json.length * 2 });
  }

  async list(query: AuditQuery): Promise<AuditPage> {
    if (this.#closed) throw new Error('the audit log is closed');
    const page = this.#index.page(query);
    return { events: page.items.map((held) => decodeEvent(held.json)).filter((e): e is AuditEvent => e !== null), next: page.next };
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
