import type { TSchema } from 'typebox';
import {
  Accounts, AuditPage, Check, Deleted, Entry, EntryExport, EntryInput, EntryList, EntryListInput, EntryPatch, EntryResult, ImportResult,
  Key, KeyDeleted, KeyInput, KeyList, KeyPatch, KeyReport, ListReplaced, Path, RecentIps, Settings, SettingsInput, Whoami,
} from './api-schemas.ts';
import { CSV_COLUMNS } from './csv.ts';

/*
 * The native management API's routes, each declared once: method, path, what it does, its
 * parameters, request body, answer and refusals. The router (native.ts binds a handler to each
 * `action`) and the OpenAPI document's operations (openapi.ts) are both made from this table, so
 * no route is served undocumented and none is documented unserved. Pure data: schemas come from
 * api-schemas.ts, the refusals' wording and the shared parameters from openapi.ts.
 */

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a route does; native.ts has one handler per action (the global list's routes share the account list's). */
export type Action =
  | 'whoami' | 'listAccounts' | 'getSettings' | 'putSettings' | 'check' | 'recentIps' | 'audit'
  | 'listEntries' | 'createEntry' | 'replaceList' | 'exportList' | 'importList' | 'getEntry' | 'updateEntry' | 'deleteEntry'
  | KeyAction;

/** What a route of the key registry does (keys.ts has their handlers). */
export type KeyAction = 'listAllKeys' | 'listKeys' | 'createKey' | 'getKey' | 'updateKey' | 'deleteKey';

/** A refusal status an operation documents, alone or with the reasons it gives there. */
export type Refusals = readonly (number | readonly [number, string])[];

/** A response header, by the name the document's components.headers gives it. */
export type Header = 'ETag' | 'Location' | 'Content-Disposition';

/** A media type's schema: a definition of api-schemas.ts (published as a reference) or plain JSON Schema. */
export type Content = Readonly<Record<string, TSchema | Readonly<Record<string, unknown>>>>;

export interface NativeRoute {
  readonly method: Method;
  /** The path template; its `{name}` segments are api-schemas.ts Path parameters. */
  readonly path: string;
  readonly action: Action;
  readonly operationId: string;
  readonly tags: readonly string[];
  readonly summary: string;
  readonly description?: string;
  /** Query and header parameters, by their name in the document's components.parameters. */
  readonly parameters?: readonly string[];
  /** The request body, by media type (always required). */
  readonly body?: Content;
  /** The answer: status, words, body by media type, headers (ETag when not given). */
  readonly answer: { readonly status: 200 | 201; readonly description: string; readonly content: Content; readonly headers?: readonly Header[] };
  /** The refusals besides those of every authenticated operation (401, 429, 500, 503). */
  readonly refusals: Refusals;
}

/** The document's name of each path parameter (components.parameters), by its name in a template. */
export const PATH_PARAMETERS: Readonly<Record<keyof typeof Path, string>> = { account: 'Account', id: 'EntryId', key: 'KeyId' };

const json = (schema: TSchema): Content => ({ 'application/json': schema });

const WRITE_NOTE = 'Writes accept If-Match (412 `version_conflict` when the account moved on) and run the lockout guard: callers seen in the last 24 h that the change would newly refuse, and an account the change would open to every address, come back in `warnings` (or, with guard=strict or the account setting `guard: strict`, the change is refused with 409 `would_lock_out` or `would_open`).';

