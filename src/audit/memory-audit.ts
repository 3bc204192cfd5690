import { AuditCursorError, checkCap, checkLimit, decodeEvent, encodeEvent, type AuditEvent, type AuditLog, type AuditPage, type AuditQuery, type NewAuditEvent } from './audit-log.ts';

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
}

/**
 * The newest `cap` items in sequence order, paged newest first. Dropping the oldest only moves a
 * start offset (compacted now and then), so an append is O(1) however large the cap.
 */
export class BoundedIndex<T extends Indexed> {
  readonly cap: number;
  #items: T[] = [];
  #start = 0;

  constructor(cap: number) {
    this.cap = cap;
  }

  get size(): number {
    return this.#items.length - this.#start;
  }

  /** `item.seq` must exceed every seq already pushed. */
  push(item: T): void {
    this.#items.push(item);
    if (this.size > this.cap) this.#start++;
    if (this.#start >= 1024 && this.#start * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#start);
      this.#start = 0;
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
    const items: T[] = [];
    // One past the page tells whether another page exists, so the last page says next: null.
    for (let i = this.#firstAtOrAfter(before) - 1; i >= this.#start && items.length <= query.limit; i--) {
      const item = this.#items[i]!;
      if (query.account === undefined || item.account === query.account) items.push(item);
    }
    if (items.length <= query.limit) return { items, next: null };
    items.pop();
    return { items, next: formatSeq(items[items.length - 1]!.seq) };
  }

  /** The position of the first item with seq >= `seq` (binary search: seqs only grow). */
  #firstAtOrAfter(seq: number): number {
    let lo = this.#start;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#items[mid]!.seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

interface Held extends Indexed {
  /** Kept as JSON: what the log returns cannot be changed by the caller's later mutations, and
   * the memory log answers exactly what the file and Redis logs would. */
  readonly json: string;
}

export interface MemoryAuditOptions {
  /** Events kept; the oldest are dropped. */
  readonly cap?: number;
}

/** The audit trail in process memory: for tests and for a gateway without persistent storage. */
export class MemoryAuditLog implements AuditLog {
  readonly kind = 'memory' as const;
  readonly #index: BoundedIndex<Held>;
  #seq = 0;
  #closed = false;

  constructor(options: MemoryAuditOptions = {}) {
    this.#index = new BoundedIndex(checkCap(options.cap ?? DEFAULT_MEMORY_AUDIT_CAP, 'memory'));
  }

  async append(event: NewAuditEvent): Promise<void> {
    if (this.#closed) throw new Error(`the audit log is closed: event ${event.action} for account ${event.account} was not recorded`);
    const seq = this.#seq + 1;
    const json = encodeEvent(formatSeq(seq), event);
    this.#seq = seq;
    this.#index.push({ seq, account: event.account, json });
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
