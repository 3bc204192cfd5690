import { Type, type Static, type TSchema } from 'typebox';
import { ACCOUNT_ID_MAX_LENGTH, ACCOUNT_ID_PATTERN } from '../identity/account-id.ts';
import { KEY_MAX_LENGTH } from '../identity/key-text.ts';
import { RULE_FORMS } from '../ip/rule.ts';
import { MAX_PARENT_DEPTH } from '../list/limits.ts';

/*
 * The native management API's bodies, defined once. Each definition is a JSON Schema (TypeBox
 * builds plain JSON Schema objects), so the same object is what the OpenAPI document publishes
 * (openapi.ts puts them under components.schemas), what the tests validate answers against (with
 * ajv), and, through Static<>, the TypeScript type the console and the CLI read the answers as.
 * Domain rules (rule syntax, parents, limits, overlaps) stay code: a schema says what shape is
 * accepted, not whether a network may be listed.
 *
 * Kept free of Node built-ins: the browser console imports its types from here.
 */

export const MAX_DESCRIPTION_LENGTH = 255;
/** Largest max_entries an account may set. */
export const MAX_ENTRIES_SETTING = 100_000;

const dateTime = (description?: string) => Type.String({ format: 'date-time', ...(description === undefined ? {} : { description }) });
const nullable = <T extends TSchema>(schema: T, description?: string) => Type.Union([schema, Type.Null()], description === undefined ? {} : { description });
const oneOf = <const V extends string[]>(values: readonly [...V], description?: string) => Type.Enum<V>(values, description === undefined ? {} : { description });
/** An enum that also takes null (clears a setting, or none applies). */
const choice = <const V extends string[]>(values: readonly [...V], description: string) => nullable(Type.Enum<V>(values), description);
const strictObject = <P extends Record<string, TSchema>>(properties: P, description?: string) =>
  Type.Object(properties, { additionalProperties: false, ...(description === undefined ? {} : { description }) });

const ACTION = ['allow', 'deny'] as const;
const MODES = ['enforce', 'report-only', 'off'] as const;
const DEFAULTS = ['open', 'closed'] as const;
const GUARDS = ['warn', 'strict'] as const;
const ROLES = ['owner', 'admin', 'read-only', 'account'] as const;
const DECISIONS = ['allow', 'deny', 'report_only', 'error'] as const;

const version = () => Type.Integer({ minimum: 0, description: 'The account\'s version: grows by one with every committed change (0: no record yet). Also the ETag.' });
const account = () => Type.String({ description: 'The account id (`_global` for the global list).' });
const next = () => nullable(Type.String(), 'Cursor of the following page; null on the last.');
/** On the routes of an API key's own list (/v1/accounts/{a}/keys/{key}/...): the key's id. */
const listKey = () => Type.Optional(Type.String({ description: 'For an API key\'s own list: the key\'s id.' }));

const LIST_STATE_WORDS = '`none`: the list has never restricted (or was opened): the default decides; `active`: allow entries in force; `empty`: the account has had an allow list and none is in force any more: every caller is refused (`list_empty`) until one is, or the account is opened (`restricted: false`).';
const listState = (described = true) => oneOf(['none', 'active', 'empty'], described ? LIST_STATE_WORDS : undefined);

export const AccountId = Type.String({ pattern: ACCOUNT_ID_PATTERN, minLength: 1, maxLength: ACCOUNT_ID_MAX_LENGTH });

/**
 * The path parameters of the native API: each is checked against its schema (pathValue in
 * field-check.ts) and published as the document's path parameter.
 */
export const Path = {
  account: AccountId,
  id: Type.String(),
  key: Type.String(),
};

