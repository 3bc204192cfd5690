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

const ACCOUNT_ID = new RegExp(ACCOUNT_ID_PATTERN);

export function isValidAccountId(s: string): boolean {
  return s.length >= 1 && s.length <= ACCOUNT_ID_MAX_LENGTH && ACCOUNT_ID.test(s);
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
