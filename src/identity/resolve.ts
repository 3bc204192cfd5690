import { isHeaderName } from '../http/header-name.ts';
import { refusal } from '../http/refusal.ts';
import { parseAuthorization } from './authorization.ts';
import { extractBasicAccount } from './basic.ts';
import { DEFAULT_CLAIM, extractBearerAccount } from './bearer-jwt.ts';
import { quoteUntrusted } from './account-id.ts';
import { parsedBodyOf, untypedBodyIsForm, type ParsedBody } from './body-params.ts';
import { NOTHING, refused } from './extraction.ts';
import { compileHeaderName, DEFAULT_ID_HEADER, extractHeaderAccount } from './header.ts';
import type { JwtVerifier } from './jwt.ts';
import { compilePathTemplates, extractPathAccount, type PathTemplate } from './path.ts';
import { compileQueryParam, cookieAlias, extractQueryAccount, findQueryParams, formDecode, type ParamsFound } from './query.ts';
import { apiKeySources, extractApiKey, isJwtShaped, type ApiKeySources } from './api-key.ts';
import { splitTarget, type Target } from './target.ts';
import type { AccountIdCase, ApiKeyStrategy, AuthorizationParts, Extraction, IdentityOptions, IdentityResult, RequestView, StrategyConfig, StrategyType } from './types.ts';

/** Used when the config lists no strategy. */
export const DEFAULT_STRATEGIES: readonly StrategyConfig[] = [
  { type: 'header', header: DEFAULT_ID_HEADER },
  { type: 'basic' },
  { type: 'bearer-jwt', claim: DEFAULT_CLAIM },
];

/** Where RFC 6750 (§2.2, §2.3) and Doorkeeper let a bearer token travel besides Authorization. */
export const DEFAULT_BEARER_PARAMS: readonly string[] = ['access_token', 'bearer_token'];

const AUTHORIZATION = 'authorization';

type Compiled =
  | { readonly type: 'header'; readonly source: string; readonly slot: number; readonly name: string }
  | { readonly type: 'basic'; readonly source: string }
  | { readonly type: 'bearer-jwt'; readonly source: string; readonly claim: string; readonly verifier: JwtVerifier | undefined; readonly jwtOnly: boolean }
  /** A bearer token in a query parameter (the bearer-jwt strategy's `params`). */
  /** `slot`: the parameter's place in Plan.bearerParams. `keys`: the api-key strategy reads this parameter too, and takes the tokens not shaped like JWTs. */
  | { readonly type: 'bearer-param'; readonly source: string; readonly param: string; readonly slot: number; readonly claim: string; readonly verifier: JwtVerifier | undefined; readonly keys: boolean }
  | { readonly type: 'query'; readonly source: string; readonly param: string }
  | { readonly type: 'path'; readonly source: string; readonly templates: readonly PathTemplate[] }
  | { readonly type: 'api-key'; readonly source: string; readonly sources: ApiKeySources; readonly unknown: ApiKeyStrategy['unknown'] };

/** Used when no options are given: unreadable Authorization refused, ids compared as given. */
export const DEFAULT_IDENTITY_OPTIONS: IdentityOptions = { unreadableAuthorization: 'refuse', accountIdCase: 'refuse', formBodies: 'refuse', jsonBodies: 'refuse' };

interface Plan {
  readonly strategies: readonly Compiled[];
  /** The Authorization schemes some strategy reads (lower case). */
  readonly schemes: readonly string[];
  /** The query parameters strategies read (the query strategy's account, the api-key strategy's key), whose cookie spellings and bodies are refused. */
  readonly queryParams: readonly string[];
  /**
   * The bearer token parameters (the bearer-jwt strategy's, the api-key strategy's with bearer):
   * read in the query, in one pass for both, and refused in cookies and form bodies without Authorization.
   */
  readonly bearerParams: readonly string[];
  readonly options: IdentityOptions;
  /** Lower-cased names of the headers credentials come from; index = slot. */
  readonly watched: readonly string[];
  /** Slot of Authorization, or -1 when no strategy reads it. */
  readonly authorizationSlot: number;
  readonly needsTarget: boolean;
  /** Whether Cookie, Content-Type and the body's framing matter (a parameter the gateway reads could come in them). */
  readonly readsParams: boolean;
}

