import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { addEntry, changeSettings, deleteEntry, entryNotFound, prepareEntries, replaceEntries, updateEntry, type ItemOutcome, type SettingsPatch } from '../acl/changes.ts';
import { inheritedList } from '../acl/validation.ts';
import type { AclService, Applied, ApplyOptions, Operation } from '../acl/service.ts';
import { AuditCursorError, type AuditLog } from '../audit/audit-log.ts';
import { ok, refusal, refused, type Refusal, type Result } from '../http/refusal.ts';
import { ACCOUNT_ID_DESCRIPTION, isValidAccountId } from '../identity/account-id.ts';
import { formatIp, parseIp, type IpAddress } from '../ip/address.ts';
import { clip } from '../ip/cidr.ts';
import type { AdminAccountNaming } from '../policy/account-names.ts';
import { isRestricted, recordListState } from '../list/list-state.ts';
import { GLOBAL_ACCOUNT, type AccountRecord, type AclEntry } from '../list/types.ts';
import type { Static, TSchema } from 'typebox';
import {
  Accounts, AuditPage, Check, DEFAULT_PAGE, Deleted, Entry, EntryExport, EntryList, EntryResult, ImportResult, ListReplaced, MAX_PAGE, Path, Query, RecentIps, Settings, SettingsInput, Whoami,
  type ImportResultBody, type ImportRowBody, type ListReplacedBody, type SettingsBody, type SettingsInputBody, type WarningBody,
} from './api-schemas.ts';
import { isJson, readBodyBytes, readJsonBody, unsupportedJson } from './body.ts';
import { BodyShape, parseBulk, type BulkFormat, type BulkLimits, type BulkParsed, type BulkRow } from './bulk-input.ts';
import { requestIds, type Context, type Handler, type Surface } from './context.ts';
import { allows, type Actor } from './credentials.ts';
import { CSV_COLUMNS, toCsv } from './csv.ts';
import { parseEntryFields, toApiEntry } from './entry-input.ts';
import { fieldRefusal, pathValue, queryValue } from './field-check.ts';
import { etag, sendBody, sendError } from './respond.ts';
import { keyHandlers } from './keys.ts';
import type { KeyDigester } from '../list/key-digest.ts';
import { keyListId, parseKeyListId } from '../list/key-list-id.ts';
import { DEFAULT_MAX_KEYS_PER_ACCOUNT, findKey, keyNotFound } from '../list/keys.ts';
import { NATIVE_ROUTES, type Action } from './native-routes.ts';
import { decodeParam, type Route } from './router.ts';
import { checkAsSeenBy, type CheckResult } from './types.ts';

export interface NativeDeps {
  readonly service: AclService;
  readonly audit: AuditLog | null;
  /** The stored spelling an id acts on (identity.accountIdCase); ids as given when absent. */
  readonly accountName?: AdminAccountNaming;
  /** What the proxy decides now for a caller of the account at `ip` (presenting key `keyId`, when given). */
  check(account: string, ip: IpAddress, keyId?: string): Promise<CheckResult>;
  /** Hashes keys registered by value; null when no key secret is configured (registration by hash only). */
  readonly digester?: KeyDigester | null;
  /** Keys one account may hold (keys.maxPerAccount). */
  readonly maxKeys?: number;
  /** Parses list bodies (off the proxy's loop in the gateway); absent: on this thread. */
  readonly parseBulk?: (format: BulkFormat, body: Buffer, nowMs: number, limits: BulkLimits) => Promise<BulkParsed>;
}

/** Networks one list replace or import may expand into: the most one write may compile. */
export const MAX_NETWORKS_PER_REQUEST = 100_000;

export { DEFAULT_PAGE, MAX_PAGE };

function newId(): string {
  return newIds(1)[0]!;
}

/** `count` new entry ids from one read of the random source (a list of thousands needs thousands). */
function newIds(count: number): string[] {
  const hex = randomBytes(10 * count).toString('hex');
  return Array.from({ length: count }, (_, i) => `ipacl_${hex.slice(i * 20, i * 20 + 20)}`);
}