/** The eight entry routes of an account's list, the global list, or an API key's own list. */
function entryRoutes(kind: 'account' | 'global' | 'key'): NativeRoute[] {
  const base = kind === 'global' ? '/v1/global/ip-acl' : kind === 'key' ? '/v1/accounts/{account}/keys/{key}/ip-acl' : '/v1/accounts/{account}/ip-acl';
  const which = kind === 'global' ? 'the global list' : kind === 'key' ? 'an API key\'s own list' : 'the account\'s list';
  const op = (name: string): string => (kind === 'account' ? name : name.replace(/Entr(y|ies)|List/, (m) => `${kind === 'global' ? 'Global' : 'Key'}${m}`));
  const tags = [kind === 'global' ? 'global list' : kind === 'key' ? 'keys' : 'entries'];
  const scope = kind === 'global'
    ? 'The global list is checked before every account\'s list: owner and admin credentials change it, read-only ones read it.'
    : kind === 'key'
      ? 'A request presenting the key must pass the account\'s list and this one (refused with `ip_not_allowed_for_key`, `ip_denied_for_key`); a key list that never had an allow entry restricts nothing by itself, and one that had some and has none in force any more refuses every caller (`list_empty_for_key`) until one is, or it is opened (PATCH the key with `restricted: false`). The same entry shape, validation, temporary entries, audit and lockout guard (the key\'s own recent callers) as an account\'s list; 404 `key_not_found` once the key is deleted. Credentials as for the account.'
      : 'Owner and admin credentials: any account; read-only: read; an account credential: its own account only.';
  const badAccount = kind === 'global' ? '' : '`invalid_account`, ';
  const routes: NativeRoute[] = [
    {
      method: 'GET', path: base, action: 'listEntries', operationId: op('listEntries'), tags,
      summary: `Entries of ${which}, paged and filtered`,
      description: `Entries in list order, \`limit\` at a time; \`next\` is the cursor of the following page (null on the last). \`total\` counts the filtered set. ${scope}`,
      parameters: ['Limit', 'Cursor', 'ActionFilter', 'EnabledFilter', 'Q'],
      answer: { status: 200, description: 'A page of entries.', content: json(EntryList) },
      refusals: [[400, `${badAccount}\`invalid_field\` (limit, cursor, action, enabled)`], 403],
    },
    {
      method: 'POST', path: base, action: 'createEntry', operationId: op('createEntry'), tags,
      summary: `Add an entry to ${which}`,
      description: `Validated inside the atomic change (see the reason codes of 400 and 409). ${WRITE_NOTE}`,
      parameters: ['Replace', 'Guard', 'IfMatch'],
      body: json(EntryInput),
      answer: { status: 201, description: 'The entry as stored.', content: json(EntryResult), headers: ['ETag', 'Location'] },
      refusals: [400, 403, 409, 412, 413, 415],
    },
    {
      method: 'PUT', path: base, action: 'replaceList', operationId: op('replaceList'), tags,
      summary: `Replace ${which} atomically`,
      description: `The items are checked in order, as if added one by one; the first refusal names its item and nothing is written. Fields the server assigns (id, cidrs, created_at, updated_at) are ignored, so an export can be sent back. ${WRITE_NOTE}`,
      parameters: ['Replace', 'Guard', 'IfMatch', 'DryRun'],
      body: json(EntryListInput),
      answer: { status: 200, description: 'The list as stored (with dry_run=true: what each item would do, nothing stored).', content: json(ListReplaced) },
      refusals: [400, 403, 408, 409, 412, 413, 415],
    },
    {
      method: 'GET', path: `${base}/export`, action: 'exportList', operationId: op('exportList'), tags,
      summary: `Export ${which} as JSON or CSV`,
      parameters: ['Format'],
      answer: {
        status: 200,
        description: `The whole list. CSV: a header row \`${CSV_COLUMNS.join(',')}\`, then one row per entry (RFC 4180, CRLF), served as an attachment.`,
        content: { 'application/json': EntryExport, 'text/csv': { type: 'string' } },
        headers: ['ETag', 'Content-Disposition'],
      },
      refusals: [[400, `${badAccount}\`invalid_field\` (format)`], 403],
    },
    {
      method: 'POST', path: `${base}/import`, action: 'importList', operationId: op('importList'), tags,
      summary: `Import entries into ${which}`,
      description: `JSON \`{"entries": [...]}\` (as for PUT) or \`text/csv\` with a header row naming at least ip_address (columns: ${CSV_COLUMNS.join(', ')}). mode=merge (default) skips networks already listed; mode=replace replaces the list. ${WRITE_NOTE}`,
      parameters: ['Mode', 'Replace', 'Guard', 'IfMatch', 'DryRun'],
      body: {
        'application/json': EntryListInput,
        'text/csv': { type: 'string', description: `A header row naming the columns (${CSV_COLUMNS.join(', ')}; ip_address required), then one row per entry.` },
      },
      answer: { status: 200, description: 'The list as stored after the import (with dry_run=true: what each row would do, nothing stored).', content: json(ImportResult) },
      refusals: [400, 403, 408, 409, 412, 413, 415],
    },
    {
      method: 'GET', path: `${base}/{id}`, action: 'getEntry', operationId: op('getEntry'), tags,
      summary: `One entry of ${which}`,
      answer: { status: 200, description: 'The entry.', content: json(Entry) },
      refusals: [400, 403, [404, '`entry_not_found`']],
    },
    {
      method: 'PATCH', path: `${base}/{id}`, action: 'updateEntry', operationId: op('updateEntry'), tags,
      summary: `Change fields of an entry of ${which}`,
      description: `Any field may change; \`enabled: false\` disables the entry, \`expires_at: null\` makes it permanent. ${WRITE_NOTE}`,
      parameters: ['Replace', 'Guard', 'IfMatch'],
      body: json(EntryPatch),
      answer: { status: 200, description: 'The entry as stored.', content: json(EntryResult) },
      refusals: [400, 403, [404, '`entry_not_found`'], 409, 412, 413, 415],
    },
    {
      method: 'DELETE', path: `${base}/{id}`, action: 'deleteEntry', operationId: op('deleteEntry'), tags,
      summary: `Delete an entry of ${which}`,
      description: WRITE_NOTE,
      parameters: ['Guard', 'IfMatch'],
      answer: { status: 200, description: 'The id of the deleted entry, and the lockout warnings (always present, possibly empty).', content: json(Deleted) },
      refusals: [400, 403, [404, '`entry_not_found`'], [409, '`would_lock_out`'], 412],
    },
  ];
  return kind === 'key' ? routes.map(withKeyNotFound) : routes;
}

