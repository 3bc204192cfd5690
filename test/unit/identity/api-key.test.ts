import { describe, expect, it } from 'vitest';
import { isJwtShaped } from '../../../src/identity/api-key.ts';
import { compileIdentityResolver, credentialHeaders } from '../../../src/identity/resolve.ts';
import type { ApiKeyStrategy, IdentityResult, StrategyConfig } from '../../../src/identity/types.ts';
import { compileRequestScreen } from '../../../src/gateway/request-screen.ts';
import { basic, request, unsignedJwt } from './support.ts';

const KEY = 'sk_live_abcdef0123456789';
const OTHER_KEY = 'sk_live_zyxwvu9876543210';

function apiKey(overrides: Partial<ApiKeyStrategy> = {}): ApiKeyStrategy {
  return { type: 'api-key', header: 'x-api-key', bearer: true, basic: 'off', query: null, unknown: 'refuse', ...overrides };
}

function refusalOf(result: IdentityResult): string {
  if (result.kind !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  return `${result.refusal.status} ${result.refusal.reason}`;
}

describe('the api-key strategy', () => {
  const strategies: StrategyConfig[] = [{ type: 'header', header: 'X-Auth-ID' }, { type: 'basic' }, { type: 'bearer-jwt', claim: 'iss' }, apiKey({ basic: 'password', query: 'api_key' })];
  const resolve = compileIdentityResolver(strategies);

  it('reads a key from its header, an opaque Bearer token, the Basic password or the query', () => {
    const found = { kind: 'key', key: KEY, account: null, unknown: 'refuse' };
    expect(resolve(request('/', 'X-API-Key', ` ${KEY}\t`))).toEqual({ ...found, source: 'the x-api-key header' });
    expect(resolve(request('/', 'Authorization', `Bearer ${KEY}`))).toEqual({ ...found, source: 'the Bearer token' });
    expect(resolve(request(`/x?a=1&api_key=${KEY}`))).toEqual({ ...found, source: 'the api_key query parameter' });
    // Basic: the user name names the account (basic strategy), the password is the key.
    expect(resolve(request('/', 'Authorization', basic(`ACME:${KEY}`)))).toEqual({ ...found, account: 'ACME', source: 'the Basic password' });
    // An empty password carries no key: the request is the basic strategy's alone.
    expect(resolve(request('/', 'Authorization', basic('ACME:')))).toEqual({ kind: 'account', account: 'ACME', via: 'basic' });
  });

  it('leaves JWTs to bearer-jwt when it is listed, and takes every Bearer token when it is not', () => {
    const jwt = unsignedJwt({ iss: 'ACME' });
    expect(isJwtShaped(jwt)).toBe(true);
    expect(isJwtShaped('a.b')).toBe(false);
    expect(isJwtShaped('a.b.c.d')).toBe(false);
    expect(resolve(request('/', 'Authorization', `Bearer ${jwt}`))).toEqual({ kind: 'account', account: 'ACME', via: 'bearer-jwt' });
    const keysOnly = compileIdentityResolver([apiKey()]);
    expect(keysOnly(request('/', 'Authorization', `Bearer ${jwt}`))).toMatchObject({ kind: 'key', key: jwt });
    // Without api-key reading Bearer tokens, bearer-jwt refuses what is not a JWT, as before.
    const jwtOnly = compileIdentityResolver([{ type: 'bearer-jwt', claim: 'iss' }, apiKey({ bearer: false })]);
    expect(refusalOf(jwtOnly(request('/', 'Authorization', `Bearer ${KEY}`)))).toBe('401 invalid_token');
  });

  it('reads the key from the Basic user name when told to (a key sent as `-u key:`)', () => {
    const stripe = compileIdentityResolver([apiKey({ header: null, bearer: false, basic: 'username' })]);
    expect(stripe(request('/', 'Authorization', basic(`${KEY}:`)))).toMatchObject({ kind: 'key', key: KEY, source: 'the Basic user name' });
    expect(() => compileIdentityResolver([{ type: 'basic' }, apiKey({ basic: 'username' })])).toThrow(/list one of them/);
  });

  it('refuses Basic credentials whose key part is empty when nothing reads the other part', () => {
    const passwordOnly = compileIdentityResolver([apiKey({ basic: 'password' })]);
    expect(passwordOnly(request('/', 'Authorization', basic(`api:${KEY}`)))).toMatchObject({ kind: 'key', key: KEY, account: null });
    // Stripe-style upstreams read the user name as the key: unchecked here, so refused.
    expect(refusalOf(passwordOnly(request('/', 'Authorization', basic(`${KEY}:`))))).toBe('401 invalid_key');
    const stripe = compileIdentityResolver([apiKey({ header: null, bearer: false, basic: 'username' })]);
    expect(refusalOf(stripe(request('/', 'Authorization', basic(`:${KEY}`))))).toBe('401 invalid_key');
    const refused = passwordOnly(request('/', 'Authorization', basic(`${KEY}:`)));
    expect(refused.kind === 'refused' && refused.refusal.message.includes(KEY)).toBe(false);
  });

  it('reads an opaque bearer token in the RFC 6750 query parameters as a key, and leaves JWTs there to bearer-jwt', () => {
    const keysOnly = compileIdentityResolver([apiKey()]);
    expect(keysOnly(request(`/?access_token=${KEY}`))).toMatchObject({ kind: 'key', key: KEY, source: 'the access_token query parameter' });
    expect(keysOnly(request(`/?bearer_token=${KEY}`))).toMatchObject({ kind: 'key', key: KEY, source: 'the bearer_token query parameter' });
    for (const [path, ...headers] of [[`/?access_token=${KEY}`, 'X-API-Key', OTHER_KEY], [`/?access_token=${KEY}`, 'Authorization', `Bearer ${KEY}`], [`/?Access_Token=${KEY}&access_token=${KEY}`], [`/?access_token[]=${KEY}`], [`/?access_token=${KEY}&bearer_token=${KEY}`]]) {
      expect(refusalOf(keysOnly(request(path!, ...headers))), path).toBe('400 ambiguous_credentials');
    }
    // Without Authorization a form body or a cookie could carry one: refused as for bearer-jwt.
    expect(refusalOf(keysOnly(request('/', 'X-API-Key', KEY, 'Content-Type', 'application/x-www-form-urlencoded')))).toBe('400 ambiguous_credentials');
    expect(refusalOf(keysOnly(request('/', 'X-API-Key', KEY, 'Cookie', `access_token=${OTHER_KEY}`)))).toBe('400 ambiguous_credentials');
    // Listed with bearer-jwt, a JWT in access_token names its account, an opaque token is a key.
    const jwt = unsignedJwt({ iss: 'ACME' });
    expect(resolve(request(`/?access_token=${jwt}`))).toEqual({ kind: 'account', account: 'ACME', via: 'bearer-jwt' });
    expect(resolve(request(`/?access_token=${KEY}`))).toMatchObject({ kind: 'key', key: KEY });
    // Named parameters, or none; not with bearer off.
    expect(compileIdentityResolver([apiKey({ params: ['token'] })])(request(`/?token=${KEY}`))).toMatchObject({ kind: 'key', key: KEY });
    expect(compileIdentityResolver([apiKey({ params: [] })])(request(`/?access_token=${KEY}`))).toEqual({ kind: 'anonymous' });
    expect(compileIdentityResolver([apiKey({ bearer: false })])(request(`/?access_token=${KEY}`))).toEqual({ kind: 'anonymous' });
    expect(() => compileIdentityResolver([{ type: 'query', param: 'access_token' }, apiKey()])).toThrow(/also a bearer token parameter/);
  });

  it('returns the account other credentials name beside the key, for the gateway to compare', () => {
    expect(resolve(request('/', 'X-API-Key', KEY, 'X-Auth-ID', 'ACME'))).toMatchObject({ kind: 'key', key: KEY, account: 'ACME' });
  });

  it('refuses a key in two places (even the same key), twice, or holding what no key holds', () => {
    expect(refusalOf(resolve(request('/', 'X-API-Key', KEY, 'Authorization', `Bearer ${OTHER_KEY}`)))).toBe('400 ambiguous_credentials');
    expect(refusalOf(resolve(request('/', 'X-API-Key', KEY, 'Authorization', `Bearer ${KEY}`)))).toBe('400 ambiguous_credentials');
    expect(refusalOf(resolve(request(`/?api_key=${KEY}`, 'X-API-Key', KEY)))).toBe('400 ambiguous_credentials');
    expect(refusalOf(resolve(request('/', 'X-API-Key', KEY, 'x-api-key', KEY)))).toBe('400 ambiguous_credentials');
    for (const bad of ['', 'sk live', 'sk_live_é', `sk_${'x'.repeat(5000)}`, 'sk\u0000x']) {
      // A lone key is judged where it is looked up (the key resolver): passed on as found.
      expect(resolve(request('/', 'X-API-Key', bad)), JSON.stringify(bad.slice(0, 20))).toMatchObject({ kind: 'key', key: bad, source: 'the x-api-key header' });
      // Beside another key, either one that cannot be a key is refused as such, before the ambiguity.
      expect(refusalOf(resolve(request('/', 'X-API-Key', bad, 'Authorization', `Bearer ${KEY}`))), JSON.stringify(bad.slice(0, 20))).toBe('401 invalid_key');
      expect(refusalOf(resolve(request(`/?api_key=${KEY}`, 'X-API-Key', bad)))).toBe('401 invalid_key');
    }
    expect(resolve(request('/', 'Authorization', 'Bearer'))).toMatchObject({ kind: 'key', key: '', source: 'the Bearer token' });
    expect(refusalOf(resolve(request('/?api_key=%zz')))).toBe('400 invalid_key');
    // The refusal never quotes the key.
    const refused = resolve(request('/', 'X-API-Key', 'sk live secret', 'Authorization', `Bearer ${KEY}`));
    expect(refused.kind === 'refused' && refused.refusal.reason === 'invalid_key' && !refused.refusal.message.includes('secret')).toBe(true);
  });

  it('refuses query spellings, cookies and form bodies an upstream could read as the key parameter', () => {
    for (const path of [`/?api.key=${KEY}`, `/?api_key[]=${KEY}`, `/?API_KEY=${KEY}&api_key=${KEY}`, `/?x=1;api_key=${KEY}`]) {
      expect(refusalOf(resolve(request(path))), path).toBe('400 ambiguous_credentials');
    }
    expect(refusalOf(resolve(request('/', 'Cookie', `api_key=${KEY}`)))).toBe('400 ambiguous_credentials');
    expect(refusalOf(resolve(request('/', 'X-API-Key', KEY, 'Content-Type', 'multipart/form-data; boundary=x')))).toBe('400 ambiguous_credentials');
  });

  it('watches its header: the request screen refuses aliases of it and a Connection header naming it', () => {
    expect(credentialHeaders(strategies)).toEqual(['x-auth-id', 'authorization', 'x-api-key']);
    const screen = compileRequestScreen({ credentialHeaders: credentialHeaders(strategies), underscores: 'pass' });
    expect(screen('/', ['X_API_Key', KEY])?.reason).toBe('ambiguous_header');
    expect(screen('/', ['x.api.key', KEY])?.reason).toBe('ambiguous_header');
    expect(screen('/', ['Connection', 'keep-alive, X-API-Key', 'X-API-Key', KEY])?.reason).toBe('invalid_connection_header');
    expect(screen('/', ['X-API-Key', KEY])).toBeNull();
  });

  it('refuses configurations that cannot work', () => {
    expect(() => compileIdentityResolver([apiKey({ header: null, bearer: false, basic: 'off', query: null })])).toThrow(/reads no key/);
    expect(() => compileIdentityResolver([{ type: 'header', header: 'X-API-Key' }, apiKey()])).toThrow(/both read the x-api-key header/);
    expect(() => compileIdentityResolver([{ type: 'query', param: 'api_key' }, apiKey({ query: 'api_key' })])).toThrow(/listed twice/);
    expect(() => compileIdentityResolver([apiKey({ header: 'Authorization' })])).toThrow(/cannot read Authorization/);
  });
});
