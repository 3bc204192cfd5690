import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { refusal, type Refusal } from '../http/refusal.ts';

/** Events kept per account in Redis by default (`audit.accountCap`), approximately. */
export const DEFAULT_AUDIT_ACCOUNT_CAP = 1_000;

/**
 * Largest event a shared store keeps whole: past it, the before and after snapshots (a list
 * replaced or imported whole) are replaced by their size and digest. With the per-account cap,
 * this bounds what the trail can hold per account.
 */
export const MAX_EVENT_BYTES = 16 * 1024;

export interface AuditActor {
  readonly name: string;
  readonly role: 'owner' | 'admin' | 'account' | 'read-only';
}

/** One committed change to an access list: who made it, when, and what it replaced. */
export interface AuditEvent {
  /** Assigned by the log, increasing (sortable), opaque to clients. */
  readonly id: string;
  /** ISO 8601. */
  readonly at: string;
  readonly actor: AuditActor;
  readonly account: string;
  /** The API key whose registration or own list changed, when it was one of the account's keys. */
  readonly key?: string;
  /** e.g. 'entry.create', 'entry.update', 'entry.delete', 'list.replace', 'list.import', 'settings.update', 'entry.expire'. */
  readonly action: string;
  /** The account's version after the change. */
  readonly version: number;
  /** JSON-serialisable snapshot (entry, list or settings), or null. */
  readonly before: unknown;
  readonly after: unknown;
  /** The caller's X-Request-Id when it sent one, else the gateway's own id. */
  readonly requestId?: string;
  /** The gateway's own id of the admin request (its X-Gateway-Request-Id answer header), whatever the caller sent. */
  readonly gatewayRequestId?: string;
  /** Which API surface: 'native', 'vobiz', 'voximplant', 'cli', 'expiry'. */
  readonly via?: string;
}

export type NewAuditEvent = Omit<AuditEvent, 'id'>;

export interface AuditQuery {
  readonly account?: string;
  /** A `next` from an earlier page of the same query. */
  readonly cursor?: string;
  readonly limit: number;
}

/** Newest first; `next` is the cursor for the following (older) page, null on the last one. */
export interface AuditPage {
  readonly events: readonly AuditEvent[];
  readonly next: string | null;
}

/**
 * Where the audit trail lives. Bounded: each kind keeps its newest `cap` events (Redis trims
 * approximately), so the trail answers "who changed this recently", not "everything ever".
 */
export interface AuditLog {
  readonly kind: 'memory' | 'file' | 'redis';
  /** Durable (as far as the kind allows) before the promise resolves. */
  append(event: NewAuditEvent): Promise<void>;
  /** Rejects with AuditCursorError for a cursor this log did not hand out. */
  list(query: AuditQuery): Promise<AuditPage>;
  /** Waits for pending appends; the log is unusable afterwards. */
  close(): Promise<void>;
}

/**
 * A cursor this log did not hand out. Cursors come straight from a query string, so this is the
 * client's mistake: `refusal` is the 400 to answer with.
 */
export class AuditCursorError extends Error {
  readonly refusal: Refusal;

  constructor(cursor: string) {
    super(`audit cursor '${cursor.length > 64 ? `${cursor.slice(0, 64)}…` : cursor}' is not one this audit log returned: pass the 'next' of a previous page, or omit it for the newest events`);
    this.name = 'AuditCursorError';
    this.refusal = refusal(400, 'invalid_field', 'cursor is not one this API returned');
  }
}

/** Throws unless `limit` is a positive integer: a zero or fractional page would never advance. */
export function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`audit list limit must be a positive integer, got ${limit}`);
}

/** Throws unless `cap` is a positive integer; `kind` names the log in the message. */
export function checkCap(cap: number, kind: string): number {
  if (!Number.isSafeInteger(cap) || cap < 1) throw new RangeError(`the ${kind} audit log cap must be a positive integer (events kept), got ${cap}`);
  return cap;
}

/**
 * The event as every kind stores and returns it: fixed field order, `id` first, absent optional
 * fields left out and a missing snapshot as null, so the three kinds answer identically.
 */
export function withId(id: string, event: NewAuditEvent): AuditEvent {
  return {
    id,
    at: event.at,
    actor: { name: event.actor.name, role: event.actor.role },
    account: event.account,
    ...(event.key === undefined ? {} : { key: event.key }),
    action: event.action,
    version: event.version,
    before: event.before ?? null,
    after: event.after ?? null,
    ...(event.requestId === undefined ? {} : { requestId: event.requestId }),
    ...(event.gatewayRequestId === undefined ? {} : { gatewayRequestId: event.gatewayRequestId }),
    ...(event.via === undefined ? {} : { via: event.via }),
  };
}

/**
 * The stored JSON of `event` (with `id` when the id is not kept beside it). Throws before anything
 * is written when the event cannot be stored, naming the event so the log line says which.
 */
export function encodeEvent(id: string | null, event: NewAuditEvent): string {
  if (typeof event.account !== 'string' || event.account === '') throw new TypeError(`audit event ${event.action} has no account: every event belongs to one`);
  const shaped = withId(id ?? '', event);
  let text: string;
  try {
    text = JSON.stringify(id === null ? { ...shaped, id: undefined } : shaped);
  } catch (error) {
    throw new TypeError(`audit event ${event.action} for account ${event.account} is not JSON-serialisable (${(error as Error).message}): snapshots must be plain data`);
  }
  return text;
}

/**
 * The event as is when its stored form fits in `maxBytes`; otherwise with `before` and `after`
 * each replaced by `{omitted, bytes, sha256}` (the snapshot's JSON size and digest), so an
 * operator still sees what happened, who did it and whether two snapshots were the same.
 */
export function boundedEvent(event: NewAuditEvent, maxBytes: number): NewAuditEvent {
  if (Buffer.byteLength(encodeEvent(null, event)) <= maxBytes) return event;
  const summary = (snapshot: unknown): unknown => {
    if (snapshot === null || snapshot === undefined) return null;
    const json = JSON.stringify(snapshot);
    return { omitted: `snapshot larger than the audit trail keeps (${maxBytes} bytes an event)`, bytes: Buffer.byteLength(json), sha256: createHash('sha256').update(json).digest('hex') };
  };
  return { ...event, before: summary(event.before), after: summary(event.after) };
}

/**
 * An event read back from storage, or null for anything that is not one (a damaged line, an entry
 * written by hand). `id` overrides the stored one: a Redis entry id is the event's id.
 */
export function decodeEvent(text: string, id?: string): AuditEvent | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const e = raw as Record<string, unknown>;
  const actor = e['actor'] as Record<string, unknown> | null | undefined;
  const eventId = id ?? e['id'];
  if (typeof eventId !== 'string' || eventId === '' || typeof e['at'] !== 'string' || typeof e['account'] !== 'string'
    || typeof e['action'] !== 'string' || typeof e['version'] !== 'number' || actor === null || typeof actor !== 'object'
    || typeof actor['name'] !== 'string' || typeof actor['role'] !== 'string') return null;
  return withId(eventId, raw as unknown as NewAuditEvent);
}
