import { foldParamName } from '../http/param-name.ts';
import { quoteUntrusted } from './account-id.ts';
import { accountFrom, NOTHING, refused } from './extraction.ts';
import type { Extraction } from './types.ts';

export const DEFAULT_QUERY_PARAM = 'account_id';

/** The configured parameter as it is compared; throws on a name no request could carry. */
export function compileQueryParam(param: string): string {
  if (param.length === 0 || /[&=#?;\s[\]]/.test(param)) throw new Error(`identity query parameter '${param}' must be non-empty, without & = # ? ; [ ] or spaces`);
  return param.toLowerCase();
}

/**
 * The account in `param` (already lower-cased) of a raw query string. Form encoding is assumed:
 * `+` reads as a space (it cannot occur in a valid id either way, so this only shapes the error
 * message), and percent escapes must be valid UTF-8. See `findQueryParam` for the names read.
 */
export function extractQueryAccount(query: string | null, param: string): Extraction {
  if (query === null || query.length === 0) return NOTHING;
  const found = findQueryParam(query, 0, query.length, param);
  if (found === undefined) return NOTHING;
  if (typeof found !== 'string') return found;
  const source = sourceOf(param);
  const decoded = formDecode(found);
  if (decoded === null) {
    return refused(400, 'invalid_account', `${source} is not valid percent-encoding (${quoteUntrusted(found)})`);
  }
  return accountFrom(decoded, source);
}

/**
 * The raw (undecoded) value of `param` in text[start, end), a query string; undefined when it is
 * not there; a refusal when the query could be read differently upstream.
 *
 * Names compare case-insensitively and after decoding, because some frameworks read
 * `Account_ID` or `account%5Fid` as the same parameter: any spelling the upstream might take for
 * it must be the one the gateway checks. A second occurrence is ambiguous; an empty value is an
 * invalid value, not an absent one.
 *
 * Spellings that only some frameworks fold into the parameter are refused rather than read
 * (400 `ambiguous_credentials`), since the gateway cannot know which reading the upstream has
 * (see `foldParamName`), and so is any `;` (a separator to Rack 2, old Python, Perl, Go before
 * 1.17).
 */
export function findQueryParam(text: string, start: number, end: number, param: string): string | Extraction | undefined {
  if (end <= start) return undefined;
  if (holdsSemicolon(text, start, end)) return semicolonRefusal(param);
  let value: string | undefined;
  let at = start;
  while (at <= end) {
    let next = text.indexOf('&', at);
    if (next < 0 || next > end) next = end;
    if (next > at) {
      const read = readPair(text, at, equalsIn(text, at, next), next, param, value);
      if (typeof read === 'object') return read;
      value = read;
    }
    at = next + 1;
  }
  return value;
}

/** What findQueryParam gives for each of `params`, from one pass over the query. */
export type ParamsFound = readonly (string | Extraction | undefined)[];

/**
 * findQueryParam for several parameters at once: what it gives for each, in order, or null when
 * the query holds none of them (the common case, which allocates nothing). One pass instead of
 * one per parameter: the bearer token parameters are read by two strategies.
 */
export function findQueryParams(text: string, start: number, end: number, params: readonly string[]): ParamsFound | null {
  if (end <= start) return null;
  if (holdsSemicolon(text, start, end)) return params.map(semicolonRefusal);
  let found: (string | Extraction | undefined)[] | null = null;
  let at = start;
  while (at <= end) {
    let next = text.indexOf('&', at);
    if (next < 0 || next > end) next = end;
    if (next > at) {
      const eq = equalsIn(text, at, next);
      for (let p = 0; p < params.length; p++) {
        const held = found === null ? undefined : found[p];
        // A parameter already refused stays refused: findQueryParam stops at its first refusal.
        if (typeof held === 'object') continue;
        const value = readPair(text, at, eq, next, params[p]!, held);
        if (value === held) continue;
        found ??= new Array<string | Extraction | undefined>(params.length).fill(undefined);
        found[p] = value;
      }
    }
    at = next + 1;
  }
  return found;
}

function holdsSemicolon(text: string, start: number, end: number): boolean {
  const semicolon = text.indexOf(';', start);
  return semicolon >= 0 && semicolon < end;
}

function semicolonRefusal(param: string): Extraction {
  return refused(400, 'ambiguous_credentials', `the query holds ';', which some frameworks read as a parameter separator, so ${sourceOf(param)} could be read differently upstream; use '&' (and %3B for a literal ';')`);
}

/** Where the pair text[at, next) ends its name: its `=`, or `next` when it has none. */
function equalsIn(text: string, at: number, next: number): number {
  const eq = text.indexOf('=', at);
  return eq < 0 || eq > next ? next : eq;
}

/**
 * `param` after the pair text[at, next) (its name ending at `eq`): `held` (the raw value so far,
 * or undefined) when the pair names another parameter, the pair's value when it names this one,
 * a refusal when it is a second occurrence or a spelling only some frameworks fold into it.
 */
function readPair(text: string, at: number, eq: number, next: number, param: string, held: string | undefined): string | Extraction | undefined {
  const reading = readName(text, at, eq, param);
  if (reading === OTHER) return held;
  if (reading === ALIAS) {
    return refused(400, 'ambiguous_credentials', `the query parameter ${quoteUntrusted(text.slice(at, eq))} is read as ${sourceOf(param)} by some frameworks (PHP, Rack, qs, Spring, IIS fold brackets, '.', spaces, NUL, '!' and %u escapes); send the parameter as ${param}`);
  }
  if (held !== undefined) return refused(400, 'ambiguous_credentials', `${sourceOf(param)} is given more than once; send it once`);
  return eq < next ? text.slice(eq + 1, next) : '';
}

/**
 * A cookie whose name frameworks could merge with one of `params` (PHP's $_REQUEST takes cookies
 * too): refused, since the gateway does not read cookies as credentials. `cookies` is one Cookie
 * header's value.
 */
export function cookieAlias(cookies: string, params: string | readonly string[]): Extraction {
  const names = typeof params === 'string' ? [params] : params;
  let start = 0;
  while (start < cookies.length) {
    let end = cookies.indexOf(';', start);
    if (end < 0) end = cookies.length;
    let eq = cookies.indexOf('=', start);
    if (eq < 0 || eq > end) eq = end;
    let nameStart = start;
    while (nameStart < eq && (cookies.charCodeAt(nameStart) === 0x20 || cookies.charCodeAt(nameStart) === 0x09)) nameStart++;
    for (const param of names) {
      if (readName(cookies, nameStart, eq, param) !== OTHER) {
        return refused(400, 'ambiguous_credentials', `the cookie ${quoteUntrusted(cookies.slice(nameStart, eq).trim())} is read as the ${quoteUntrusted(param)} parameter by frameworks that merge cookies into the request's parameters; do not send it`);
      }
    }
    start = end + 1;
  }
  return NOTHING;
}

function sourceOf(param: string): string {
  return `the ${quoteUntrusted(param)} query parameter`;
}

const SAME = 0;
const ALIAS = 1;
const OTHER = 2;

/**
 * SAME: the parameter (ignoring case and escapes); ALIAS: only a folding framework reads it so.
 * Allocates nothing for the common name: one that is not the parameter and holds none of the
 * characters folding acts on.
 */
function readName(text: string, start: number, end: number, param: string): number {
  const length = end - start;
  // Folding only shortens a name or keeps its length: anything shorter cannot become the parameter.
  if (length < param.length) return OTHER;
  if (length === param.length && sameIgnoringCase(text, start, param)) return SAME;
  if (!mayFold(text, start, end)) return OTHER;
  const raw = text.slice(start, end);
  const decoded = formDecode(decodePercentU(raw)) ?? raw;
  if (decoded.length === param.length && decoded.toLowerCase() === param) return SAME;
  if (decoded.length < param.length) return OTHER;
  return foldParamName(decoded) === foldParamName(param) ? ALIAS : OTHER;
}

/** Characters that escape or fold into others somewhere: `% + [ ] . !`, spaces, anything non-ASCII. */
function mayFold(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 37 || c === 43 || c === 91 || c === 93 || c === 46 || c === 33 || c <= 0x20 || c >= 0x7f) return true;
  }
  return false;
}

