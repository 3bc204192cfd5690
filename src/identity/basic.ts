import { accountFrom, NOTHING, refused } from './extraction.ts';
import type { AuthorizationParts, Extraction } from './types.ts';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const SOURCE = 'the Basic credentials';

/**
 * `Authorization: Basic base64(user:password)`: the user name is the account. Only canonical
 * base64 is read, since Node's decoder skips characters it does not know and a lenient reading
 * here could name a different user than the upstream's. Another scheme is not this strategy's.
 */
export function extractBasicAccount(authorization: AuthorizationParts | undefined): Extraction {
  const pair = readBasicCredentials(authorization);
  if (pair.kind !== 'pair') return pair;
  if (pair.user.length === 0) return invalid('have an empty user name');
  return accountFrom(pair.user, SOURCE);
}

export type BasicCredentials = Extract<Extraction, { kind: 'none' | 'refused' }> | { readonly kind: 'pair'; readonly user: string; readonly password: string };

/**
 * The user name and password of `Authorization: Basic`, read the one strict way (canonical base64,
 * valid UTF-8, a colon), shared by the strategies that read either part.
 */
export function readBasicCredentials(authorization: AuthorizationParts | undefined): BasicCredentials {
  if (authorization === undefined || authorization.scheme !== 'basic') return NOTHING as BasicCredentials;
  const decoded = decodeBase64Strict(authorization.credentials);
  if (decoded === null) return invalid('are not valid base64') as BasicCredentials;
  const colon = decoded.indexOf(':');
  if (colon < 0) return invalid('have no \':\' between user name and password') as BasicCredentials;
  return { kind: 'pair', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function decodeBase64Strict(s: string): string | null {
  if (s.length === 0 || !BASE64.test(s)) return null;
  const bytes = Buffer.from(s, 'base64');
  // Non-zero bits in the last character decode the same as zero ones: refuse the alias.
  if (bytes.toString('base64') !== s) return null;
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}

function invalid(problem: string): Extraction {
  return refused(401, 'invalid_credentials', `${SOURCE} ${problem}; send Authorization: Basic base64(<account>:<password>)`);
}
