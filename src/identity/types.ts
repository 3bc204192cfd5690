import type { Refusal } from '../http/refusal.ts';
import type { JwtVerifier } from './jwt.ts';

/** How a request names its account; the config lists one or more, all of which run. */
export type StrategyConfig =
  /** A header carrying the account id; `header` is matched case-insensitively (default x-auth-id). */
  | { readonly type: 'header'; readonly header: string }
  /** `Authorization: Basic`, the user name being the account (the password is the upstream's business). */
  | { readonly type: 'basic' }
  /**
   * `Authorization: Bearer <JWT>`, the account in a top-level string claim (default iss). `params`:
   * the query parameters (and form fields) an upstream may take the token from instead (RFC 6750
   * §2.2-2.3: access_token; Doorkeeper also bearer_token), read as bearer tokens too; [] for none.
   */
  | { readonly type: 'bearer-jwt'; readonly claim: string; readonly verify?: JwtVerifier; readonly params?: readonly string[] }
  /** A query parameter (default account_id). */
  | { readonly type: 'query'; readonly param: string }
  /** A path segment, e.g. `/v1/Account/{account}/`. */
  | { readonly type: 'path'; readonly templates: readonly string[] }
  /** An opaque API key, registered to its account (or introspected): see ApiKeyStrategy. */
  | ApiKeyStrategy;

/**
 * Where the `api-key` strategy reads a key: a header (default X-API-Key; null: none), an opaque
 * `Authorization: Bearer` token (with `bearer-jwt` listed too, only tokens that are not JWTs) or
 * one in a bearer token query parameter (`params`), the
 * password or the user name of `Authorization: Basic`, a query parameter (null: none). A key in
 * more than one of them is refused (400 ambiguous_credentials).
 */
export interface ApiKeyStrategy {
  readonly type: 'api-key';
  readonly header: string | null;
  readonly bearer: boolean;
  readonly basic: 'off' | 'password' | 'username';
  readonly query: string | null;
  /**
   * With `bearer`, the query parameters a bearer token may travel in as well (RFC 6750 §2.3:
   * access_token; Doorkeeper also bearer_token), read as keys; [] for none. Default: the
   * bearer-jwt strategy's, when it is listed, else access_token and bearer_token.
   */
  readonly params?: readonly string[];
  /** A key neither registered nor introspected as active: refused (401 unknown_key) or passed as anonymous. */
  readonly unknown: 'refuse' | 'anonymous';
}

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
   * A form body (urlencoded or multipart, or a POST body with no Content-Type, which Rack reads as
   * a form) may carry a parameter the gateway reads in the query (the query strategy's, or a
   * bearer token when the request has no Authorization), and most frameworks merge it with the
   * query; the gateway does not read bodies, so such a request is refused unless this is `pass`.
   */
  readonly formBodies: 'refuse' | 'pass';
  /**
   * The same for JSON bodies, which Rails, Laravel and Django REST framework merge into the
   * request's parameters: with the query strategy, refused unless this is `pass`.
   */
  readonly jsonBodies: 'refuse' | 'pass';
}

/** The parts of a request identity depends on, as Node hands them over. */
export interface RequestView {
  /** The raw request target, e.g. `/v1/x?account_id=A`. */
  readonly url: string;
  /** `req.rawHeaders`: `[name, value, name, value, ...]`, duplicates kept. */
  readonly rawHeaders: readonly string[];
  /** The request method, when known (a check may not say). */
  readonly method?: string | undefined;
  /**
   * True when Content-Length and Transfer-Encoding in `rawHeaders` are the request's own framing
   * (the proxy listener): without either there is no body. On a check the proxy may have removed
   * them (nginx's auth_request), so whether there is a body cannot be told.
   */
  readonly framed?: boolean;
}

export type IdentityResult =
  /**
   * `suffixed`: the id is the path's last segment, where routers read a `.suffix` as a format
   * (Rails' `.:format`, Spring's suffix patterns): `AC1.json` may be served as AC1.
   */
  | { readonly kind: 'account'; readonly account: string; readonly via: StrategyType; readonly suffixed?: true }
  /**
   * An API key (as sent: the caller of the resolver digests it and never keeps it), and the account
   * the other strategies named, if any (the key's account must be the same).
   */
  | {
    readonly kind: 'key'; readonly key: string; readonly source: string; readonly account: string | null; readonly unknown: ApiKeyStrategy['unknown'];
    /** The Basic user name sent beside a key read from the Basic password, when no strategy reads it as the account. */
    readonly basicUser?: string;
  }
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'refused'; readonly refusal: Refusal };

/** What one strategy makes of a request. */
export type Extraction =
  | { readonly kind: 'none' }
  | { readonly kind: 'account'; readonly account: string; readonly suffixed?: true }
  | { readonly kind: 'key'; readonly key: string; readonly source: string; readonly basicUser?: string }
  | { readonly kind: 'refused'; readonly refusal: Refusal };

/** `Authorization` split into its scheme (lower-cased) and credentials. */
export interface AuthorizationParts {
  readonly scheme: string;
  readonly credentials: string;
}