function sameIgnoringCase(text: string, start: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const want = lower.charCodeAt(i);
    const got = text.charCodeAt(start + i);
    if (got !== want && !(want >= 97 && want <= 122 && (got | 0x20) === want)) return false;
  }
  return true;
}

/** IIS and classic ASP.NET decode `%uXXXX` as the UTF-16 unit XXXX. */
function decodePercentU(s: string): string {
  return s.indexOf('%u') < 0 && s.indexOf('%U') < 0 ? s : s.replace(/%u([0-9a-f]{4})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export function formDecode(s: string): string | null {
  const plain = s.includes('+') ? s.replaceAll('+', ' ') : s;
  if (!plain.includes('%')) return plain;
  try {
    return decodeURIComponent(plain);
  } catch {
    return null;
  }
}

export type QueryValue = Extract<Extraction, { kind: 'none' | 'refused' }> | { readonly kind: 'value'; readonly value: string };

/**
 * The form-decoded value of `param` (lower case) in a raw query, read as findQueryParam reads it
 * (aliases and `;` refused, a repeat ambiguous), for a parameter that carries a secret (an API
 * key): a refusal never quotes the value.
 */
export function readSecretParam(query: string | null, param: string): QueryValue {
  return query === null ? NOTHING as QueryValue : secretValue(findQueryParam(query, 0, query.length, param), param);
}

/** A secret parameter's raw value (what findQueryParam found), decoded. */
export function secretValue(found: string | Extraction | undefined, param: string): QueryValue {
  if (found === undefined) return NOTHING as QueryValue;
  if (typeof found !== 'string') return found as QueryValue;
  const decoded = formDecode(found);
  if (decoded === null) return refused(400, 'invalid_key', `the ${quoteUntrusted(param)} query parameter is not valid percent-encoding`) as QueryValue;
  return { kind: 'value', value: decoded };
}
