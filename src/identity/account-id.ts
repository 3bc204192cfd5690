/**
 * Account ids as the gateway and the admin API accept them. Ids are case-sensitive: `Acme` and
 * `acme` are different accounts, because the upstream's ids usually are.
 */

export const ACCOUNT_ID_MAX_LENGTH = 128;

/** The pattern's source, for schemas and error messages. */
export const ACCOUNT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@-]*$';

/** The expected form in words, for error messages. */
export const ACCOUNT_ID_DESCRIPTION =
  `1-${ACCOUNT_ID_MAX_LENGTH} characters from A-Z a-z 0-9 . _ @ -, starting with a letter or digit`;

/** ACCOUNT_ID_PATTERN as a loop: this runs on every request that names an account. */
export function isValidAccountId(s: string): boolean {
  if (s.length < 1 || s.length > ACCOUNT_ID_MAX_LENGTH) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!alnum && (i === 0 || (c !== 46 /* . */ && c !== 95 /* _ */ && c !== 64 /* @ */ && c !== 45 /* - */))) return false;
  }
  return true;
}

const MAX_ECHO = 64;

/**
 * Untrusted text made safe to put in a response or a log line: quoted, control characters
 * escaped, and cut short so a caller cannot make the gateway repeat a large payload.
 */
export function quoteUntrusted(s: string, max: number = MAX_ECHO): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(cut);
}
