/**
 * Typed reading of untrusted configuration values with errors that name the key, the value and
 * what is expected. Each value remembers where it came from (`ALLOWGATE_TRUSTED_HOPS`, or
 * `clientIp.trustedHops in config/allowgate.yaml`), so the message points at what to fix.
 */

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export type Origin = (path: string) => string;

export class Reader {
  readonly path: string;
  readonly value: unknown;
  readonly #origin: Origin;

  constructor(value: unknown, path: string, origin: Origin) {
    this.value = value;
    this.path = path;
    this.#origin = origin;
  }

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  fail(expected: string): never {
    const got = SECRET_SETTING.test(this.path) && typeof this.value === 'string' ? `a value of ${this.value.length} characters (not shown)` : show(this.value);
    throw new ConfigError(`${this.#origin(this.path)} must be ${expected}, got ${got}`);
  }

  /** A child value; `allowed` lists the keys this object may have, so typos are errors too. */
  object(allowed: readonly string[]): ObjectReader {
    if (!this.present) return new ObjectReader({}, this.path, this.#origin);
    if (typeof this.value !== 'object' || Array.isArray(this.value)) this.fail('a mapping');
    const record = this.value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!allowed.includes(key)) {
        const where = this.path ? `${this.path}.${key}` : key;
        throw new ConfigError(`unknown config key '${where}': expected one of ${allowed.join(', ')}`);
      }
    }
    return new ObjectReader(record, this.path, this.#origin);
  }

  string(fallback?: string): string {
    if (!this.present) {
      if (fallback === undefined) this.fail('set');
      return fallback;
    }
    if (typeof this.value !== 'string' || this.value.length === 0) this.fail('a non-empty string');
    return this.value;
  }

  optionalString(): string | undefined {
    return this.present ? this.string() : undefined;
  }

  /** Integers arrive as numbers from YAML and as strings from the environment. */
  integer(min: number, max: number, fallback: number): number {
    if (!this.present) return fallback;
    const n = typeof this.value === 'string' && /^-?[0-9]+$/.test(this.value.trim()) ? Number(this.value) : this.value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) this.fail(`an integer ${min}-${max}`);
    return n;
  }

  boolean(fallback: boolean): boolean {
    if (!this.present) return fallback;
    if (typeof this.value === 'boolean') return this.value;
    if (this.value === 'true') return true;
    if (this.value === 'false') return false;
    return this.fail('true or false');
  }

  oneOf<const T extends string>(choices: readonly T[], fallback: T): T {
    if (!this.present) return fallback;
    if (typeof this.value !== 'string' || !(choices as readonly string[]).includes(this.value)) {
      this.fail(`one of ${choices.join(', ')}`);
    }
    return this.value as T;
  }

  /** A list, from YAML or from a comma-separated environment value. */
  list(): Reader[] {
    if (!this.present) return [];
    const items = typeof this.value === 'string'
      ? this.value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
      : this.value;
    if (!Array.isArray(items)) this.fail('a list');
    return items.map((item, i) => new Reader(item, `${this.path}[${i}]`, (p) => this.#origin(p)));
  }
}

export class ObjectReader extends Reader {
  readonly #record: Record<string, unknown>;
  readonly #originFn: Origin;

  constructor(record: Record<string, unknown>, path: string, origin: Origin) {
    super(record, path, origin);
    this.#record = record;
    this.#originFn = origin;
  }

  get(key: string): Reader {
    return new Reader(this.#record[key], this.path ? `${this.path}.${key}` : key, this.#originFn);
  }

  has(key: string): boolean {
    const value = this.#record[key];
    return value !== undefined && value !== null;
  }
}

/**
 * Settings that hold a credential (admin.token, keys.secret, redis.password, metrics.token,
 * identity.introspection.clientSecret): an error says what is wrong with the value, never the value,
 * since start-up errors end up in container logs.
 */
const SECRET_SETTING = /(^|\.)(token|secret|password|clientSecret)$/;

function show(value: unknown): string {
  if (value === undefined || value === null) return 'nothing';
  // A URL's password (redis://user:password@host) is a credential too.
  const text = (typeof value === 'string' ? `'${value}'` : JSON.stringify(value)).replace(/(\/\/[^/@:\s]*:)[^/@\s]*@/g, '$1***@');
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