function bearerToken(req: IncomingMessage): Result<string> {
  const header = req.headers.authorization;
  if (header === undefined) return refused(refusal(401, 'missing_token', 'the admin API needs Authorization: Bearer <admin token>'));
  const token = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
  return token === undefined ? refused(refusal(401, 'invalid_token', 'the Authorization header must be "Bearer <admin token>"')) : ok(token);
}

function auditActor(actor: Actor): { name: string; role: Actor['role'] } {
  return { name: actor.name, role: actor.role };
}

/** Positive integer query parameter within bounds, or a refusal naming it. */
function pageSize(query: URLSearchParams): Result<number> {
  const limit = queryValue(query, 'limit', Query.limit);
  return limit.ok ? ok(limit.value ?? DEFAULT_PAGE) : limit;
}

/** Offset cursors, opaque to clients: base64url of the offset. */
function offsetOf(query: URLSearchParams): Result<number> {
  const raw = query.get('cursor');
  if (raw === null) return ok(0);
  const text = Buffer.from(raw, 'base64url').toString('utf8');
  return /^[0-9]{1,9}$/.test(text) ? ok(Number(text)) : refused(refusal(400, 'invalid_field', 'cursor is not one this API returned'));
}

function cursorFor(offset: number): string {
  return Buffer.from(String(offset), 'utf8').toString('base64url');
}

function settingsView(account: string, record: AccountRecord | null, nowMs: number): SettingsBody {
  const s = record?.settings;
  return {
    account,
    version: record?.version ?? 0,
    parent: s?.parent ?? null,
    mode: s?.mode ?? null,
    default: s?.default ?? null,
    max_entries: s?.maxEntries ?? null,
    ipv4_only: s?.ipv4Only ?? null,
    guard: s?.guard ?? null,
    restricted: record !== null && isRestricted(record.settings, record.entries),
    list_state: recordListState(record, nowMs),
    entry_count: record?.entries.length ?? 0,
  };
}

const entrySnapshot = (id: string) => (record: AccountRecord | null): unknown => {
  const entry = record?.entries.find((e) => e.id === id);
  return entry === undefined ? null : toApiEntry(entry);
};
const listSnapshot = (record: AccountRecord | null): unknown => record?.entries.map(toApiEntry) ?? [];
const settingsSnapshot = (record: AccountRecord | null): unknown => record?.settings ?? null;

type Committed = Extract<Applied, { ok: true }>;

/** The body with the change's lockout warnings, when there are any (absent otherwise). */
function withWarnings<T extends object>(body: T, applied: Committed): T & { warnings?: WarningBody[] } {
  return applied.warnings.length === 0 ? body : { ...body, warnings: [...applied.warnings] };
}

