import type { EventLog } from '../../observability/logger.ts';
import type { RedisClient } from './connection.ts';
import { Keys } from './keys.ts';
import { AuditCursorError, boundedEvent, checkCap, checkLimit, decodeEvent, DEFAULT_AUDIT_ACCOUNT_CAP, encodeEvent, MAX_EVENT_BYTES, type AuditEvent, type AuditLog, type AuditPage, type AuditQuery, type NewAuditEvent } from '../../audit/audit-log.ts';

export const DEFAULT_REDIS_AUDIT_CAP = 100_000;

/** The field of a stream entry that holds the event JSON. */
const FIELD = 'event';

/** A stream entry id, `<ms>-<seq>`: the only cursors this log hands out. */
const STREAM_ID = /^([0-9]{1,20})-([0-9]{1,20})$/;
const U64_MAX = 2n ** 64n - 1n;
/** Change-log entries looked at per round trip of the global view. */
const SCAN_BATCH = 100;
/** Change-log entries one page of the global view looks at, at most, before it returns what it has. */
const SCAN_PER_PAGE = 5_000;
/** Attempts at an append whose id another append overtook in the account's stream. */
const APPEND_ATTEMPTS = 8;

export interface RedisAuditOptions {
  /** Events the global view reaches back (the change log's length); Redis trims approximately. */
  readonly cap?: number;
  /** Events kept per account (approximately). */
  readonly accountCap?: number;
  /** Told about stream entries that are not events. */
  readonly logger?: EventLog;
}

/**
 * The audit trail in Redis, shared by every replica. Each account's events live in one stream,
 * `P{account}:audit`, in the account's hash-tag slot like its other keys (see keys.ts): the Redis
 * store writes the event there in the same atomic script as the change itself, so no change is
 * ever acknowledged without its event, and events are in version order.
 *
 * An event's id is the id of its write's entry in the store's change log (`Pchangelog`), which
 * the script uses as the event's entry id. The global view (no `account`) is derived from that
 * log, newest first: each entry names an account and an id, and the event is the account's entry
 * of that id (a write that failed, or carried no event, has none and is skipped). It cannot list
 * an event the account's trail lacks or miss one it has, within the log's reach, and both views
 * give an event the same id. Each view pages by its own stream's ids, so a cursor is good only
 * for the query (with or without `account`) that returned it.
 *
 * The client belongs to the caller (usually shared with the store): close() leaves it open.
 */
export class RedisAuditLog implements AuditLog {
  readonly kind = 'redis' as const;
  readonly #client: RedisClient;
  readonly #keys: Keys;
  readonly #cap: number;
  readonly #accountCap: number;
  readonly #logger: EventLog | undefined;
  #closed = false;

  constructor(client: RedisClient, keyPrefix: string, options: RedisAuditOptions = {}) {
    this.#client = client;
    this.#keys = new Keys(keyPrefix);
    this.#cap = checkCap(options.cap ?? DEFAULT_REDIS_AUDIT_CAP, 'redis');
    this.#accountCap = checkCap(options.accountCap ?? DEFAULT_AUDIT_ACCOUNT_CAP, 'redis per-account');
    this.#logger = options.logger;
  }

  /** The log every view but an account's is derived from. */
  get globalKey(): string {
    return this.#keys.changeLog;
  }

  /** One account's stream, under the same hash tag as the account's other keys. */
  accountKey(account: string): string {
    return this.#keys.of(account).audit;
  }

  /**
   * An event recorded outside a change (the Redis store records a change's own event in its
   * commit): entered in the change log, then in the account's stream under the same id.
   */
  async append(event: NewAuditEvent): Promise<void> {
    if (this.#closed) throw new Error(`the audit log is closed: event ${event.action} for account ${event.account} was not recorded`);
    const json = encodeEvent(null, boundedEvent(event, MAX_EVENT_BYTES));
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const id = await this.#client.xadd(this.#keys.changeLog, 'MAXLEN', '~', this.#cap, '*', 'a', event.account, 'v', String(event.version));
      if (id === null) break;
      try {
        await this.#client.xadd(this.accountKey(event.account), 'MAXLEN', '~', this.#accountCap, id, FIELD, json);
        return;
      } catch (error) {
        // Another append to this account got a later id in first: take a new one.
        if (!/equal or smaller/i.test((error as Error).message)) throw error;
      }
    }
    throw new Error(`Redis did not add audit event ${event.action} for account ${event.account}`);
  }