/**
 * The request's account, from every configured strategy (the defaults when none is). Everything
 * that can be is worked out here, once, so the returned function only reads the request.
 *
 * Credentials are refused rather than guessed at when they disagree: a header sent twice (Node
 * keeps only one Authorization in `req.headers`, and the upstream may pick the other), or two
 * strategies naming different accounts. Either way the gateway might check one account's list
 * while the upstream serves another.
 *
 * Throws on a strategy list that cannot work, at start-up rather than on the first request.
 */
export function compileIdentityResolver(strategies: readonly StrategyConfig[], options: IdentityOptions = DEFAULT_IDENTITY_OPTIONS): (req: RequestView) => IdentityResult {
  const plan = compilePlan(strategies.length === 0 ? DEFAULT_STRATEGIES : strategies, options);
  return (req) => resolveIdentity(plan, req);
}

/** The lower-case names of the headers the strategies read credentials from. */
export function credentialHeaders(strategies: readonly StrategyConfig[]): readonly string[] {
  return compilePlan(strategies.length === 0 ? DEFAULT_STRATEGIES : strategies, DEFAULT_IDENTITY_OPTIONS).watched;
}

/**
 * The query parameters the strategies read a secret from (the api-key strategy's key, bearer
 * tokens): never logged in clear.
 */
export function secretQueryParams(strategies: readonly StrategyConfig[]): readonly string[] {
  const plan = compilePlan(strategies.length === 0 ? DEFAULT_STRATEGIES : strategies, DEFAULT_IDENTITY_OPTIONS);
  return [...plan.bearerParams, ...plan.strategies.flatMap((s) => (s.type === 'api-key' && s.sources.query !== null ? [s.sources.query] : []))];
}

