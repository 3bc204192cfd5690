import type { Refusal } from '../http/refusal.ts';
import type { JwtVerifier } from './jwt.ts';

/** How a request names its account; the config lists one or more, all of which run. */
export type StrategyConfig =
  /** A header carrying the account id; `header` is matched case-insensitively (default x-auth-id). */
  | { readonly type: 'header'; readonly header: string }
  /** `Authorization: Basic`, the user name being the account (the password is the upstream's business). */
  | { readonly type: 'basic' }
  /** `Authorization: Bearer <JWT>`, the account in a top-level string claim (default iss). */
  | { readonly type: 'bearer-jwt'; readonly claim: string; readonly verify?: JwtVerifier }
  /** A query parameter (default account_id). */
  | { readonly type: 'query'; readonly param: string }
  /** A path segment, e.g. `/v1/Account/{account}/`. */
  | { readonly type: 'path'; readonly templates: readonly string[] };

export type StrategyType = StrategyConfig['type'];

/**
 * How the upstream compares account ids (identity.accountIdCase): `refuse` (not said: an id that
 * only matches an account with a list or settings when case is ignored is refused), `exact`,
 * `fold` (case ignored), `lower` or `upper` (ids brought to that case).
 */
export type AccountIdCase = 'refuse' | 'exact' | 'fold' | 'lower' | 'upper';

export interface IdentityOptions {
  /** An Authorization header no strategy can read: refused (400/401), or passed as anonymous. */
  readonly unreadableAuthorization: 'refuse' | 'anonymous';
  readonly accountIdCase: AccountIdCase;
  /**
   * With the query strategy, a form body (urlencoded or multipart) may carry the parameter too,
   * and most frameworks merge it with the query; the gateway does not read bodies, so such a
   * request is refused unless this is `pass`.
   */
  readonly formBodies: 'refuse' | 'pass';
}

/** The parts of a request identity depends on, as Node hands them over. */
export interface RequestView {
  /** The raw request target, e.g. `/v1/x?account_id=A`. */
  readonly url: string;
  /** `req.rawHeaders`: `[name, value, name, value, ...]`, duplicates kept. */
  readonly rawHeaders: readonly string[];
}

export type IdentityResult =
  | { readonly kind: 'account'; readonly account: string; readonly via: StrategyType }
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'refused'; readonly refusal: Refusal };

/** What one strategy makes of a request. */
export type Extraction =
  | { readonly kind: 'none' }
  | { readonly kind: 'account'; readonly account: string }
  | { readonly kind: 'refused'; readonly refusal: Refusal };

/** `Authorization` split into its scheme (lower-cased) and credentials. */
export interface AuthorizationParts {
  readonly scheme: string;
  readonly credentials: string;
}
