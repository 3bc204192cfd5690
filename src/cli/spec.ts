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
];

/** Command groups: words that need a subcommand. */
export const GROUPS: Readonly<Record<string, string>> = { acl: "Manage an account's IP access list" };

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

/** Help for a topic: the whole tool ([]), a group (['acl']) or a command. */
export function usage(topic: readonly string[]): string {
  const command = findCommand(topic);
  if (command !== undefined) {
    const own = command.options.length > 0 ? `Options:\n${optionLines(command.options)}\n\n` : '';
    const global = command.path[0] === 'serve' ? optionLines(GLOBAL_OPTIONS.filter((o) => o.name === 'help' || o.name === 'version')) : optionLines(GLOBAL_OPTIONS);
    return `Usage: ${synopsis(command)}\n\n${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.\n${command.details === undefined ? '' : `\n${command.details}\n`}\n${own}Global options:\n${global}\n`;
  }
  const group = topic[0];
  if (group !== undefined && GROUPS[group] !== undefined) {
    return `Usage: allowgate ${group} COMMAND ...\n\n${GROUPS[group]}:\n${commandLines(COMMANDS.filter((c) => c.path[0] === group))}\n\nRun 'allowgate ${group} COMMAND --help' for a command's options.\n`;
  }
  return `Usage: allowgate [COMMAND] [options]

The allowgate gateway, and a client for its admin API.

Commands:
${commandLines(COMMANDS, [['help [COMMAND]', "this text, or a command's"]])}

With no command, allowgate runs the gateway (allowgate serve).
Run 'allowgate COMMAND --help' for a command's options.

Global options:
${optionLines(GLOBAL_OPTIONS)}

${ENVIRONMENT}`;
}
