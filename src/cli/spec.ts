import type { OptionSpec } from './args.ts';

/** One command: its words (`acl add`), positional arguments, own options and help. */
export interface CommandSpec {
  readonly path: readonly string[];
  readonly args: readonly string[];
  readonly options: readonly OptionSpec[];
  readonly summary: string;
  readonly details?: string;
}

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9090';

export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { name: 'url', value: 'URL', help: `admin API address (ALLOWGATE_ADMIN_URL, default ${DEFAULT_ADMIN_URL})` },
  { name: 'token', value: 'TOKEN', help: 'admin token (ALLOWGATE_ADMIN_TOKEN, else the file data/admin-token)' },
  { name: 'json', help: "print the API's JSON instead of tables" },
  { name: 'help', help: 'help for the tool or the command (also -h)' },
  { name: 'version', help: 'the version' },
];

const ACCOUNT_AND_ID = ['ACCOUNT', 'ENTRY_ID'];

/** `acl ...`: an account's list; `keys acl ...` takes the same commands for a key's list. */
const ACL_COMMANDS: readonly CommandSpec[] = [
  {
    path: ['acl', 'list'],
    args: ['ACCOUNT'],
    options: [
      { name: 'action', value: 'allow|deny', choices: ['allow', 'deny'], help: 'only entries with this action' },
      { name: 'enabled', value: 'true|false', choices: ['true', 'false'], help: 'only enabled (true) or disabled (false) entries' },
    ],
    summary: "list an account's IP access list",
  },
  {
    path: ['acl', 'add'],
    args: ['ACCOUNT', 'IP'],
    options: [
      { name: 'description', value: 'TEXT', help: 'what the address is (at most 255 characters)' },
      { name: 'deny', help: 'a deny entry (default: allow)' },
      { name: 'disabled', help: 'add the entry disabled' },
      { name: 'expires', value: 'ISO', help: 'when the entry stops applying, e.g. 2026-12-31T23:59:59Z' },
      { name: 'replace', help: 'remove the narrower allow entries the new one covers, instead of refusing it' },
      { name: 'guard', value: 'strict', choices: ['strict'], help: 'refuse the change if it would block recently seen callers' },
    ],
    summary: 'add an entry (an address, CIDR block or range)',
    details: 'Recently seen callers the change would block, and an account it would open to every address, are printed as warnings on stderr.',
  },
  { path: ['acl', 'rm'], args: ACCOUNT_AND_ID, options: [], summary: 'delete an entry' },
  { path: ['acl', 'enable'], args: ACCOUNT_AND_ID, options: [], summary: 'enable an entry' },
  { path: ['acl', 'disable'], args: ACCOUNT_AND_ID, options: [], summary: 'disable an entry (kept, but not applied)' },
  {
    path: ['acl', 'export'],
    args: ['ACCOUNT'],
    options: [
      { name: 'format', value: 'json|csv', choices: ['json', 'csv'], help: 'file format (default json)' },
      { name: 'output', value: 'FILE', help: 'write to FILE instead of standard output' },
    ],
    summary: "export an account's list as JSON or CSV",
  },
  {
    path: ['acl', 'import'],
    args: ['ACCOUNT', 'FILE'],
    options: [{ name: 'replace', help: 'replace the whole list (default: merge into it)' }],
    summary: 'import entries from a JSON or CSV file (.csv is sent as CSV)',
  },
  {
    path: ['acl', 'open'],
    args: ['ACCOUNT'],
    options: [{ name: 'guard', value: 'strict', choices: ['strict'], help: 'refuse it (would_open) instead of warning' }],
    summary: 'open an account whose list is empty to every address (a list never opens by itself)',
  },
];

/** What the list commands do to a key's own list, where it differs from an account's. */
const KEY_LIST_SUMMARIES: Readonly<Record<string, string>> = {
  list: "list a key's own IP access list (checked after the account's)",
  add: "add an entry to a key's list (an address, CIDR block or range)",
  export: "export a key's list as JSON or CSV",
  open: "open a key whose list is empty: the account's list alone applies to it again",
};

export const COMMANDS: readonly CommandSpec[] = [
  {
    path: ['serve'],
    args: [],
    options: [{ name: 'config', value: 'PATH', help: 'YAML configuration file (ALLOWGATE_CONFIG)' }],
    summary: 'run the gateway (the default when no command is given)',
    details: `Runs the gateway: the proxy listener (ALLOWGATE_LISTEN, default 0.0.0.0:8080) in front of
ALLOWGATE_UPSTREAM_URL, and the admin API (ALLOWGATE_ADMIN_LISTEN, default 127.0.0.1:9090).
Configuration: config/allowgate.yaml, or --config PATH / ALLOWGATE_CONFIG; see config/ for
every setting and its environment variable.`,
  },
  ...ACL_COMMANDS,
  {
    path: ['check'],
    args: ['ACCOUNT', 'IP'],
    options: [],
    summary: 'what the gateway decides for a caller at IP, and which entry decides it',
  },
  { path: ['accounts'], args: [], options: [], summary: 'list the accounts that have a list or settings' },
  {
    path: ['audit'],
    args: [],
    options: [
      { name: 'account', value: 'ACCOUNT', help: "only this account's changes" },
      { name: 'limit', value: 'N', help: 'at most N events (server default 100)' },
    ],
    summary: 'recent changes: who changed what, when',
  },
  ...keyCommands(),
];

