import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { refusal, type Refusal } from '../http/refusal.ts';
import { ACCOUNT_ID_DESCRIPTION, isValidAccountId } from '../identity/account-id.ts';
import { formatIp, parseIp } from '../ip/address.ts';
import { clip } from '../ip/cidr.ts';
import { MAX_PARENT_DEPTH } from '../policy/resolve.ts';
import { GLOBAL_ACCOUNT, type AccountRecord, type AccountSettings } from '../policy/types.ts';
import type { AccountChange } from '../store/store.ts';
import { compileTokenCheck } from './auth.ts';
import { readJsonBody } from './body.ts';
import { addEntry, deleteEntry, entryNotFound, replaceSettings, updateEntry } from './changes.ts';
import { parseEntryFields, toApiEntry } from './entry-input.ts';
import { etag, sendError, sendJson } from './respond.ts';
import { compileRoutes, type Params } from './router.ts';
import type { AdminDeps } from './types.ts';

interface Context {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Params;
  readonly query: URLSearchParams;
}

type Handler = (ctx: Context) => Promise<void>;

/**
 * The management API. Every write is one `store.update` with a pure change function, so
 * validation and commit are atomic, and a change is enforced on the very next proxied request.
 */
export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());
  const authorize = compileTokenCheck(deps.adminToken);

  /** The account a route names: `/v1/global/...` is the global list. */
  const accountOf = (ctx: Context): string | Refusal => {
    const raw = ctx.params['account'];
    if (raw === undefined) return GLOBAL_ACCOUNT;
    let account: string;
    try {
      account = decodeURIComponent(raw);
    } catch {
      account = raw;
    }
    if (!isValidAccountId(account)) return refusal(400, 'invalid_account', `'${clip(account)}' is not a valid account id: ${ACCOUNT_ID_DESCRIPTION}`);
    return account;
  };

  const expectedVersion = (req: IncomingMessage): number | undefined | Refusal => {
    const header = req.headers['if-match'];
    if (header === undefined) return undefined;
    const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
    if (match === null) return refusal(400, 'invalid_if_match', 'If-Match must be an ETag from this API, e.g. "3"');
    return Number(match[1]);
  };

  /** Runs a change and answers with what `render` makes of the committed record. */
  const write = async (ctx: Context, account: string, change: AccountChange, status: number, render: (record: AccountRecord) => unknown, headers: (record: AccountRecord) => Record<string, string> = () => ({})): Promise<void> => {
    const expected = expectedVersion(ctx.req);
    if (typeof expected === 'object') return sendError(ctx.res, expected);
    const outcome = await store.update(account, change, expected);
    if (!outcome.ok) return sendError(ctx.res, outcome.refusal);
    deps.logger?.info({ account, version: outcome.record.version, method: ctx.req.method, url: ctx.req.url }, 'access list changed');
    sendJson(ctx.res, status, render(outcome.record), { etag: etag(outcome.record.version), ...headers(outcome.record) });
  };

  const withAccount = (handler: (ctx: Context, account: string) => Promise<void>): Handler => async (ctx) => {
    const account = accountOf(ctx);
    if (typeof account === 'object') return sendError(ctx.res, account);
    return handler(ctx, account);
  };

  const listEntries = withAccount(async (ctx, account) => {
    const record = await store.read(account);
    const version = record?.version ?? 0;
    sendJson(ctx.res, 200, { account, version, entries: (record?.entries ?? []).map(toApiEntry) }, { etag: etag(version) });
  });

  const createEntry = withAccount(async (ctx, account) => {
    const body = await readJsonBody(ctx.req);
    if (!body.ok) return sendError(ctx.res, body.refusal);
    const at = now();
    const fields = parseEntryFields(body.value, at.getTime(), true);
    if (!fields.ok) return sendError(ctx.res, fields.refusal);
    const { ipAddress } = fields.value;
    if (ipAddress === undefined) return sendError(ctx.res, refusal(400, 'invalid_format', 'ip_address is required'));
    const id = `ipacl_${randomBytes(10).toString('hex')}`;
    const base = ctx.params['account'] === undefined ? '/v1/global/ip-acl' : `/v1/accounts/${encodeURIComponent(account)}/ip-acl`;
    await write(ctx, account, addEntry(account, id, { ...fields.value, ipAddress }, at.toISOString()), 201,
      (record) => toApiEntry(record.entries.find((e) => e.id === id)!),
      () => ({ location: `${base}/${id}` }));
  });

  const getEntry = withAccount(async (ctx, account) => {
    const id = ctx.params['id']!;
    const record = await store.read(account);
    const entry = record?.entries.find((e) => e.id === id);
    if (!record || !entry) return sendError(ctx.res, entryNotFound(account, id));
    sendJson(ctx.res, 200, toApiEntry(entry), { etag: etag(record.version) });
  });

  const patchEntry = withAccount(async (ctx, account) => {
    const body = await readJsonBody(ctx.req);
    if (!body.ok) return sendError(ctx.res, body.refusal);
    const at = now();
    const fields = parseEntryFields(body.value, at.getTime(), false);
    if (!fields.ok) return sendError(ctx.res, fields.refusal);
    const id = ctx.params['id']!;
    await write(ctx, account, updateEntry(account, id, fields.value, at.toISOString()), 200, (record) => toApiEntry(record.entries.find((e) => e.id === id)!));
  });

  const removeEntry = withAccount(async (ctx, account) => {
    await write(ctx, account, deleteEntry(account, ctx.params['id']!), 204, () => undefined);
  });

  const settingsView = (account: string, record: AccountRecord | null): Record<string, unknown> => ({
    account,
    version: record?.version ?? 0,
    parent: record?.settings.parent ?? null,
    mode: record?.settings.mode ?? null,
    default: record?.settings.default ?? null,
    entry_count: record?.entries.length ?? 0,
  });

  const getAccount = withAccount(async (ctx, account) => {
    const record = await store.read(account);
    sendJson(ctx.res, 200, settingsView(account, record), { etag: etag(record?.version ?? 0) });
  });

  const putAccount = withAccount(async (ctx, account) => {
    const body = await readJsonBody(ctx.req);
    if (!body.ok) return sendError(ctx.res, body.refusal);
    const current = await store.read(account);
    const settings = await parseSettings(body.value, account, current?.settings ?? {});
    if (!settings.ok) return sendError(ctx.res, settings.refusal);
    await write(ctx, account, replaceSettings(account, settings.value), 200, (record) => settingsView(account, record));
  });

  /** Settings fields: given values replace, null clears (inherit), absent keeps. */
  const parseSettings = async (body: unknown, account: string, current: AccountSettings): Promise<{ ok: true; value: AccountSettings } | { ok: false; refusal: Refusal }> => {
    const fail = (reason: string, message: string) => ({ ok: false as const, refusal: refusal(400, reason, message) });
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail('invalid_field', 'the request body must be a JSON object');
    const input = body as Record<string, unknown>;
    for (const key of Object.keys(input)) {
      if (key !== 'parent' && key !== 'mode' && key !== 'default') return fail('unknown_field', `unknown field '${clip(key)}': expected parent, mode, default`);
    }
    const next: { -readonly [K in keyof AccountSettings]: AccountSettings[K] } = { ...current };
    if ('mode' in input) {
      if (input['mode'] === null) delete next.mode;
      else if (input['mode'] === 'enforce' || input['mode'] === 'report-only' || input['mode'] === 'off') next.mode = input['mode'];
      else return fail('invalid_field', 'mode must be "enforce", "report-only", "off" or null');
    }
    if ('default' in input) {
      if (input['default'] === null) delete next.default;
      else if (input['default'] === 'open' || input['default'] === 'closed') next.default = input['default'];
      else return fail('invalid_field', 'default must be "open", "closed" or null');
    }
    if ('parent' in input) {
      const parent = input['parent'];
      if (parent === null) {
        delete next.parent;
      } else {
        if (typeof parent !== 'string' || !isValidAccountId(parent)) return fail('invalid_parent', `parent must be an account id (${ACCOUNT_ID_DESCRIPTION}) or null`);
        if (parent === account) return fail('invalid_parent', 'an account cannot be its own parent');
        // Follow the would-be chain: it must end within the depth limit without meeting this account.
        let cursor: string | undefined = parent;
        for (let depth = 1; cursor !== undefined; depth++) {
          if (cursor === account) return fail('invalid_parent', `parent ${parent} would create a cycle through ${account}`);
          if (depth > MAX_PARENT_DEPTH) return fail('invalid_parent', `parent ${parent} would give ${account} more than ${MAX_PARENT_DEPTH} ancestors`);
          cursor = (await store.read(cursor))?.settings.parent;
        }
        next.parent = parent;
      }
    }
    return { ok: true, value: next };
  };

  const check = withAccount(async (ctx, account) => {
    const text = ctx.query.get('ip') ?? '';
    const ip = parseIp(text);
    if (ip === null) return sendError(ctx.res, refusal(400, 'invalid_format', `ip '${clip(text)}' is not a valid IPv4 or IPv6 address`));
    const result = await deps.check(account, ip);
    sendJson(ctx.res, 200, { account, ip: formatIp(ip), ...result });
  });

  /** Who called the account lately (forwarded requests only), most recent first. */
  const recentIps = withAccount(async (ctx, account) => {
    const raw = ctx.query.get('limit') ?? '100';
    const limit = /^[0-9]{1,4}$/.test(raw) ? Number(raw) : 0;
    if (limit < 1 || limit > 1000) return sendError(ctx.res, refusal(400, 'invalid_field', `limit must be an integer 1-1000, got '${clip(raw)}'`));
    const callers = await store.recentCallers(account, limit);
    sendJson(ctx.res, 200, { account, ips: callers.map((c) => ({ ip: c.ip, last_seen: new Date(c.lastSeen).toISOString() })) });
  });

  const listAccounts: Handler = async (ctx) => {
    const accounts = (await store.accounts()).filter((a) => a !== GLOBAL_ACCOUNT);
    sendJson(ctx.res, 200, { accounts });
  };

  const route = compileRoutes<Handler>([
    { method: 'GET', template: '/v1/accounts', handler: listAccounts },
    { method: 'GET', template: '/v1/accounts/{account}', handler: getAccount },
    { method: 'PUT', template: '/v1/accounts/{account}', handler: putAccount },
    { method: 'GET', template: '/v1/accounts/{account}/ip-acl', handler: listEntries },
    { method: 'POST', template: '/v1/accounts/{account}/ip-acl', handler: createEntry },
    { method: 'GET', template: '/v1/accounts/{account}/ip-acl/{id}', handler: getEntry },
    { method: 'PATCH', template: '/v1/accounts/{account}/ip-acl/{id}', handler: patchEntry },
    { method: 'DELETE', template: '/v1/accounts/{account}/ip-acl/{id}', handler: removeEntry },
    { method: 'GET', template: '/v1/accounts/{account}/check', handler: check },
    { method: 'GET', template: '/v1/accounts/{account}/recent-ips', handler: recentIps },
    { method: 'GET', template: '/v1/global/ip-acl', handler: listEntries },
    { method: 'POST', template: '/v1/global/ip-acl', handler: createEntry },
    { method: 'GET', template: '/v1/global/ip-acl/{id}', handler: getEntry },
    { method: 'PATCH', template: '/v1/global/ip-acl/{id}', handler: patchEntry },
    { method: 'DELETE', template: '/v1/global/ip-acl/{id}', handler: removeEntry },
  ]);

  const health = (res: ServerResponse, path: string): void => {
    const state = deps.health();
    const ok = path === '/healthz' ? state.live : state.ready;
    sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unavailable', ...state.detail });
  };

  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if ((path === '/healthz' || path === '/readyz') && (req.method === 'GET' || req.method === 'HEAD')) return health(res, path);

    const denied = authorize(req);
    if (denied !== null) {
      req.resume();
      return sendError(res, denied, { 'www-authenticate': 'Bearer' });
    }
    const match = route(req.method ?? 'GET', path);
    if (!match.ok) {
      req.resume();
      return sendError(res, match.refusal, match.allow ? { allow: match.allow } : {});
    }
    const ctx: Context = { req, res, params: match.params, query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)) };
    match.handler(ctx).catch((error: unknown) => {
      const down = store.state() === 'down';
      deps.logger?.error({ err: error, method: req.method, path, store_state: store.state() }, 'admin request failed');
      if (res.headersSent) return res.destroy();
      sendError(res, down
        ? refusal(503, 'store_unavailable', `the store (${store.kind}) is unreachable, so nothing was read or changed; retry once it is back (see /readyz)`)
        : refusal(500, 'internal_error', 'the admin API failed to handle this request; see the gateway log'));
    });
  };
}
