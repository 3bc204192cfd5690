import type { EventLog } from '../observability/logger.ts';
import type { RedisClient } from '../store/redis/connection.ts';
import { Keys } from '../store/redis/keys.ts';
import { AuditCursorError, checkCap, checkLimit, decodeEvent, encodeEvent, type AuditEvent, type AuditLog, type AuditPage, type AuditQuery, type NewAuditEvent } from './audit-log.ts';

export const DEFAULT_REDIS_AUDIT_CAP = 100_000;

/** The field of a stream entry that holds the event JSON. */
const FIELD = 'event';

/** A stream entry id, `<ms>-<seq>`: the only cursors this log hands out. */
const STREAM_ID = /^([0-9]{1,20})-([0-9]{1,20})$/;
const U64_MAX = 2n ** 64n - 1n;

export interface RedisAuditOptions {
  /** Events kept per stream; Redis trims approximately (MAXLEN ~), so a little more stays. */
  readonly cap?: number;
  /** Told about stream entries that are not events. */
  readonly logger?: EventLog;
}

/**
 * The audit trail in Redis, shared by every replica: a capped stream `P audit` of every event,
 * and one per account, `P{account}:audit`, in the account's hash-tag slot like its other keys
 * (see keys.ts), so listing one account reads only its own events.
 *
 * An event's id is its entry id in the global stream; the per-account entry carries the whole
 * event, id included. Each stream pages by its own entry ids, so a cursor is good only for the
 * query (with or without `account`) that returned it. The two streams are in different slots and
 * cannot be written atomically: an append that fails halfway leaves the event in the global
 * stream only, and rejects.
 *
 * The client belongs to the caller (usually shared with the store): close() leaves it open.
 */
export class RedisAuditLog implements AuditLog {
  readonly kind = 'redis' as const;
  readonly #client: RedisClient;
  readonly #keys: Keys;
  readonly #cap: number;
  readonly #logger: EventLog | undefined;
  #closed = false;

  constructor(client: RedisClient, keyPrefix: string, options: RedisAuditOptions = {}) {
    this.#client = client;
    this.#keys = new Keys(keyPrefix);
    this.#cap = checkCap(options.cap ?? DEFAULT_REDIS_AUDIT_CAP, 'redis');
    this.#logger = options.logger;
  }

  /** The stream of every event. */
  get globalKey(): string {
    return this.#keys.audit;
  }

  /** One account's stream, under the same hash tag as the account's other keys. */
  accountKey(account: string): string {
    return this.#keys.of(account).audit;
  }

  async append(event: NewAuditEvent): Promise<void> {
    if (this.#closed) throw new Error(`the audit log is closed: event ${event.action} for account ${event.account} was not recorded`);
    // The global entry's id is the event's id, so it is not repeated in its JSON.
    const id = await this.#client.xadd(this.globalKey, 'MAXLEN', '~', this.#cap, '*', FIELD, encodeEvent(null, event));
    if (id === null) throw new Error(`Redis did not add audit event ${event.action} for account ${event.account} to ${this.globalKey}`);
    await this.#client.xadd(this.accountKey(event.account), 'MAXLEN', '~', this.#cap, '*', FIELD, encodeEvent(id, event));
  }

  async list(query: AuditQuery): Promise<AuditPage> {
    if (this.#closed) throw new Error('the audit log is closed');
    checkLimit(query.limit);
    if (query.cursor !== undefined && !isEntryId(query.cursor)) throw new AuditCursorError(query.cursor);
    const perAccount = query.account !== undefined;
    const key = perAccount ? this.accountKey(query.account!) : this.globalKey;
    // Exclusive start (Redis >= 6.2); one entry past the page tells whether another page exists.
    const start = query.cursor === undefined ? '+' : `(${query.cursor}`;
    const entries = await this.#client.xrevrange(key, start, '-', 'COUNT', query.limit + 1);
    const next = entries.length > query.limit ? entries[query.limit - 1]![0] : null;
    const events: AuditEvent[] = [];
    for (const [entryId, fields] of entries.slice(0, query.limit)) {
      const json = valueOf(fields, FIELD);
      const event = json === undefined ? null : decodeEvent(json, perAccount ? undefined : entryId);
      if (event === null) this.#logger?.warn({ key, entryId }, 'audit stream entry skipped: not an event (written by something else?)');
      else events.push(event);
    }
    return { events, next };
  }

  /** Leaves the client open: it is the caller's (usually the store's) to close. */
  async close(): Promise<void> {
    this.#closed = true;
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
