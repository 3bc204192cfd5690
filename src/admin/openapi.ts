import { readFileSync } from 'node:fs';
import { MAX_PARENT_DEPTH } from '../list/inherit.ts';
import { BODY_TIMEOUT_MS, DEFAULT_BODY_LIMITS } from './body.ts';
import type { TSchema } from 'typebox';
import { DEFAULT_PAGE, errorSchema, Path, Query, SCHEMAS } from './api-schemas.ts';
import { CSV_COLUMNS } from './csv.ts';
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

const etagHeader = { ETag: { ...ref('headers', 'ETag') } };

function success(description: string, body: Json, headers: Json = etagHeader): Json {
  return { description, ...(Object.keys(headers).length > 0 ? { headers } : {}), content: json(body) };
}

const WRITE_NOTE = 'Writes accept If-Match (412 `version_conflict` when the account moved on) and run the lockout guard: callers seen in the last 24 h that the change would newly refuse, and an account the change would open to every address, come back in `warnings` (or, with guard=strict or the account setting `guard: strict`, the change is refused with 409 `would_lock_out` or `would_open`).';

/** The eight entry routes for an account's list, the global list, or an API key's own list. */
function entryPaths(kind: 'account' | 'global' | 'key'): Json {
  const global = kind === 'global';
  const base = kind === 'global' ? '/v1/global/ip-acl' : kind === 'key' ? '/v1/accounts/{account}/keys/{key}/ip-acl' : '/v1/accounts/{account}/ip-acl';
  const which = kind === 'global' ? 'the global list' : kind === 'key' ? 'an API key\'s own list' : 'the account\'s list';
  const op = (name: string): string => (kind === 'account' ? name : name.replace(/Entr(y|ies)|List/, (m) => `${kind === 'global' ? 'Global' : 'Key'}${m}`));
  const tags = [kind === 'global' ? 'global list' : kind === 'key' ? 'keys' : 'entries'];
  const scope = kind === 'global'
    ? 'The global list is checked before every account\'s list: owner and admin credentials change it, read-only ones read it.'
    : kind === 'key'
      ? 'A request presenting the key must pass the account\'s list and this one (refused with `ip_not_allowed_for_key`, `ip_denied_for_key`); a key list that never had an allow entry restricts nothing by itself, and one that had some and has none in force any more refuses every caller (`list_empty_for_key`) until one is, or it is opened (PATCH the key with `restricted: false`). The same entry shape, validation, temporary entries, audit and lockout guard (the key\'s own recent callers) as an account\'s list; 404 `key_not_found` once the key is deleted. Credentials as for the account.'
      : 'Owner and admin credentials: any account; read-only: read; an account credential: its own account only.';
  const ownParams = kind === 'global' ? [] : kind === 'key' ? [ref('parameters', 'Account'), ref('parameters', 'KeyId')] : [ref('parameters', 'Account')];
  const pathParams = ownParams.length === 0 ? {} : { parameters: ownParams };
  const idParams = { parameters: [...ownParams, ref('parameters', 'EntryId')] };
  const badAccount = global ? '' : '`invalid_account`, ';
  const routes: Json = {
    [base]: {
      ...pathParams,
      get: {
        operationId: op('listEntries'),
        tags,
        summary: `Entries of ${which}, paged and filtered`,
        description: `Entries in list order, \`limit\` at a time; \`next\` is the cursor of the following page (null on the last). \`total\` counts the filtered set. ${scope}`,
        parameters: [ref('parameters', 'Limit'), ref('parameters', 'Cursor'), ref('parameters', 'ActionFilter'), ref('parameters', 'EnabledFilter'), ref('parameters', 'Q')],
        responses: responses({ 200: success('A page of entries.', schema('EntryList')) }, [[400, `${badAccount}\`invalid_field\` (limit, cursor, action, enabled)`], 403]),
      },
      post: {
        operationId: op('createEntry'),
        tags,
        summary: `Add an entry to ${which}`,
        description: `Validated inside the atomic change (see the reason codes of 400 and 409). ${WRITE_NOTE}`,
        parameters: [ref('parameters', 'Replace'), ref('parameters', 'Guard'), ref('parameters', 'IfMatch')],
        requestBody: { required: true, content: json(schema('EntryInput')) },
        responses: responses({
          201: success('The entry as stored.', schema('EntryResult'), { ...etagHeader, Location: ref('headers', 'Location') }),
        }, [400, 403, 409, 412, 413, 415]),
      },
      put: {
        operationId: op('replaceList'),
        tags,
        summary: `Replace ${which} atomically`,
        description: `The items are checked in order, as if added one by one; the first refusal names its item and nothing is written. Fields the server assigns (id, cidrs, created_at, updated_at) are ignored, so an export can be sent back. ${WRITE_NOTE}`,
        parameters: [ref('parameters', 'Replace'), ref('parameters', 'Guard'), ref('parameters', 'IfMatch'), ref('parameters', 'DryRun')],
        requestBody: { required: true, content: json(schema('EntryListInput')) },
        responses: responses({ 200: success('The list as stored (with dry_run=true: what each item would do, nothing stored).', schema('ListReplaced')) }, [400, 403, 408, 409, 412, 413, 415]),
      },
    },
    [`${base}/export`]: {
      ...pathParams,
      get: {
        operationId: op('exportList'),
        tags,
        summary: `Export ${which} as JSON or CSV`,
        parameters: [ref('parameters', 'Format')],
        responses: responses({
          200: {
            description: `The whole list. CSV: a header row \`${CSV_COLUMNS.join(',')}\`, then one row per entry (RFC 4180, CRLF), served as an attachment.`,
            headers: { ...etagHeader, 'Content-Disposition': ref('headers', 'ContentDisposition') },
            content: {
              'application/json': { schema: schema('EntryExport') },
              'text/csv': { schema: { type: 'string' } },
            },
          },
        }, [[400, `${badAccount}\`invalid_field\` (format)`], 403]),
      },
    },
    [`${base}/import`]: {
      ...pathParams,
      post: {
        operationId: op('importList'),
        tags,
        summary: `Import entries into ${which}`,
        description: `JSON \`{"entries": [...]}\` (as for PUT) or \`text/csv\` with a header row naming at least ip_address (columns: ${CSV_COLUMNS.join(', ')}). mode=merge (default) skips networks already listed; mode=replace replaces the list. ${WRITE_NOTE}`,
        parameters: [ref('parameters', 'Mode'), ref('parameters', 'Replace'), ref('parameters', 'Guard'), ref('parameters', 'IfMatch'), ref('parameters', 'DryRun')],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: schema('EntryListInput') },
            'text/csv': { schema: { type: 'string', description: `A header row naming the columns (${CSV_COLUMNS.join(', ')}; ip_address required), then one row per entry.` } },
          },
        },
        responses: responses({ 200: success('The list as stored after the import (with dry_run=true: what each row would do, nothing stored).', schema('ImportResult')) }, [400, 403, 408, 409, 412, 413, 415]),
      },
    },
    [`${base}/{id}`]: {
      ...idParams,
      get: {
        operationId: op('getEntry'),
        tags,
        summary: `One entry of ${which}`,
        responses: responses({ 200: success('The entry.', schema('Entry')) }, [400, 403, [404, '`entry_not_found`']]),
      },
      patch: {
        operationId: op('updateEntry'),
        tags,
        summary: `Change fields of an entry of ${which}`,
        description: `Any field may change; \`enabled: false\` disables the entry, \`expires_at: null\` makes it permanent. ${WRITE_NOTE}`,
        parameters: [ref('parameters', 'Replace'), ref('parameters', 'Guard'), ref('parameters', 'IfMatch')],
        requestBody: { required: true, content: json(schema('EntryPatch')) },
        responses: responses({ 200: success('The entry as stored.', schema('EntryResult')) }, [400, 403, [404, '`entry_not_found`'], 409, 412, 413, 415]),
      },
      delete: {
        operationId: op('deleteEntry'),
        tags,
        summary: `Delete an entry of ${which}`,
        description: WRITE_NOTE,
        parameters: [ref('parameters', 'Guard'), ref('parameters', 'IfMatch')],
        responses: responses({ 200: success('The id of the deleted entry, and the lockout warnings (always present, possibly empty).', schema('Deleted')) }, [400, 403, [404, '`entry_not_found`'], [409, '`would_lock_out`'], 412]),
      },
    },
  };
  return kind === 'key' ? withKeyNotFound(routes) : routes;
}

