import { quoteUntrusted } from './account-id.ts';
import { accountFrom, NOTHING, refused } from './extraction.ts';
import type { Extraction } from './types.ts';

export const DEFAULT_QUERY_PARAM = 'account_id';

/** The configured parameter as it is compared; throws on a name no request could carry. */
export function compileQueryParam(param: string): string {
  if (param.length === 0 || /[&=#?;\s]/.test(param)) throw new Error(`identity query parameter '${param}' must be non-empty, without & = # ? ; or spaces`);
  return param.toLowerCase();
}

/**
 * The account in `param` (already lower-cased) of a raw query string. Form encoding is assumed:
 * `+` reads as a space (it cannot occur in a valid id either way, so this only shapes the error
 * message), and percent escapes must be valid UTF-8. Names compare case-insensitively and after
 * decoding, because some frameworks read `Account_ID` or `account%5Fid` as the same parameter:
 * any spelling the upstream might take for it must be the one the gateway checks. A second
 * occurrence is ambiguous; an empty value is an invalid id, not an absent one.
 *
 * Spellings that only some frameworks fold into the parameter are refused rather than read
 * (400 `ambiguous_credentials`), since the gateway cannot know which reading the upstream has:
 * `account_id[]`, `account_id[0]` (PHP, Rack, qs), `account.id`, `account id`, `account[id`,
 * ` account_id`, `account_id%00x` (PHP), and any `;` (a separator to Rack 2, old Python, Perl).
 */
export function extractQueryAccount(query: string | null, param: string): Extraction {
  if (query === null || query.length === 0) return NOTHING;
  const source = `the ${quoteUntrusted(param)} query parameter`;
  if (query.indexOf(';') >= 0) {
    return refused(400, 'ambiguous_credentials', `the query holds ';', which some frameworks read as a parameter separator, so ${source} could be read differently upstream; use '&' (and %3B for a literal ';')`);
  }
  let value: string | undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (end > start) {
      const eq = query.indexOf('=', start);
      const nameEnd = eq >= 0 && eq < end ? eq : end;
      const reading = readName(query, start, nameEnd, param);
      if (reading === ALIAS) {
        return refused(400, 'ambiguous_credentials', `the query parameter ${quoteUntrusted(query.slice(start, nameEnd))} is read as ${source} by some frameworks (PHP, Rack, qs fold brackets, '.', spaces and NUL); send the parameter as ${param}`);
      }
      if (reading === SAME) {
        if (value !== undefined) {
          return refused(400, 'ambiguous_credentials', `${source} is given more than once; send it once`);
        }
        value = nameEnd < end ? query.slice(nameEnd + 1, end) : '';
      }
    }
    start = end + 1;
  }
  if (value === undefined) return NOTHING;
  const decoded = formDecode(value);
  if (decoded === null) {
    return refused(400, 'invalid_account', `${source} is not valid percent-encoding (${quoteUntrusted(value)})`);
  }
  return accountFrom(decoded, source);
}

/**
 * A cookie whose name frameworks could merge with the parameter (PHP's $_REQUEST takes cookies
 * too): refused, since the gateway does not read cookies as credentials. `cookies` is one Cookie
 * header's value.
 */
export function cookieAlias(cookies: string, param: string): Extraction {
  let start = 0;
  while (start < cookies.length) {
    let end = cookies.indexOf(';', start);
    if (end < 0) end = cookies.length;
    const eq = cookies.indexOf('=', start);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    if (readName(cookies, start, nameEnd, param) !== OTHER) {
      return refused(400, 'ambiguous_credentials', `the cookie ${quoteUntrusted(cookies.slice(start, nameEnd).trim())} is read as the ${quoteUntrusted(param)} parameter by frameworks that merge cookies into the request's parameters; do not send it`);
    }
    start = end + 1;
  }
  return NOTHING;
}

const SAME = 0;
const ALIAS = 1;
const OTHER = 2;

/** SAME: the parameter (ignoring case and escapes); ALIAS: only a folding framework reads it so. */
function readName(text: string, start: number, end: number, param: string): number {
  const raw = text.slice(start, end);
  if (raw.length === param.length && raw.toLowerCase() === param) return SAME;
  const decoded = formDecode(raw) ?? raw;
  if (decoded.length === param.length && decoded.toLowerCase() === param) return SAME;
  // Folding only shortens a name or keeps its length: anything shorter cannot become the parameter.
  if (decoded.length < param.length) return OTHER;
  return foldParamName(decoded) === foldParamName(param) ? ALIAS : OTHER;
}

/**
 * A parameter name as the most lenient frameworks read it: PHP ignores leading spaces and
 * everything from a NUL on, reads `.`, spaces and an unmatched `[` as `_`, and, like Rack and qs,
 * takes `name[...]` for `name`; ASP.NET ignores case (and so do Unicode-aware comparisons that
 * fold ı, İ, ſ and the Kelvin sign into ASCII letters).
 */
export function foldParamName(name: string): string {
  let text = name;
  const nul = text.indexOf('\0');
  if (nul >= 0) text = text.slice(0, nul);
  text = text.replace(/^\s+/, '');
  const bracket = text.indexOf('[');
  if (bracket >= 0) text = text.indexOf(']', bracket) > bracket ? text.slice(0, bracket) : text;
  return text.replace(/[. []/g, '_').replace(/[ıİ]/g, 'i').replace(/ſ/g, 's').toLowerCase();
}

function formDecode(s: string): string | null {
  const plain = s.includes('+') ? s.replaceAll('+', ' ') : s;
  if (!plain.includes('%')) return plain;
  try {
    return decodeURIComponent(plain);
  } catch {
    return null;
  }
}
