import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJwtVerifier } from '../../../src/identity/jwt.ts';
import { compileIdentityResolver, DEFAULT_STRATEGIES } from '../../../src/identity/resolve.ts';
import type { IdentityResult, StrategyConfig } from '../../../src/identity/types.ts';
import { basic, ecKeyPair, nowSeconds, request, signedJwt, unsignedJwt, type KeyPair } from './support.ts';

const ALL: readonly StrategyConfig[] = [
  { type: 'header', header: 'X-Auth-ID' },
  { type: 'basic' },
  { type: 'bearer-jwt', claim: 'iss' },
  { type: 'query', param: 'account_id' },
  { type: 'path', templates: ['/v1/Account/{account}/'] },
];

function refusalOf(result: IdentityResult): { status: number; reason: string; message: string } {
  if (result.kind !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  return result.refusal;
}

describe('compileIdentityResolver defaults', () => {
  const resolve = compileIdentityResolver([]);

  it('uses header x-auth-id, basic and unverified bearer-jwt (iss)', () => {
    expect(DEFAULT_STRATEGIES.map((s) => s.type)).toEqual(['header', 'basic', 'bearer-jwt']);
    expect(resolve(request('/', 'X-Auth-Id', 'acme'))).toEqual({ kind: 'account', account: 'acme', via: 'header' });
    expect(resolve(request('/', 'Authorization', basic('acme:pw')))).toEqual({ kind: 'account', account: 'acme', via: 'basic' });
    expect(resolve(request('/', 'authorization', `Bearer ${unsignedJwt({ iss: 'acme' })}`))).toEqual({ kind: 'account', account: 'acme', via: 'bearer-jwt' });
  });

  it('does not read query or path by default', () => {
    expect(resolve(request('/v1/Account/acme/?account_id=acme'))).toEqual({ kind: 'anonymous' });
  });

  it('is anonymous without credentials', () => {
    expect(resolve(request('/', 'Host', 'api.example.com', 'Accept', '*/*'))).toEqual({ kind: 'anonymous' });
  });

  it('refuses an Authorization header it cannot read, unless told to pass it as anonymous', () => {
    expect(refusalOf(resolve(request('/', 'Authorization', 'Digest username="acme"'))).reason).toBe('unsupported_authorization');
    expect(refusalOf(resolve(request('/', 'Authorization', 'Token abc'))).status).toBe(401);
    // A no-break space is no separator to the gateway, and one to str.split() in Python.
    for (const value of [`Basic\u00a0${Buffer.from('acme:pw').toString('base64')}`, 'Basic,abc', '', '  ', 'Ba\u017fic abc', 'Bearer\u2003x.y.z']) {
      expect(refusalOf(resolve(request('/', 'Authorization', value))).reason, JSON.stringify(value)).toMatch(/^(invalid|unsupported)_authorization$/);
    }
    expect(refusalOf(resolve(request('/', 'Authorization', `Basic\u00a0${Buffer.from('acme:pw').toString('base64')}`)))).toMatchObject({ status: 400, reason: 'invalid_authorization' });
    const lenient = compileIdentityResolver([], { unreadableAuthorization: 'anonymous', accountIdCase: 'refuse', formBodies: 'refuse', jsonBodies: 'refuse' });
    expect(lenient(request('/', 'Authorization', 'Digest username="acme"'))).toEqual({ kind: 'anonymous' });
    expect(lenient(request('/', 'Authorization', 'Digest username="acme"', 'X-Auth-ID', 'acme'))).toEqual({ kind: 'account', account: 'acme', via: 'header' });
  });

  it('brings ids to the case the upstream compares them in', () => {
    const lower = compileIdentityResolver([], { unreadableAuthorization: 'refuse', accountIdCase: 'lower', formBodies: 'refuse', jsonBodies: 'refuse' });
    expect(lower(request('/', 'X-Auth-ID', 'AcMe', 'Authorization', basic('ACME:pw')))).toEqual({ kind: 'account', account: 'acme', via: 'header' });
    const upper = compileIdentityResolver([], { unreadableAuthorization: 'refuse', accountIdCase: 'upper', formBodies: 'refuse', jsonBodies: 'refuse' });
    expect(upper(request('/', 'X-Auth-ID', 'AcMe'))).toEqual({ kind: 'account', account: 'ACME', via: 'header' });
    // As given, two spellings are two accounts.
    expect(refusalOf(resolve(request('/', 'X-Auth-ID', 'AcMe', 'Authorization', basic('ACME:pw')))).reason).toBe('ambiguous_credentials');
  });
});

describe('compileIdentityResolver with every strategy', () => {
  const resolve = compileIdentityResolver(ALL);
  const token = unsignedJwt({ iss: 'acme' });

  it('names each strategy as the source', () => {
    expect(resolve(request('/', 'x-auth-id', 'acme'))).toEqual({ kind: 'account', account: 'acme', via: 'header' });
    expect(resolve(request('/?account_id=acme'))).toEqual({ kind: 'account', account: 'acme', via: 'query' });
    expect(resolve(request('/v1/Account/acme/Calls'))).toEqual({ kind: 'account', account: 'acme', via: 'path' });
  });

  it('accepts the same account from several sources, crediting the first configured', () => {
    const result = resolve(request('/v1/Account/acme/?account_id=acme', 'Authorization', `Bearer ${token}`, 'X-Auth-ID', 'acme'));
    expect(result).toEqual({ kind: 'account', account: 'acme', via: 'header' });
  });

  it('refuses different accounts from any two sources, naming both sources and not the secrets', () => {
    const sources: Record<string, { path?: string; query?: string; headers: string[]; label: string }> = {
      header: { headers: ['X-Auth-ID', 'one'], label: 'x-auth-id header' },
      basic: { headers: ['Authorization', basic('two:hunter2')], label: 'Basic credentials' },
      bearer: { headers: ['Authorization', `Bearer ${unsignedJwt({ iss: 'three' })}`], label: "bearer token's iss claim" },
      query: { query: 'account_id=four', headers: [], label: 'account_id query parameter' },
      path: { path: '/v1/Account/five/', headers: [], label: 'the path' },
    };
    const names = Object.keys(sources);
    let pairs = 0;
    for (const a of names) {
      for (const b of names) {
        if (a >= b || (a === 'basic' && b === 'bearer') || (a === 'bearer' && b === 'basic')) continue;
        const x = sources[a]!;
        const y = sources[b]!;
        const query = x.query ?? y.query;
        const url = `${x.path ?? y.path ?? '/'}${query === undefined ? '' : `?${query}`}`;
        const refusal = refusalOf(resolve(request(url, ...x.headers, ...y.headers)));
        expect(refusal.status, `${a} vs ${b}`).toBe(400);
        expect(refusal.reason, `${a} vs ${b}`).toBe('ambiguous_credentials');
        expect(refusal.message).toContain(x.label);
        expect(refusal.message).toContain(y.label);
        expect(refusal.message).not.toContain('hunter2');
        pairs++;
      }
    }
    expect(pairs).toBe(9);
  });

  it('refuses different accounts in path and query together', () => {
    expect(refusalOf(resolve(request('/v1/Account/acme/?account_id=other'))).reason).toBe('ambiguous_credentials');
  });

  it('refuses a credential header sent twice, whatever the case of its name', () => {
    const twice = [
      ['X-Auth-ID', 'acme', 'x-auth-id', 'other'],
      ['X-Auth-ID', 'acme', 'X-AUTH-ID', 'acme'],
      ['Authorization', basic('acme:pw'), 'authorization', basic('other:pw')],
      ['Authorization', basic('acme:pw'), 'AUTHORIZATION', `Bearer ${token}`],
      ['authorization', 'Digest x', 'Authorization', basic('acme:pw')],
    ];
    for (const headers of twice) {
      const refusal = refusalOf(resolve(request('/', ...headers)));
      expect(refusal.reason, headers.join(' ')).toBe('ambiguous_credentials');
      expect(refusal.message).toContain('more than once');
    }
  });

  it('refuses a repeated query parameter', () => {
    expect(refusalOf(resolve(request('/?account_id=acme&account_id=other'))).reason).toBe('ambiguous_credentials');
    expect(refusalOf(resolve(request('/?account_id=acme&Account_Id=acme'))).reason).toBe('ambiguous_credentials');
  });

  it('reads percent-encoded ids in path and query alike', () => {
    expect(resolve(request('/v1/Account/a%40b.com/?account_id=a%40b.com'))).toEqual({ kind: 'account', account: 'a@b.com', via: 'query', suffixed: true });
    // Not the last segment: no format suffix to read.
    expect(resolve(request('/v1/Account/a%40b.com/Calls?account_id=a%40b.com'))).toEqual({ kind: 'account', account: 'a@b.com', via: 'query' });
    expect(refusalOf(resolve(request('/v1/Account/a%2Fb/'))).reason).toBe('invalid_account');
  });

  it('passes on refusals from a strategy', () => {
    expect(refusalOf(resolve(request('/', 'Authorization', 'Basic !!!'))).status).toBe(401);
    expect(refusalOf(resolve(request('/', 'Authorization', 'Bearer opaque'))).reason).toBe('invalid_token');
    expect(refusalOf(resolve(request('/', 'X-Auth-ID', 'not valid'))).reason).toBe('invalid_account');
    expect(refusalOf(resolve(request('/v1/account/acme/'))).reason).toBe('noncanonical_path');
  });

  it('reads the absolute request form', () => {
    expect(resolve(request('http://api.example.com/v1/Account/acme/?account_id=acme'))).toEqual({ kind: 'account', account: 'acme', via: 'query' });
  });

  it('ignores headers it was not configured for', () => {
    const headerOnly = compileIdentityResolver([{ type: 'header', header: 'x-account' }]);
    expect(headerOnly(request('/', 'Authorization', basic('acme:pw'), 'Authorization', 'Bearer x', 'X-Auth-ID', 'other'))).toEqual({ kind: 'anonymous' });
    expect(headerOnly(request('/', 'X-Account', 'acme'))).toEqual({ kind: 'account', account: 'acme', via: 'header' });
  });

  it('refuses a bearer token when only basic is configured, and Basic when only bearer is: neither can be read', () => {
    const basicOnly = compileIdentityResolver([{ type: 'basic' }]);
    const bearerOnly = compileIdentityResolver([{ type: 'bearer-jwt', claim: 'sub' }]);
    expect(refusalOf(basicOnly(request('/', 'Authorization', 'Bearer opaque'))).reason).toBe('unsupported_authorization');
    expect(refusalOf(bearerOnly(request('/', 'Authorization', basic('acme:pw')))).reason).toBe('unsupported_authorization');
    expect(bearerOnly(request('/', 'Authorization', `bearer ${unsignedJwt({ sub: 'acme' })}`))).toEqual({ kind: 'account', account: 'acme', via: 'bearer-jwt' });
  });

  it('reads two header strategies and refuses when they disagree', () => {
    const two = compileIdentityResolver([{ type: 'header', header: 'x-auth-id' }, { type: 'header', header: 'x-account' }]);
    expect(two(request('/', 'x-account', 'acme'))).toEqual({ kind: 'account', account: 'acme', via: 'header' });
    expect(refusalOf(two(request('/', 'x-account', 'acme', 'x-auth-id', 'other'))).message).toContain('x-auth-id header and the x-account header');
  });
});

describe('compileIdentityResolver configuration errors', () => {
  it('throws on strategies that cannot work', () => {
    expect(() => compileIdentityResolver([{ type: 'basic' }, { type: 'basic' }])).toThrow(/listed twice/);
    expect(() => compileIdentityResolver([{ type: 'header', header: 'X-A' }, { type: 'header', header: 'x-a' }])).toThrow(/listed twice/);
    expect(() => compileIdentityResolver([{ type: 'header', header: 'Authorization' }])).toThrow(/cannot read Authorization/);
    expect(() => compileIdentityResolver([{ type: 'bearer-jwt', claim: '' }])).toThrow(/claim name/);
    expect(() => compileIdentityResolver([{ type: 'query', param: '' }])).toThrow(/non-empty/);
    expect(() => compileIdentityResolver([{ type: 'path', templates: ['/v1/'] }])).toThrow(/exactly once/);
    expect(() => compileIdentityResolver([{ type: 'cookie' } as unknown as StrategyConfig])).toThrow(/unknown identity strategy type "cookie"/);
  });
});

describe('compileIdentityResolver with a JWT verifier', () => {
  let dir: string;
  let key: KeyPair;
  let resolve: ReturnType<typeof compileIdentityResolver>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'identity-resolve-'));
    key = ecKeyPair();
    const file = join(dir, 'service.pem');
    writeFileSync(file, key.publicKey.export({ type: 'spki', format: 'pem' }));
    const verify = loadJwtVerifier({ keys: [{ file, kid: 'svc' }], requireExp: true, maxLifetimeSeconds: 3600 });
    resolve = compileIdentityResolver([{ type: 'bearer-jwt', claim: 'iss', verify }, { type: 'header', header: 'x-auth-id' }]);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a short-lived signed token and refuses a long-lived one', () => {
    const now = nowSeconds();
    const good = signedJwt({ iss: 'acme', iat: now, exp: now + 600 }, key.privateKey, { alg: 'ES256', kid: 'svc' });
    expect(resolve(request('/', 'Authorization', `Bearer ${good}`))).toEqual({ kind: 'account', account: 'acme', via: 'bearer-jwt' });
    const long = signedJwt({ iss: 'acme', iat: now, exp: now + 86_400 }, key.privateKey, { alg: 'ES256', kid: 'svc' });
    const refusal = refusalOf(resolve(request('/', 'Authorization', `Bearer ${long}`)));
    expect(refusal).toEqual({ status: 401, reason: 'invalid_token', message: 'the bearer token was refused: its lifetime exceeds 3600 seconds' });
  });

  it('refuses a forged unsigned token instead of treating the request as anonymous', () => {
    const forged = unsignedJwt({ iss: 'acme', iat: nowSeconds(), exp: nowSeconds() + 60 }, { alg: 'ES256', kid: 'svc' });
    expect(refusalOf(resolve(request('/', 'Authorization', `Bearer ${forged}`))).reason).toBe('invalid_token');
  });

  it('refuses an oversized token', () => {
    const now = nowSeconds();
    const big = signedJwt({ iss: 'acme', iat: now, exp: now + 60, pad: 'x'.repeat(8192) }, key.privateKey, { alg: 'ES256', kid: 'svc' });
    expect(refusalOf(resolve(request('/', 'Authorization', `Bearer ${big}`))).message).toContain('longer than 8192');
  });
});
