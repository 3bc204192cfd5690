import { isHeaderName } from '../http/header-name.ts';
import { refusal } from '../http/refusal.ts';
import { parseAuthorization } from './authorization.ts';
import { extractBasicAccount } from './basic.ts';
import { DEFAULT_CLAIM, extractBearerAccount } from './bearer-jwt.ts';
import { NOTHING } from './extraction.ts';
import { compileHeaderName, DEFAULT_ID_HEADER, extractHeaderAccount } from './header.ts';
import type { JwtVerifier } from './jwt.ts';
import { compilePathTemplates, extractPathAccount, type PathTemplate } from './path.ts';
import { compileQueryParam, extractQueryAccount } from './query.ts';
import { splitTarget, type Target } from './target.ts';
import type { AuthorizationParts, Extraction, IdentityResult, RequestView, StrategyConfig, StrategyType } from './types.ts';

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

interface Plan {
  readonly strategies: readonly Compiled[];
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
export function compileIdentityResolver(strategies: readonly StrategyConfig[]): (req: RequestView) => IdentityResult {
  const plan = compilePlan(strategies.length === 0 ? DEFAULT_STRATEGIES : strategies);
  return (req) => resolveIdentity(plan, req);
}

function compilePlan(configs: readonly StrategyConfig[]): Plan {
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
  return {
    strategies,
    watched,
    authorizationSlot: watched.indexOf(AUTHORIZATION),
    needsTarget: strategies.some((s) => s.type === 'query' || s.type === 'path'),
  };
}

function resolveIdentity(plan: Plan, req: RequestView): IdentityResult {
  const values: (string | undefined)[] = new Array<string | undefined>(plan.watched.length);
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    for (let slot = 0; slot < plan.watched.length; slot++) {
      const wanted = plan.watched[slot]!;
      if (!isHeaderName(name, wanted)) continue;
      if (values[slot] !== undefined) return ambiguous(`the ${wanted} header is sent more than once; send it once`);
      values[slot] = raw[i + 1]!;
    }
  }
  const authorizationValue = plan.authorizationSlot < 0 ? undefined : values[plan.authorizationSlot];
  const authorization: AuthorizationParts | undefined = authorizationValue === undefined ? undefined : parseAuthorization(authorizationValue);
  const target: Target | undefined = plan.needsTarget ? splitTarget(req.url) : undefined;

  let account: string | undefined;
  let via: StrategyType | undefined;
  let source = '';
  for (const strategy of plan.strategies) {
    const found = extract(strategy, values, authorization, target);
    if (found.kind === 'none') continue;
    if (found.kind === 'refused') return found;
    if (account === undefined) {
      account = found.account;
      via = strategy.type;
      source = strategy.source;
    } else if (found.account !== account) {
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

function ambiguous(message: string): IdentityResult {
  return { kind: 'refused', refusal: refusal(400, 'ambiguous_credentials', message) };
}
