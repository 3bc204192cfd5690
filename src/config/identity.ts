import type { StrategyConfig } from '../identity/types.ts';
import { loadJwtVerifier, type PemKeyOption } from '../identity/jwt.ts';
import { compilePathTemplates } from '../identity/path.ts';
import { DEFAULT_KEY_HEADER } from '../identity/api-key.ts';
import { compileIdentityResolver } from '../identity/resolve.ts';
import { ConfigError, type Reader } from './reader.ts';

/** `identity.strategies`: an ordered list; empty means the resolver's default set. */
export function readStrategies(reader: Reader): StrategyConfig[] {
  const strategies = reader.list().map(readStrategy);
  const types = strategies.map((s) => s.type);
  const repeated = types.find((t, i) => types.indexOf(t) !== i);
  if (repeated !== undefined) throw new ConfigError(`identity.strategies lists '${repeated}' twice: list each strategy once`);
  // Combinations that cannot work (two strategies reading one header, ...) stop the start here.
  try {
    compileIdentityResolver(strategies);
  } catch (error) {
    throw new ConfigError(`identity.strategies: ${(error as Error).message}`);
  }
  return strategies;
}

function readStrategy(item: Reader): StrategyConfig {
  const type = item.object(['type', 'header', 'claim', 'verify', 'params', 'param', 'templates', 'bearer', 'basic', 'query', 'unknown']).get('type')
    .oneOf(['header', 'basic', 'bearer-jwt', 'query', 'path', 'api-key'] as const, 'header');
  switch (type) {
    case 'header': {
      const section = item.object(['type', 'header']);
      const header = section.get('header').string('x-auth-id').toLowerCase();
      if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(header)) section.get('header').fail('an HTTP header name, e.g. X-Auth-ID');
      return { type, header };
    }
    case 'basic':
      item.object(['type']);
      return { type };
    case 'bearer-jwt': {
      const section = item.object(['type', 'claim', 'verify', 'params']);
      const claim = section.get('claim').string('iss');
      const params = section.has('params') ? readBearerParams(section.get('params')) : undefined;
      return { type, claim, ...(params === undefined ? {} : { params }), ...(section.has('verify') ? { verify: readVerifier(section.get('verify')) } : {}) };
    }
    case 'query': {
      const section = item.object(['type', 'param']);
      return { type, param: section.get('param').string('account_id') };
    }
    case 'path': {
      const section = item.object(['type', 'templates']);
      const templates = section.get('templates').list().map((t) => {
        const text = t.string();
        if (!text.startsWith('/') || (text.match(/\{account\}/g) ?? []).length !== 1) t.fail("a path with exactly one {account} segment, e.g. '/v1/Account/{account}/'");
        return text;
      });
      if (templates.length === 0) section.get('templates').fail('a non-empty list of path templates');
      try {
        compilePathTemplates(templates);
      } catch (error) {
        throw new ConfigError(`identity path templates: ${(error as Error).message}`);
      }
      return { type, templates };
    }
    case 'api-key': {
      const section = item.object(['type', 'header', 'bearer', 'basic', 'query', 'params', 'unknown']);
      const headerReader = section.get('header');
      const header = headerReader.string(DEFAULT_KEY_HEADER);
      if (header !== 'off' && !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(header)) headerReader.fail('an HTTP header name, e.g. X-API-Key, or off');
      const query = section.get('query').string('off');
      if (query !== 'off' && (query.length === 0 || /[&=#?;\s]/.test(query))) section.get('query').fail('a query parameter name, e.g. api_key, or off');
      const params = section.has('params') ? readBearerParams(section.get('params')) : undefined;
      return {
        type,
        ...(params === undefined ? {} : { params }),
        header: header === 'off' ? null : header.toLowerCase(),
        bearer: section.get('bearer').boolean(true),
        basic: section.get('basic').oneOf(['off', 'password', 'username'] as const, 'off'),
        query: query === 'off' ? null : query,
        unknown: section.get('unknown').oneOf(['refuse', 'anonymous'] as const, 'refuse'),
      };
    }
  }
}

/** The query parameters a bearer token may travel in (bearer-jwt's and api-key's `params`). */
function readBearerParams(reader: Reader): string[] {
  return reader.list().map((p) => {
    const name = p.string();
    if (name.length === 0 || /[&=#?;\s[\]]/.test(name)) p.fail('a query parameter name without & = # ? ; [ ] or spaces, e.g. access_token');
    return name;
  });
}

function readVerifier(reader: Reader): ReturnType<typeof loadJwtVerifier> {
  const section = reader.object(['keys', 'jwksFile', 'algorithms', 'requireExp', 'maxLifetimeSeconds', 'clockToleranceSeconds', 'maxTokenLength']);
  const keys: PemKeyOption[] = section.get('keys').list().map((k) => {
    const key = k.object(['file', 'kid']);
    return { file: key.get('file').string(), kid: key.get('kid').optionalString() };
  });
  const jwksFile = section.get('jwksFile').optionalString();
  if (keys.length === 0 && jwksFile === undefined) reader.fail('a mapping with keys (PEM files) or jwksFile');
  try {
    return loadJwtVerifier({
      keys,
      jwksFile,
      algorithms: section.has('algorithms') ? section.get('algorithms').list().map((a) => a.oneOf(['RS256', 'ES256'] as const, 'RS256')) : undefined,
      requireExp: section.get('requireExp').boolean(false),
      maxLifetimeSeconds: section.has('maxLifetimeSeconds') ? section.get('maxLifetimeSeconds').integer(1, 31_536_000, 3600) : undefined,
      clockToleranceSeconds: section.get('clockToleranceSeconds').integer(0, 3600, 30),
      maxTokenLength: section.get('maxTokenLength').integer(256, 65_536, 8192),
    });
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`identity bearer-jwt verify: ${(error as Error).message}`);
  }
}
