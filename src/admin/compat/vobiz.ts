import type { IncomingMessage, ServerResponse } from 'node:http';
import { addEntry, updateEntry, deleteEntry, type EntryFields } from '../../acl/changes.ts';
import type { Operation } from '../../acl/service.ts';
import { ok, refusal, refused, type Refused, type Refusal, type Result } from '../../http/refusal.ts';
import { ACCOUNT_ID_DESCRIPTION, isValidAccountId } from '../../identity/account-id.ts';
import { clip } from '../../ip/cidr.ts';
import { recordListState } from '../../list/list-state.ts';
import type { AclEntry } from '../../list/types.ts';
import { readJsonBody } from '../body.ts';
import { requestIds, type Context, type Handler, type Surface } from '../context.ts';
import { allows } from '../credentials.ts';
import { MAX_DESCRIPTION_LENGTH } from '../entry-input.ts';
import { markRefused, sendJson } from '../respond.ts';
import type { Route } from '../router.ts';
import { auditActor, decodeSegment, entrySnapshot, forbidden, integerParam, isoSeconds, onEntry, parseNetwork, type CompatDeps } from './shared.ts';

/**
 * Endpoints compatible with Vobiz's IP ACL API (`/api/v1/Account/{auth_id}/ip-acl`): X-Auth-ID
 * and X-Auth-Token credentials, entries shaped `{id, account_id, ip_address, description,
 * enabled, created_at, updated_at}`, lists in the Plivo family's `{api_id, meta, objects}`
 * envelope, and errors as `{"error": "...", "code": n}`.
 *
 * The provider's list is an allow list of IPv4 addresses and CIDR blocks, so this surface
 * creates ordinary allow entries of the account (the native API and the proxy see them), shows
 * only allow entries, and refuses IPv6 itself whatever the gateway's own IPv6 setting.
 */

const PREFIX = '/api/v1/Account/';
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
const FIELDS = ['name', 'description', 'ip_address', 'enabled'];
const INVALID_FORMAT = 'Invalid IP address format';

/** An entry as this API shows it: exactly the provider's keys. */
export interface VobizEntry {
  readonly id: string;
  readonly account_id: string;
  readonly ip_address: string;
  readonly description: string;
  readonly enabled: boolean;
  readonly created_at: string;
  readonly updated_at: string;
}

export function toVobizEntry(account: string, entry: AclEntry): VobizEntry {
  return {
    id: entry.id,
    account_id: account,
    ip_address: entry.ipAddress,
    description: entry.description,
    enabled: entry.enabled,
    created_at: isoSeconds(entry.createdAt),
    updated_at: isoSeconds(entry.updatedAt),
  };
}

/** A request header given exactly once, or undefined. */
function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function tokenOf(req: IncomingMessage): Result<string> {
  const id = header(req, 'x-auth-id');
  const token = header(req, 'x-auth-token');
  if (id === undefined || token === undefined) {
    const missing = [id === undefined ? 'X-Auth-ID' : null, token === undefined ? 'X-Auth-Token' : null].filter((h) => h !== null).join(' and ');
    return refused(refusal(401, 'missing_credentials', `authentication required: send ${missing} (your Auth ID and Auth Token)`));
  }
  return ok(token);
}

/** `{"error", "code"}` as the provider answers, plus the gateway's `reason` and any detail. */
function sendError(res: ServerResponse, refused: Refusal, extra: Record<string, unknown> = {}): void {
  markRefused(res, refused.reason);
  sendJson(res, refused.status, { error: refused.message, code: refused.status, reason: refused.reason, ...extra });
}

function notFound(): Refusal {
  return refusal(404, 'entry_not_found', 'IP ACL not found');
}

const isListed = (entry: AclEntry): boolean => entry.action === 'allow';

/** The fields, or why not; `detail` says more than the provider's own message. */
type Fields = { readonly ok: true; readonly value: EntryFields } | (Refused & { readonly detail?: string });

function invalid(field: string, expected: string): Fields {
  return { ok: false, refusal: refusal(400, 'invalid_field', `${field} must be ${expected}`) };
}

