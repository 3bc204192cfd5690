/**
 * Command-line parsing for `allowgate`: long options (`--name value`, `--name=value`), boolean
 * flags, `-h`, `--` to end options, and positionals. Small on purpose: the commands are few and
 * their options are declared in spec.ts.
 */

export interface OptionSpec {
  /** Without the dashes: `url` for `--url`. */
  readonly name: string;
  /** The value's placeholder in help (`URL`); absent for a boolean flag. */
  readonly value?: string;
  /** When given, the only values accepted. */
  readonly choices?: readonly string[];
  readonly help: string;
}

/** A mistake in how the command was called: exit 2 with the usage of `topic` (a command path). */
export class UsageError extends Error {
  readonly topic: readonly string[];

  constructor(message: string, topic: readonly string[] = []) {
    super(message);
    this.name = 'UsageError';
    this.topic = topic;
  }
}

export interface ParsedArgs {
  readonly positionals: readonly string[];
  /** Option name → its value (the last one given), or true for a flag. */
  readonly options: ReadonlyMap<string, string | true>;
}

const SHORT: Readonly<Record<string, string>> = { '-h': 'help' };

/**
 * Splits `argv` by the given options. Unknown options, a flag given a value, a missing value and
 * a value outside `choices` are usage errors reported against `topic`.
 */
export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[], topic: readonly string[] = []): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const written = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg;
    const name = SHORT[written] ?? (written.startsWith('--') ? written.slice(2) : '');
    const spec = byName.get(name);
    if (spec === undefined) {
      throw new UsageError(`unknown option ${written}${topic.length > 0 ? ` for allowgate ${topic.join(' ')}` : ''}`, topic);
    }
    if (spec.value === undefined) {
      if (eq > 0 && written !== arg) throw new UsageError(`--${name} takes no value`, topic);
      options.set(name, true);
      continue;
    }
    let value: string;
    if (eq > 0 && written !== arg) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value (${spec.value})`, topic);
      value = next;
      i++;
    }
    if (spec.choices !== undefined && !spec.choices.includes(value)) {
      throw new UsageError(`--${name} must be ${spec.choices.join(' or ')}, not '${value}'`, topic);
    }
    options.set(name, value);
  }
  return { positionals, options };
}

/**
 * The command words of `argv` (the positionals before anything else), skipping options and the
 * values of those in `valued`, so `--url http://x acl list` finds `acl`.
 */
export function leadingWords(argv: readonly string[], valued: ReadonlySet<string>, count: number): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < count; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      words.push(...argv.slice(i + 1, i + 1 + count - words.length));
      break;
    }
    if (arg.startsWith('-') && arg !== '-') {
      if (!arg.includes('=') && valued.has(arg.replace(/^--/, ''))) i++;
      continue;
    }
    words.push(arg);
  }
  return words;
}
