import { describe, expect, it } from 'vitest';
import { parseAuthorization } from '../../../src/identity/authorization.ts';
import { extractBasicAccount } from '../../../src/identity/basic.ts';
import type { Extraction } from '../../../src/identity/types.ts';
import { basic } from './support.ts';

function fromHeader(value: string): Extraction {
  return extractBasicAccount(parseAuthorization(value));
}

function reasonOf(result: Extraction): string | undefined {
  return result.kind === 'refused' ? `${result.refusal.status} ${result.refusal.reason}` : undefined;
}

describe('parseAuthorization', () => {
  it('lower-cases the scheme and separates the credentials', () => {
    expect(parseAuthorization('BaSiC  abc= ')).toEqual({ scheme: 'basic', credentials: 'abc=' });
    expect(parseAuthorization('Bearer\tx.y.z')).toEqual({ scheme: 'bearer', credentials: 'x.y.z' });
    expect(parseAuthorization('Basic')).toEqual({ scheme: 'basic', credentials: '' });
  });
});

describe('basic strategy', () => {
  it('takes the user name before the first colon as the account', () => {
    expect(fromHeader(basic('acme:s3cret'))).toEqual({ kind: 'account', account: 'acme' });
    expect(fromHeader(basic('acme:pass:with:colons'))).toEqual({ kind: 'account', account: 'acme' });
    expect(fromHeader(basic('acme:'))).toEqual({ kind: 'account', account: 'acme' });
  });

  it('reads the scheme case-insensitively', () => {
    const encoded = Buffer.from('acme:pw').toString('base64');
    expect(fromHeader(`basic ${encoded}`)).toEqual({ kind: 'account', account: 'acme' });
    expect(fromHeader(`BASIC ${encoded}`)).toEqual({ kind: 'account', account: 'acme' });
  });

  it('ignores other schemes and a missing header', () => {
    expect(fromHeader('Bearer a.b.c')).toEqual({ kind: 'none' });
    expect(fromHeader('Digest username="acme"')).toEqual({ kind: 'none' });
    expect(extractBasicAccount(undefined)).toEqual({ kind: 'none' });
  });

  it('refuses malformed base64 with 401 invalid_credentials', () => {
    const good = Buffer.from('acme:pw').toString('base64'); // YWNtZTpwdw==
    for (const encoded of ['', 'YWNtZTpwdw', 'YWNtZTpwdw=', 'YWNt ZTpwdw==', 'YWNtZTpwdw==x', 'YWNtZTpwdw-_', 'YW*tZTpwdw==', `${good}${good}`]) {
      expect(reasonOf(fromHeader(`Basic ${encoded}`)), encoded).toBe('401 invalid_credentials');
    }
  });

  it('refuses base64 with non-zero padding bits (an alias of the canonical form)', () => {
    // 'YQ==' is "a"; 'YR==' decodes to the same byte in lenient decoders.
    expect(fromHeader('Basic YWNtZTpwdw==').kind).toBe('account');
    expect(reasonOf(fromHeader('Basic YWNtZTpwdx=='))).toBe('401 invalid_credentials');
  });

  it('refuses credentials without a colon or with an empty user name', () => {
    expect(reasonOf(fromHeader(basic('acme')))).toBe('401 invalid_credentials');
    expect(reasonOf(fromHeader(basic(':pw')))).toBe('401 invalid_credentials');
  });

  it('refuses invalid UTF-8', () => {
    const encoded = Buffer.from([0xff, 0xfe, 0x3a, 0x70]).toString('base64');
    expect(reasonOf(fromHeader(`Basic ${encoded}`))).toBe('401 invalid_credentials');
  });

  it('refuses a user name that is not a valid account id with 400 invalid_account', () => {
    const result = fromHeader(basic('not an id:pw'));
    expect(reasonOf(result)).toBe('400 invalid_account');
    if (result.kind === 'refused') expect(result.refusal.message).not.toContain('pw');
  });

  it('never puts the password in a message', () => {
    const result = fromHeader(basic('acme'));
    expect(result.kind).toBe('refused');
    if (result.kind === 'refused') expect(result.refusal.message).not.toContain('YWNtZQ');
  });
});