export const Warning = strictObject({
  reason: oneOf(['would_lock_out', 'would_open', 'will_empty'], '`would_lock_out`: a recently seen caller (ip, last_seen, decision) the change newly refuses; `would_open`: the account, which refuses some callers today, would be open to every address (message says why); `will_empty`: every allow entry left in force is temporary, so from `at` the account refuses every caller (`list_empty`). Only the first two are refused under guard=strict.'),
  ip: Type.Optional(Type.String()),
  last_seen: Type.Optional(dateTime()),
  decision: Type.Optional(oneOf(['deny'], 'What the caller gets after the change.')),
  at: Type.Optional(dateTime()),
  message: Type.Optional(Type.String()),
}, 'What a change would do to the account\'s callers.');

const warnings = () => Type.Optional(Type.Array(Warning, { description: 'Recently seen callers the change newly refuses, and whether it opens the account; present only when there are any.' }));

const entryProperties = {
  id: Type.String({ description: 'Assigned by the server, stable.' }),
  ip_address: Type.String({ description: 'The rule as entered.' }),
  cidrs: Type.Array(Type.String(), { description: 'What the rule became: the minimal exact list of CIDRs, canonical text.' }),
  action: oneOf(ACTION),
  description: Type.String({ maxLength: MAX_DESCRIPTION_LENGTH }),
  enabled: Type.Boolean(),
  created_at: dateTime(),
  updated_at: dateTime(),
  expires_at: nullable(Type.String({ format: 'date-time' }), 'When a temporary entry stops matching; null: permanent.'),
};

export const Entry = strictObject(entryProperties, 'An access-list entry.');
export const EntryResult = strictObject({ ...entryProperties, warnings: warnings() }, 'The entry as stored after a change, with the lockout warnings when there are any.');

const inputProperties = {
  ip_address: Type.String({ description: `The rule: ${RULE_FORMS}. A CIDR must not have host bits.` }),
  description: Type.Optional(Type.String({ maxLength: MAX_DESCRIPTION_LENGTH, default: '' })),
  name: Type.Optional(Type.String({ maxLength: MAX_DESCRIPTION_LENGTH, description: 'Another word for description (the consoles this API mirrors call it that); if both are given they must be equal.' })),
  action: Type.Optional(Type.Enum<['allow', 'deny']>(ACTION, { default: 'allow', description: 'Deny entries carve holes in allow ranges: they may sit inside allow entries and may name any space.' })),
  enabled: Type.Optional(Type.Boolean({ default: true })),
  expires_at: Type.Optional(nullable(Type.String({ format: 'date-time' }), 'ISO 8601, in the future: the entry stops matching then and is swept from the list later. null: permanent.')),
};

export const EntryInput = strictObject(inputProperties, 'A new entry.');
export const EntryPatch = strictObject({ ...inputProperties, ip_address: Type.Optional(inputProperties.ip_address) }, 'Fields to change; absent fields keep their value.');
export const EntryListItem = strictObject({
  ...inputProperties,
  id: Type.Optional(Type.String({ readOnly: true, description: 'Ignored (the server assigns ids).' })),
  cidrs: Type.Optional(Type.Array(Type.String(), { readOnly: true, description: 'Ignored.' })),
  created_at: Type.Optional(Type.String({ readOnly: true, description: 'Ignored.' })),
  updated_at: Type.Optional(Type.String({ readOnly: true, description: 'Ignored.' })),
}, 'An entry of a list replace or import: like EntryInput; the fields the server assigns are accepted and ignored, so an export can be sent back.');
export const EntryListInput = strictObject({
  entries: Type.Array(EntryListItem),
  account: Type.Optional(Type.String({ description: 'Ignored.' })),
  version: Type.Optional(Type.Integer({ description: 'Ignored.' })),
}, 'A whole list; an export ({account, version, entries}) is accepted as it is, its account and version ignored. Other keys are refused (unknown_field).');

export const EntryList = strictObject({
  account: account(),
  key: listKey(),
  version: version(),
  list_state: listState(),
  total: Type.Integer({ minimum: 0, description: 'Entries matching the filters (all pages).' }),
  entries: Type.Array(Entry),
  next: next(),
}, 'A page of entries, and the state of the account\'s own list.');
export const EntryExport = strictObject({ account: account(), key: listKey(), version: version(), entries: Type.Array(Entry) }, 'The whole list.');

