import { accountFrom, NOTHING } from './extraction.ts';
import { trimOws } from './authorization.ts';
import type { Extraction } from './types.ts';

export const DEFAULT_ID_HEADER = 'x-auth-id';

/** RFC 9110 §5.6.2 token characters. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The configured header name as it is compared (lower-case); throws on a name that cannot work. */
export function compileHeaderName(header: string): string {
  if (!FIELD_NAME.test(header)) throw new Error(`identity header name '${header}' is not a valid HTTP header name`);
  const name = header.toLowerCase();
  // Authorization carries Basic and Bearer credentials: reading it raw would take the scheme as
  // part of the account id.
  if (name === 'authorization') throw new Error('identity header strategy cannot read Authorization: use the basic or bearer-jwt strategy');
  return name;
}

/** The account named by the header's (only) value; the caller has already refused repeats. */
export function extractHeaderAccount(value: string | undefined, name: string): Extraction {
  if (value === undefined) return NOTHING;
  return accountFrom(trimOws(value), `the ${name} header`);
}
