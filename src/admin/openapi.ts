import { readFileSync } from 'node:fs';
import { MAX_PARENT_DEPTH } from '../list/inherit.ts';
import { BODY_TIMEOUT_MS, DEFAULT_BODY_LIMITS } from './body.ts';
import type { TSchema } from 'typebox';
import { DEFAULT_PAGE, errorSchema, Path, Query, SCHEMAS } from './api-schemas.ts';
import { NATIVE_ROUTES, PATH_PARAMETERS, pathParameters, type Content, type Header, type NativeRoute } from './native-routes.ts';
import { MAX_NETWORKS_PER_ENTRY } from './entry-input.ts';
import { MAX_NETWORKS_PER_REQUEST } from './native.ts';

/*
 * The OpenAPI 3.1 description of the native management API (src/admin/native.ts), served at
 * GET /v1/openapi.json. The bodies' schemas are the definitions in api-schemas.ts, published as
 * they are (a schema named there appears as a reference to its component); this file adds the
 * operations, parameters, headers and the reason codes of every refusal. The unit test
 * (test/unit/admin/openapi.test.ts) drives the real API and validates every answer against it.
 */


let packageVersion: string | undefined;

/** The version in package.json (read once), or 0.0.0 when it cannot be read. */
function version(): string {
  if (packageVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
      packageVersion = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
    } catch {
      packageVersion = '0.0.0';
    }
  }
  return packageVersion;
}

type Json = Record<string, unknown>;

const ref = (kind: 'schemas' | 'parameters' | 'responses' | 'headers', name: string): Json => ({ $ref: `#/components/${kind}/${name}` });
const schema = (name: string): Json => ref('schemas', name);
const json = (body: Json): Json => ({ 'application/json': { schema: body } });

