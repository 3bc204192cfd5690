import { readFileSync } from 'node:fs';
import { leadingWords, parseArgs, UsageError } from './args.ts';
import { AdminClient, ApiError, Failure, resolveConnection, TOKEN_FILE, type Connection } from './admin-client.ts';
import { HANDLERS, type Io } from './commands.ts';
import { KEY_HANDLERS } from './key-commands.ts';
import { COMMANDS, findCommand, GLOBAL_OPTIONS, GROUPS, usage, type CommandSpec } from './spec.ts';

export interface Environment {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly io: Io;
}

/** Every option that takes a value, whichever command owns it: for finding the command words. */
const VALUED = new Set([...GLOBAL_OPTIONS, ...COMMANDS.flatMap((c) => c.options)].filter((o) => o.value !== undefined).map((o) => o.name));
const SERVE = findCommand(['serve'])!;
/** serve takes none of the client's connection options. */
const SERVE_OPTIONS = [...SERVE.options, ...GLOBAL_OPTIONS.filter((o) => o.name === 'help' || o.name === 'version')];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `allowgate ${pkg.version}\n`;
}

/**
 * `allowgate [COMMAND] ...`: the gateway (`serve`, also with no command) or a client command of
 * the admin API. Resolves to the exit code: 0, 1 when the command failed, 2 on a usage error, 3
 * when a change was sent but the gateway could not tell whether it was applied.
 */
export async function main(argv: readonly string[], environment: Environment): Promise<number> {
  const { io } = environment;
  try {
    return await dispatch(argv, environment);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`allowgate: ${error.message}\n\n${usage(error.topic)}`);
      return 2;
    }
    if (error instanceof ApiError && error.reason === 'outcome_unknown') {
      // Not a failure a script may simply retry: the change may be in place already.
      io.err(`allowgate: ${error.message}\nallowgate: the change may or may not have been applied: look at the account (allowgate acl list ACCOUNT, or allowgate audit --account ACCOUNT) before running the command again\n`);
      return 3;
    }
    if (error instanceof Failure) {
      io.err(`allowgate: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

async function dispatch(argv: readonly string[], environment: Environment): Promise<number> {
  const { io } = environment;
  const words = leadingWords(argv, VALUED, 3);

  if (words[0] === 'help') {
    const topic = words.slice(1);
    if (topic.length > 0 && findCommand(topic) === undefined && GROUPS[topic.join(' ')] === undefined) {
      throw new UsageError(`no command '${topic.join(' ')}'`);
    }
    io.out(usage(topic));
    return 0;
  }

  if (words.length === 0) {
    const parsed = parseArgs(argv, SERVE_OPTIONS);
    if (parsed.options.has('help')) return print(io, usage([]));
    if (parsed.options.has('version')) return print(io, version());
    return runServe(parsed.options);
  }

  const command = commandOf(words, argv);
  if (command === null) return print(io, usage(words));
  const own = command === SERVE ? SERVE_OPTIONS : [...command.options, ...GLOBAL_OPTIONS];
  const parsed = parseArgs(argv, own, command.path);
  if (parsed.options.has('help')) return print(io, usage(command.path));
  if (parsed.options.has('version')) return print(io, version());

  const args = parsed.positionals.slice(command.path.length);
  if (args.length < command.args.length) throw new UsageError(`missing ${command.args.slice(args.length).join(' ')}`, command.path);
  if (args.length > command.args.length) throw new UsageError(`unexpected argument '${args[command.args.length]}'`, command.path);
  const empty = command.args.find((_, i) => args[i] === '');
  if (empty !== undefined) throw new UsageError(`${empty} must not be empty`, command.path);

  if (command === SERVE) return runServe(parsed.options);
  const option = (name: string): string | undefined => {
    const value = parsed.options.get(name);
    return typeof value === 'string' ? value : undefined;
  };
  const connection = resolveConnection({ url: option('url'), token: option('token') }, environment.env, environment.cwd);
  const handler = (HANDLERS[command.path.join(' ')] ?? KEY_HANDLERS[command.path.join(' ')])!;
  try {
    return await handler({ client: new AdminClient(connection), args, options: parsed.options, json: parsed.options.has('json'), io, cwd: environment.cwd });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw new ApiError(`${error.message}\n${tokenHint(connection)}`, error.status, error.reason);
    throw error;
  }
}

/** The command the words name; null for a bare group asked for help; a usage error otherwise. */
function commandOf(words: readonly string[], argv: readonly string[]): CommandSpec | null {
  // Groups nest (keys, keys acl): the longest one the words name.
  let depth = 0;
  while (depth < words.length && GROUPS[words.slice(0, depth + 1).join(' ')] !== undefined) depth++;
  if (depth === 0) {
    const command = findCommand([words[0]!]);
    if (command === undefined) throw new UsageError(`unknown command '${words[0]}'`);
    return command;
  }
  const group = words.slice(0, depth);
  const next = words[depth];
  if (next === undefined) {
    if (argv.includes('--help') || argv.includes('-h')) return null;
    throw new UsageError(`allowgate ${group.join(' ')} needs a command`, group);
  }
  const command = findCommand([...group, next]);
  if (command === undefined || command.path.length !== depth + 1) throw new UsageError(`unknown command '${[...group, next].join(' ')}'`, group);
  return command;
}

function tokenHint(connection: Connection): string {
  if (connection.token === null) {
    return `allowgate: no admin token was given: use --token, set ALLOWGATE_ADMIN_TOKEN, or run where the gateway keeps ${TOKEN_FILE}`;
  }
  return `allowgate: the token came from ${connection.tokenSource}; it must be the admin token of the gateway at ${connection.url}`;
}

function print(io: Io, text: string): number {
  io.out(text);
  return 0;
}

async function runServe(options: ReadonlyMap<string, string | true>): Promise<number> {
  const config = options.get('config');
  // Loaded only here: client commands need none of the gateway.
  const { serve } = await import('./serve.ts');
  return serve(typeof config === 'string' ? ['--config', config] : []);
}
