import type { IncomingMessage, ServerResponse } from 'node:http';
import { addEntry } from '../../acl/changes.ts';
import type { Operation } from '../../acl/service.ts';
import { ok, refusal, refused, type Refusal, type Result } from '../../http/refusal.ts';
import { ACCOUNT_ID_DESCRIPTION, isValidAccountId } from '../../identity/account-id.ts';
import { parseIp } from '../../ip/address.ts';
import { clip } from '../../ip/cidr.ts';
import { recordListState } from '../../list/list-state.ts';
import type { AclEntry } from '../../list/types.ts';
import { checkAsSeenBy } from '../types.ts';
import { readBody } from '../body.ts';
import { requestIds, type Context, type Handler, type Surface } from '../context.ts';
import { allows, type Actor } from '../credentials.ts';
import { MAX_DESCRIPTION_LENGTH } from '../entry-input.ts';
import { markRefused, sendJson } from '../respond.ts';
import type { Route } from '../router.ts';
import { auditActor, deleteMatching, entrySnapshot, entrySnapshotWhere, forbidden, integerParam, listSnapshot, parseNetwork, sameNetworks, sqlDateTime, type CompatDeps, type Network } from './shared.ts';

/**
 * Endpoints compatible with Voximplant's Management API for authorized account IPs
 * (`/platform_api/AddAuthorizedAccountIP`, `DelAuthorizedAccountIP`, `GetAuthorizedAccountIPs`,
 * `CheckAuthorizedAccountIP`): Bearer credentials, parameters in the query string or a form or
 * JSON body, `{"result": ...}` answers and `{"error": {"code", "msg"}}` errors.
 *
 * The provider's white list (`allowed=true`) and black list (`allowed=false`) are the account's
 * allow and deny entries. An account credential acts on its own account; owner, admin and
 * read-only credentials name the account with `account_id`.
 */

const PREFIX = '/platform_api/';
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;

type Params = ReadonlyMap<string, string>;

/** One authorized IP as GetAuthorizedAccountIPs lists it. */
export interface VoximplantIp {
  readonly authorized_ip: string;
  readonly allowed: boolean;
  readonly description: string;
  readonly created: string;
}

export function toVoximplantIp(entry: AclEntry): VoximplantIp {
  return { authorized_ip: entry.ipAddress, allowed: entry.action === 'allow', description: entry.description, created: sqlDateTime(entry.createdAt) };
}

function tokenOf(req: IncomingMessage): Result<string> {
  const header = req.headers.authorization;
  if (header === undefined) return refused(refusal(401, 'missing_token', 'authorization required: send Authorization: Bearer <token>'));
  const token = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
  return token === undefined ? refused(refusal(401, 'invalid_token', 'the Authorization header must be "Bearer <token>"')) : ok(token);
}

/** `{"error": {"code", "msg"}}` with the HTTP status as the code, plus the gateway's `reason`. */
function sendError(res: ServerResponse, refused: Refusal): void {
  markRefused(res, refused.reason);
  sendJson(res, refused.status, { error: { code: refused.status, msg: refused.message, reason: refused.reason } }, refused.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
}

function invalid(name: string, expected: string, got?: string): Refusal {
  return refusal(400, 'invalid_field', `${name} must be ${expected}${got === undefined ? '' : `, got '${clip(got)}'`}`);
}

/** Adds `name=value` to `into`, refusing a parameter given twice with different values. */
function merge(into: Map<string, string>, name: string, value: string): Refusal | null {
  const before = into.get(name);
  if (before !== undefined && before !== value) return refusal(400, 'conflicting_parameter', `${clip(name)} is given twice with different values ('${clip(before)}' and '${clip(value)}')`);
  into.set(name, value);
  return null;
}

/**
 * The request's parameters: the query string, then the body, as a form
 * (`application/x-www-form-urlencoded`) or a JSON object of scalars. The documented calls put
 * everything in the query and send `{}`, so an empty body is fine whatever its type.
 */
async function paramsOf(ctx: Context, accepted: readonly string[]): Promise<Result<Params>> {
  const params = new Map<string, string>();
  for (const [name, value] of ctx.query) {
    const conflict = merge(params, name, value);
    if (conflict) return refused(conflict);
  }
  const body = await readBody(ctx.req, ctx.bodyLimits.json);
  if (!body.ok) return body;
  const text = body.value.trim();
  const type = ctx.req.headers['content-type'] ?? '';
  if (text !== '') {
    if (/^application\/json\s*(;|$)/i.test(type)) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        return refused(refusal(400, 'invalid_json', `the request body is not valid JSON: ${(error as Error).message}`));
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return refused(invalid('the JSON body', 'an object of parameters'));
      for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === null) continue;
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return refused(invalid(`parameter ${clip(name)}`, 'a string, number or boolean'));
        const conflict = merge(params, name, String(v));
        if (conflict) return refused(conflict);
      }
    } else if (/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
      for (const [name, value] of new URLSearchParams(text)) {
        const conflict = merge(params, name, value);
        if (conflict) return refused(conflict);
      }
    } else {
      return refused(refusal(415, 'unsupported_media_type', 'send parameters in the query string, or in a body of type application/x-www-form-urlencoded or application/json'));
    }
  }
  for (const name of params.keys()) {
    if (!accepted.includes(name)) return refused(refusal(400, 'unknown_parameter', `unknown parameter '${clip(name)}': expected ${accepted.join(', ')}`));
  }
  return ok(params);
}