export const ImportRow = strictObject({
  line: Type.Integer({ minimum: 1, description: 'CSV: the line; JSON: the item, from 1.' }),
  outcome: oneOf(['add', 'skip', 'refused'], '`skip`: merge, the network is already listed.'),
  entry: Type.Union([Type.Object({}), Type.Null()], { description: 'The entry as it would be stored (without the id and times the server assigns); null for a row that could not be read.' }),
  reason: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
}, 'What one row of a dry run would do.');

const dryRun = {
  dry_run: Type.Optional(Type.Boolean({ description: 'Present (true) on a dry run: nothing was stored; `version` is the current one, to send back in If-Match.' })),
  would_store: Type.Optional(Type.Boolean({ description: 'Dry run: whether the request as sent would be stored (every row readable and accepted).' })),
  rows: Type.Optional(Type.Array(ImportRow, { description: 'Dry run: what each row would do, in order.' })),
  error: Type.Optional(Type.String({ description: 'Dry run that would not be stored: why (the first refusal).' })),
  reason: Type.Optional(Type.String()),
};

export const ListReplaced = strictObject({
  account: account(),
  key: listKey(),
  version: version(),
  entries: Type.Optional(Type.Array(Entry)),
  warnings: warnings(),
  ...dryRun,
}, 'The list after a replace (entries always present without dry_run).');
export const ImportResult = strictObject({
  account: account(),
  key: listKey(),
  version: version(),
  mode: oneOf(['merge', 'replace']),
  received: Type.Integer({ minimum: 0, description: 'Items in the request (merge skips those already listed).' }),
  entries: Type.Optional(Type.Array(Entry)),
  warnings: warnings(),
  ...dryRun,
}, 'The list after an import (entries always present without dry_run).');

export const Deleted = strictObject({
  deleted: Type.String({ description: 'The id of the deleted entry.' }),
  warnings: Type.Array(Warning, { description: 'Recently seen callers the delete newly refuses (empty when none).' }),
});

export const Settings = strictObject({
  account: Type.String(),
  version: version(),
  parent: nullable(Type.String(), 'The parent account of a subaccount (whose list it uses), or null.'),
  mode: choice(MODES, 'null: inherited.'),
  default: choice(DEFAULTS, 'What an account without an enabled allow entry does; null: inherited.'),
  max_entries: nullable(Type.Integer({ minimum: 0 }), 'null: the gateway\'s validation.maxEntries.'),
  ipv4_only: nullable(Type.Boolean(), 'null: the gateway\'s validation.ipv4Only.'),
  guard: choice(GUARDS, 'The lockout guard of changes; null: warn.'),
  restricted: Type.Boolean({ description: 'The account has had an allow list in force and was not opened since: with no allow entry in force it refuses every caller (`list_empty`) rather than open by itself.' }),
  list_state: listState(),
  entry_count: Type.Integer({ minimum: 0 }),
  warnings: warnings(),
}, 'An account\'s settings (after a change, with the lockout warnings when there are any).');
export const SettingsInput = strictObject({
  parent: Type.Optional(nullable(Type.String({ pattern: ACCOUNT_ID_PATTERN, maxLength: ACCOUNT_ID_MAX_LENGTH }), `Makes the account a subaccount of this one (at most ${MAX_PARENT_DEPTH} ancestors, no cycles).`)),
  mode: Type.Optional(choice(MODES, 'null clears (inherit).')),
  default: Type.Optional(choice(DEFAULTS, 'null clears (inherit).')),
  max_entries: Type.Optional(nullable(Type.Integer({ minimum: 0, maximum: MAX_ENTRIES_SETTING }), 'null clears.')),
  ipv4_only: Type.Optional(nullable(Type.Boolean(), 'null clears.')),
  guard: Type.Optional(choice(GUARDS, 'null clears.')),
  restricted: Type.Optional(Type.Boolean({ description: '`false` opens the account to every address: an explicit change, refused with 409 `list_in_force` while an allow entry is enabled, reported as `would_open` (refused under guard=strict). `true` makes an account without allow entries refuse every caller.' })),
}, 'Settings to change: given values replace, null clears (inherit), absent keep.');

