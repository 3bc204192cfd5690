import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Failure, isObject, pathOf } from './admin-client.ts';
import { Key, type KeyBody } from '../admin/api-schemas.ts';
import { answerOf, checkOn, flag, listHandlers, printJson, printWarnings, scalar, text, type Command, type CommandContext, type ListTarget } from './commands.ts';
import { cell, formatPairs, formatTable, type Cell } from './table.ts';

/** `allowgate keys ...`: an account's API keys (docs/identity.md). A key's own list is `keys acl`. */

const keysPath = (account: string, ...rest: string[]): string => `${pathOf('v1', 'accounts', account)}/keys${pathOf(...rest)}`;

/** A key's own list: `keys acl ... ACCOUNT KEY_ID ...`. */
const keyList = (args: readonly string[]): ListTarget => {
  const [account, keyId, ...rest] = args as [string, string, ...string[]];
  const base = keysPath(account, keyId);
  return {
    base,
    label: `key ${keyId} of ${account}`,
    args: rest,
    emptyNote: `the list of key ${keyId} of ${account} is empty: no allow entry is in force, so every request with the key is refused (list_empty_for_key); add one, or open the key's list (the account's list alone applies then) with: allowgate keys acl open ${account} ${keyId}`,
    open: async (ctx) => {
      const reply = await ctx.client.request('PATCH', base, { query: { guard: text(ctx, 'guard') }, json: { restricted: false } });
      const body = answerOf(reply, Key, 'PATCH key');
      return { body, warnings: body.warnings, said: `opened the list of key ${keyId} of ${account}: the account's list alone applies to the key; list state ${cell(body.list_state)}\n` };
    },
  };
};

const KEY_HEADERS = ['ID', 'NAME', 'FINGERPRINT', 'ENABLED', 'LIST', 'LAST_USED_AT', 'LAST_USED_IP'];

function keyRow(key: unknown): Cell[] {
  const k = isObject(key) ? key : {};
  return [k['id'], k['name'], k['fingerprint'], k['enabled'], k['list_state'], k['last_used_at'], k['last_used_ip']].map(scalar);
}

function keyPairs(key: KeyBody): string {
  return formatPairs((['id', 'account', 'name', 'fingerprint', 'hash', 'enabled', 'list_state', 'created_at', 'updated_at', 'last_used_at', 'last_used_ip'] as const)
    .map((field) => [field, scalar(key[field])] as const));
}

const keysList: Command = async (ctx) => {
  const [account] = ctx.args as [string];
  const read = await ctx.client.pages(keysPath(account), 'keys');
  if (ctx.json) {
    printJson(ctx, { ...read.first, keys: read.items, next: null });
    return 0;
  }
  if (read.items.length === 0) {
    ctx.io.out(`${account} has no keys\n`);
    return 0;
  }
  ctx.io.out(formatTable(KEY_HEADERS, read.items.map(keyRow)));
  return 0;
};

const keysShow: Command = async (ctx) => {
  const [account, id] = ctx.args as [string, string];
  const key = answerOf(await ctx.client.request('GET', keysPath(account, id)), Key, 'GET key');
  if (ctx.json) printJson(ctx, key);
  else ctx.io.out(keyPairs(key));
  return 0;
};

/**
 * The key to register: read from a file (`-`: standard input) so it stays out of the shell's
 * history and the process list, given on the command line, or only its SHA-256.
 */