/** Error reasons by status: the `reason` of every refusal the native API and its dispatcher give. */
const REASONS: Readonly<Record<number, readonly (readonly [string, string])[]>> = {
  400: [
    ['invalid_account', 'the account id in the path is not a valid account id'],
    ['invalid_field', 'a field or query parameter has a value the API does not accept (limit, cursor, action, enabled, replace, guard, format, mode, or a body field)'],
    ['unknown_field', 'the body names a field the API does not know'],
    ['invalid_format', 'the rule syntax does not accept the address (or `ip` of check is not an address)'],
    ['invalid_json', 'the body is not valid JSON'],
    ['invalid_body', 'the body could not be read'],
    ['invalid_csv', 'the CSV import has a misplaced quote, no header row naming ip_address, or an unknown column'],
    ['invalid_if_match', 'If-Match is not an ETag of this API'],
    ['too_many_networks', `an address (a range) expands into more than ${MAX_NETWORKS_PER_ENTRY} networks: split it`],
    ['invalid_parent', `the parent setting names this account, would close a cycle, or would give the account or one of its subaccounts more than ${MAX_PARENT_DEPTH} ancestors`],
    ['reserved_range', 'an allow entry overlaps reserved (or refused private) address space'],
    ['ipv6_not_allowed', 'an IPv6 entry while the gateway or the account is IPv4-only'],
  ],
  401: [
    ['missing_token', 'no Authorization header'],
    ['invalid_token', 'the Authorization header is not `Bearer <token>`, or the token is not a credential'],
  ],
  403: [['forbidden', 'the credential is valid but not for this account, list or operation']],
  404: [
    ['not_found', 'no route has this path (answered by the dispatcher)'],
    ['entry_not_found', 'the account has no entry with this id'],
    ['key_not_found', 'the account has no API key with this id'],
    ['audit_disabled', 'the gateway keeps no audit trail'],
  ],
  405: [['method_not_allowed', 'the path exists, the method does not (answered by the dispatcher, with Allow)']],
  409: [
    ['duplicate', 'the same network is already listed (in any spelling, allow or deny); for a key: it is registered already, to this account or another (a key belongs to one account)'],
    ['no_key_secret', 'a key sent by value while the gateway has no key secret (keys.secret): send key_sha256, or configure the secret'],
    ['subset_exists', 'an allow entry already covers it (named in `error`)'],
    ['superset_conflict', 'it would cover narrower allow entries (named); replace=true removes them in the same change'],
    ['limit_reached', 'more entries than validation.maxEntries or the account\'s max_entries (a list body with more rows than that is refused as it arrives); more keys than keys.maxPerAccount'],
    ['inherited_list', 'the account is a subaccount: its list is its parent\'s, managed there'],
    ['would_lock_out', 'the change would block recently seen callers, and guard is strict (query or account setting)'],
    ['would_open', 'the change would open an account that refuses some callers to every address, and guard is strict'],
    ['list_in_force', 'the account is being opened (restricted: false) while an allow entry is enabled'],
    ['parent_not_found', 'the parent (or an ancestor of it) has no record: the account would inherit no list'],
  ],
  412: [['version_conflict', 'If-Match names a version the account has moved on from']],
  408: [['body_timeout', `the body did not arrive within ${BODY_TIMEOUT_MS / 1000} s`]],
  413: [
    ['body_too_large', `the body exceeds admin.maxBodyBytes (default ${DEFAULT_BODY_LIMITS.json} bytes; admin.maxImportBytes, default ${DEFAULT_BODY_LIMITS.bulk}, for a list replace or import)`],
    ['too_many_networks', `the rows of a list body expand into more than ${MAX_NETWORKS_PER_REQUEST} networks`],
    ['body_too_complex', 'a list body needed more memory or time to read than one may use'],
  ],
  415: [['unsupported_media_type', 'the body is not Content-Type: application/json (or text/csv, for import)']],
  429: [
    ['too_many_attempts', 'too many failed authentications from this address (a valid credential is still accepted); see Retry-After'],
    ['write_rate_exceeded', 'the credential made more writes than admin.writes allows (burst, then per second); see Retry-After'],
    ['writes_in_progress', 'the credential has as many writes in progress as admin.writes.concurrentPerCredential allows'],
  ],
  500: [
    ['internal_error', 'the request failed unexpectedly; the gateway log has the cause'],
    ['store_corrupt', 'a stored record could not be read back'],
  ],
  503: [
    ['store_unavailable', 'the store is unreachable: nothing was read or changed'],
    ['outcome_unknown', 'the change was sent to the store but no answer came back: it may or may not have been applied; `current_version` (when it could be read) against the version the change would have made tells which; read the account before retrying'],
    ['store_write_failed', 'writing the store failed: nothing was changed'],
    ['store_contention', 'the account changed too often while the change was applied; retry'],
    ['admin_busy', 'the admin API has as many writes in progress as admin.writes.concurrent allows; see Retry-After'],
  ],
};

const ERROR_RESPONSES: Readonly<Record<number, readonly [string, string]>> = {
  400: ['BadRequest', 'The request is malformed or a value is refused.'],
  401: ['Unauthorized', 'Missing or wrong credentials.'],
  403: ['Forbidden', 'A valid credential out of its scope.'],
  404: ['NotFound', 'Nothing here.'],
  405: ['MethodNotAllowed', 'The path exists but not with this method. Answered by the dispatcher for every path in this document; `Allow` lists the methods.'],
  408: ['RequestTimeout', 'The request body did not arrive in time.'],
  409: ['Conflict', 'The change is refused by validation or by the lockout guard; nothing was written.'],
  412: ['PreconditionFailed', 'If-Match names an older version; reload and apply the change again.'],
  413: ['PayloadTooLarge', 'The request body is too large, or expands into too much.'],
  415: ['UnsupportedMediaType', 'The request body has the wrong Content-Type.'],
  429: ['TooManyRequests', 'Too many failed authentications from this address (a valid credential is still accepted), or too many writes by this credential; see Retry-After.'],
  500: ['InternalError', 'The gateway failed to handle the request.'],
  503: ['ServiceUnavailable', 'The store is unavailable or contended, or the admin API has too many writes in progress; retry. outcome_unknown: the change may or may not have been applied; read the account first.'],
};