/** Every operation of a key's list also answers 404 `key_not_found` (the key is gone). */
function withKeyNotFound(routes: Json): Json {
  for (const item of Object.values(routes) as Json[]) {
    for (const [method, operation] of Object.entries(item)) {
      if (method === 'parameters') continue;
      const answers = (operation as Json)['responses'] as Json;
      const existing = answers['404'] as Json | undefined;
      answers['404'] = { ...ref('responses', 'NotFound'), description: existing?.['description'] === undefined ? '`key_not_found`' : `${String(existing['description'])}, \`key_not_found\`` };
    }
  }
  return routes;
}

/** The key registry, a key's check and recent callers, and the report of every key. */
function keyPaths(): Json {
  const tags = ['keys'];
  const keyParams = { parameters: [ref('parameters', 'Account'), ref('parameters', 'KeyId')] };
  const notFound = [404, '`key_not_found`'] as const;
  return {
    '/v1/keys': {
      get: {
        operationId: 'listAllKeys',
        tags,
        summary: 'Every registered key, with whether its effective list restricts it',
        description: 'Keys of every account the credential may read, in account order. `account_restricts`: the account\'s list (its parent\'s for a subaccount, under its mode and default) refuses some address; `key_restricts`: the key\'s own list does. `unrestricted=true` keeps the enabled keys neither restricts: the keys any address may use. The global list is not counted.',
        parameters: [ref('parameters', 'Unrestricted'), ref('parameters', 'Limit'), ref('parameters', 'Cursor')],
        responses: responses({ 200: success('A page of keys.', schema('KeyReport'), {}) }, [[400, '`invalid_field` (unrestricted, limit, cursor)']]),
      },
    },
    '/v1/accounts/{account}/keys': {
      parameters: [ref('parameters', 'Account')],
      get: {
        operationId: 'listKeys',
        tags,
        summary: 'The account\'s API keys, with their last use',
        description: 'Never the keys themselves nor their digests: a fingerprint (a short prefix of the stored digest) tells them apart.',
        parameters: [ref('parameters', 'Limit'), ref('parameters', 'Cursor')],
        responses: responses({ 200: success('A page of keys.', schema('KeyList')) }, [[400, '`invalid_account`, `invalid_field` (limit, cursor)'], 403]),
      },
      post: {
        operationId: 'createKey',
        tags,
        summary: 'Register an API key for the account',
        description: 'The key as clients send it (`key`, stored as HMAC-SHA-256 under the gateway\'s key secret), or its SHA-256 (`key_sha256`, for a team that will not send the key; the presented key is then looked up by its SHA-256). A key belongs to one account: one registered anywhere already is 409 `duplicate`. Accepts If-Match on the account.',
        parameters: [ref('parameters', 'IfMatch')],
        requestBody: { required: true, content: json(schema('KeyInput')) },
        responses: responses({ 201: success('The key as registered.', schema('Key'), { ...etagHeader, Location: ref('headers', 'Location') }) }, [400, 403, [409, '`duplicate`, `limit_reached`, `no_key_secret`'], 412, 413, 415]),
      },
    },
    '/v1/accounts/{account}/keys/{key}': {
      ...keyParams,
      get: {
        operationId: 'getKey',
        tags,
        summary: 'One API key',
        responses: responses({ 200: success('The key.', schema('Key')) }, [400, 403, notFound]),
      },
      patch: {
        operationId: 'updateKey',
        tags,
        summary: 'Rename, disable or enable an API key; open or close its own list',
        description: 'A disabled key is refused (401 `key_disabled`) on every replica from the next request, never passed as anonymous. `restricted` (on its own) changes the key\'s list instead: If-Match and the ETag are then that list\'s version, and the lockout guard runs on the key\'s recent callers.',
        parameters: [ref('parameters', 'IfMatch'), ref('parameters', 'Guard')],
        requestBody: { required: true, content: json(schema('KeyPatch')) },
        responses: responses({ 200: success('The key as stored.', schema('Key')) }, [400, 403, notFound, [409, '`list_in_force` (restricted: false while an allow entry of the key is enabled), `would_open`, `would_lock_out` (guard=strict)'], 412, 413, 415]),
      },
      delete: {
        operationId: 'deleteKey',
        tags,
        summary: 'Delete an API key, and its own list',
        description: 'The key is unknown from the next request on (401 `unknown_key`, or anonymous as configured).',
        parameters: [ref('parameters', 'IfMatch')],
        responses: responses({ 200: success('The id of the deleted key.', schema('KeyDeleted')) }, [400, 403, notFound, 412]),
      },
    },
    '/v1/accounts/{account}/keys/{key}/check': {
      ...keyParams,
      get: {
        operationId: 'checkKeyIp',
        tags,
        summary: 'What the proxy would decide now for a caller presenting the key at an IP',
        parameters: [ref('parameters', 'Ip')],
        responses: responses({ 200: success('The decision and the entry that decides it.', schema('Check'), {}) }, [[400, '`invalid_account`, `invalid_format` (ip)'], 403, notFound]),
      },
    },
    '/v1/accounts/{account}/keys/{key}/recent-ips': {
      ...keyParams,
      get: {
        operationId: 'keyRecentIps',
        tags,
        summary: 'Recently seen callers presenting the key',
        description: 'Distinct client IPs of forwarded requests with this key (last 24 h), most recent first, with the decision each gets now: what the lockout guard of the key\'s list protects.',
        parameters: [ref('parameters', 'Limit')],
        responses: responses({ 200: success('The callers.', schema('RecentIps'), {}) }, [[400, '`invalid_account`, `invalid_field` (limit)'], 403, notFound]),
      },
    },
  };
}

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
    '/v1/accounts': {
      get: {
        operationId: 'listAccounts',
        tags: ['accounts'],
        summary: 'Accounts with a record',
        description: 'Account ids with a stored record (entries or settings), paged; an account credential sees its own only.',
        parameters: [ref('parameters', 'Limit'), ref('parameters', 'Cursor')],
        responses: responses({ 200: success('A page of account ids.', schema('Accounts'), {}) }, [[400, '`invalid_field` (limit, cursor)']]),
      },
    },
    '/v1/accounts/{account}': {
      parameters: [ref('parameters', 'Account')],
      get: {
        operationId: 'getSettings',
        tags: ['accounts'],
        summary: 'An account\'s settings',
        description: 'Unset settings are null (inherited from the parent, then the gateway configuration). An account without a record answers version 0.',
        responses: responses({ 200: success('The settings.', schema('Settings')) }, [[400, '`invalid_account`'], 403]),
      },
      put: {
        operationId: 'updateSettings',
        tags: ['accounts'],
        summary: 'Change an account\'s settings',
        description: `Given fields replace, null clears (inherit), absent fields keep their value. Account credentials may not change settings (403). ${WRITE_NOTE}`,
        parameters: [ref('parameters', 'Guard'), ref('parameters', 'IfMatch')],
        requestBody: { required: true, content: json(schema('SettingsInput')) },
        responses: responses({ 200: success('The settings as stored.', schema('Settings')) }, [400, 403, [409, '`would_lock_out`, `would_open`, `list_in_force`, `parent_not_found`'], 412, 413, 415]),
      },
    },
    '/v1/global': {
      get: {
        operationId: 'getGlobalSettings',
        tags: ['global list'],
        summary: 'The global list\'s settings',
        description: 'The same shape as an account\'s; only `default` (callers without credentials under anonymous: global) and `restricted` mean anything here.',
        responses: responses({ 200: success('The settings.', schema('Settings')) }, [403]),
      },
      put: {
        operationId: 'updateGlobalSettings',
        tags: ['global list'],
        summary: 'Change the global list\'s settings',
        description: `Only \`default\` and \`restricted\` (\`false\` opens an emptied global list); any other field is 400 \`invalid_field\`. ${WRITE_NOTE}`,
        parameters: [ref('parameters', 'Guard'), ref('parameters', 'IfMatch')],
        requestBody: { required: true, content: json(schema('SettingsInput')) },
        responses: responses({ 200: success('The settings as stored.', schema('Settings')) }, [400, 403, [409, '`would_open`, `list_in_force`'], 412, 413, 415]),
      },
    },
    '/v1/whoami': {
      get: {
        operationId: 'whoami',
        tags: ['accounts'],
        summary: 'The credential making the request: its name, role and (for an account credential) account',
        responses: responses({ 200: success('The credential.', schema('Whoami'), {}) }, []),
      },
    },
    '/v1/accounts/{account}/check': {
      parameters: [ref('parameters', 'Account')],
      get: {
        operationId: 'checkIp',
        tags: ['accounts'],
        summary: 'What the proxy would decide now for a caller of the account at an IP',
        parameters: [ref('parameters', 'Ip')],
        responses: responses({ 200: success('The decision and the entry that decides it.', schema('Check'), {}) }, [[400, '`invalid_account`, `invalid_format` (ip)'], 403]),
      },
    },
    '/v1/accounts/{account}/recent-ips': {
      parameters: [ref('parameters', 'Account')],
      get: {
        operationId: 'recentIps',
        tags: ['accounts'],
        summary: 'Recently seen callers of the account',
        description: 'Distinct client IPs of forwarded requests (last 24 h), most recent first, with the decision each gets now.',
        parameters: [ref('parameters', 'Limit')],
        responses: responses({ 200: success('The callers.', schema('RecentIps'), {}) }, [[400, '`invalid_account`, `invalid_field` (limit)'], 403]),
      },
    },
    ...entryPaths('account'),
    ...entryPaths('global'),
    ...keyPaths(),
    ...entryPaths('key'),
    '/v1/audit': {
      get: {
        operationId: 'listAudit',
        tags: ['audit'],
        summary: 'The audit trail, newest first',
        description: 'Every committed change. Owner, admin and read-only credentials read all of it; an account credential must name its own account. Retention: each account keeps its newest `audit.capPerAccount` events; with the memory and file logs, all together keep `audit.cap` events (when over, the account holding the most loses its oldest, so one account flooding the trail pushes out only its own history); with Redis, the unfiltered trail is a stream of the newest `audit.cap` events of all accounts, and `account=` reads that account\'s own stream.',
        parameters: [ref('parameters', 'AuditAccount'), ref('parameters', 'Limit'), ref('parameters', 'AuditCursor')],
        responses: responses({ 200: success('A page of events.', schema('AuditPage'), {}) }, [[400, '`invalid_field` (limit, cursor)'], [403, '`forbidden`: an account credential without `account`, or with another account'], [404, '`audit_disabled`']]),
      },
    },
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

/** A schema as a parameter carries it: a reference when it is a named one (components.schemas), else plain JSON. */
const named = (body: TSchema): Json => published(body, new Map(Object.entries(SCHEMAS).map(([name, each]) => [each, name])), null) as Json;

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