function keyToRegister(ctx: CommandContext): { key: string } | { key_sha256: string } {
  const file = text(ctx, 'key-file');
  const given = text(ctx, 'key');
  const sha256 = text(ctx, 'sha256');
  const count = [file, given, sha256].filter((v) => v !== undefined).length;
  if (count !== 1) throw new Failure('give the key in exactly one way: --key-file FILE (- for standard input), --key KEY, or --sha256 HEX');
  if (sha256 !== undefined) return { key_sha256: sha256 };
  if (given !== undefined) return { key: given };
  let content: string;
  try {
    content = readFileSync(file === '-' ? 0 : resolve(ctx.cwd, file!), 'utf8');
  } catch (error) {
    throw new Failure(`cannot read the key from ${file === '-' ? 'standard input' : file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  // One line: the key, without the line break an editor or `echo` adds.
  const key = content.replace(/\r?\n$/, '');
  if (key.includes('\n')) throw new Failure(`${file === '-' ? 'standard input' : file} holds more than one line: it must hold the key alone`);
  return { key };
}

const keysAdd: Command = async (ctx) => {
  const [account] = ctx.args as [string];
  const body = { ...keyToRegister(ctx), name: text(ctx, 'name') ?? '', enabled: !flag(ctx, 'disabled') };
  const key = answerOf(await ctx.client.request('POST', keysPath(account), { json: body }), Key, 'POST keys');
  if (ctx.json) printJson(ctx, key);
  else ctx.io.out(`registered ${cell(key.id)} for ${account}\n${keyPairs(key)}`);
  return 0;
};

const keysPatch = (what: (ctx: CommandContext) => Record<string, unknown>, done: string): Command => async (ctx) => {
  const [account, id] = ctx.args as [string, string];
  const key = answerOf(await ctx.client.request('PATCH', keysPath(account, id), { json: what(ctx) }), Key, 'PATCH key');
  printWarnings(ctx, key.warnings);
  if (ctx.json) printJson(ctx, key);
  else ctx.io.out(`${done} ${id} of ${account}\n${keyPairs(key)}`);
  return 0;
};

const keysRemove: Command = async (ctx) => {
  const [account, id] = ctx.args as [string, string];
  const reply = await ctx.client.request('DELETE', keysPath(account, id));
  if (ctx.json) printJson(ctx, reply.body ?? { deleted: id });
  else ctx.io.out(`deleted ${id} of ${account}, and its list\n`);
  return 0;
};

const REPORT_HEADERS = ['ACCOUNT', 'ID', 'NAME', 'FINGERPRINT', 'ENABLED', 'UNRESTRICTED', 'ACCOUNT_RESTRICTS', 'KEY_RESTRICTS', 'LAST_USED_AT'];

const keysReport: Command = async (ctx) => {
  const unrestricted = flag(ctx, 'unrestricted');
  const read = await ctx.client.pages('/v1/keys', 'keys', { unrestricted: unrestricted ? 'true' : undefined });
  if (ctx.json) {
    printJson(ctx, { ...read.first, keys: read.items, next: null });
    return 0;
  }
  if (read.items.length === 0) {
    ctx.io.out(unrestricted ? 'no key is open to every address\n' : 'no keys\n');
    return 0;
  }
  ctx.io.out(formatTable(REPORT_HEADERS, read.items.map((item) => {
    const k = isObject(item) ? item : {};
    return [k['account'], k['id'], k['name'], k['fingerprint'], k['enabled'], k['unrestricted'], k['account_restricts'], k['key_restricts'], k['last_used_at']].map(scalar);
  })));
  if (unrestricted) ctx.io.err(`allowgate: ${read.items.length} enabled key${read.items.length === 1 ? ' is' : 's are'} open to every address: restrict the account's list or the key's own (allowgate keys acl add ACCOUNT KEY_ID CIDR)\n`);
  return 0;
};

export const KEY_HANDLERS: Readonly<Record<string, Command>> = {
  'keys list': keysList,
  'keys show': keysShow,
  'keys add': keysAdd,
  'keys rename': keysPatch((ctx) => ({ name: ctx.args[2] }), 'renamed'),
  'keys enable': keysPatch(() => ({ enabled: true }), 'enabled'),
  'keys disable': keysPatch(() => ({ enabled: false }), 'disabled'),
  'keys rm': keysRemove,
  'keys report': keysReport,
  'keys check': checkOn(keyList),
  ...listHandlers('keys acl', keyList),
};