/** A create (`name` and `ip_address` required) or update (any of the fields) body. */
function parseFields(body: unknown, create: boolean): Fields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return invalid('the request body', 'a JSON object');
  const input = body as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!FIELDS.includes(key)) return { ok: false, refusal: refusal(400, 'unknown_field', `unknown field '${clip(key)}': expected ${FIELDS.join(', ')}`) };
  }
  const fields: { -readonly [K in keyof EntryFields]: EntryFields[K] } = {};

  const name = input['name'];
  const description = input['description'];
  for (const [field, value] of [['name', name], ['description', description]] as const) {
    if (value !== undefined && (typeof value !== 'string' || value.length > MAX_DESCRIPTION_LENGTH)) return invalid(field, `a string of at most ${MAX_DESCRIPTION_LENGTH} characters`);
  }
  if (name !== undefined && description !== undefined && name !== description) return invalid('name', 'the same as description when both are given');
  const label = (name ?? description) as string | undefined;
  if (create && (label === undefined || label.trim() === '')) return { ok: false, refusal: refusal(400, 'missing_field', 'name is required: a label for the entry, such as "Office static IP"') };
  if (label !== undefined) fields.description = label;

  const address = input['ip_address'];
  if (address === undefined) {
    if (create) return { ok: false, refusal: refusal(400, 'missing_field', 'ip_address is required: a single IPv4 address (e.g. 198.51.100.42) or an IPv4 CIDR block (e.g. 10.20.30.0/24)') };
  } else {
    if (typeof address !== 'string') return { ok: false, refusal: refusal(400, 'invalid_format', INVALID_FORMAT), detail: 'ip_address must be a string' };
    const network = parseNetwork(address, true);
    if (!network.ok) {
      const detail = network.refusal.message;
      return network.refusal.reason === 'ipv6_not_allowed'
        ? { ok: false, refusal: refusal(400, 'ipv6_not_allowed', 'IPv6 addresses are not supported: use an IPv4 address or CIDR block'), detail }
        : { ok: false, refusal: refusal(400, 'invalid_format', INVALID_FORMAT), detail };
    }
    fields.ipAddress = network.value;
  }

  const enabled = input['enabled'];
  if (enabled !== undefined) {
    if (typeof enabled !== 'boolean') return invalid('enabled', 'true or false');
    fields.enabled = enabled;
  }
  if (create) fields.action = 'allow';
  else if (Object.keys(fields).length === 0) return { ok: false, refusal: refusal(400, 'missing_field', 'nothing to update: send any of ip_address, name (or description), enabled') };
  return { ok: true, value: fields };
}