/** The native management API under /v1 (see docs/management-api.md and /v1/openapi.json). */
export function nativeSurface(deps: NativeDeps): Surface {
  const { service } = deps;
  const store = service.store;
  const parseBulkBody = deps.parseBulk ?? (async (format: BulkFormat, body: Buffer, nowMs: number, limits: BulkLimits) => parseBulk(format, body.toString('utf8'), nowMs, limits));

  /** The account a route names (`/v1/global/...` is the global list), checked against the actor. */
  const accountOf = (ctx: Context, write: boolean): Result<string> => {
    const raw = ctx.params['account'];
    let account = GLOBAL_ACCOUNT;
    if (raw !== undefined) {
      account = decodeParam(raw);
      const valid = pathValue(Path.account, account, (bad) => refusal(400, 'invalid_account', `'${clip(bad)}' is not a valid account id: ${ACCOUNT_ID_DESCRIPTION}`));
      if (!valid.ok) return valid;
      const named = deps.accountName?.(valid.value) ?? valid;
      if (!named.ok) return named;
      account = named.value;
    }
    if (!allows(ctx.actor, account === GLOBAL_ACCOUNT ? null : account, write)) {
      return refused(refusal(403, 'forbidden', `credential ${ctx.actor.name} (${ctx.actor.role}) may not ${write ? 'change' : 'read'} ${account === GLOBAL_ACCOUNT ? 'the global list' : `account ${account}`}`));
    }
    return ok(account);
  };

  /** The version an If-Match names (undefined without one). */
  const expectedVersion = (req: IncomingMessage): Result<number | undefined> => {
    const header = req.headers['if-match'];
    if (header === undefined) return ok(undefined);
    const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
    if (match === null) return refused(refusal(400, 'invalid_if_match', 'If-Match must be an ETag from this API, e.g. "3"'));
    return ok(Number(match[1]));
  };

  const options = (ctx: Context): Result<ApplyOptions> => {
    const expected = expectedVersion(ctx.req);
    if (!expected.ok) return expected;
    const guard = queryValue(ctx.query, 'guard', Query.guard);
    if (!guard.ok) return guard;
    const replace = queryValue(ctx.query, 'replace', Query.replace);
    if (!replace.ok) return replace;
    return ok({
      via: 'native',
      ...requestIds(ctx),
      replace: replace.value === true,
      ...(guard.value === null ? {} : { guard: guard.value }),
      ...(expected.value === undefined ? {} : { expectedVersion: expected.value }),
    });
  };

  /** Applies an operation and answers with what `render` makes of the committed record, as `schema` defines it. */
  const write = async <S extends TSchema>(ctx: Context, account: string, operation: Operation, status: number, schema: S, render: (applied: Committed) => Static<S>, headers: Record<string, string> = {}): Promise<void> => {
    const opts = options(ctx);
    if (!opts.ok) return sendError(ctx.res, opts.refusal);
    const applied = await service.apply(auditActor(ctx.actor), account, operation, opts.value);
    if (!applied.ok) return sendError(ctx.res, applied.refusal);
    sendBody(ctx.res, status, schema, render(applied), { etag: etag(applied.record.version), ...headers });
  };

  /**
   * The list a route acts on: the account's (or the global list), or under /keys/{key} the key's
   * own, which exists while the key is registered (a change re-checks that in its atomic step).
   */
  const listOf = async (ctx: Context, write: boolean): Promise<Result<string>> => {
    const account = accountOf(ctx, write);
    const raw = ctx.params['key'];
    if (!account.ok || raw === undefined) return account;
    const keyId = pathValue(Path.key, decodeParam(raw), (bad) => keyNotFound(account.value, bad));
    if (!keyId.ok) return keyId;
    if (findKey(await store.read(account.value), keyId.value) === undefined) return refused(keyNotFound(account.value, keyId.value));
    return ok(keyListId(account.value, keyId.value));
  };

  const route = (write: boolean, handler: (ctx: Context, account: string) => Promise<void>): Handler => async (ctx) => {
    const target = await listOf(ctx, write);
    if (!target.ok) return sendError(ctx.res, target.refusal);
    return handler(ctx, target.value);
  };

  /** A route on one entry: the account as `route` checks it, and the entry id the path names. */
  const entryRoute = (write: boolean, handler: (ctx: Context, account: string, id: string) => Promise<void>): Handler => route(write, async (ctx, account) => {
    const id = pathValue(Path.id, ctx.params['id']!, (bad) => entryNotFound(account, bad));
    if (!id.ok) return sendError(ctx.res, id.refusal);
    return handler(ctx, account, id.value);
  });

  const listEntries = route(false, async (ctx, account) => {
    const limit = pageSize(ctx.query);
    const offset = offsetOf(ctx.query);
    if (!limit.ok) return sendError(ctx.res, limit.refusal);
    if (!offset.ok) return sendError(ctx.res, offset.refusal);
    const record = await store.read(account);
    const filtered = filterEntries(record?.entries ?? [], ctx.query);
    if (!filtered.ok) return sendError(ctx.res, filtered.refusal);
    const [from, size] = [offset.value, limit.value];
    const page = filtered.value.slice(from, from + size);
    const next = from + size < filtered.value.length ? cursorFor(from + size) : null;
    const version = record?.version ?? 0;
    sendBody(ctx.res, 200, EntryList, { ...named(account), version, list_state: recordListState(record, service.now().getTime()), total: filtered.value.length, entries: page.map(toApiEntry), next }, { etag: etag(version) });
  });

  const createEntry = route(true, async (ctx, account) => {
    const body = await readJsonBody(ctx.req, ctx.bodyLimits.json);
    if (!body.ok) return sendError(ctx.res, body.refusal);
    const fields = parseEntryFields(body.value, service.now().getTime(), true);
    if (!fields.ok) return sendError(ctx.res, fields.refusal);
    // parseEntryFields with `true` refuses a body without ip_address.
    const ipAddress = fields.value.ipAddress!;
    const id = newId();
    const base = listPath(account);
    await write(ctx, account, { action: 'entry.create', change: (c) => addEntry(account, id, { ...fields.value, ipAddress }, c), snapshot: entrySnapshot(id) }, 201, EntryResult,
      (applied) => withWarnings(toApiEntry(applied.record.entries.find((e) => e.id === id)!), applied), { location: `${base}/${id}` });
  });

  const getEntry = entryRoute(false, async (ctx, account, id) => {
    const record = await store.read(account);
    const entry = record?.entries.find((e) => e.id === id);
    if (!record || !entry) return sendError(ctx.res, entryNotFound(account, id));
    sendBody(ctx.res, 200, Entry, toApiEntry(entry), { etag: etag(record.version) });
  });

  const patchEntry = entryRoute(true, async (ctx, account, id) => {
    const body = await readJsonBody(ctx.req, ctx.bodyLimits.json);
    if (!body.ok) return sendError(ctx.res, body.refusal);
    const fields = parseEntryFields(body.value, service.now().getTime(), false);
    if (!fields.ok) return sendError(ctx.res, fields.refusal);
    await write(ctx, account, { action: 'entry.update', change: (c) => updateEntry(account, id, fields.value, c), snapshot: entrySnapshot(id) }, 200, EntryResult,
      (applied) => withWarnings(toApiEntry(applied.record.entries.find((e) => e.id === id)!), applied));
  });

  const removeEntry = entryRoute(true, async (ctx, account, id) => {
    await write(ctx, account, { action: 'entry.delete', change: () => deleteEntry(account, id), snapshot: entrySnapshot(id) }, 200, Deleted,
      (applied) => ({ deleted: id, warnings: [...applied.warnings] }));
  });

  /**
   * A list body, bounded before it is parsed: the account's entry limit caps the rows (counted
   * as the body arrives), and the body is parsed off the proxy's loop. Rows come back in order,
   * each with its fields or its refusal.
   */
  const bulkRows = async (ctx: Context, account: string, format: BulkFormat): Promise<Result<readonly BulkRow[]>> => {
    const record = await store.read(account);
    const inherited = inheritedList(account, record?.settings ?? {});
    if (inherited !== null) {
      ctx.req.resume();
      return refused(inherited);
    }
    const limit = record?.settings.maxEntries ?? service.policy.maxEntries;
    const shape = new BodyShape(format, limit);
    const body = await readBodyBytes(ctx.req, ctx.bodyLimits.bulk, (chunk) => shape.push(chunk));
    if (!body.ok) return body;
    const parsed = await parseBulkBody(format, body.value, service.now().getTime(), { maxItems: limit, maxNetworks: MAX_NETWORKS_PER_REQUEST });
    return parsed.ok ? ok(parsed.rows) : parsed;
  };

  /** The first refused row, named as the API always named it (CSV by line, JSON by item). */
  const firstRefusal = (rows: readonly BulkRow[], format: BulkFormat): Refusal | null => {
    const bad = rows.find((r) => !r.ok);
    if (bad === undefined || bad.ok) return null;
    return { ...bad.refusal, message: `${format === 'csv' ? 'line' : 'item'} ${bad.line}: ${bad.refusal.message}` };
  };

  /** Replaces or merges a list body; with `?dry_run=true` answers what each row would do, changing nothing. */
  const bulkWrite = async (ctx: Context, account: string, format: BulkFormat, mode: 'replace' | 'merge', action: string): Promise<void> => {
    const dryRunParam = queryValue(ctx.query, 'dry_run', Query.dry_run);
    if (!dryRunParam.ok) return sendError(ctx.res, dryRunParam.refusal);
    const dryRun = dryRunParam.value;
    const read = await bulkRows(ctx, account, format);
    if (!read.ok) return sendError(ctx.res, read.refusal);
    const rows = read.value;
    const ids = newIds(rows.length);
    const items = rows.flatMap((r, i) => (r.ok ? [{ id: ids[i]!, fields: r.fields }] : []));
    // An import also says how it merged and how many items it received (ImportResult); a replace does not (ListReplaced).
    const imported = action === 'list.import' ? { mode, received: rows.length } : null;
    const schema = imported === null ? ListReplaced : ImportResult;
    const render = (applied: Committed): ListReplacedBody | ImportResultBody => withWarnings({
      ...named(account), version: applied.record.version, ...imported, entries: applied.record.entries.map(toApiEntry),
    }, applied);
    if (dryRun !== 'true') {
      const refused = firstRefusal(rows, format);
      if (refused !== null) return sendError(ctx.res, refused);
      return write(ctx, account, { action, change: (c) => replaceEntries(account, items, c, mode), prepare: (c, current) => prepareEntries(account, items, c, mode, current), snapshot: listSnapshot }, 200, schema, render);
    }
    const opts = options(ctx);
    if (!opts.ok) return sendError(ctx.res, opts.refusal);
    const outcomes: ItemOutcome[] = [];
    const { applied: previewed, version } = await service.preview(account, {
      action, change: (c) => replaceEntries(account, items, c, mode, outcomes), prepare: (c, current) => prepareEntries(account, items, c, mode, current, outcomes), snapshot: listSnapshot,
    }, opts.value);
    if (!previewed.ok && (outcomes.length === 0 || version === null)) return sendError(ctx.res, previewed.refusal);
    let next = 0;
    const shown = rows.map((row): ImportRowBody => {
      if (!row.ok) return { line: row.line, outcome: 'refused', reason: row.refusal.reason, error: row.refusal.message, entry: null };
      const done = outcomes[next++]!;
      const entry = toApiEntry(done.entry);
      const { id: _id, created_at: _c, updated_at: _u, ...fields } = entry;
      return done.outcome === 'refused'
        ? { line: row.line, outcome: 'refused', reason: done.refusal.reason, error: done.refusal.message, entry: fields }
        : { line: row.line, outcome: done.outcome, entry: fields };
    });
    const ok = previewed.ok && rows.every((r) => r.ok);
    sendBody(ctx.res, 200, schema, {
      dry_run: true, ...named(account), version: version ?? 0, ...imported, would_store: ok, rows: shown,
      ...(ok ? { entries: previewed.record.entries.map(toApiEntry), warnings: [...previewed.warnings] } : previewed.ok ? {} : { error: previewed.refusal.message, reason: previewed.refusal.reason }),
    }, { etag: etag(version ?? 0) });
  };

  const putList = route(true, async (ctx, account) => {
    if (!isJson(ctx.req)) return sendError(ctx.res, unsupportedJson(ctx.req));
    await bulkWrite(ctx, account, 'json', 'replace', 'list.replace');
  });

  const importList = route(true, async (ctx, account) => {
    const modeParam = queryValue(ctx.query, 'mode', Query.mode);
    if (!modeParam.ok) return sendError(ctx.res, modeParam.refusal);
    const mode = modeParam.value ?? 'merge';
    const csv = /^text\/csv\s*(;|$)/i.test(ctx.req.headers['content-type'] ?? '');
    if (!csv && !isJson(ctx.req)) return sendError(ctx.res, unsupportedJson(ctx.req, ' (or text/csv)'));
    await bulkWrite(ctx, account, csv ? 'csv' : 'json', mode, 'list.import');
  });

  const exportList = route(false, async (ctx, account) => {
    const formatParam = queryValue(ctx.query, 'format', Query.format);
    if (!formatParam.ok) return sendError(ctx.res, formatParam.refusal);
    const format = formatParam.value ?? 'json';
    const record = await store.read(account);
    const version = record?.version ?? 0;
    const entries = record?.entries ?? [];
    if (format === 'json') return sendBody(ctx.res, 200, EntryExport, { ...named(account), version, entries: entries.map(toApiEntry) }, { etag: etag(version) });
    const csv = toCsv([[...CSV_COLUMNS], ...entries.map((e) => [e.ipAddress, e.action, e.description, String(e.enabled), e.expiresAt ?? ''])]);
    ctx.res.writeHead(200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${account.replace('/key:', '-')}-ip-acl.csv"`,
      'content-length': String(Buffer.byteLength(csv)),
      'cache-control': 'no-store',
      etag: etag(version),
    });
    ctx.res.end(csv);
  });

  const getAccount = route(false, async (ctx, account) => {
    const record = await store.read(account);
    sendBody(ctx.res, 200, Settings, settingsView(account, record, service.now().getTime()), { etag: etag(record?.version ?? 0) });
  });

  const putAccount = route(true, async (ctx, account) => {
    if (ctx.actor.role === 'account') return sendError(ctx.res, refusal(403, 'forbidden', `credential ${ctx.actor.name} (account) may manage entries but not account settings`));
    const body = await readJsonBody(ctx.req, ctx.bodyLimits.json);
    if (!body.ok) return sendError(ctx.res, body.refusal);
    const patch = parseSettings(body.value);
    if (!patch.ok) return sendError(ctx.res, patch.refusal);
    // The global list answers to `default` (callers without credentials, anonymous: global) and
    // `restricted` (opening it once emptied); the account settings mean nothing there.
    const foreign = account === GLOBAL_ACCOUNT ? Object.keys(patch.value).find((k) => k !== 'default' && k !== 'restricted') : undefined;
    if (foreign !== undefined) return sendError(ctx.res, refusal(400, 'invalid_field', `the global list has no ${foreign} setting: only default and restricted`));
    await write(ctx, account, { action: 'settings.update', change: () => changeSettings(account, patch.value), snapshot: settingsSnapshot }, 200, Settings,
      (applied) => withWarnings(settingsView(account, applied.record, service.now().getTime()), applied));
  });

  const check = route(false, async (ctx, account) => {
    const text = ctx.query.get('ip') ?? '';
    const ip = parseIp(text);
    if (ip === null) return sendError(ctx.res, refusal(400, 'invalid_format', `ip '${clip(text)}' is not a valid IPv4 or IPv6 address`));
    const key = parseKeyListId(account);
    const { decision, reason, matched, listState } = checkAsSeenBy(ctx.actor, await (key === null ? deps.check(account, ip) : deps.check(key.account, ip, key.keyId)));
    sendBody(ctx.res, 200, Check, { ...named(account), ip: formatIp(ip), decision, reason, matched, list_state: listState });
  });

  /** Who called the account lately (forwarded requests), most recent first, with today's decision. */
  const recentIps = route(false, async (ctx, account) => {
    const limit = pageSize(ctx.query);
    if (!limit.ok) return sendError(ctx.res, limit.refusal);
    const callers = await store.recentCallers(account, limit.value);
    const key = parseKeyListId(account);
    const ips = await Promise.all(callers.map(async (c) => {
      const ip = parseIp(c.ip);
      const now = ip === null ? null : await (key === null ? deps.check(account, ip) : deps.check(key.account, ip, key.keyId));
      return { ip: c.ip, last_seen: new Date(c.lastSeen).toISOString(), decision: now?.decision ?? null, reason: now?.reason ?? null };
    }));
    sendBody(ctx.res, 200, RecentIps, { ...named(account), ips });
  });

  const listAccounts: Handler = async (ctx) => {
    const limit = pageSize(ctx.query);
    const offset = offsetOf(ctx.query);
    if (!limit.ok) return sendError(ctx.res, limit.refusal);
    if (!offset.ok) return sendError(ctx.res, offset.refusal);
    const [from, size] = [offset.value, limit.value];
    const all = (await store.accounts()).filter((a) => a !== GLOBAL_ACCOUNT && allows(ctx.actor, a, false));
    const next = from + size < all.length ? cursorFor(from + size) : null;
    sendBody(ctx.res, 200, Accounts, { accounts: all.slice(from, from + size), total: all.length, next });
  };

  const audit: Handler = async (ctx) => {
    const account = ctx.query.get('account') ?? undefined;
    if (account !== undefined && account !== GLOBAL_ACCOUNT && !isValidAccountId(account)) return sendError(ctx.res, refusal(400, 'invalid_account', `'${clip(account)}' is not a valid account id (${ACCOUNT_ID_DESCRIPTION}), nor ${GLOBAL_ACCOUNT} for the global list`));
    // The global list's events (account=_global) are gateway-wide data, like the unfiltered trail.
    if (!allows(ctx.actor, account === undefined || account === GLOBAL_ACCOUNT ? null : account, false)) {
      return sendError(ctx.res, refusal(403, 'forbidden', `credential ${ctx.actor.name} (${ctx.actor.role}) may read the audit trail of its own account only: add ?account=${ctx.actor.role === 'account' ? ctx.actor.account : ''}`));
    }
    if (deps.audit === null) return sendError(ctx.res, refusal(404, 'audit_disabled', 'the audit trail is not enabled on this gateway'));
    const limit = pageSize(ctx.query);
    if (!limit.ok) return sendError(ctx.res, limit.refusal);
    const cursor = ctx.query.get('cursor') ?? undefined;
    let page;
    try {
      page = await deps.audit.list({ limit: limit.value, ...(account === undefined ? {} : { account }), ...(cursor === undefined ? {} : { cursor }) });
    } catch (error) {
      if (error instanceof AuditCursorError) return sendError(ctx.res, error.refusal);
      throw error;
    }
    sendBody(ctx.res, 200, AuditPage, { events: [...page.events], next: page.next });
  };

  /** Who the credential is: the console uses it to show an account credential its account only. */
  const whoami: Handler = async (ctx) => {
    const { actor } = ctx;
    sendBody(ctx.res, 200, Whoami, actor.role === 'account' ? { name: actor.name, role: actor.role, account: actor.account } : { name: actor.name, role: actor.role, account: null });
  };

  // One handler per action of the route table; the routes, and the document's operations, are the table's.
  const handlers: Readonly<Record<Action, Handler>> = {
    whoami, listAccounts, getSettings: getAccount, putSettings: putAccount, check, recentIps, audit,
    listEntries, createEntry, replaceList: putList, exportList, importList, getEntry, updateEntry: patchEntry, deleteEntry: removeEntry,
    ...keyHandlers({ service, digester: deps.digester ?? null, maxKeys: deps.maxKeys ?? DEFAULT_MAX_KEYS_PER_ACCOUNT, accountOf, write, pageSize, offsetOf, cursorFor }),
  };
  const routes: Route<Handler>[] = NATIVE_ROUTES.map((r) => ({ method: r.method, template: r.path, handler: handlers[r.action] }));
  return { prefix: '/v1/', routes, tokenOf: bearerToken, sendError: (res, refused) => sendError(res, refused, refused.status === 401 ? { 'www-authenticate': 'Bearer' } : {}) };
}

