import { describe, expect, it } from 'vitest';
import { parseAuthorization } from '../../../src/identity/authorization.ts';
import { extractBearerAccount } from '../../../src/identity/bearer-jwt.ts';
import type { Extraction } from '../../../src/identity/types.ts';
import { b64url, unsignedJwt } from './support.ts';

function fromHeader(value: string, claim = 'iss'): Extraction {
  return extractBearerAccount(parseAuthorization(value), claim, undefined);
}

function refusalOf(result: Extraction): { status: number; reason: string; message: string } {
  if (result.kind !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  return result.refusal;
}

describe('bearer-jwt strategy without verification', () => {
  it('reads the account from the configured claim', () => {
    const token = unsignedJwt({ iss: 'acme', sub: 'user-7' });
    expect(fromHeader(`Bearer ${token}`)).toEqual({ kind: 'account', account: 'acme' });
    expect(fromHeader(`Bearer ${token}`, 'sub')).toEqual({ kind: 'account', account: 'user-7' });
  });

  it('reads the scheme case-insensitively', () => {
    const token = unsignedJwt({ iss: 'acme' });
    expect(fromHeader(`bearer ${token}`)).toEqual({ kind: 'account', account: 'acme' });
    expect(fromHeader(`BEARER ${token}`)).toEqual({ kind: 'account', account: 'acme' });
  });

  it('takes a dotted claim name literally, not as a path', () => {
    const token = unsignedJwt({ 'https://example.com/account': 'acme', https: { 'example.com/account': 'other' } });
    expect(fromHeader(`Bearer ${token}`, 'https://example.com/account')).toEqual({ kind: 'account', account: 'acme' });
  });

  it('ignores other schemes and a missing header', () => {
    expect(fromHeader('Basic YWNtZTpwdw==')).toEqual({ kind: 'none' });
    expect(extractBearerAccount(undefined, 'iss', undefined)).toEqual({ kind: 'none' });
  });

  it('refuses, 401 invalid_token, a token that is not a JWT (fail closed)', () => {
    for (const token of ['', 'opaque-token', 'a.b', 'a.b.c.d.e', `${b64url('{"alg":"RS256"}')}..sig`, `${b64url('not json')}.${b64url('{}')}.c2ln`]) {
      const refusal = refusalOf(fromHeader(`Bearer ${token}`));
      expect(refusal.status, token).toBe(401);
      expect(refusal.reason, token).toBe('invalid_token');
    }
  });

  it('refuses base64url that is padded, uses the base64 alphabet or has stray bits', () => {
    const header = b64url(JSON.stringify({ alg: 'RS256' }));
    const payload = b64url(JSON.stringify({ iss: 'acme' }));
    expect(fromHeader(`Bearer ${header}.${payload}.c2ln`).kind).toBe('account');
    expect(refusalOf(fromHeader(`Bearer ${header}=.${payload}.c2ln`)).reason).toBe('invalid_token');
    expect(refusalOf(fromHeader(`Bearer ${header}.${payload}.c2l+`)).reason).toBe('invalid_token');
    // '{"iss":"acme"}' is 14 bytes, so its last character carries 2 unused bits: setting one
    // gives a spelling lenient decoders read as the same payload.
    const lastBitsSet = `${payload.slice(0, -1)}${String.fromCharCode(payload.charCodeAt(payload.length - 1) + 1)}`;
    expect(Buffer.from(lastBitsSet, 'base64url').equals(Buffer.from(payload, 'base64url'))).toBe(true);
    expect(refusalOf(fromHeader(`Bearer ${header}.${lastBitsSet}.c2ln`)).reason).toBe('invalid_token');
  });

  it('refuses a header or payload that is not a JSON object', () => {
    expect(refusalOf(fromHeader(`Bearer ${unsignedJwt(['acme'] as unknown as object)}`)).message).toContain('payload');
    expect(refusalOf(fromHeader(`Bearer ${b64url('"x"')}.${b64url('{"iss":"acme"}')}.c2ln`)).message).toContain('header');
  });

  it('refuses alg none, whatever its case', () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const token = unsignedJwt({ iss: 'acme' }, { alg });
      expect(refusalOf(fromHeader(`Bearer ${token}`)).message).toContain('alg none');
    }
    expect(refusalOf(fromHeader(`Bearer ${unsignedJwt({ iss: 'acme' }, { alg: 'none' }, '')}`)).reason).toBe('invalid_token');
  });

  it('refuses a header without alg, and crit extensions', () => {
    expect(refusalOf(fromHeader(`Bearer ${unsignedJwt({ iss: 'acme' }, { typ: 'JWT' })}`)).message).toContain('no alg');
    expect(refusalOf(fromHeader(`Bearer ${unsignedJwt({ iss: 'acme' }, { alg: 'RS256', crit: ['b64'], b64: false })}`)).message).toContain('crit');
  });

  it('refuses a payload naming the claim twice', () => {
    const payload = b64url('{"iss":"acme","iss":"other"}');
    const refusal = refusalOf(fromHeader(`Bearer ${b64url('{"alg":"RS256"}')}.${payload}.c2ln`));
    expect(refusal.reason).toBe('invalid_token');
    expect(refusal.message).toContain('duplicate');
  });

  it('accepts the same name nested at different levels', () => {
    const payload = b64url('{"iss":"acme","ctx":{"iss":"x","a":[{"iss":"y"}]},"s":"\\"iss\\","}');
    expect(fromHeader(`Bearer ${b64url('{"alg":"RS256"}')}.${payload}.c2ln`)).toEqual({ kind: 'account', account: 'acme' });
  });

  it('refuses a missing or non-string claim', () => {
    expect(refusalOf(fromHeader(`Bearer ${unsignedJwt({ sub: 'acme' })}`)).message).toContain('missing');
    expect(refusalOf(fromHeader(`Bearer ${unsignedJwt({ iss: 42 })}`)).message).toContain('not a string');
    expect(refusalOf(fromHeader(`Bearer ${unsignedJwt({ iss: 'acme' })}`, 'constructor')).message).toContain('missing');
  });

  it('refuses a claim that is not a valid account id with 400 invalid_account', () => {
    const refusal = refusalOf(fromHeader(`Bearer ${unsignedJwt({ iss: 'https://issuer.example.com/' })}`));
    expect(refusal.status).toBe(400);
    expect(refusal.reason).toBe('invalid_account');
  });

  it('refuses oversized tokens without decoding them', () => {
    const token = unsignedJwt({ iss: 'acme', pad: 'x'.repeat(9000) });
    const refusal = refusalOf(fromHeader(`Bearer ${token}`));
    expect(refusal.reason).toBe('invalid_token');
    expect(refusal.message).toContain('longer than 8192');
  });

  it('does not echo the token in messages', () => {
    const token = unsignedJwt({ sub: 'acme', secret: 'hunter2' });
    expect(refusalOf(fromHeader(`Bearer ${token}`)).message).not.toContain(token.slice(0, 20));
  });
});