const reasonList = (status: number): string => (REASONS[status] ?? []).map(([reason]) => `\`${reason}\``).join(', ');

/** Operation responses: the given ones plus the error statuses (401, 429, 500, 503 on every authenticated operation). */
function responses(ok: Json, errors: readonly (number | readonly [number, string])[]): Json {
  const out: Json = { ...ok };
  const all: (number | readonly [number, string])[] = [...errors, 401, 429, 500, 503];
  for (const item of all.sort((a, b) => (typeof a === 'number' ? a : a[0]) - (typeof b === 'number' ? b : b[0]))) {
    const [status, description] = typeof item === 'number' ? [item, undefined] : item;
    const [name] = ERROR_RESPONSES[status]!;
    out[String(status)] = description === undefined ? ref('responses', name) : { ...ref('responses', name), description };
  }
  return out;
}

const HEADERS: Readonly<Record<Header, string>> = { 'ETag': 'ETag', 'Location': 'Location', 'Content-Disposition': 'ContentDisposition' };

/** A media-type map with each schema published: a definition of api-schemas.ts as a reference to its component. */
function content(byType: Content): Json {
  return Object.fromEntries(Object.entries(byType).map(([type, body]) => [type, { schema: named(body as TSchema) }]));
}

/** One operation of the route table, as the document describes it. */
function operation(route: NativeRoute): Json {
  const { answer } = route;
  const headers = Object.fromEntries((answer.headers ?? ['ETag']).map((name) => [name, ref('headers', HEADERS[name])]));
  return {
    operationId: route.operationId,
    tags: [...route.tags],
    summary: route.summary,
    ...(route.description === undefined ? {} : { description: route.description }),
    ...(route.parameters === undefined ? {} : { parameters: route.parameters.map((name) => ref('parameters', name)) }),
    ...(route.body === undefined ? {} : { requestBody: { required: true, content: content(route.body) } }),
    responses: responses({
      [answer.status]: { description: answer.description, ...(Object.keys(headers).length > 0 ? { headers } : {}), content: content(answer.content) },
    }, route.refusals),
  };
}

/** The document's paths of the native routes: each path with its path parameters, then its operations in table order. */
function nativePaths(): Json {
  const out: Record<string, Json> = {};
  for (const route of NATIVE_ROUTES) {
    const params = pathParameters(route.path);
    out[route.path] ??= params.length === 0 ? {} : { parameters: params.map((name) => ref('parameters', PATH_PARAMETERS[name])) };
    const path = out[route.path]!;
    const method = route.method.toLowerCase();
    if (method in path) throw new Error(`route ${route.method} ${route.path} is declared twice`);
    path[method] = operation(route);
  }
  return out;
}

/** The native routes (native-routes.ts), and the paths the dispatcher serves before them (handler.ts). */
function paths(): Json {
  const health = (path: string, what: string): Json => ({
    get: {
      operationId: path === '/healthz' ? 'health' : 'readiness',
      tags: ['health'],
      summary: what,
      security: [],
      responses: {
        200: { description: 'Yes.', content: json(schema('Health')) },
        503: { description: 'No.', content: json(schema('Health')) },
      },
    },
  });
  return {
    '/healthz': health('/healthz', 'Whether the gateway process is alive'),
    '/readyz': health('/readyz', 'Whether the gateway is ready to enforce (listening, store usable)'),
    '/v1/openapi.json': {
      get: {
        operationId: 'openApiDocument',
        tags: ['health'],
        summary: 'This document',
        security: [],
        responses: { 200: { description: 'The OpenAPI 3.1 document of the native management API.', content: json({ type: 'object' }) } },
      },
    },
    ...nativePaths(),
  };
}

