import { isHeaderName } from '../http/header-name.ts';
import { refusal } from '../http/refusal.ts';
import { parseAuthorization } from './authorization.ts';
import { extractBasicAccount } from './basic.ts';
import { DEFAULT_CLAIM, extractBearerAccount } from './bearer-jwt.ts';
import { quoteUntrusted } from './account-id.ts';
import { NOTHING } from './extraction.ts';
import { compileHeaderName, DEFAULT_ID_HEADER, extractHeaderAccount } from './header.ts';
import type { JwtVerifier } from './jwt.ts';
import { compilePathTemplates, extractPathAccount, type PathTemplate } from './path.ts';
import { compileQueryParam, cookieAlias, extractQueryAccount } from './query.ts';
import { splitTarget, type Target } from './target.ts';
import type { AccountIdCase, AuthorizationParts, Extraction, IdentityOptions, IdentityResult, RequestView, StrategyConfig, StrategyType } from './types.ts';

/** Used when the config lists no strategy. */
export const DEFAULT_STRATEGIES: readonly StrategyConfig[] = [
  { type: 'header', header: DEFAULT_ID_HEADER },
  { type: 'basic' },
  { type: 'bearer-jwt', claim: DEFAULT_CLAIM },
];

const AUTHORIZATION = 'authorization';

type Compiled =
  | { readonly type: 'header'; readonly source: string; readonly slot: number; readonly name: string }
  | { readonly type: 'basic'; readonly source: string }
  | { readonly type: 'bearer-jwt'; readonly source: string; readonly claim: string; readonly verifier: JwtVerifier | undefined }
  | { readonly type: 'query'; readonly source: string; readonly param: string }
  | { readonly type: 'path'; readonly source: string; readonly templates: readonly PathTemplate[] };

/** Used when no options are given: unreadable Authorization refused, ids compared as given. */
export const DEFAULT_IDENTITY_OPTIONS: IdentityOptions = { unreadableAuthorization: 'refuse', accountIdCase: 'refuse', formBodies: 'refuse' };

interface Plan {
  readonly strategies: readonly Compiled[];
  /** The Authorization schemes some strategy reads (lower case). */
  readonly schemes: readonly string[];
  /** The query strategy's parameter, whose cookie spellings are refused; null without one. */
  readonly cookieParam: string | null;
  readonly options: IdentityOptions;
  /** Lower-cased names of the headers credentials come from; index = slot. */
  readonly watched: readonly string[];
  /** Slot of Authorization, or -1 when no strategy reads it. */
  readonly authorizationSlot: number;
  readonly needsTarget: boolean;
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
  const strategies = configs.map((config): Compiled => {
    switch (config.type) {
      case 'header': {
        const name = compileHeaderName(config.header);
        once(`header:${name}`, `header (${name})`);
        return { type: 'header', source: `the ${name} header`, slot: slotOf(name), name };
      }
      case 'basic':
        once('basic', 'basic');
        slotOf(AUTHORIZATION);
        return { type: 'basic', source: 'the Basic credentials' };
      case 'bearer-jwt': {
        once('bearer-jwt', 'bearer-jwt');
        if (typeof config.claim !== 'string' || config.claim.length === 0) throw new Error('identity strategy bearer-jwt needs a claim name, e.g. iss');
        slotOf(AUTHORIZATION);
        return { type: 'bearer-jwt', source: `the bearer token's ${config.claim} claim`, claim: config.claim, verifier: config.verify };
      }
      case 'query': {
        const param = compileQueryParam(config.param);
        once(`query:${param}`, `query (${param})`);
        return { type: 'query', source: `the ${param} query parameter`, param };
      }
      case 'path':
        once('path', 'path (list all templates in one)');
        return { type: 'path', source: 'the path', templates: compilePathTemplates(config.templates) };
      default:
        throw new Error(`unknown identity strategy type ${JSON.stringify((config as { type?: unknown }).type)}`);
    }
  });
  const query = strategies.find((s) => s.type === 'query');
  return {
    strategies,
    schemes: strategies.flatMap((s) => (s.type === 'basic' ? ['basic'] : s.type === 'bearer-jwt' ? ['bearer'] : [])),
    cookieParam: query?.type === 'query' ? query.param : null,
    options,
    watched,
    authorizationSlot: watched.indexOf(AUTHORIZATION),
    needsTarget: strategies.some((s) => s.type === 'query' || s.type === 'path'),
  };
}

function resolveIdentity(plan: Plan, req: RequestView): IdentityResult {
  const values: (string | undefined)[] = new Array<string | undefined>(plan.watched.length);
  const raw = req.rawHeaders;
  const cookieParam = plan.cookieParam;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    for (let slot = 0; slot < plan.watched.length; slot++) {
      const wanted = plan.watched[slot]!;
      if (!isHeaderName(name, wanted)) continue;
      if (values[slot] !== undefined) return ambiguous(`the ${wanted} header is sent more than once; send it once`);
      values[slot] = raw[i + 1]!;
    }
    if (cookieParam !== null) {
      if (isHeaderName(name, 'cookie')) {
        const alias = cookieAlias(raw[i + 1]!, cookieParam);
        if (alias.kind === 'refused') return alias;
      } else if (plan.options.formBodies === 'refuse' && isHeaderName(name, 'content-type') && isFormType(raw[i + 1]!)) {
        return ambiguous(`a form body may carry the ${cookieParam} parameter as well, and the gateway does not read bodies; send the parameters in the query, or another body type (identity.formBodies: pass allows form bodies)`);
      }
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
  const target: Target | undefined = plan.needsTarget ? splitTarget(req.url) : undefined;
  const spelling = plan.options.accountIdCase;

  let account: string | undefined;
  let via: StrategyType | undefined;
  let source = '';
  for (const strategy of plan.strategies) {
    const found = extract(strategy, values, authorization, target);
    if (found.kind === 'none') continue;
    if (found.kind === 'refused') return found;
    const named = spelled(found.account, spelling);
    if (account === undefined) {
      account = named;
      via = strategy.type;
      source = strategy.source;
    } else if (named !== account) {
      return ambiguous(`the request names different accounts in ${source} and ${strategy.source}; send credentials for one account`);
    }
  }
  return account === undefined || via === undefined ? ANONYMOUS : { kind: 'account', account, via };
}

const ANONYMOUS: IdentityResult = { kind: 'anonymous' };

function extract(strategy: Compiled, values: readonly (string | undefined)[], authorization: AuthorizationParts | undefined, target: Target | undefined): Extraction {
  switch (strategy.type) {
    case 'header':
      return extractHeaderAccount(values[strategy.slot], strategy.name);
    case 'basic':
      return extractBasicAccount(authorization);
    case 'bearer-jwt':
      return extractBearerAccount(authorization, strategy.claim, strategy.verifier);
    case 'query':
      return extractQueryAccount(target?.query ?? null, strategy.param);
    case 'path':
      return target === undefined ? NOTHING : extractPathAccount(target.path, strategy.templates);
  }
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

const FORM_TYPE = /^\s*(?:application\/x-www-form-urlencoded|multipart\/form-data)\s*(?:;|$)/i;

function isFormType(value: string): boolean {
  return FORM_TYPE.test(value);
}

function ambiguous(message: string): IdentityResult {
  return { kind: 'refused', refusal: refusal(400, 'ambiguous_credentials', message) };
}
