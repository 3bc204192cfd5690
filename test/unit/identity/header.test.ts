import { describe, expect, it } from 'vitest';
import { compileHeaderName, extractHeaderAccount } from '../../../src/identity/header.ts';

describe('header strategy', () => {
  it('compiles the configured name to lower case', () => {
    expect(compileHeaderName('X-Auth-ID')).toBe('x-auth-id');
  });

  it('refuses names that are not header names, and Authorization', () => {
    expect(() => compileHeaderName('x auth')).toThrow(/not a valid HTTP header name/);
    expect(() => compileHeaderName('')).toThrow(/not a valid HTTP header name/);
    expect(() => compileHeaderName('Authorization')).toThrow(/basic or bearer-jwt/);
  });

  it('finds nothing when the header is absent', () => {
    expect(extractHeaderAccount(undefined, 'x-auth-id')).toEqual({ kind: 'none' });
  });

  it('takes the value, without surrounding spaces or tabs, as the account', () => {
    expect(extractHeaderAccount('acme', 'x-auth-id')).toEqual({ kind: 'account', account: 'acme' });
    expect(extractHeaderAccount(' \tacme\t ', 'x-auth-id')).toEqual({ kind: 'account', account: 'acme' });
  });

  it('keeps the case of the id', () => {
    expect(extractHeaderAccount('AcMe', 'x-auth-id')).toEqual({ kind: 'account', account: 'AcMe' });
  });

  it('refuses an invalid or empty id with 400 invalid_account', () => {
    for (const value of ['', 'a b', 'a,b', 'acme\u00a0']) {
      const result = extractHeaderAccount(value, 'x-auth-id');
      expect(result.kind, JSON.stringify(value)).toBe('refused');
      if (result.kind !== 'refused') continue;
      expect(result.refusal.status).toBe(400);
      expect(result.refusal.reason).toBe('invalid_account');
      expect(result.refusal.message).toContain('x-auth-id header');
    }
  });

  it('does not echo more than a short prefix of the value', () => {
    const result = extractHeaderAccount(`bad ${'z'.repeat(5000)}`, 'x-auth-id');
    expect(result.kind).toBe('refused');
    if (result.kind === 'refused') expect(result.refusal.message.length).toBeLessThan(300);
  });
});