/** The Vobiz-compatible surface; mount it beside the native one. */
export function vobizSurface(deps: CompatDeps): Surface {
  const { service } = deps;

  /** The account the path names, after checking the caller may read or change it. */
  const accountOf = (ctx: Context, write: boolean): Result<string> => {
    const given = decodeSegment(ctx.params['auth_id']!);
    if (!isValidAccountId(given)) return refused(refusal(400, 'invalid_account', `'${clip(given)}' is not a valid Auth ID: ${ACCOUNT_ID_DESCRIPTION}`));
    const named = deps.accountName?.(given) ?? ok(given);
    if (!named.ok) return named;
    const account = named.value;
    if (!allows(ctx.actor, account, write)) return refused(forbidden(ctx.actor, account, write));
    if (ctx.actor.role === 'account' && header(ctx.req, 'x-auth-id') !== account) {
      return refused(refusal(403, 'auth_id_mismatch', `X-Auth-ID must be the Auth ID in the path (${account})`));
    }
    return named;
  };

  const route = (write: boolean, handler: (ctx: Context, account: string) => Promise<void>): Handler => async (ctx) => {
    const account = accountOf(ctx, write);
    if (!account.ok) {
      ctx.req.resume();
      return sendError(ctx.res, account.refusal);
    }
    return handler(ctx, account.value);
  };

  /** Applies an operation; answers with the entry `id` as committed, or the core's refusal. */
  const commit = async (ctx: Context, account: string, id: string, operation: Operation, status: number, headers: Record<string, string> = {}): Promise<void> => {
    const applied = await service.apply(auditActor(ctx.actor), account, operation, { via: 'vobiz', ...requestIds(ctx) });
    if (!applied.ok) return sendError(ctx.res, applied.refusal.reason === 'entry_not_found' ? notFound() : applied.refusal);
    const entry = applied.record.entries.find((e) => e.id === id);
    if (status === 204 || entry === undefined) {
      ctx.res.writeHead(204, { 'cache-control': 'no-store' });
      ctx.res.end();
      return;
    }
    sendJson(ctx.res, status, toVobizEntry(account, entry), headers);
  };

  const readFields = async (ctx: Context, create: boolean): Promise<EntryFields | null> => {
    const body = await readJsonBody(ctx.req, ctx.bodyLimits.json);
    if (!body.ok) {
      sendError(ctx.res, body.refusal);
      return null;
    }
    const fields = parseFields(body.value, create);
    if (!fields.ok) {
      sendError(ctx.res, fields.refusal, fields.detail === undefined ? {} : { detail: fields.detail });
      return null;
    }
    return fields.value;
  };

  const create = route(true, async (ctx, account) => {
    const fields = await readFields(ctx, true);
    if (fields === null) return;
    const ipAddress = fields.ipAddress!;
    const id = deps.newId();
    await commit(ctx, account, id, { action: 'entry.create', change: (c) => addEntry(account, id, { ...fields, ipAddress }, c), snapshot: entrySnapshot(id) }, 201,
      { location: `${PREFIX}${encodeURIComponent(account)}/ip-acl/${encodeURIComponent(id)}` });
  });

  const list = route(false, async (ctx, account) => {
    const limitParam = integerParam('limit', ctx.query.get('limit') ?? undefined, DEFAULT_LIMIT, 1, MAX_LIMIT);
    if (!limitParam.ok) return sendError(ctx.res, limitParam.refusal);
    const offsetParam = integerParam('offset', ctx.query.get('offset') ?? undefined, 0, 0, 1_000_000_000);
    if (!offsetParam.ok) return sendError(ctx.res, offsetParam.refusal);
    const [limit, offset] = [limitParam.value, offsetParam.value];
    const record = await service.store.read(account);
    const entries = (record?.entries ?? []).filter(isListed);
    const page = (at: number): string => `${PREFIX}${encodeURIComponent(account)}/ip-acl?limit=${limit}&offset=${at}`;
    sendJson(ctx.res, 200, {
      api_id: ctx.requestId,
      meta: {
        limit,
        offset,
        total_count: entries.length,
        // Not the provider's: `empty` says an emptied list refuses every caller (see the docs).
        list_state: recordListState(record, service.now().getTime()),
        next: offset + limit < entries.length ? page(offset + limit) : null,
        previous: offset > 0 ? page(Math.max(0, offset - limit)) : null,
      },
      objects: entries.slice(offset, offset + limit).map((e) => toVobizEntry(account, e)),
    });
  });

  const get = route(false, async (ctx, account) => {
    const id = decodeSegment(ctx.params['id']!);
    const entry = (await service.store.read(account))?.entries.find((e) => e.id === id);
    if (entry === undefined || !isListed(entry)) return sendError(ctx.res, notFound());
    sendJson(ctx.res, 200, toVobizEntry(account, entry));
  });

  const update = route(true, async (ctx, account) => {
    const fields = await readFields(ctx, false);
    if (fields === null) return;
    const id = decodeSegment(ctx.params['id']!);
    await commit(ctx, account, id, { action: 'entry.update', change: (c) => onEntry(id, isListed, notFound(), updateEntry(account, id, fields, c)), snapshot: entrySnapshot(id) }, 200);
  });

  const remove = route(true, async (ctx, account) => {
    const id = decodeSegment(ctx.params['id']!);
    await commit(ctx, account, id, { action: 'entry.delete', change: () => onEntry(id, isListed, notFound(), deleteEntry(account, id)), snapshot: entrySnapshot(id) }, 204);
  });

  const routes: Route<Handler>[] = [];
  // Clients of the Plivo family often end paths with a slash: accept both spellings.
  for (const slash of ['', '/']) {
    const base = `${PREFIX}{auth_id}/ip-acl`;
    routes.push(
      { method: 'GET', template: `${base}${slash}`, handler: list },
      { method: 'POST', template: `${base}${slash}`, handler: create },
      { method: 'GET', template: `${base}/{id}${slash}`, handler: get },
      { method: 'POST', template: `${base}/{id}${slash}`, handler: update },
      { method: 'PUT', template: `${base}/{id}${slash}`, handler: update },
      { method: 'PATCH', template: `${base}/{id}${slash}`, handler: update },
      { method: 'DELETE', template: `${base}/{id}${slash}`, handler: remove },
    );
  }
  return { prefix: PREFIX, routes, tokenOf, sendError: (res, refused) => sendError(res, refused) };
}