function compilePlan(configs: readonly StrategyConfig[], options: IdentityOptions): Plan {
  const watched: string[] = [];
  const seen = new Set<string>();
  const once = (key: string, what: string): void => {
    if (seen.has(key)) throw new Error(`identity strategy ${what} is listed twice`);
    seen.add(key);
  };
  const slotOf = (name: string): number => {
    const at = watched.indexOf(name);
    if (at >= 0) return at;
    watched.push(name);
    return watched.length - 1;
  };
  const keyStrategy = configs.find((c): c is ApiKeyStrategy => c.type === 'api-key');
  const jwtStrategy = configs.find((c) => c.type === 'bearer-jwt');
  const jwtListed = jwtStrategy !== undefined;
  const jwtParams = jwtStrategy === undefined ? [] : [...new Set((jwtStrategy.params ?? DEFAULT_BEARER_PARAMS).map((p) => compileQueryParam(p)))];
  // Where an opaque bearer token may travel besides Authorization, read as a key like the header's
  // (RFC 6750 §2.3; token libraries read them); the key's own query parameter is read as such already.
  const keyQuery = keyStrategy === undefined || keyStrategy.query === null ? null : compileQueryParam(keyStrategy.query);
  const keyParams = keyStrategy?.bearer === true
    ? [...new Set((keyStrategy.params ?? jwtStrategy?.params ?? DEFAULT_BEARER_PARAMS).map((p) => compileQueryParam(p)))].filter((p) => p !== keyQuery)
    : [];
  const bearerParams = [...new Set([...jwtParams, ...keyParams])];
  if (keyStrategy?.basic === 'username' && configs.some((c) => c.type === 'basic')) {
    throw new Error('identity strategy api-key reads the key from the Basic user name (basic: username), which the basic strategy reads as the account: list one of them');
  }
  const strategies = configs.flatMap((config): Compiled[] => {
    switch (config.type) {
      case 'header': {
        const name = compileHeaderName(config.header);
        once(`header:${name}`, `header (${name})`);
        return [{ type: 'header', source: `the ${name} header`, slot: slotOf(name), name }];
      }
      case 'basic':
        once('basic', 'basic');
        slotOf(AUTHORIZATION);
        return [{ type: 'basic', source: 'the Basic credentials' }];
      case 'bearer-jwt': {
        once('bearer-jwt', 'bearer-jwt');
        if (typeof config.claim !== 'string' || config.claim.length === 0) throw new Error('identity strategy bearer-jwt needs a claim name, e.g. iss');
        slotOf(AUTHORIZATION);
        return [
          { type: 'bearer-jwt', source: `the bearer token's ${config.claim} claim`, claim: config.claim, verifier: config.verify, jwtOnly: keyStrategy?.bearer === true },
          ...jwtParams.map((param): Compiled => ({ type: 'bearer-param', source: `the bearer token in the ${param} query parameter`, param, slot: bearerParams.indexOf(param), claim: config.claim, verifier: config.verify, keys: keyParams.includes(param) })),
        ];
      }
      case 'query': {
        const param = compileQueryParam(config.param);
        once(`query:${param}`, `query (${param})`);
        return [{ type: 'query', source: `the ${param} query parameter`, param }];
      }
      case 'path':
        once('path', 'path (list all templates in one)');
        return [{ type: 'path', source: 'the path', templates: compilePathTemplates(config.templates) }];
      case 'api-key': {
        once('api-key', 'api-key');
        const header = config.header === null ? null : compileHeaderName(config.header);
        if (header !== null && seen.has(`header:${header}`)) throw new Error(`identity strategies header and api-key both read the ${header} header: a header names either an account or a key`);
        if (header !== null) once(`header:${header}`, `header (${header})`);
        const query = config.query === null ? null : compileQueryParam(config.query);
        if (query !== null) once(`query:${query}`, `query (${query})`);
        if (config.bearer || config.basic !== 'off') slotOf(AUTHORIZATION);
        if (header === null && !config.bearer && config.basic === 'off' && query === null) throw new Error('identity strategy api-key reads no key: set a header, bearer, basic or query');
        const sources = apiKeySources({
          slot: header === null ? -1 : slotOf(header), header, bearer: config.bearer, jwtAware: jwtListed,
          basic: config.basic, basicAccount: configs.some((c) => c.type === 'basic'), query, params: keyParams, paramSlots: keyParams.map((p) => bearerParams.indexOf(p)), jwtParams,
        });
        return [{ type: 'api-key', source: 'the API key', sources, unknown: config.unknown }];
      }
      default:
        throw new Error(`unknown identity strategy type ${JSON.stringify((config as { type?: unknown }).type)}`);
    }
  });
  const queryParams = strategies.flatMap((s) => (s.type === 'query' ? [s.param] : s.type === 'api-key' && s.sources.query !== null ? [s.sources.query] : []));
  const clash = queryParams.find((p) => bearerParams.includes(p));
  if (clash !== undefined) throw new Error(`identity query parameter '${clash}' is also a bearer token parameter (the bearer-jwt strategy's params, or the api-key strategy's with bearer): give them different names`);
  const schemes = new Set<string>();
  for (const s of strategies) {
    if (s.type === 'basic' || (s.type === 'api-key' && s.sources.basic !== 'off')) schemes.add('basic');
    if (s.type === 'bearer-jwt' || (s.type === 'api-key' && s.sources.bearer)) schemes.add('bearer');
  }
  return {
    strategies,
    schemes: [...schemes],
    queryParams,
    bearerParams,
    options,
    watched,
    authorizationSlot: watched.indexOf(AUTHORIZATION),
    needsTarget: strategies.some((s) => s.type === 'query' || s.type === 'path' || (s.type === 'api-key' && s.sources.query !== null)),
    readsParams: queryParams.length > 0 || bearerParams.length > 0,
  };
}

