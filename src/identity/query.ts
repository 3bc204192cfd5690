import { quoteUntrusted } from './account-id.ts';
import { accountFrom, NOTHING, refused } from './extraction.ts';
import type { Extraction } from './types.ts';

export const DEFAULT_QUERY_PARAM = 'account_id';

/** The configured parameter as it is compared; throws on a name no request could carry. */
export function compileQueryParam(param: string): string {
  if (param.length === 0 || /[&=#?\s]/.test(param)) throw new Error(`identity query parameter '${param}' must be non-empty, without & = # ? or spaces`);
  return param.toLowerCase();
}

/**
 * The account in `param` (already lower-cased) of a raw query string. Form encoding is assumed:
 * `+` reads as a space (it cannot occur in a valid id either way, so this only shapes the error
 * message), and percent escapes must be valid UTF-8. Names compare case-insensitively and after
 * decoding, because some frameworks read `Account_ID` or `account%5Fid` as the same parameter:
 * any spelling the upstream might take for it must be the one the gateway checks. A second
 * occurrence is ambiguous; an empty value is an invalid id, not an absent one.
 */
export function extractQueryAccount(query: string | null, param: string): Extraction {
  if (query === null || query.length === 0) return NOTHING;
  const source = `the ${quoteUntrusted(param)} query parameter`;
  let value: string | undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (end > start) {
      const eq = query.indexOf('=', start);
      const nameEnd = eq >= 0 && eq < end ? eq : end;
      if (nameMatches(query, start, nameEnd, param)) {
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

function nameMatches(query: string, start: number, end: number, param: string): boolean {
  const raw = query.slice(start, end);
  if (raw.length === param.length && raw.toLowerCase() === param) return true;
  // Escapes only make a name longer, so a shorter one cannot decode to the parameter.
  if (raw.length < param.length) return false;
  const decoded = formDecode(raw);
  return decoded !== null && decoded.length === param.length && decoded.toLowerCase() === param;
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