function booleanParam(name: string, raw: string | undefined): Result<boolean | undefined> {
  if (raw === undefined) return ok(undefined);
  const text = raw.toLowerCase();
  if (text === 'true' || text === '1') return ok(true);
  if (text === 'false' || text === '0') return ok(false);
  return refused(invalid(name, 'true or false', raw));
}

/** The account a call acts on, after checking the caller may read or change it. */
function accountOf(actor: Actor, params: Params, write: boolean, accountName: CompatDeps['accountName']): Result<string> {
  const given = params.get('account_id');
  if (given !== undefined && !isValidAccountId(given)) return refused(refusal(400, 'invalid_account', `account_id '${clip(given)}' is not a valid account id: ${ACCOUNT_ID_DESCRIPTION}`));
  const named = given === undefined ? undefined : accountName?.(given) ?? ok(given);
  if (named !== undefined && !named.ok) return named;
  if (actor.role === 'account') {
    if (named !== undefined && named.value !== actor.account) return refused(forbidden(actor, named.value, write));
    return ok(actor.account);
  }
  if (named === undefined) return refused(refusal(400, 'missing_account', `credential ${actor.name} (${actor.role}) is not tied to one account: name it with account_id`));
  if (!allows(actor, named.value, write)) return refused(forbidden(actor, named.value, write));
  return named;
}

/** `authorized_ip` as a single address or network. */
function networkParam(raw: string | undefined): Result<Network> {
  if (raw === undefined) return refused(refusal(400, 'missing_parameter', 'authorized_ip is required: an IP address or network such as 92.255.220.0/24'));
  const network = parseNetwork(raw, false);
  if (!network.ok) return refused(refusal(400, network.refusal.reason, `authorized_ip is not valid: ${network.refusal.message}`));
  return network;
}