/** How an answer names the list a record id stands for: its account, and the key for a key's list. */
function named(id: string): { readonly account: string; readonly key?: string } {
  const key = parseKeyListId(id);
  return key === null ? { account: id } : { account: key.account, key: key.keyId };
}

/** The entries' path of a list id. */
function listPath(id: string): string {
  if (id === GLOBAL_ACCOUNT) return '/v1/global/ip-acl';
  const key = parseKeyListId(id);
  if (key === null) return `/v1/accounts/${encodeURIComponent(id)}/ip-acl`;
  return `/v1/accounts/${encodeURIComponent(key.account)}/keys/${encodeURIComponent(key.keyId)}/ip-acl`;
}


/** `action`, `enabled` and `q` (substring of the address or description) filters for lists. */
function filterEntries(entries: readonly AclEntry[], query: URLSearchParams): Result<readonly AclEntry[]> {
  const action = queryValue(query, 'action', Query.action);
  if (!action.ok) return action;
  const enabled = queryValue(query, 'enabled', Query.enabled);
  if (!enabled.ok) return enabled;
  const q = query.get('q')?.toLowerCase();
  return ok(entries.filter((e) => (action.value === null || e.action === action.value)
    && (enabled.value === null || e.enabled === enabled.value)
    && (q === undefined || e.ipAddress.toLowerCase().includes(q) || e.description.toLowerCase().includes(q))));
}