export const Matched = strictObject({
  id: Type.Optional(Type.String()),
  cidr: Type.Optional(Type.String()),
  action: oneOf(ACTION),
  list: oneOf(['account', 'parent', 'global', 'key']),
});
export const Check = strictObject({
  account: Type.String(),
  key: listKey(),
  ip: Type.String({ description: 'The address, canonical.' }),
  decision: oneOf(DECISIONS, '`report_only`: would be refused but the account is in report-only mode; `error`: the account\'s policy cannot be resolved.'),
  reason: oneOf(['ip_allowed', 'ip_denied', 'ip_not_allowed', 'no_list', 'list_empty', 'global_allow', 'mode_off', 'policy_error', 'ip_not_allowed_for_key', 'ip_denied_for_key', 'list_empty_for_key']),
  matched: nullable(Matched, 'The entry that decides, or null. `id` and `cidr` are left out of an entry of the parent\'s or the global list for a credential that may not read that list (an account credential).'),
  list_state: nullable(listState(false), LIST_STATE_WORDS),
}, 'What the proxy would decide now, and the state of the list that applies (the parent\'s for a subaccount; null when the policy cannot be resolved).');

export const RecentIp = strictObject({
  ip: Type.String(),
  last_seen: dateTime(),
  decision: choice(DECISIONS, 'What the caller gets now (null if the stored address does not parse).'),
  reason: nullable(Type.String()),
});
export const RecentIps = strictObject({ account: Type.String(), key: listKey(), ips: Type.Array(RecentIp) });

export const Whoami = strictObject({
  name: Type.String(),
  role: oneOf(ROLES),
  account: nullable(Type.String()),
}, 'An account credential manages its own account only; the others every account (read-only: reads only).');

export const Accounts = strictObject({
  accounts: Type.Array(Type.String()),
  total: Type.Integer({ minimum: 0 }),
  next: next(),
});

export const AuditEvent = strictObject({
  id: Type.String({ description: 'Increasing, opaque.' }),
  at: dateTime(),
  actor: strictObject({
    name: Type.String({ description: 'The credential\'s name.' }),
    role: oneOf(['owner', 'admin', 'account', 'read-only']),
  }),
  account: Type.String(),
  key: Type.Optional(Type.String({ description: 'The API key the change is about: a key\'s registration (`key.*`) or its own list.' })),
  action: Type.String({ description: '`entry.create`, `entry.update`, `entry.delete`, `list.replace`, `list.import`, `list.delete`, `settings.update`, `entry.expire`, `key.create`, `key.update`, `key.delete`.' }),
  version: Type.Integer({ minimum: 0, description: 'The account\'s version after the change.' }),
  before: Type.Unknown({ description: 'The entry, the list or the settings before the change (null: none).' }),
  after: Type.Unknown({ description: 'The same after the change.' }),
  requestId: Type.Optional(Type.String({ description: 'The caller\'s X-Request-Id when it sent one, else the gateway\'s own id.' })),
  gatewayRequestId: Type.Optional(Type.String({ description: 'The gateway\'s own id of the request (the X-Gateway-Request-Id of its answer), whatever the caller sent.' })),
  via: Type.Optional(Type.String({ description: '`native`, `vobiz`, `voximplant`, `expiry`.' })),
}, 'One committed change.');
export const AuditPage = strictObject({
  events: Type.Array(AuditEvent),
  next: nullable(Type.String(), 'Cursor of the following (older) page; null on the last.'),
});

