import { sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAuthorization } from '../../../src/identity/authorization.ts';
import { extractBearerAccount } from '../../../src/identity/bearer-jwt.ts';
import { decodeBase64UrlStrict, loadJwtVerifier, parseJws, type JwtCheck, type JwtVerifier, type JwtVerifierOptions } from '../../../src/identity/jwt.ts';
import { b64url, ecKeyPair, nowSeconds, rsaKeyPair, signedJwt, unsignedJwt, type KeyPair } from './support.ts';

let dir: string;
let rsa: KeyPair;
let otherRsa: KeyPair;
let ec: KeyPair;
let paths: Record<'rsaPem' | 'ecPem' | 'jwks' | 'rsaPrivate' | 'p384Pem' | 'smallRsaPem' | 'garbage' | 'notJson' | 'noKeys' | 'withPrivate' | 'algMismatch' | 'encOnly' | 'mixed', string>;

function write(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function spki(pair: KeyPair): string {
  return pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

function jwk(pair: KeyPair, extra: Record<string, unknown>): Record<string, unknown> {
  return { ...pair.publicKey.export({ format: 'jwk' }), ...extra };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'identity-jwt-'));
  rsa = rsaKeyPair();
  otherRsa = rsaKeyPair();
  ec = ecKeyPair();
  paths = {
    rsaPem: write('rsa.pem', spki(rsa)),
    ecPem: write('ec.pem', spki(ec)),
    jwks: write('jwks.json', JSON.stringify({ keys: [jwk(rsa, { kid: 'rsa-1', alg: 'RS256', use: 'sig' }), jwk(ec, { kid: 'ec-1' })] })),
    rsaPrivate: write('rsa-private.pem', rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    p384Pem: write('p384.pem', spki(ecKeyPair('P-384'))),
    smallRsaPem: write('small.pem', spki(rsaKeyPair(1024))),
    garbage: write('garbage.pem', 'this is not a key\n'),
    notJson: write('not-json.json', '{"keys": ['),
    noKeys: write('no-keys.json', '{"kty":"RSA"}'),
    withPrivate: write('with-private.json', JSON.stringify({ keys: [rsa.privateKey.export({ format: 'jwk' })] })),
    algMismatch: write('alg-mismatch.json', JSON.stringify({ keys: [jwk(ec, { kid: 'ec-1', alg: 'RS256' })] })),
    encOnly: write('enc-only.json', JSON.stringify({ keys: [jwk(rsa, { kid: 'enc', use: 'enc' })] })),
    mixed: write('mixed.json', JSON.stringify({ keys: [
      jwk(otherRsa, { kid: 'enc', use: 'enc' }),
      { kty: 'oct', kid: 'hmac', alg: 'HS256', k: 'c2VjcmV0' },
      jwk(ecKeyPair('P-384'), { kid: 'p384', alg: 'ES384' }),
      jwk(rsa, { kid: 'rsa-1' }),
    ] })),
  };
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function problemOf(check: JwtCheck): string {
  if (check.ok) throw new Error(`expected a refusal, got ${JSON.stringify(check.payload)}`);
  return check.problem;
}

function verifier(options: Partial<JwtVerifierOptions> = {}): JwtVerifier {
  return loadJwtVerifier({ keys: [{ file: paths.rsaPem, kid: 'rsa-1' }, { file: paths.ecPem, kid: 'ec-1' }], ...options });
}

describe('decodeBase64UrlStrict', () => {
  it('decodes canonical base64url and refuses every other spelling', () => {
    expect(decodeBase64UrlStrict('YWI')?.toString()).toBe('ab');
    for (const s of ['', 'YWI=', 'YW+', 'YW/', 'YWJ', 'Y', 'YW I']) expect(decodeBase64UrlStrict(s), s).toBeNull();
  });
});

describe('parseJws', () => {
  it('returns header, payload, signing input and signature', () => {
    const token = unsignedJwt({ iss: 'acme' }, { alg: 'RS256', kid: 'k' }, b64url('sig'));
    const parsed = parseJws(token);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.jws.header).toEqual({ alg: 'RS256', kid: 'k' });
    expect(parsed.jws.payload).toEqual({ iss: 'acme' });
    expect(parsed.jws.signingInput.toString()).toBe(token.slice(0, token.lastIndexOf('.')));
    expect(parsed.jws.signature.toString()).toBe('sig');
  });

  it('refuses a byte-order mark and invalid UTF-8 in the JSON', () => {
    const bom = `${b64url(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"alg":"RS256"}')]))}.${b64url('{}')}.c2ln`;
    expect(parseJws(bom).ok).toBe(false);
    const latin1 = `${b64url('{"alg":"RS256"}')}.${b64url(Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]))}.c2ln`;
    expect(parseJws(latin1).ok).toBe(false);
  });

  it('honours the length bound it is given', () => {
    const token = unsignedJwt({ iss: 'acme' });
    expect(parseJws(token, token.length).ok).toBe(true);
    expect(parseJws(token, token.length - 1).ok).toBe(false);
  });
});

describe('JWT verification (RS256 and ES256)', () => {
  it('accepts RS256 and ES256 tokens from PEM keys, with or without kid', () => {
    const v = verifier();
    const payload = { iss: 'acme', exp: nowSeconds() + 300 };
    expect(v.verify(signedJwt(payload, rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }))).toEqual({ ok: true, payload });
    expect(v.verify(signedJwt(payload, rsa.privateKey, { alg: 'RS256' }))).toEqual({ ok: true, payload });
    expect(v.verify(signedJwt(payload, ec.privateKey, { alg: 'ES256', kid: 'ec-1' }))).toEqual({ ok: true, payload });
    expect(v.verify(signedJwt(payload, ec.privateKey, { alg: 'ES256' }))).toEqual({ ok: true, payload });
  });

  it('accepts tokens checked against a JWKS file', () => {
    const v = loadJwtVerifier({ jwksFile: paths.jwks });
    expect(v.verify(signedJwt({ iss: 'acme' }, rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' })).ok).toBe(true);
    expect(v.verify(signedJwt({ iss: 'acme' }, ec.privateKey, { alg: 'ES256', kid: 'ec-1' })).ok).toBe(true);
    expect(v.algorithms).toEqual(['RS256', 'ES256']);
  });

  it('refuses a good signature made by another key, under a known kid or none', () => {
    const v = verifier();
    expect(problemOf(v.verify(signedJwt({ iss: 'acme' }, otherRsa.privateKey, { alg: 'RS256', kid: 'rsa-1' })))).toContain('signature does not verify');
    expect(problemOf(v.verify(signedJwt({ iss: 'acme' }, otherRsa.privateKey, { alg: 'RS256' })))).toContain('signature does not verify');
  });

  it('refuses an unknown kid even when the signature would verify with a configured key', () => {
    const v = verifier();
    expect(problemOf(v.verify(signedJwt({ iss: 'acme' }, rsa.privateKey, { alg: 'RS256', kid: 'rsa-2' })))).toContain('key id "rsa-2" is unknown');
  });

  it('refuses a kid whose key is for another algorithm', () => {
    const v = verifier();
    expect(problemOf(v.verify(signedJwt({ iss: 'acme' }, rsa.privateKey, { alg: 'RS256', kid: 'ec-1' })))).toContain('names an ES256 key');
  });

  it('refuses a kid that is not a string', () => {
    const token = signedJwt({ iss: 'acme' }, rsa.privateKey, { alg: 'RS256', kid: 7 as unknown as string });
    expect(problemOf(verifier().verify(token))).toContain('kid is not a string');
  });

  it('refuses a tampered payload', () => {
    const token = signedJwt({ iss: 'acme' }, rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' });
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64url(JSON.stringify({ iss: 'victim' }))}.${signature}`;
    expect(problemOf(verifier().verify(forged))).toContain('signature does not verify');
  });

  it('refuses alg none, HS256 and algorithms left out of the allowed list', () => {
    const v = verifier();
    expect(problemOf(v.verify(unsignedJwt({ iss: 'acme' }, { alg: 'none' }, '')))).toContain('alg none');
    expect(problemOf(v.verify(unsignedJwt({ iss: 'acme' }, { alg: 'none' })))).toContain('alg none');
    const hs = `${b64url('{"alg":"HS256"}')}.${b64url('{"iss":"acme"}')}.${b64url('mac')}`;
    expect(problemOf(v.verify(hs))).toContain('"HS256" is not accepted');
    const esOnly = loadJwtVerifier({ keys: [{ file: paths.ecPem }], algorithms: ['ES256'] });
    expect(problemOf(esOnly.verify(signedJwt({ iss: 'acme' }, rsa.privateKey, { alg: 'RS256' })))).toContain('not accepted');
  });

  it('refuses a token for an accepted algorithm that has no configured key', () => {
    const rsaOnly = loadJwtVerifier({ keys: [{ file: paths.rsaPem }] });
    expect(problemOf(rsaOnly.verify(signedJwt({ iss: 'acme' }, ec.privateKey, { alg: 'ES256' })))).toContain('no ES256 key');
  });

  it('refuses an ES256 signature in DER rather than raw r||s form', () => {
    const input = `${b64url('{"alg":"ES256"}')}.${b64url('{"iss":"acme"}')}`;
    const der = sign('sha256', Buffer.from(input), ec.privateKey);
    expect(problemOf(verifier().verify(`${input}.${b64url(der)}`))).toContain('signature does not verify');
  });

  it('refuses a signature of the wrong length without throwing', () => {
    const input = `${b64url('{"alg":"RS256"}')}.${b64url('{"iss":"acme"}')}`;
    expect(problemOf(verifier().verify(`${input}.${b64url('short')}`))).toContain('signature does not verify');
  });

  it('refuses tokens over the configured length', () => {
    const v = verifier({ maxTokenLength: 600 });
    expect(v.maxTokenLength).toBe(600);
    const token = signedJwt({ iss: 'acme', pad: 'x'.repeat(400) }, rsa.privateKey, { alg: 'RS256' });
    expect(token.length).toBeGreaterThan(600);
    expect(problemOf(v.verify(token))).toContain('longer than 600');
    expect(verifier().maxTokenLength).toBe(8192);
    expect(verifier().verify(token).ok).toBe(true);
  });
});

describe('JWT time rules', () => {
  const at = 1_700_000_000;
  const fixed = (seconds: number): (() => number) => () => seconds * 1000;
  const token = (payload: object): string => signedJwt(payload, rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' });

  it('refuses an expired token, allowing the clock tolerance (default 30 s)', () => {
    const t = token({ iss: 'acme', exp: at });
    expect(verifier({ clock: fixed(at - 1) }).verify(t).ok).toBe(true);
    expect(verifier({ clock: fixed(at + 29) }).verify(t).ok).toBe(true);
    expect(problemOf(verifier({ clock: fixed(at + 30) }).verify(t))).toContain('expired');
    expect(problemOf(verifier({ clock: fixed(at), clockToleranceSeconds: 0 }).verify(t))).toContain('expired');
  });

  it('refuses a token used before nbf, allowing the tolerance', () => {
    const t = token({ iss: 'acme', nbf: at });
    expect(verifier({ clock: fixed(at - 30) }).verify(t).ok).toBe(true);
    expect(problemOf(verifier({ clock: fixed(at - 31) }).verify(t))).toContain('not valid yet');
  });

  it('refuses expired tokens on the real clock too', () => {
    expect(problemOf(verifier().verify(token({ iss: 'acme', exp: nowSeconds() - 120 })))).toContain('expired');
  });

  it('refuses time claims that are not numbers', () => {
    expect(problemOf(verifier().verify(token({ iss: 'acme', exp: 'tomorrow' })))).toContain('exp is not a number');
    expect(problemOf(verifier().verify(token({ iss: 'acme', nbf: null })))).toContain('nbf is not a number');
    expect(problemOf(verifier().verify(token({ iss: 'acme', iat: '1' })))).toContain('iat is not a number');
  });

  it('accepts a token without exp unless exp is required', () => {
    expect(verifier().verify(token({ iss: 'acme' })).ok).toBe(true);
    expect(problemOf(verifier({ requireExp: true }).verify(token({ iss: 'acme' })))).toContain('no exp');
  });

  it('refuses a token issued in the future', () => {
    expect(problemOf(verifier({ clock: fixed(at) }).verify(token({ iss: 'acme', iat: at + 120, exp: at + 600 })))).toContain('issued in the future');
  });

  it('limits the lifetime from iat to exp', () => {
    const v = verifier({ clock: fixed(at + 10), maxLifetimeSeconds: 3600 });
    expect(v.verify(token({ iss: 'acme', iat: at, exp: at + 3600 })).ok).toBe(true);
    expect(problemOf(v.verify(token({ iss: 'acme', iat: at, exp: at + 3601 })))).toContain('lifetime exceeds 3600');
    expect(problemOf(v.verify(token({ iss: 'acme', iat: at })))).toContain('no exp');
  });

  it('without iat, limits the lifetime from nbf, else the lifetime left', () => {
    const v = verifier({ clock: fixed(at), maxLifetimeSeconds: 3600 });
    expect(v.verify(token({ iss: 'acme', nbf: at - 10, exp: at + 3500 })).ok).toBe(true);
    expect(problemOf(v.verify(token({ iss: 'acme', nbf: at - 10, exp: at + 3600 })))).toContain('lifetime');
    expect(v.verify(token({ iss: 'acme', exp: at + 3600 })).ok).toBe(true);
    expect(problemOf(v.verify(token({ iss: 'acme', exp: at + 7200 })))).toContain('lifetime');
  });
});

describe('bearer-jwt strategy with a verifier', () => {
  it('takes the account from a verified token and says why others are refused', () => {
    const v = verifier();
    const good = signedJwt({ iss: 'acme', exp: nowSeconds() + 60 }, ec.privateKey, { alg: 'ES256', kid: 'ec-1' });
    expect(extractBearerAccount(parseAuthorization(`Bearer ${good}`), 'iss', v)).toEqual({ kind: 'account', account: 'acme' });
    const expired = signedJwt({ iss: 'acme', exp: nowSeconds() - 600 }, ec.privateKey, { alg: 'ES256', kid: 'ec-1' });
    const result = extractBearerAccount(parseAuthorization(`Bearer ${expired}`), 'iss', v);
    expect(result).toEqual({ kind: 'refused', refusal: { status: 401, reason: 'invalid_token', message: 'the bearer token was refused: it has expired' } });
  });

  it('does not accept an unsigned token that the unverified strategy would read', () => {
    const token = unsignedJwt({ iss: 'acme' });
    expect(extractBearerAccount(parseAuthorization(`Bearer ${token}`), 'iss', undefined).kind).toBe('account');
    expect(extractBearerAccount(parseAuthorization(`Bearer ${token}`), 'iss', verifier()).kind).toBe('refused');
  });
});

describe('loadJwtVerifier errors', () => {
  const loading = (options: JwtVerifierOptions): (() => JwtVerifier) => () => loadJwtVerifier(options);

  it('names a missing file and why', () => {
    const missing = join(dir, 'missing.pem');
    expect(loading({ keys: [{ file: missing }] })).toThrow(`cannot read JWT public key file ${missing}: ENOENT`);
    expect(loading({ jwksFile: missing })).toThrow(`cannot read JWKS file ${missing}: ENOENT`);
  });

  it('refuses a private key, garbage, weak RSA and curves other than P-256', () => {
    expect(loading({ keys: [{ file: paths.rsaPrivate }] })).toThrow(`${paths.rsaPrivate} holds a private key`);
    expect(loading({ keys: [{ file: paths.garbage }] })).toThrow(`${paths.garbage} is not a PEM public key`);
    expect(loading({ keys: [{ file: paths.smallRsaPem }] })).toThrow(/1024 bits/);
    expect(loading({ keys: [{ file: paths.p384Pem }] })).toThrow(/secp384r1.*P-256/);
  });

  it('refuses a key for an algorithm left out of the list, and a duplicate kid', () => {
    expect(loading({ keys: [{ file: paths.ecPem }], algorithms: ['RS256'] })).toThrow(`${paths.ecPem} holds an ES256 key, but only RS256`);
    expect(loading({ keys: [{ file: paths.rsaPem, kid: 'k' }, { file: paths.ecPem, kid: 'k' }] })).toThrow(/kid "k" names two keys/);
    expect(loading({ keys: [{ file: paths.rsaPem, kid: '' }] })).toThrow(/kid must not be empty/);
  });

  it('refuses unsupported or empty algorithm lists, and no keys at all', () => {
    expect(loading({ keys: [{ file: paths.rsaPem }], algorithms: ['none'] })).toThrow(/never accepted/);
    expect(loading({ keys: [{ file: paths.rsaPem }], algorithms: ['HS256'] })).toThrow(/"HS256" is not supported/);
    expect(loading({ keys: [{ file: paths.rsaPem }], algorithms: [] })).toThrow(/at least one/);
    expect(loading({})).toThrow(/at least one public key/);
  });

  it('refuses bad numeric options', () => {
    expect(loading({ keys: [{ file: paths.rsaPem }], clockToleranceSeconds: -1 })).toThrow(/clockToleranceSeconds/);
    expect(loading({ keys: [{ file: paths.rsaPem }], maxLifetimeSeconds: 0 })).toThrow(/maxLifetimeSeconds/);
    expect(loading({ keys: [{ file: paths.rsaPem }], maxTokenLength: 1.5 })).toThrow(/maxTokenLength/);
  });

  it('names what is wrong with a JWKS file', () => {
    expect(loading({ jwksFile: paths.notJson })).toThrow(`JWKS file ${paths.notJson} is not valid JSON`);
    expect(loading({ jwksFile: paths.noKeys })).toThrow(`JWKS file ${paths.noKeys} must be a JSON object with a "keys" array`);
    expect(loading({ jwksFile: paths.withPrivate })).toThrow(/keys\[0\] holds private or secret key material/);
    expect(loading({ jwksFile: paths.algMismatch })).toThrow(/keys\[0\] \(kid "ec-1"\) says alg RS256 but is an ES256 key/);
    expect(loading({ jwksFile: paths.encOnly })).toThrow(`JWKS file ${paths.encOnly} has no RS256 or ES256 signing key`);
  });

  it('skips JWKS entries marked for encryption or other algorithms and keeps the rest', () => {
    const v = loadJwtVerifier({ jwksFile: paths.mixed });
    expect(v.verify(signedJwt({ iss: 'acme' }, rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' })).ok).toBe(true);
    expect(problemOf(v.verify(signedJwt({ iss: 'acme' }, otherRsa.privateKey, { alg: 'RS256', kid: 'enc' })))).toContain('unknown');
  });
});
