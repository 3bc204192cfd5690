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