function parameters(): Json {
  const query = (name: string, description: string, body: Json, required = false): Json => ({ name, in: 'query', description, ...(required ? { required } : {}), schema: body });
  return {
    Account: {
      name: 'account',
      in: 'path',
      required: true,
      description: 'The account id (case-sensitive), percent-encoded.',
      schema: named(Path.account),
    },
    EntryId: { name: 'id', in: 'path', required: true, description: 'The entry id.', schema: named(Path.id) },
    KeyId: { name: 'key', in: 'path', required: true, description: 'The API key\'s id (`key_...`), never the key.', schema: named(Path.key) },
    Unrestricted: query('unrestricted', '`true`: only enabled keys whose effective list admits every address; `false`: only the others.', plain(Query.unrestricted)),
    Limit: query('limit', `Page size (default ${DEFAULT_PAGE}).`, plain(Query.limit)),
    Cursor: query('cursor', 'The `next` of the previous page; omit for the first.', { type: 'string' }),
    ActionFilter: query('action', 'Only entries with this action.', plain(Query.action)),
    EnabledFilter: query('enabled', 'Only enabled (true) or disabled (false) entries.', plain(Query.enabled)),
    Q: query('q', 'Only entries whose ip_address or description contains this text (case-insensitive).', { type: 'string' }),
    Replace: query('replace', 'Remove the allow entries the new or changed one covers, in the same change, instead of refusing with 409 `superset_conflict`.', plain(Query.replace)),
    Guard: query('guard', '`strict` refuses a change that would lock out a recently seen caller (409 `would_lock_out`); `warn` (the default) reports them in `warnings`, but does not relax an account whose `guard` setting is strict.', plain(Query.guard)),
    Format: query('format', 'Export format.', plain(Query.format)),
    DryRun: query('dry_run', '`true` changes nothing: the body is read, checked and applied to the list as it is now, and the answer says per row what would be stored (`rows`), whether the whole would be (`would_store`), and with it the list and the lockout warnings. Send the real request with `If-Match` set to the `version` it names, so what was previewed is what is stored.', plain(Query.dry_run)),
    Mode: query('mode', '`merge` adds the items whose networks are not listed yet; `replace` replaces the list.', plain(Query.mode)),
    Ip: query('ip', 'An IPv4 or IPv6 address.', { type: 'string' }, true),
    AuditAccount: query('account', 'Only the events of this account (required for an account credential: its own); `_global` for the global list\'s (not for an account credential).', { type: 'string' }),
    AuditCursor: query('cursor', 'The `next` of the previous page (older events); omit for the newest.', { type: 'string' }),
    IfMatch: {
      name: 'If-Match',
      in: 'header',
      description: 'The ETag of the version the change is based on (e.g. `"3"`); 412 `version_conflict` when the account has moved on.',
      schema: { type: 'string' },
    },
  };
}

function headers(): Json {
  return {
    ETag: { description: 'The account\'s version, quoted (`"3"`); send it back in If-Match.', required: true, schema: { type: 'string', pattern: '^"[0-9]+"$' } },
    Location: { description: 'The path of the created entry or key.', required: true, schema: { type: 'string' } },
    ContentDisposition: { description: 'For CSV: `attachment; filename="<account>-ip-acl.csv"` (`<account>-<key>-ip-acl.csv` for a key\'s list).', schema: { type: 'string' } },
    WWWAuthenticate: { description: '`Bearer`.', required: true, schema: { type: 'string' } },
    RetryAfter: { description: 'Seconds until this address may authenticate again.', required: true, schema: { type: 'integer', minimum: 1 } },
    Allow: { description: 'The methods the path accepts.', required: true, schema: { type: 'string' } },
  };
}