function resolveIdentity(plan: Plan, req: RequestView): IdentityResult {
  const values: (string | undefined)[] = new Array<string | undefined>(plan.watched.length);
  const raw = req.rawHeaders;
  const readsParams = plan.readsParams;
  // What a body could carry, and the cookies, are only judged once every header is read.
  let cookie: string | undefined;
  let moreCookies: string[] | undefined;
  let body: ParsedBody | null = null;
  let typed = false;
  let framedBody = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    for (let slot = 0; slot < plan.watched.length; slot++) {
      const wanted = plan.watched[slot]!;
      if (!isHeaderName(name, wanted)) continue;
      if (values[slot] !== undefined) return ambiguous(`the ${wanted} header is sent more than once; send it once`);
      values[slot] = raw[i + 1]!;
    }
    if (!readsParams) continue;
    const length = name.length;
    if (length === 6 && isHeaderName(name, 'cookie')) {
      if (cookie === undefined) cookie = raw[i + 1]!;
      else (moreCookies ??= []).push(raw[i + 1]!);
    } else if (length === 12 && isHeaderName(name, 'content-type')) {
      const value = raw[i + 1]!;
      // Rack reads an empty Content-Type as none at all.
      if (value.trim().length > 0) typed = true;
      body = strongerBody(body, parsedBodyOf(value));
    } else if (length === 14 && isHeaderName(name, 'content-length')) {
      if (raw[i + 1]!.trim() !== '0') framedBody = true;
    } else if (length === 17 && isHeaderName(name, 'transfer-encoding')) {
      framedBody = true;
    }
  }
  const authorizationValue = plan.authorizationSlot < 0 ? undefined : values[plan.authorizationSlot];
  let authorization: AuthorizationParts | undefined;
  if (authorizationValue !== undefined) {
    authorization = parseAuthorization(authorizationValue);
    const unreadable = unreadableAuthorization(authorization, plan.schemes);
    if (unreadable !== null) {
      if (plan.options.unreadableAuthorization === 'refuse') return unreadable;
      authorization = undefined;
    }
  }
  if (readsParams) {
    // Without its own framing (a check) a request may have a body whatever its headers say.
    if (!typed && untypedBodyIsForm(req.method, framedBody || req.framed !== true)) body = 'form';
    const refusedParams = paramsElsewhere(plan, authorization !== undefined, cookie, moreCookies, body);
    if (refusedParams !== null) return refusedParams;
  }
  const target: Target | undefined = plan.needsTarget ? splitTarget(req.url) : undefined;
  const tokens = plan.bearerParams.length === 0 ? null : bearerParamsOf(req.url, plan.bearerParams);
  const spelling = plan.options.accountIdCase;

  let account: string | undefined;
  let via: StrategyType | undefined;
  let suffixed = false;
  let source = '';
  let key: Extract<Extraction, { kind: 'key' }> | undefined;
  let unknownKeys: ApiKeyStrategy['unknown'] = 'refuse';
  for (const strategy of plan.strategies) {
    const found = extract(strategy, values, authorization, target, tokens);
    if (found.kind === 'none') continue;
    if (found.kind === 'refused') return found;
    if (found.kind === 'key') {
      key = found;
      if (strategy.type === 'api-key') unknownKeys = strategy.unknown;
      continue;
    }
    const named = spelled(found.account, spelling);
    if (found.suffixed) suffixed = true;
    if (account === undefined) {
      account = named;
      via = strategy.type === 'bearer-param' ? 'bearer-jwt' : strategy.type;
      source = strategy.source;
    } else if (named !== account) {
      return ambiguous(`the request names different accounts in ${source} and ${strategy.source}; send credentials for one account`);
    }
  }
  if (key !== undefined) {
    const found = { kind: 'key', key: key.key, source: key.source, account: account ?? null, unknown: unknownKeys } as const;
    return key.basicUser === undefined ? found : { ...found, basicUser: spelled(key.basicUser, spelling) };
  }
  return account === undefined || via === undefined ? ANONYMOUS : suffixed ? { kind: 'account', account, via, suffixed: true } : { kind: 'account', account, via };
}