/**
 * Settings fields: given values replace, null clears (inherit), absent keeps. Only the shape is
 * checked here; the change applies it to the settings as they are at the commit, and checks a new
 * parent against the graph there.
 */
const SETTINGS_FIELDS = SettingsInput.properties;

function parseSettings(body: unknown): Result<Partial<SettingsPatch>> {
  const fail = (reason: string, message: string): Refusal => refusal(400, reason, message);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return refused(fail('invalid_field', 'the request body must be a JSON object'));
  const input = body as Record<string, unknown>;
  const known = Object.keys(SETTINGS_FIELDS);
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) return refused(fail('unknown_field', `unknown field '${clip(key)}': expected ${known.join(', ')}`));
  }
  const patch: { -readonly [K in keyof SettingsPatch]?: SettingsPatch[K] } = {};
  // The shape of each field is its schema's (api-schemas.ts), checked in this order.
  for (const key of ['mode', 'default', 'guard', 'max_entries', 'ipv4_only'] as const) {
    const wrong = key in input ? fieldRefusal(key, SETTINGS_FIELDS[key], input[key]) : null;
    if (wrong !== null) return wrong;
  }
  const settings = input as SettingsInputBody;
  if ('restricted' in input && typeof settings.restricted !== 'boolean') {
    return refused(fail('invalid_field', 'restricted must be true or false (false opens the account to every address)'));
  }
  if (settings.mode !== undefined) patch.mode = settings.mode;
  if (settings.default !== undefined) patch.default = settings.default;
  if (settings.guard !== undefined) patch.guard = settings.guard;
  if (settings.max_entries !== undefined) patch.maxEntries = settings.max_entries;
  if (settings.ipv4_only !== undefined) patch.ipv4Only = settings.ipv4_only;
  // false opens the account to every address (refused while an allow entry is enabled); true
  // makes an account without allow entries refuse everyone. Never cleared by null: see list-state.ts.
  if (settings.restricted !== undefined) patch.restricted = settings.restricted;
  if ('parent' in input) {
    const parent = input['parent'];
    if (parent !== null && (typeof parent !== 'string' || !isValidAccountId(parent))) return refused(fail('invalid_parent', `parent must be an account id (${ACCOUNT_ID_DESCRIPTION}) or null`));
    patch.parent = parent;
  }
  return ok(patch);
}
