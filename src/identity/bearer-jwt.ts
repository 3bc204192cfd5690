import { quoteUntrusted } from './account-id.ts';
import { accountFrom, NOTHING, refused } from './extraction.ts';
import { DEFAULT_MAX_TOKEN_LENGTH, parseJws, type JsonObject, type JwtVerifier } from './jwt.ts';
import type { AuthorizationParts, Extraction } from './types.ts';

export const DEFAULT_CLAIM = 'iss';

/**
 * `Authorization: Bearer <JWT>`, the account in a top-level string claim (the name is taken as
 * written: `a.b` is one claim, not a path). Fails closed: a bearer token whose account cannot be
 * told is refused rather than forwarded as anonymous, since the upstream will honour it. Without
 * a verifier the token is only decoded; the upstream is then what checks the signature.
 */
export function extractBearerAccount(authorization: AuthorizationParts | undefined, claim: string, verifier: JwtVerifier | undefined): Extraction {
  if (authorization === undefined || authorization.scheme !== 'bearer') return NOTHING;
  const token = authorization.credentials;
  if (token.length === 0) return invalid('it is empty');
  let payload: JsonObject;
  if (verifier === undefined) {
    const parsed = parseJws(token, DEFAULT_MAX_TOKEN_LENGTH);
    if (!parsed.ok) return invalid(parsed.problem);
    payload = parsed.jws.payload;
  } else {
    const checked = verifier.verify(token);
    if (!checked.ok) return invalid(checked.problem);
    payload = checked.payload;
  }
  const value = Object.hasOwn(payload, claim) ? payload[claim] : undefined;
  if (typeof value !== 'string') return invalid(`its ${quoteUntrusted(claim)} claim, which names the account, is ${value === undefined ? 'missing' : 'not a string'}`);
  return accountFrom(value, `the bearer token's ${quoteUntrusted(claim)} claim`);
}

function invalid(problem: string): Extraction {
  return refused(401, 'invalid_token', `the bearer token was refused: ${problem}`);
}