const ANONYMOUS: IdentityResult = { kind: 'anonymous' };

/** A form beats JSON, and a media range either: the refusal names the most common reading. */
function strongerBody(held: ParsedBody | null, next: ParsedBody | null): ParsedBody | null {
  if (held === null) return next;
  if (next === null || held === 'form' || held === 'any') return held;
  return next;
}

/**
 * A parameter the gateway reads in the query that could reach the upstream elsewhere, unseen:
 * in a cookie (PHP's $_REQUEST merges cookies), or in a body frameworks merge with the query.
 * The query strategy's parameter is refused there always; a bearer token parameter only when the
 * request carries no Authorization credentials (token libraries read the header first: Doorkeeper,
 * oauthlib, passport-http-bearer).
 */
function paramsElsewhere(plan: Plan, authorized: boolean, cookie: string | undefined, moreCookies: readonly string[] | undefined, body: ParsedBody | null): IdentityResult | null {
  const { queryParams, bearerParams, options } = plan;
  const bearer = !authorized && bearerParams.length > 0;
  if (cookie !== undefined && (queryParams.length > 0 || bearer)) {
    const names = bearer ? [...queryParams, ...bearerParams] : queryParams;
    for (const value of moreCookies === undefined ? [cookie] : [cookie, ...moreCookies]) {
      const alias = cookieAlias(value, names);
      if (alias.kind === 'refused') return alias;
    }
  }
  if (body === null) return null;
  const formRefused = options.formBodies === 'refuse';
  const jsonRefused = options.jsonBodies === 'refuse';
  if (queryParams.length > 0) {
    const refusedHere = body === 'form' ? formRefused : body === 'json' ? jsonRefused : formRefused || jsonRefused;
    if (refusedHere) return ambiguous(`${BODY_WORDS[body]} may carry the ${queryParams.join(' and ')} parameter${queryParams.length > 1 ? 's' : ''} as well, and frameworks merge it with the query (PHP, Rack, Rails, Laravel, servlets, Go's FormValue) while the gateway does not read bodies; send the parameters in the query and the body as another type, or say that the upstream does not merge it (identity.${body === 'json' ? 'jsonBodies' : 'formBodies'}: pass)`);
  }
  if (bearer && body !== 'json' && formRefused) {
    return ambiguous(`${BODY_WORDS[body]} may carry a bearer token (${bearerParams.join(', ')}; RFC 6750 §2.2), which token libraries read when there is no Authorization header, and the gateway does not read bodies; send the token in Authorization: Bearer, or say that the upstream reads no token from bodies (identity.formBodies: pass)`);
  }
  return null;
}

const BODY_WORDS: Readonly<Record<ParsedBody, string>> = {
  form: 'a form body (a urlencoded or multipart Content-Type as PHP and Rack read it, or a POST body without one)',
  json: 'a JSON body',
  any: 'a body of a media range (*/*), which content negotiators hand to their form or JSON parser,',
};