// API keys (the api-key identity strategy, docs/identity.md).
/** Shortest key registered by value (the longest is what the strategy reads, KEY_MAX_LENGTH). */
export const KEY_MIN_LENGTH = 8;
export const MAX_KEY_NAME_LENGTH = 255;
const KEY_LIST_STATE_WORDS = 'The state of the key\'s own list. `none`: it never had an allow entry in force (or was opened): the account\'s list alone applies; `active`: allow entries in force; `empty`: it had some and none is in force any more: requests with the key are refused (`list_empty_for_key`) until one is, or the list is opened (`restricted: false`).';
const keyProperties = {
  id: Type.String({ description: 'Assigned by the server (`key_...`), stable.' }),
  account: Type.String(),
  name: Type.String({ maxLength: MAX_KEY_NAME_LENGTH }),
  fingerprint: Type.String({ pattern: '^[0-9a-f]{12}$', description: 'A short prefix of the stored digest: tells keys apart, reveals nothing of the key.' }),
  hash: oneOf(['hmac-sha256', 'sha256'], '`hmac-sha256`: registered by value, stored under the gateway\'s key secret; `sha256`: registered by hash.'),
  enabled: Type.Boolean({ description: 'A disabled key is refused (401 `key_disabled`).' }),
  created_at: dateTime(),
  updated_at: dateTime(),
  last_used_at: nullable(dateTime(), 'The last forwarded request with the key (null: none seen; with the file or memory store, since the gateway started).'),
  last_used_ip: nullable(Type.String(), 'The client address of that request.'),
  list_state: oneOf(['none', 'active', 'empty'], KEY_LIST_STATE_WORDS),
};
export const Key = strictObject({
  ...keyProperties,
  warnings: Type.Optional(Type.Array(Warning, { description: 'After a change of `restricted`: recently seen callers of the key it newly refuses, and whether it opens the key; present only when there are any.' })),
}, 'A registered API key: never the key, never its digest.');
export const KeyInput = strictObject({
  key: Type.Optional(Type.String({ minLength: KEY_MIN_LENGTH, maxLength: KEY_MAX_LENGTH, pattern: '^[!-~]+$', writeOnly: true, description: 'The key as clients send it (visible ASCII). Never stored, logged or returned.' })),
  key_sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', writeOnly: true, description: 'Instead of `key`: its SHA-256, hex (`printf %s "$KEY" | sha256sum`).' })),
  name: Type.Optional(Type.String({ maxLength: MAX_KEY_NAME_LENGTH, default: '' })),
  enabled: Type.Optional(Type.Boolean({ default: true })),
}, 'Exactly one of `key` and `key_sha256`.');
export const KeyPatch = strictObject({
  name: Type.Optional(Type.String({ maxLength: MAX_KEY_NAME_LENGTH })),
  enabled: Type.Optional(Type.Boolean()),
  restricted: Type.Optional(Type.Boolean({ description: 'The key\'s own list, on its own (not with name or enabled): `false` opens an emptied list, so the account\'s list alone applies again: an explicit change, refused with 409 `list_in_force` while an allow entry of the key is enabled, reported as `would_open` (refused under guard=strict); `true` makes a key without allow entries refuse every caller. Not for account credentials (403), as opening an account is not.' })),
}, 'Fields to change; absent fields keep their value.');
export const KeyList = strictObject({
  account: Type.String(),
  version: Type.Integer({ minimum: 0, description: 'The account\'s version (its keys are part of its record). Also the ETag.' }),
  total: Type.Integer({ minimum: 0 }),
  keys: Type.Array(Key),
  next: next(),
}, 'A page of the account\'s keys.');
export const KeyDeleted = strictObject({ deleted: Type.String({ description: 'The id of the deleted key.' }) }, 'A deleted key.');
export const KeyReportItem = strictObject({
  ...keyProperties,
  unrestricted: Type.Boolean({ description: 'Enabled, and neither list refuses any address.' }),
  account_restricts: Type.Boolean(),
  key_restricts: Type.Boolean(),
}, 'A key and what restricts it.');
export const KeyReport = strictObject({ keys: Type.Array(KeyReportItem), total: Type.Integer({ minimum: 0 }), next: next() }, 'A page of every account\'s keys.');

