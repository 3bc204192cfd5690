/**
 * Header names arrive in whatever case the caller wrote. Comparing them here, against names
 * known in lower case, avoids allocating a lower-cased copy of every header of every request.
 */

/** Compares a raw header name with a lower-case one. */
export function isHeaderName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const want = lower.charCodeAt(i);
    const got = name.charCodeAt(i);
    // Folding with 0x20 is only sound for letters: it would also map CR to '-'.
    if (got !== want && !(want >= 97 && want <= 122 && (got | 0x20) === want)) return false;
  }
  return true;
}

/** Whether a raw name starts with `lower` (a lower-case prefix), compared without a copy. */
export function hasHeaderNamePrefix(name: string, lower: string): boolean {
  if (name.length < lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const want = lower.charCodeAt(i);
    const got = name.charCodeAt(i);
    if (got !== want && !(want >= 97 && want <= 122 && (got | 0x20) === want)) return false;
  }
  return true;
}

/**
 * A set of lower-case header names that answers for raw names: candidates are grouped by
 * length, so most names are dismissed by one array read.
 */
export class HeaderNameSet {
  readonly #byLength: (readonly string[] | undefined)[] = [];

  constructor(names: Iterable<string>) {
    for (const name of names) {
      if (name !== name.toLowerCase()) throw new TypeError(`header name '${name}' must be given in lower case`);
      const group = (this.#byLength[name.length] ?? []) as string[];
      group.push(name);
      this.#byLength[name.length] = group;
    }
  }

  /** The set's lower-case spelling of `name`, or null when it is not in the set. */
  match(name: string): string | null {
    const group = this.#byLength[name.length];
    if (group === undefined) return null;
    for (const candidate of group) if (isHeaderName(name, candidate)) return candidate;
    return null;
  }
}

/**
 * Characters that upstream stacks read as part of one and the same header name: CGI, WSGI, Rack
 * and PHP turn `-` and `_` into `_` (`X_Auth_ID` and `X-Auth-ID` both become `HTTP_X_AUTH_ID`),
 * and PHP turns `.` into `_` as well.
 */
function isNameSeparator(c: number): boolean {
  return c === 45 /* - */ || c === 95 /* _ */ || c === 46 /* . */;
}

/**
 * Whether text[start, end) names `lower` (lower case, dashed) once case is ignored and `_` and
 * `.` are read as `-`: the spellings an upstream may fold into the same name.
 */
export function isFoldedHeaderName(text: string, lower: string, start = 0, end = text.length): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const want = lower.charCodeAt(i);
    const got = text.charCodeAt(start + i);
    if (got === want) continue;
    if (want === 45 ? !isNameSeparator(got) : !(want >= 97 && want <= 122 && (got | 0x20) === want)) return false;
  }
  return true;
}

/** Whether a raw name holds `_` or `.`, the characters only some stacks fold into `-`. */
export function hasFoldableSeparator(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 95 || c === 46) return true;
  }
  return false;
}

/**
 * Lower-case, dashed header names (and name prefixes such as `x-forwarded-`) matched in their
 * folded form, for names the gateway must be the only one to interpret.
 */
export class FoldedNameSet {
  readonly #names: HeaderNameSet;
  readonly #byLength: (readonly string[] | undefined)[] = [];
  readonly #prefixes: readonly string[];

  constructor(names: Iterable<string>, prefixes: readonly string[] = []) {
    const all = [...new Set(names)];
    this.#names = new HeaderNameSet(all);
    for (const name of all) {
      const group = (this.#byLength[name.length] ?? []) as string[];
      group.push(name);
      this.#byLength[name.length] = group;
    }
    for (const prefix of prefixes) if (prefix !== prefix.toLowerCase()) throw new TypeError(`header name prefix '${prefix}' must be given in lower case`);
    this.#prefixes = prefixes;
  }

  /** The set's spelling of the exact (case-insensitive) name, or null. */
  exact(name: string): string | null {
    return this.#names.match(name);
  }

  /** The set's spelling of text[start, end) read folded, or null. */
  folded(text: string, start = 0, end = text.length): string | null {
    const group = this.#byLength[end - start];
    if (group !== undefined) for (const candidate of group) if (isFoldedHeaderName(text, candidate, start, end)) return candidate;
    for (const prefix of this.#prefixes) {
      if (end - start > prefix.length && isFoldedHeaderName(text, prefix, start, start + prefix.length)) return prefix;
    }
    return null;
  }
}