function extract(strategy: Compiled, values: readonly (string | undefined)[], authorization: AuthorizationParts | undefined, target: Target | undefined, tokens: ParamsFound | null): Extraction {
  switch (strategy.type) {
    case 'header':
      return extractHeaderAccount(values[strategy.slot], strategy.name);
    case 'basic':
      return extractBasicAccount(authorization);
    case 'bearer-jwt':
      // With api-key reading Bearer tokens too, this strategy takes only the JWTs.
      if (strategy.jwtOnly && authorization?.scheme === 'bearer' && !isJwtShaped(authorization.credentials)) return NOTHING;
      return extractBearerAccount(authorization, strategy.claim, strategy.verifier);
    case 'bearer-param':
      return extractBearerParam(tokens === null ? undefined : tokens[strategy.slot], strategy.param, strategy.claim, strategy.verifier, strategy.keys);
    case 'query':
      return extractQueryAccount(target?.query ?? null, strategy.param);
    case 'path':
      return target === undefined ? NOTHING : extractPathAccount(target.path, strategy.templates);
    case 'api-key':
      return extractApiKey(strategy.sources, values, authorization, target?.query ?? null, tokens);
  }
}

/**
 * The bearer token parameters in the raw target's query (up to any `#`), scanned in place: null,
 * allocating nothing, when the request carries none of them.
 */
function bearerParamsOf(url: string, params: readonly string[]): ParamsFound | null {
  const q = url.indexOf('?');
  if (q < 0) return null;
  const hash = url.indexOf('#', q);
  return findQueryParams(url, q + 1, hash < 0 ? url.length : hash, params);
}

/**
 * A bearer token in the query (`?access_token=<JWT>`, RFC 6750 §2.3; `found` is what the scan read
 * there): read like the header's, under the query strategy's rules for parameter names (other
 * spellings refused, one occurrence).
 */
function extractBearerParam(found: string | Extraction | undefined, param: string, claim: string, verifier: JwtVerifier | undefined, keys: boolean): Extraction {
  if (found === undefined) return NOTHING;
  if (typeof found !== 'string') return found;
  const token = formDecode(found);
  if (token === null) return refused(401, 'invalid_token', `the bearer token in the ${param} query parameter is not valid percent-encoding`);
  // An opaque token there is the api-key strategy's, as in Authorization.
  if (keys && !isJwtShaped(token)) return NOTHING;
  return extractBearerAccount({ scheme: 'bearer', credentials: token }, claim, verifier);
}

/**
 * The id as the upstream compares it (identity.accountIdCase): `lower` and `upper` bring it to that
 * case, `fold` to lower case for comparing (the stored spelling is looked up afterwards); `exact`
 * and `refuse` keep it as sent.
 */
function spelled(account: string, spelling: AccountIdCase): string {
  switch (spelling) {
    case 'lower':
    case 'fold':
      return account.toLowerCase();
    case 'upper':
      return account.toUpperCase();
    default:
      return account;
  }
}

/** RFC 9110 token characters, as a table for the scheme check. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/**
 * An Authorization header the strategies cannot read: a scheme that is not a token (a no-break
 * space or other non-ASCII separator after `Basic`, which lenient upstreams split on), or a
 * scheme no configured strategy reads. Either would pass as anonymous while the upstream may
 * find a credential in it.
 */
function unreadableAuthorization(authorization: AuthorizationParts, schemes: readonly string[]): IdentityResult | null {
  const scheme = authorization.scheme;
  let token = scheme.length > 0;
  for (let i = 0; token && i < scheme.length; i++) {
    const c = scheme.charCodeAt(i);
    token = c < 128 && TCHAR[c] === 1;
  }
  if (!token) {
    return { kind: 'refused', refusal: refusal(400, 'invalid_authorization', `the Authorization header does not start with an authentication scheme followed by a space (${quoteUntrusted(scheme, 24)}); send e.g. "Basic <credentials>" or "Bearer <token>"`) };
  }
  if (schemes.includes(scheme)) return null;
  const known = schemes.map((s) => s[0]!.toUpperCase() + s.slice(1)).join(' or ');
  return { kind: 'refused', refusal: refusal(401, 'unsupported_authorization', `the Authorization scheme ${quoteUntrusted(scheme, 24)} is not one the gateway reads (${known}), so it cannot tell whose credentials these are`) };
}

function ambiguous(message: string): IdentityResult {
  return { kind: 'refused', refusal: refusal(400, 'ambiguous_credentials', message) };
}
