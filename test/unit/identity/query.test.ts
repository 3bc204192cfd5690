import { describe, expect, it } from 'vitest';
import { compileQueryParam, extractQueryAccount } from '../../../src/identity/query.ts';
import type { Extraction } from '../../../src/identity/types.ts';

function reasonOf(result: Extraction): string | undefined {
  return result.kind === 'refused' ? `${result.refusal.status} ${result.refusal.reason}` : undefined;
}

describe('query strategy', () => {
  const param = compileQueryParam('account_id');

  it('refuses parameter names no request could carry', () => {
    expect(() => compileQueryParam('')).toThrow(/non-empty/);
    expect(() => compileQueryParam('a=b')).toThrow(/non-empty/);
    expect(() => compileQueryParam('a b')).toThrow(/non-empty/);
  });

  it('finds the account among other parameters', () => {
    expect(extractQueryAccount('account_id=acme', param)).toEqual({ kind: 'account', account: 'acme' });
    expect(extractQueryAccount('a=1&account_id=acme&b=2', param)).toEqual({ kind: 'account', account: 'acme' });
    expect(extractQueryAccount('a=1&&account_id=acme&', param)).toEqual({ kind: 'account', account: 'acme' });
  });

  it('finds nothing without a query or without the parameter', () => {
    expect(extractQueryAccount(null, param)).toEqual({ kind: 'none' });
    expect(extractQueryAccount('', param)).toEqual({ kind: 'none' });
    expect(extractQueryAccount('other=acme&account_idx=x&xaccount_id=y', param)).toEqual({ kind: 'none' });
  });

  it('percent-decodes the value', () => {
    expect(extractQueryAccount('account_id=user%40example.com', param)).toEqual({ kind: 'account', account: 'user@example.com' });
    expect(extractQueryAccount('account_id=%41cme', param)).toEqual({ kind: 'account', account: 'Acme' });
  });

  it('reads + as a space, which is not a valid id character', () => {
    const result = extractQueryAccount('account_id=ac+me', param);
    expect(reasonOf(result)).toBe('400 invalid_account');
    if (result.kind === 'refused') expect(result.refusal.message).toContain('"ac me"');
  });

  it('refuses invalid percent-encoding with 400 invalid_account', () => {
    for (const q of ['account_id=acme%', 'account_id=ac%zzme', 'account_id=%C3%28', 'account_id=%E2%82']) {
      expect(reasonOf(extractQueryAccount(q, param)), q).toBe('400 invalid_account');
    }
  });

  it('refuses an empty value, or a name without a value, as an invalid id', () => {
    expect(reasonOf(extractQueryAccount('account_id=', param))).toBe('400 invalid_account');
    expect(reasonOf(extractQueryAccount('account_id', param))).toBe('400 invalid_account');
    expect(reasonOf(extractQueryAccount('account_id=%2Facme', param))).toBe('400 invalid_account');
  });

  it('refuses a repeated parameter, even with the same value', () => {
    expect(reasonOf(extractQueryAccount('account_id=a&account_id=b', param))).toBe('400 ambiguous_credentials');
    expect(reasonOf(extractQueryAccount('account_id=a&account_id=a', param))).toBe('400 ambiguous_credentials');
  });

  it('treats other spellings of the name as the same parameter', () => {
    expect(extractQueryAccount('Account_ID=acme', param)).toEqual({ kind: 'account', account: 'acme' });
    expect(extractQueryAccount('account%5Fid=acme', param)).toEqual({ kind: 'account', account: 'acme' });
    expect(reasonOf(extractQueryAccount('account_id=a&ACCOUNT_ID=b', param))).toBe('400 ambiguous_credentials');
    expect(reasonOf(extractQueryAccount('account_id=a&account%5fid=b', param))).toBe('400 ambiguous_credentials');
  });

  it('ignores undecodable parameter names', () => {
    expect(extractQueryAccount('account_id%zz=x&account_id=acme', param)).toEqual({ kind: 'account', account: 'acme' });
  });

  it('cuts long invalid values short in the message', () => {
    const result = extractQueryAccount(`account_id=${'%'.repeat(10_000)}`, param);
    expect(result.kind).toBe('refused');
    if (result.kind === 'refused') expect(result.refusal.message.length).toBeLessThan(200);
  });
});