/** Every operation of a key's list also answers 404 `key_not_found` (the key is gone). */
function withKeyNotFound(route: NativeRoute): NativeRoute {
  const notFound = route.refusals.find((r) => r === 404 || (typeof r !== 'number' && r[0] === 404));
  const others = route.refusals.filter((r) => r !== notFound);
  return { ...route, refusals: [...others, [404, typeof notFound === 'object' ? `${notFound[1]}, \`key_not_found\`` : '`key_not_found`']] };
}

const KEY_NOT_FOUND = [404, '`key_not_found`'] as const;

/** The key registry, a key's check and recent callers, and the report of every key. */
const KEY_ROUTES: readonly NativeRoute[] = [
  {
    method: 'GET', path: '/v1/keys', action: 'listAllKeys', operationId: 'listAllKeys', tags: ['keys'],
    summary: 'Every registered key, with whether its effective list restricts it',
    description: 'Keys of every account the credential may read, in account order. `account_restricts`: the account\'s list (its parent\'s for a subaccount, under its mode and default) refuses some address; `key_restricts`: the key\'s own list does. `unrestricted=true` keeps the enabled keys neither restricts: the keys any address may use. The global list is not counted.',
    parameters: ['Unrestricted', 'Limit', 'Cursor'],
    answer: { status: 200, description: 'A page of keys.', content: json(KeyReport), headers: [] },
    refusals: [[400, '`invalid_field` (unrestricted, limit, cursor)']],
  },
  {
    method: 'GET', path: '/v1/accounts/{account}/keys', action: 'listKeys', operationId: 'listKeys', tags: ['keys'],
    summary: 'The account\'s API keys, with their last use',
    description: 'Never the keys themselves nor their digests: a fingerprint (a short prefix of the stored digest) tells them apart.',
    parameters: ['Limit', 'Cursor'],
    answer: { status: 200, description: 'A page of keys.', content: json(KeyList) },
    refusals: [[400, '`invalid_account`, `invalid_field` (limit, cursor)'], 403],
  },
  {
    method: 'POST', path: '/v1/accounts/{account}/keys', action: 'createKey', operationId: 'createKey', tags: ['keys'],
    summary: 'Register an API key for the account',
    description: 'The key as clients send it (`key`, stored as HMAC-SHA-256 under the gateway\'s key secret), or its SHA-256 (`key_sha256`, for a team that will not send the key; the presented key is then looked up by its SHA-256). A key belongs to one account: one registered anywhere already is 409 `duplicate`. Accepts If-Match on the account.',
    parameters: ['IfMatch'],
    body: json(KeyInput),
    answer: { status: 201, description: 'The key as registered.', content: json(Key), headers: ['ETag', 'Location'] },
    refusals: [400, 403, [409, '`duplicate`, `limit_reached`, `no_key_secret`'], 412, 413, 415],
  },
  {
    method: 'GET', path: '/v1/accounts/{account}/keys/{key}', action: 'getKey', operationId: 'getKey', tags: ['keys'],
    summary: 'One API key',
    answer: { status: 200, description: 'The key.', content: json(Key) },
    refusals: [400, 403, KEY_NOT_FOUND],
  },
  {
    method: 'PATCH', path: '/v1/accounts/{account}/keys/{key}', action: 'updateKey', operationId: 'updateKey', tags: ['keys'],
    summary: 'Rename, disable or enable an API key; open or close its own list',
    description: 'A disabled key is refused (401 `key_disabled`) on every replica from the next request, never passed as anonymous. `restricted` (on its own) changes the key\'s list instead: If-Match and the ETag are then that list\'s version, and the lockout guard runs on the key\'s recent callers.',
    parameters: ['IfMatch', 'Guard'],
    body: json(KeyPatch),
    answer: { status: 200, description: 'The key as stored.', content: json(Key) },
    refusals: [400, 403, KEY_NOT_FOUND, [409, '`list_in_force` (restricted: false while an allow entry of the key is enabled), `would_open`, `would_lock_out` (guard=strict)'], 412, 413, 415],
  },
  {
    method: 'DELETE', path: '/v1/accounts/{account}/keys/{key}', action: 'deleteKey', operationId: 'deleteKey', tags: ['keys'],
    summary: 'Delete an API key, and its own list',
    description: 'The key is unknown from the next request on (401 `unknown_key`, or anonymous as configured).',
    parameters: ['IfMatch'],
    answer: { status: 200, description: 'The id of the deleted key.', content: json(KeyDeleted) },
    refusals: [400, 403, KEY_NOT_FOUND, 412],
  },
  {
    method: 'GET', path: '/v1/accounts/{account}/keys/{key}/check', action: 'check', operationId: 'checkKeyIp', tags: ['keys'],
    summary: 'What the proxy would decide now for a caller presenting the key at an IP',
    parameters: ['Ip'],
    answer: { status: 200, description: 'The decision and the entry that decides it.', content: json(Check), headers: [] },
    refusals: [[400, '`invalid_account`, `invalid_format` (ip)'], 403, KEY_NOT_FOUND],
  },
  {
    method: 'GET', path: '/v1/accounts/{account}/keys/{key}/recent-ips', action: 'recentIps', operationId: 'keyRecentIps', tags: ['keys'],
    summary: 'Recently seen callers presenting the key',
    description: 'Distinct client IPs of forwarded requests with this key (last 24 h), most recent first, with the decision each gets now: what the lockout guard of the key\'s list protects.',
    parameters: ['Limit'],
    answer: { status: 200, description: 'The callers.', content: json(RecentIps), headers: [] },
    refusals: [[400, '`invalid_account`, `invalid_field` (limit)'], 403, KEY_NOT_FOUND],
  },
];

