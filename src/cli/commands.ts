import { readFileSync, writeFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { AuditPage, Check, Deleted, Entry, EntryResult, ImportResult, Settings, type EntryBody, type EntryResultBody, type WarningBody } from '../admin/api-schemas.ts';
import { Failure, isObject, pathOf, type AdminClient, type Reply } from './admin-client.ts';
import { cell, formatPairs, formatTable, type Cell } from './table.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** What a client command gets: its positional arguments and options, already checked against its spec. */
export interface CommandContext {
  readonly client: AdminClient;
  readonly args: readonly string[];
  readonly options: ReadonlyMap<string, string | true>;
  readonly json: boolean;
  readonly io: Io;
  readonly cwd: string;
}

export type Command = (ctx: CommandContext) => Promise<number>;

/** Reads of a list that changed between pages are started over this many times, then refused. */
const LIST_ATTEMPTS = 3;

/**
 * The list an `acl` command acts on: an account's (`acl ...`: ACCOUNT first), or an API key's own
 * (`keys acl ...`: ACCOUNT KEY_ID first). The commands are the same; the paths and words differ.
 */
export interface ListTarget {
  /** The list's owner: /v1/accounts/{a}, or /v1/accounts/{a}/keys/{key}. */
  readonly base: string;
  /** How messages name the list's owner: `AC1`, `key key_… of AC1`. */
  readonly label: string;
  /** The command's own arguments, after those naming the list. */
  readonly args: readonly string[];
  /** What an emptied list does, and how to open it: said under the listing. */
  readonly emptyNote: string;
  /** Opens the list (`restricted: false`): the answer's warnings and what to say once it is open. */
  open(ctx: CommandContext): Promise<{ readonly body: unknown; readonly warnings: readonly WarningBody[] | undefined; readonly said: string }>;
}

export const accountList = (args: readonly string[]): ListTarget => {
  const [account, ...rest] = args as [string, ...string[]];
  const base = pathOf('v1', 'accounts', account);
  return {
    base,
    label: account,
    args: rest,
    emptyNote: `the list of ${account} is empty: no allow entry is in force, so every caller is refused (list_empty); add one, or open the account to every address with: allowgate acl open ${account}`,
    open: async (ctx) => {
      const reply = await ctx.client.request('PUT', base, { query: { guard: text(ctx, 'guard') }, json: { restricted: false } });
      const body = answerOf(reply, Settings, 'PUT account');
      return { body, warnings: body.warnings, said: `opened ${account}: with no allow entry in force its default decides (${cell(body.default ?? 'the gateway\'s')}); list state ${cell(body.list_state)}\n` };
    },
  };
};

const aclPath = (list: ListTarget, ...rest: string[]): string => `${list.base}/ip-acl${pathOf(...rest)}`;
export const text = (ctx: CommandContext, name: string): string | undefined => {
  const value = ctx.options.get(name);
  return typeof value === 'string' ? value : undefined;
};
export const flag = (ctx: CommandContext, name: string): boolean => ctx.options.get(name) === true;
export const printJson = (ctx: CommandContext, value: unknown): void => ctx.io.out(`${JSON.stringify(value, null, 2)}\n`);

const ENTRY_HEADERS = ['ID', 'ADDRESS', 'ACTION', 'ENABLED', 'EXPIRES_AT', 'DESCRIPTION'];

function entryRow(e: EntryBody): Cell[] {
  return [e.id, e.ip_address, e.action, e.enabled, e.expires_at, e.description];
}

function entryPairs(e: EntryBody): string {
  return formatPairs([
    ['id', e.id],
    ['ip_address', e.ip_address],
    ['cidrs', e.cidrs.join(', ')],
    ['action', e.action],
    ['enabled', e.enabled],
    ['description', e.description],
    ['expires_at', e.expires_at],
    ['created_at', e.created_at],
    ['updated_at', e.updated_at],
  ]);
}

export function scalar(value: unknown): Cell {
  if (value === null || value === undefined) return value;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return JSON.stringify(value);
}

/** The lockout guard's warnings (callers it blocks, or the account it opens), on stderr. */
export function printWarnings(ctx: CommandContext, warnings: readonly WarningBody[] | undefined): void {
  for (const warning of warnings ?? []) {
    if (warning.message !== undefined) ctx.io.err(`allowgate: warning: ${cell(warning.message)}\n`);
    else ctx.io.err(`allowgate: warning: this change blocks ${cell(scalar(warning.ip))}, last seen ${cell(scalar(warning.last_seen))} (now: ${cell(scalar(warning.decision))})\n`);
  }
}

/**
 * The answer as the API's schema for it says (api-schemas.ts), or a Failure saying the server
 * answered something else: what follows reads typed fields, not guesses.
 */
export function answerOf<S extends TSchema>(reply: Reply, schema: S, what: string): Static<S> {
  if (Value.Check(schema, reply.body)) return reply.body as Static<S>;
  const detail = reply.text === '' ? 'an empty body' : isObject(reply.body) ? 'not the documented shape' : 'not a JSON object';
  throw new Failure(`unexpected answer to ${what} (HTTP ${reply.status}): ${detail}`);
}

/** A command on a list, given the list it names. */
type ListCommand = (ctx: CommandContext, list: ListTarget) => Promise<number>;

const aclList: ListCommand = async (ctx, list) => {
  const account = list.label;
  const query = { action: text(ctx, 'action'), enabled: text(ctx, 'enabled') };
  let read = await ctx.client.pages(aclPath(list), 'entries', query);
  // Cursors are positions: if the list changed between pages, entries could be missed or repeated.
  for (let attempt = 1; read.versions.size > 1; attempt++) {
    if (attempt >= LIST_ATTEMPTS) throw new Failure(`the list of ${account} kept changing while it was read page by page; try again`);
    read = await ctx.client.pages(aclPath(list), 'entries', query);
  }
  if (ctx.json) {
    printJson(ctx, { ...read.first, entries: read.items, ...('next' in read.first ? { next: null } : {}) });
    return 0;
  }
  const entries = read.items.map((item) => {
    if (!Value.Check(Entry, item)) throw new Failure(`unexpected answer to GET ip-acl: an entry is not the documented shape`);
    return item;
  });
  if (entries.length === 0) ctx.io.out(query.action !== undefined || query.enabled !== undefined ? `no matching entries for ${account}\n` : `${account} has no entries\n`);
  else ctx.io.out(formatTable(ENTRY_HEADERS, entries.map(entryRow)));
  if (read.first['list_state'] === 'empty') ctx.io.out(`${list.emptyNote}\n`);
  return 0;
};

const aclOpen: ListCommand = async (ctx, list) => {
  const opened = await list.open(ctx);
  printWarnings(ctx, opened.warnings);
  if (ctx.json) printJson(ctx, opened.body);
  else ctx.io.out(opened.said);
  return 0;
};

const aclAdd: ListCommand = async (ctx, list) => {
  const [ip] = list.args as [string];
  const account = list.label;
  const reply = await ctx.client.request('POST', aclPath(list), {
    query: { replace: flag(ctx, 'replace') ? 'true' : undefined, guard: text(ctx, 'guard') },
    json: {
      ip_address: ip,
      description: text(ctx, 'description') ?? '',
      action: flag(ctx, 'deny') ? 'deny' : 'allow',
      enabled: !flag(ctx, 'disabled'),
      expires_at: text(ctx, 'expires') ?? null,
    },
  });
  const entry: EntryResultBody = answerOf(reply, EntryResult, 'POST ip-acl');
  printWarnings(ctx, entry.warnings);
  if (ctx.json) printJson(ctx, entry);
  else ctx.io.out(`added ${cell(entry.id)} to ${account}\n${entryPairs(entry)}`);
  return 0;
};

const aclRemove: ListCommand = async (ctx, list) => {
  const [id] = list.args as [string];
  const account = list.label;
  const reply = await ctx.client.request('DELETE', aclPath(list, id));
  // 200 with {deleted, warnings}, or 204 with no body.
  printWarnings(ctx, reply.body === null ? undefined : answerOf(reply, Deleted, 'DELETE ip-acl entry').warnings);
  if (ctx.json) printJson(ctx, reply.body ?? { deleted: id });
  else ctx.io.out(`deleted ${id} from ${account}\n`);
  return 0;
};

const aclSetEnabled = (enabled: boolean): ListCommand => async (ctx, list) => {
  const [id] = list.args as [string];
  const account = list.label;
  const reply = await ctx.client.request('PATCH', aclPath(list, id), { json: { enabled } });
  const entry = answerOf(reply, EntryResult, 'PATCH ip-acl entry');
  printWarnings(ctx, entry.warnings);
  if (ctx.json) printJson(ctx, entry);
  else ctx.io.out(`${enabled ? 'enabled' : 'disabled'} ${id} in ${account}\n${entryPairs(entry)}`);
  return 0;
};

const aclExport: ListCommand = async (ctx, list) => {
  const account = list.label;
  const format = text(ctx, 'format') ?? 'json';
  const reply = await ctx.client.request('GET', aclPath(list, 'export'), { query: { format } });
  const isJson = /json/i.test(reply.contentType);
  if (format === 'csv' && isJson) throw new Failure('asked for CSV but the API answered JSON');
  // JSON is re-indented for people; either form imports the same.
  const content = isJson && reply.body !== null ? `${JSON.stringify(reply.body, null, 2)}\n` : reply.text;
  const output = text(ctx, 'output');
  if (output === undefined) {
    ctx.io.out(content);
    return 0;
  }
  writeFileSync(resolve(ctx.cwd, output), content);
  if (!ctx.json) ctx.io.out(`exported ${account} (${format}) to ${output}\n`);
  return 0;
};

const aclImport: ListCommand = async (ctx, list) => {
  const [file] = list.args as [string];
  const account = list.label;
  let content: string;
  try {
    content = readFileSync(resolve(ctx.cwd, file), 'utf8');
  } catch (error) {
    throw new Failure(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const mode = flag(ctx, 'replace') ? 'replace' : 'merge';
  const csv = extname(file).toLowerCase() === '.csv';
  const reply = await ctx.client.request('POST', aclPath(list, 'import'), { query: { mode }, text: content, contentType: csv ? 'text/csv' : 'application/json' });
  const body = answerOf(reply, ImportResult, 'POST ip-acl/import');
  printWarnings(ctx, body.warnings);
  if (ctx.json) {
    printJson(ctx, body);
    return 0;
  }
  // The answer counts the rows read, not the entries added: a merge skips networks already listed.
  const rows = `${body.received} row${body.received === 1 ? '' : 's'}`;
  const how = mode === 'merge' ? 'merge: rows whose network is already listed are skipped' : mode;
  const count = body.entries === undefined ? '' : `; the list now has ${body.entries.length} entr${body.entries.length === 1 ? 'y' : 'ies'}`;
  ctx.io.out(`imported ${rows} into ${account} (${how}${count}, version ${body.version})\n`);
  return 0;
};

const check: ListCommand = async (ctx, list) => {
  const [ip] = list.args as [string];
  const reply = await ctx.client.request('GET', `${list.base}/check`, { query: { ip } });
  const body = answerOf(reply, Check, 'GET check');
  if (ctx.json) {
    printJson(ctx, body);
    return 0;
  }
  const matched = body.matched;
  ctx.io.out(formatPairs([
    ['account', body.account],
    ...(body.key === undefined ? [] : [['key', body.key] as const]),
    ['ip', body.ip],
    ['decision', body.decision],
    ['reason', body.reason],
    ['list_state', body.list_state],
    ...(matched === null
      ? [['entry', 'none (no entry matched)'] as const]
      : [['entry', matched.id], ['cidr', matched.cidr], ['action', matched.action], ['list', matched.list]] as const),
  ]));
  return 0;
};

const accounts: Command = async (ctx) => {
  const read = await ctx.client.pages('/v1/accounts', 'accounts');
  if (ctx.json) {
    printJson(ctx, { ...read.first, accounts: read.items, ...('next' in read.first ? { next: null } : {}) });
    return 0;
  }
  if (read.items.length === 0) {
    ctx.io.out('no accounts\n');
    return 0;
  }
  const objects = read.items.filter(isObject);
  if (objects.length === read.items.length) {
    const keys = [...new Set(objects.flatMap((o) => Object.keys(o)))];
    ctx.io.out(formatTable(keys.map((k) => k.toUpperCase()), objects.map((o) => keys.map((k) => scalar(o[k])))));
  } else {
    ctx.io.out(read.items.map((a) => `${cell(scalar(a))}\n`).join(''));
  }
  return 0;
};

/** A short account of what an audit event changed, from its before/after snapshots. */
export function describeChange(before: unknown, after: unknown): string {
  if (Array.isArray(before) || Array.isArray(after)) {
    const n = (v: unknown): number => (Array.isArray(v) ? v.length : 0);
    return `${n(before)} → ${n(after)} entries`;
  }
  const b = isObject(before) ? before : null;
  const a = isObject(after) ? after : null;
  if (b === null && a !== null) return `+ ${describeEntry(a)}`;
  if (a === null && b !== null) return `- ${describeEntry(b)}`;
  if (a === null || b === null) return '';
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((k) => k !== 'updated_at' && JSON.stringify(b[k]) !== JSON.stringify(a[k]));
  const changes = keys.map((k) => `${k}: ${JSON.stringify(b[k] ?? null)} → ${JSON.stringify(a[k] ?? null)}`).join('; ');
  const subject = typeof a['ip_address'] === 'string' ? `${a['ip_address']} ` : '';
  const summary = `${subject}${changes}`;
  return summary.length > 80 ? `${summary.slice(0, 79)}…` : summary;
}

function describeEntry(entry: Record<string, unknown>): string {
  if (typeof entry['ip_address'] === 'string') return `${entry['ip_address']}${typeof entry['action'] === 'string' ? ` (${entry['action']})` : ''}`;
  return JSON.stringify(entry).slice(0, 80);
}

const audit: Command = async (ctx) => {
  const reply = await ctx.client.request('GET', '/v1/audit', { query: { account: text(ctx, 'account'), limit: text(ctx, 'limit') } });
  const body = answerOf(reply, AuditPage, 'GET audit');
  if (ctx.json) {
    printJson(ctx, body);
    return 0;
  }
  if (body.events.length === 0) {
    ctx.io.out('no audit events\n');
    return 0;
  }
  ctx.io.out(formatTable(['TIME', 'ACTOR', 'ACCOUNT', 'ACTION', 'VERSION', 'CHANGE'], body.events.map((e) => {
    const actor = `${cell(e.actor.name)} (${cell(e.actor.role)})`;
    return [e.at, actor, e.account, e.action, e.version, describeChange(e.before, e.after)];
  })));
  return 0;
};

/** The list commands under `prefix` (`acl`, `keys acl`), acting on the list `targetOf` names. */
export function listHandlers(prefix: string, targetOf: (args: readonly string[]) => ListTarget): Record<string, Command> {
  const on = (command: ListCommand): Command => (ctx) => command(ctx, targetOf(ctx.args));
  return {
    [`${prefix} list`]: on(aclList),
    [`${prefix} add`]: on(aclAdd),
    [`${prefix} rm`]: on(aclRemove),
    [`${prefix} enable`]: on(aclSetEnabled(true)),
    [`${prefix} disable`]: on(aclSetEnabled(false)),
    [`${prefix} export`]: on(aclExport),
    [`${prefix} import`]: on(aclImport),
    [`${prefix} open`]: on(aclOpen),
  };
}

/** `check` for a list target: what the gateway decides for a caller at IP (presenting the key, for a key's list). */
export const checkOn = (targetOf: (args: readonly string[]) => ListTarget): Command => (ctx) => check(ctx, targetOf(ctx.args));

/** Client commands by their words. */
export const HANDLERS: Readonly<Record<string, Command>> = {
  ...listHandlers('acl', accountList),
  check: checkOn(accountList),
  accounts,
  audit,
};