/** `keys ...` and `keys acl ...`: an account's API keys, and each key's own list. */
function keyCommands(): CommandSpec[] {
  const KEY = ['ACCOUNT', 'KEY_ID'];
  return [
    { path: ['keys', 'list'], args: ['ACCOUNT'], options: [], summary: "list an account's API keys, with their last use" },
    { path: ['keys', 'show'], args: KEY, options: [], summary: 'one key: its name, fingerprint, state, last use' },
    {
      path: ['keys', 'add'],
      args: ['ACCOUNT'],
      options: [
        { name: 'key-file', value: 'FILE', help: 'read the key from FILE (- for standard input): it stays out of shell history and the process list' },
        { name: 'key', value: 'KEY', help: 'the key itself (visible to other users of this machine while the command runs)' },
        { name: 'sha256', value: 'HEX', help: 'register only the SHA-256 of the key (printf %s "$KEY" | sha256sum)' },
        { name: 'name', value: 'TEXT', help: 'what the key is for, e.g. "CI runner"' },
        { name: 'disabled', help: 'register the key disabled' },
      ],
      summary: 'register an API key for an account (the gateway keeps only a digest of it)',
      details: 'Give the key as clients send it (--key-file or --key), or only its SHA-256 (--sha256).',
    },
    { path: ['keys', 'rename'], args: [...KEY, 'NAME'], options: [], summary: 'rename a key' },
    { path: ['keys', 'enable'], args: KEY, options: [], summary: 'enable a key' },
    { path: ['keys', 'disable'], args: KEY, options: [], summary: 'disable a key (its requests are refused 401 key_disabled)' },
    { path: ['keys', 'rm'], args: KEY, options: [], summary: 'delete a key and its list' },
    { path: ['keys', 'check'], args: [...KEY, 'IP'], options: [], summary: 'what the gateway decides for a caller at IP presenting the key' },
    {
      path: ['keys', 'report'],
      args: [],
      options: [{ name: 'unrestricted', help: 'only the enabled keys open to every address (no list restricts them)' }],
      summary: 'every key, with whether its account\'s list or its own restricts it',
    },
    ...ACL_COMMANDS.map((c) => ({ ...c, path: ['keys', ...c.path], args: [...KEY, ...c.args.slice(1)], summary: KEY_LIST_SUMMARIES[c.path[1]!] ?? c.summary })),
  ];
}

/** Command groups: words that need a subcommand. */
export const GROUPS: Readonly<Record<string, string>> = {
  acl: "Manage an account's IP access list",
  keys: "Manage an account's API keys",
  'keys acl': "Manage an API key's own IP access list (checked after the account's)",
};

export function findCommand(words: readonly string[]): CommandSpec | undefined {
  return COMMANDS.find((c) => c.path.every((w, i) => words[i] === w));
}

function optionLines(options: readonly OptionSpec[]): string {
  const rows = options.map((o) => [`--${o.name}${o.value === undefined ? '' : ` ${o.value}`}`, o.help] as const);
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`).join('\n');
}

function synopsis(c: CommandSpec): string {
  return ['allowgate', ...c.path, ...c.args, ...(c.options.length > 0 ? ['[options]'] : [])].join(' ');
}

function commandLines(commands: readonly CommandSpec[], extra: readonly (readonly [string, string])[] = []): string {
  const rows = [...commands.map((c) => [[...c.path, ...c.args].join(' '), c.summary] as const), ...extra];
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, summary]) => `  ${left.padEnd(width)}  ${summary}`).join('\n');
}

const ENVIRONMENT = `Environment:
  ALLOWGATE_ADMIN_URL    admin API address (default ${DEFAULT_ADMIN_URL})
  ALLOWGATE_ADMIN_TOKEN  admin token; without it and --token, data/admin-token is read if present

Exit status: 0 done, 1 failed (nothing changed), 2 usage error, 3 the change was sent but its
outcome is unknown (it may or may not have been applied: look before running it again).
`;

/** Help for a topic: the whole tool ([]), a group (['acl'], ['keys', 'acl']) or a command. */
export function usage(topic: readonly string[]): string {
  const command = findCommand(topic);
  if (command !== undefined) {
    const own = command.options.length > 0 ? `Options:\n${optionLines(command.options)}\n\n` : '';
    const global = command.path[0] === 'serve' ? optionLines(GLOBAL_OPTIONS.filter((o) => o.name === 'help' || o.name === 'version')) : optionLines(GLOBAL_OPTIONS);
    return `Usage: ${synopsis(command)}\n\n${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.\n${command.details === undefined ? '' : `\n${command.details}\n`}\n${own}Global options:\n${global}\n`;
  }
  const group = topic.join(' ');
  if (GROUPS[group] !== undefined) {
    const members = COMMANDS.filter((c) => c.path.length > topic.length && topic.every((w, i) => c.path[i] === w));
    return `Usage: allowgate ${group} COMMAND ...\n\n${GROUPS[group]}:\n${commandLines(members)}\n\nRun 'allowgate ${group} COMMAND --help' for a command's options.\n`;
  }
  return `Usage: allowgate [COMMAND] [options]

The allowgate gateway, and a client for its admin API.

Commands:
${commandLines(COMMANDS.filter((c) => c.path.length < 3), [['keys acl COMMAND ACCOUNT KEY_ID ...', "a key's own list: the acl commands (allowgate help keys acl)"], ['help [COMMAND]', "this text, or a command's"]])}

With no command, allowgate runs the gateway (allowgate serve).
Run 'allowgate COMMAND --help' for a command's options.

Global options:
${optionLines(GLOBAL_OPTIONS)}

${ENVIRONMENT}`;
}