function errorResponses(): Json {
  const out: Json = {};
  for (const [status, [name, description]] of Object.entries(ERROR_RESPONSES)) {
    const extra = status === '401' ? { 'WWW-Authenticate': ref('headers', 'WWWAuthenticate') }
      : status === '429' ? { 'Retry-After': ref('headers', 'RetryAfter') }
        : status === '405' ? { Allow: ref('headers', 'Allow') }
          : {};
    out[name] = {
      description: `${description} Reasons: ${reasonList(Number(status))}.`,
      ...(Object.keys(extra).length > 0 ? { headers: extra } : {}),
      content: json(schema('Error')),
    };
  }
  return out;
}

function schemas(): Json {
  const statuses = Object.keys(REASONS).map(Number);
  const named: Record<string, TSchema> = {
    ...SCHEMAS,
    Error: errorSchema(
      statuses,
      statuses.flatMap((s) => REASONS[s]!.map(([reason]) => reason)),
      `Stable, machine-readable; part of the API. ${statuses.map((s) => `${s}: ${REASONS[s]!.map(([r, what]) => `\`${r}\` (${what})`).join('; ')}`).join('. ')}.`,
    ),
  };
  const names = new Map<unknown, string>(Object.entries(named).map(([name, body]) => [body, name]));
  return Object.fromEntries(Object.entries(named).map(([name, body]) => [name, published(body, names, body)]));
}

/** A schema with no named schema inside, as plain JSON. */
const plain = (body: TSchema): Json => published(body, new Map(), body) as Json;

const NAMES: ReadonlyMap<unknown, string> = new Map(Object.entries(SCHEMAS).map(([name, each]) => [each, name]));

/** A schema as an operation or a parameter carries it: a reference when it is a named one (components.schemas), else plain JSON. */
const named = (body: TSchema): Json => published(body, NAMES, null) as Json;

/**
 * A schema as the document carries it: plain JSON (TypeBox's own markers are not enumerable),
 * with every named schema inside it replaced by a reference to its component.
 */

function published(node: unknown, names: ReadonlyMap<unknown, string>, root: unknown): unknown {
  if (node !== root && names.has(node)) return schema(names.get(node)!);
  if (Array.isArray(node)) return node.map((item) => published(item, names, root));
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, published(value, names, root)]));
}

/** The OpenAPI 3.1 document of the native management API, as served at GET /v1/openapi.json. */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'allowgate management API',
      version: version(),
      description: [
        'The native management API of allowgate, the reverse-proxy gateway that enforces per-account IP access lists (docs/management-api.md).',
        'Authenticate with `Authorization: Bearer <token>`. Roles: owner and admin may do everything; read-only reads every list, settings and the audit trail; an account credential reads and changes its own account\'s entries only.',
        'Every response about an account\'s list or settings carries `ETag: "<version>"`; every write accepts `If-Match`.',
        'Paths not listed here answer 404 `not_found`, and listed paths with another method 405 `method_not_allowed` with `Allow` (see components.responses). HEAD is accepted wherever GET is.',
        'The endpoints compatible with other providers\' IP access-list APIs (`/api/v1/Account/...`, `/platform_api/...`) share the same core but are not described here: they follow those providers\' own documents.',
      ].join('\n\n'),
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags: [
      { name: 'accounts', description: 'Accounts, their settings, checks and recent callers.' },
      { name: 'entries', description: 'An account\'s IP access list.' },
      { name: 'global list', description: 'The global IP access list, checked before every account\'s.' },
      { name: 'keys', description: 'An account\'s API keys (the api-key identity strategy), each with its own IP access list.' },
      { name: 'audit', description: 'The audit trail of committed changes.' },
      { name: 'health', description: 'Served without credentials.' },
    ],
    security: [{ bearer: [] }],
    paths: paths(),
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The gateway\'s admin token, or a credential of admin.credentials.' } },
      schemas: schemas(),
      parameters: parameters(),
      headers: headers(),
      responses: errorResponses(),
    },
  };
}