  async list(query: AuditQuery): Promise<AuditPage> {
    if (this.#closed) throw new Error('the audit log is closed');
    checkLimit(query.limit);
    if (query.cursor !== undefined && !isEntryId(query.cursor)) throw new AuditCursorError(query.cursor);
    return query.account === undefined ? this.#listAll(query) : this.#listAccount(query.account, query);
  }

  /** Leaves the client open: it is the caller's (usually the store's) to close. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  async #listAccount(account: string, query: AuditQuery): Promise<AuditPage> {
    const key = this.accountKey(account);
    // Exclusive start (Redis >= 6.2); one entry past the page tells whether another page exists.
    const start = query.cursor === undefined ? '+' : `(${query.cursor}`;
    const entries = await this.#client.xrevrange(key, start, '-', 'COUNT', query.limit + 1);
    const next = entries.length > query.limit ? entries[query.limit - 1]![0] : null;
    const events: AuditEvent[] = [];
    for (const [entryId, fields] of entries.slice(0, query.limit)) {
      const event = this.#event(key, entryId, fields);
      if (event !== null) events.push(event);
    }
    return { events, next };
  }

  /**
   * The change log, newest first, each entry's event looked up in its account's stream; one event
   * past the page tells whether another page exists. A page looks at SCAN_PER_PAGE log entries at
   * most (a stretch of failed writes, say): then it may come back short, with a cursor to go on.
   */
  async #listAll(query: AuditQuery): Promise<AuditPage> {
    const events: { id: string; event: AuditEvent }[] = [];
    let from = query.cursor === undefined ? '+' : `(${query.cursor}`;
    let scanned = 0;
    let last: string | null = null;
    while (scanned < SCAN_PER_PAGE) {
      const logged = await this.#client.xrevrange(this.#keys.changeLog, from, '-', 'COUNT', SCAN_BATCH);
      const found = await Promise.all(logged.map(([id, fields]) => {
        const account = valueOf(fields, 'a');
        return account === undefined ? Promise.resolve([] as [string, string[]][]) : this.#client.xrange(this.accountKey(account), id, id);
      }));
      for (const [i, [id, fields]] of logged.entries()) {
        scanned++;
        last = id;
        const [entry] = found[i]!;
        const event = entry === undefined ? null : this.#event(this.accountKey(valueOf(fields, 'a')!), entry[0], entry[1]);
        // The event of this very write: its version is the one the write was logged with.
        if (event !== null && String(event.version) === valueOf(fields, 'v')) events.push({ id, event });
        if (events.length > query.limit) return { events: events.slice(0, query.limit).map((e) => e.event), next: events[query.limit - 1]!.id };
      }
      if (logged.length < SCAN_BATCH) return { events: events.map((e) => e.event), next: null };
      from = `(${last}`;
    }
    return { events: events.map((e) => e.event), next: last };
  }

  #event(key: string, entryId: string, fields: readonly string[]): AuditEvent | null {
    const json = valueOf(fields, FIELD);
    // Events recorded before the change log carry their id in the JSON; since, the entry id is it.
    const event = json === undefined ? null : (decodeEvent(json) ?? decodeEvent(json, entryId));
    if (event === null) this.#logger?.warn({ key, entryId }, 'audit stream entry skipped: not an event (written by something else?)');
    return event;
  }
}

/**
 * Whether `cursor` can be an entry id of ours: checked here because Redis answers an error for an
 * id past 64 bits, and for an exclusive `(0-0` (nothing precedes it; no entry has that id).
 */
function isEntryId(cursor: string): boolean {
  const match = STREAM_ID.exec(cursor);
  if (match === null) return false;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2]!);
  return ms <= U64_MAX && seq <= U64_MAX && ms + seq > 0n;
}

/** A stream entry's field value, from its flat `[field, value, ...]` list. */
function valueOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === name) return fields[i + 1];
  }
  return undefined;
}