/** The Voximplant-compatible surface; mount it beside the native one. */
export function voximplantSurface(deps: CompatDeps): Surface {
  const { service } = deps;

  /** A method: reads the parameters, resolves the account, then runs `body`. */
  const method = (write: boolean, accepted: readonly string[], body: (ctx: Context, account: string, params: Params) => Promise<void>): Handler => async (ctx) => {
    const params = await paramsOf(ctx, ['account_id', ...accepted]);
    if (!params.ok) return sendError(ctx.res, params.refusal);
    const account = accountOf(ctx.actor, params.value, write, deps.accountName);
    if (!account.ok) return sendError(ctx.res, account.refusal);
    return body(ctx, account.value, params.value);
  };

  /** Applies an operation and answers `{"result": 1}`, or the core's refusal. */
  const commit = async (ctx: Context, account: string, operation: Operation, tolerated?: string): Promise<void> => {
    const applied = await service.apply(auditActor(ctx.actor), account, operation, { via: 'voximplant', ...requestIds(ctx) });
    if (!applied.ok && applied.refusal.reason !== tolerated) return sendError(ctx.res, applied.refusal);
    sendJson(ctx.res, 200, { result: 1 });
  };

  const add = method(true, ['authorized_ip', 'allowed', 'description'], async (ctx, account, params) => {
    const network = networkParam(params.get('authorized_ip'));
    if (!network.ok) return sendError(ctx.res, network.refusal);
    const allowed = booleanParam('allowed', params.get('allowed'));
    if (!allowed.ok) return sendError(ctx.res, allowed.refusal);
    const description = params.get('description') ?? '';
    if (description.length > MAX_DESCRIPTION_LENGTH) return sendError(ctx.res, invalid('description', `at most ${MAX_DESCRIPTION_LENGTH} characters`));
    const id = deps.newId();
    const fields = { ipAddress: network.value, description, action: allowed.value === false ? 'deny' as const : 'allow' as const };
    await commit(ctx, account, { action: 'entry.create', change: (c) => addEntry(account, id, fields, c), snapshot: entrySnapshot(id) });
  });

  const del = method(true, ['authorized_ip', 'allowed'], async (ctx, account, params) => {
    const read = booleanParam('allowed', params.get('allowed'));
    if (!read.ok) return sendError(ctx.res, read.refusal);
    const allowed = read.value;
    const kind = (e: AclEntry): boolean => allowed === undefined || (e.action === 'allow') === allowed;
    const list = allowed === undefined ? 'list' : allowed ? 'white list' : 'black list';
    const target = params.get('authorized_ip');
    if (target?.trim().toLowerCase() === 'all') {
      // Emptying an empty list succeeds without writing anything.
      const none = refusal(404, 'nothing_to_delete', `account ${account} has no entry in its ${list}`);
      return commit(ctx, account, { action: 'list.delete', change: () => deleteMatching(account, kind, none), snapshot: listSnapshot }, none.reason);
    }
    const parsed = networkParam(target);
    if (!parsed.ok) return sendError(ctx.res, parsed.refusal);
    const network = parsed.value;
    const missing = refusal(404, 'entry_not_found', `${network.input} is not in the ${list} of account ${account}`);
    const pick = (e: AclEntry): boolean => kind(e) && sameNetworks(e, network.cidrs);
    await commit(ctx, account, { action: 'entry.delete', change: () => deleteMatching(account, pick, missing), snapshot: entrySnapshotWhere(pick) });
  });

  const get = method(false, ['authorized_ip', 'allowed', 'count', 'offset'], async (ctx, account, params) => {
    const allowed = booleanParam('allowed', params.get('allowed'));
    if (!allowed.ok) return sendError(ctx.res, allowed.refusal);
    const count = integerParam('count', params.get('count'), DEFAULT_COUNT, 1, MAX_COUNT);
    if (!count.ok) return sendError(ctx.res, count.refusal);
    const offset = integerParam('offset', params.get('offset'), 0, 0, 1_000_000_000);
    if (!offset.ok) return sendError(ctx.res, offset.refusal);
    const raw = params.get('authorized_ip');
    const network = raw === undefined ? null : networkParam(raw);
    if (network !== null && !network.ok) return sendError(ctx.res, network.refusal);
    const record = await service.store.read(account);
    const entries = (record?.entries ?? [])
      .filter((e) => (allowed.value === undefined || (e.action === 'allow') === allowed.value) && (network === null || sameNetworks(e, network.value.cidrs)));
    const page = entries.slice(offset.value, offset.value + count.value).map(toVoximplantIp);
    // list_state is not the provider's: `empty` says an emptied white list refuses every caller.
    sendJson(ctx.res, 200, { result: page, count: page.length, total_count: entries.length, list_state: recordListState(record, service.now().getTime()) });
  });

  const check = method(false, ['authorized_ip'], async (ctx, account, params) => {
    const raw = params.get('authorized_ip');
    if (raw === undefined) return sendError(ctx.res, refusal(400, 'missing_parameter', 'authorized_ip is required: the IP address to check, such as 92.255.220.7'));
    const ip = parseIp(raw.trim());
    if (ip === null) return sendError(ctx.res, invalid('authorized_ip', 'a single IPv4 or IPv6 address', raw));
    const result = checkAsSeenBy(ctx.actor, await deps.check(account, ip));
    // `error`: the account's policy cannot be resolved, and the proxy refuses its callers.
    const allowed = result.decision !== 'deny' && result.decision !== 'error';
    sendJson(ctx.res, 200, { result: { allowed, authorized_ip: result.matched?.cidr ?? null } });
  });

  const routes: Route<Handler>[] = [
    { method: 'POST', template: `${PREFIX}AddAuthorizedAccountIP`, handler: add },
    { method: 'POST', template: `${PREFIX}DelAuthorizedAccountIP`, handler: del },
    { method: 'POST', template: `${PREFIX}GetAuthorizedAccountIPs`, handler: get, reads: true },
    { method: 'GET', template: `${PREFIX}GetAuthorizedAccountIPs`, handler: get },
    { method: 'POST', template: `${PREFIX}CheckAuthorizedAccountIP`, handler: check, reads: true },
    { method: 'GET', template: `${PREFIX}CheckAuthorizedAccountIP`, handler: check },
  ];
  return { prefix: PREFIX, routes, tokenOf, sendError };
}