export const Health = Type.Object({
  status: oneOf(['ok', 'unavailable']),
  store: Type.Optional(Type.Object({}, { description: 'The store\'s health, where the gateway reports it.' })),
});

/**
 * Every refusal. `code` and `reason` take the statuses and reason codes openapi.ts lists (the
 * reason codes are part of the API); built there, where they are documented one by one.
 */
export function errorSchema(statuses: readonly number[], reasons: readonly string[], reasonDescription: string) {
  return strictObject({
    error: Type.String({ description: 'What is wrong and, where there is one, the fix.' }),
    code: Type.Integer({ enum: [...statuses], description: 'The HTTP status.' }),
    reason: Type.String({ enum: [...reasons], description: reasonDescription }),
    current_version: Type.Optional(Type.Integer({ minimum: 0, description: 'With `outcome_unknown`: the account\'s version read right after the failure, when it could be read.' })),
  }, 'Every refusal.');
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/**
 * The query parameters of the native API, as a client may send them (text, read by queryValue in
 * field-check.ts): integers and booleans are their JSON Schema types, the choices their words.
 */
export const Query = {
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE }),
  action: oneOf(ACTION),
  enabled: Type.Boolean(),
  replace: Type.Boolean({ default: false }),
  guard: oneOf(['strict', 'warn']),
  format: Type.Enum<['json', 'csv']>(['json', 'csv'], { default: 'json' }),
  dry_run: Type.Enum<['true', 'false']>(['true', 'false'], { default: 'false' }),
  mode: Type.Enum<['merge', 'replace']>(['merge', 'replace'], { default: 'merge' }),
  unrestricted: Type.Boolean(),
};

/** The named schemas of the document (components.schemas), in the order it lists them; `Error` is added by openapi.ts. */
export const SCHEMAS: Readonly<Record<string, TSchema>> = {
  AccountId, Entry, EntryResult, EntryInput, EntryPatch, EntryListItem, EntryListInput, EntryList, EntryExport,
  ListReplaced, ImportResult, ImportRow, Deleted, Warning, Settings, SettingsInput, Check, RecentIps, Whoami,
  Accounts, AuditEvent, AuditPage, Health, Key, KeyInput, KeyPatch, KeyList, KeyDeleted, KeyReport,
};

// The answers as the console and the CLI read them.
export type EntryBody = Static<typeof Entry>;
export type EntryResultBody = Static<typeof EntryResult>;
export type EntryInputBody = Static<typeof EntryInput>;
export type EntryPatchBody = Static<typeof EntryPatch>;
export type EntryListBody = Static<typeof EntryList>;
export type EntryExportBody = Static<typeof EntryExport>;
export type ListReplacedBody = Static<typeof ListReplaced>;
export type ImportResultBody = Static<typeof ImportResult>;
export type ImportRowBody = Static<typeof ImportRow>;
export type DeletedBody = Static<typeof Deleted>;
export type WarningBody = Static<typeof Warning>;
export type SettingsBody = Static<typeof Settings>;
export type SettingsInputBody = Static<typeof SettingsInput>;
export type CheckBody = Static<typeof Check>;
export type RecentIpBody = Static<typeof RecentIp>;
export type RecentIpsBody = Static<typeof RecentIps>;
export type WhoamiBody = Static<typeof Whoami>;
export type AccountsBody = Static<typeof Accounts>;
export type AuditEventBody = Static<typeof AuditEvent>;
export type AuditPageBody = Static<typeof AuditPage>;
export type ListStateBody = Static<ReturnType<typeof listState>>;
export type KeyBody = Static<typeof Key>;
export type KeyListBody = Static<typeof KeyList>;
export type KeyReportBody = Static<typeof KeyReport>;