/** Every route of the native API, in the document's order. */
export const NATIVE_ROUTES: readonly NativeRoute[] = [
  {
    method: 'GET', path: '/v1/accounts', action: 'listAccounts', operationId: 'listAccounts', tags: ['accounts'],
    summary: 'Accounts with a record',
    description: 'Account ids with a stored record (entries or settings), paged; an account credential sees its own only.',
    parameters: ['Limit', 'Cursor'],
    answer: { status: 200, description: 'A page of account ids.', content: json(Accounts), headers: [] },
    refusals: [[400, '`invalid_field` (limit, cursor)']],
  },
  {
    method: 'GET', path: '/v1/accounts/{account}', action: 'getSettings', operationId: 'getSettings', tags: ['accounts'],
    summary: 'An account\'s settings',
    description: 'Unset settings are null (inherited from the parent, then the gateway configuration). An account without a record answers version 0.',
    answer: { status: 200, description: 'The settings.', content: json(Settings) },
    refusals: [[400, '`invalid_account`'], 403],
  },
  {
    method: 'PUT', path: '/v1/accounts/{account}', action: 'putSettings', operationId: 'updateSettings', tags: ['accounts'],
    summary: 'Change an account\'s settings',
    description: `Given fields replace, null clears (inherit), absent fields keep their value. Account credentials may not change settings (403). ${WRITE_NOTE}`,
    parameters: ['Guard', 'IfMatch'],
    body: json(SettingsInput),
    answer: { status: 200, description: 'The settings as stored.', content: json(Settings) },
    refusals: [400, 403, [409, '`would_lock_out`, `would_open`, `list_in_force`, `parent_not_found`'], 412, 413, 415],
  },
  {
    method: 'GET', path: '/v1/global', action: 'getSettings', operationId: 'getGlobalSettings', tags: ['global list'],
    summary: 'The global list\'s settings',
    description: 'The same shape as an account\'s; only `default` (callers without credentials under anonymous: global) and `restricted` mean anything here.',
    answer: { status: 200, description: 'The settings.', content: json(Settings) },
    refusals: [403],
  },
  {
    method: 'PUT', path: '/v1/global', action: 'putSettings', operationId: 'updateGlobalSettings', tags: ['global list'],
    summary: 'Change the global list\'s settings',
    description: `Only \`default\` and \`restricted\` (\`false\` opens an emptied global list); any other field is 400 \`invalid_field\`. ${WRITE_NOTE}`,
    parameters: ['Guard', 'IfMatch'],
    body: json(SettingsInput),
    answer: { status: 200, description: 'The settings as stored.', content: json(Settings) },
    refusals: [400, 403, [409, '`would_open`, `list_in_force`'], 412, 413, 415],
  },
  {
    method: 'GET', path: '/v1/whoami', action: 'whoami', operationId: 'whoami', tags: ['accounts'],
    summary: 'The credential making the request: its name, role and (for an account credential) account',
    answer: { status: 200, description: 'The credential.', content: json(Whoami), headers: [] },
    refusals: [],
  },
  {
    method: 'GET', path: '/v1/accounts/{account}/check', action: 'check', operationId: 'checkIp', tags: ['accounts'],
    summary: 'What the proxy would decide now for a caller of the account at an IP',
    parameters: ['Ip'],
    answer: { status: 200, description: 'The decision and the entry that decides it.', content: json(Check), headers: [] },
    refusals: [[400, '`invalid_account`, `invalid_format` (ip)'], 403],
  },
  {
    method: 'GET', path: '/v1/accounts/{account}/recent-ips', action: 'recentIps', operationId: 'recentIps', tags: ['accounts'],
    summary: 'Recently seen callers of the account',
    description: 'Distinct client IPs of forwarded requests (last 24 h), most recent first, with the decision each gets now.',
    parameters: ['Limit'],
    answer: { status: 200, description: 'The callers.', content: json(RecentIps), headers: [] },
    refusals: [[400, '`invalid_account`, `invalid_field` (limit)'], 403],
  },
  ...entryRoutes('account'),
  ...entryRoutes('global'),
  ...KEY_ROUTES,
  ...entryRoutes('key'),
  {
    method: 'GET', path: '/v1/audit', action: 'audit', operationId: 'listAudit', tags: ['audit'],
    summary: 'The audit trail, newest first',
    description: 'Every committed change. Owner, admin and read-only credentials read all of it; an account credential must name its own account. Retention: each account keeps its newest `audit.capPerAccount` events; with the memory and file logs, all together keep `audit.cap` events (when over, the account holding the most loses its oldest, so one account flooding the trail pushes out only its own history); with Redis, the unfiltered trail is a stream of the newest `audit.cap` events of all accounts, and `account=` reads that account\'s own stream.',
    parameters: ['AuditAccount', 'Limit', 'AuditCursor'],
    answer: { status: 200, description: 'A page of events.', content: json(AuditPage), headers: [] },
    refusals: [[400, '`invalid_field` (limit, cursor)'], [403, '`forbidden`: an account credential without `account`, or with another account'], [404, '`audit_disabled`']],
  },
];

/** The path parameters a template names, in order (`/v1/accounts/{account}/ip-acl/{id}`: account, id). */
export function pathParameters(template: string): (keyof typeof Path)[] {
  return [...template.matchAll(/\{([^}]+)\}/g)].map((m) => {
    const name = m[1]!;
    if (!(name in PATH_PARAMETERS)) throw new Error(`route ${template} names path parameter {${name}}, which api-schemas.ts Path does not define`);
    return name as keyof typeof Path;
  });
}
