import { describe, expect, it } from 'vitest';
import { foldParamName } from '../../../src/http/param-name.ts';
import { compileQueryParam, cookieAlias, extractQueryAccount, findQueryParam, findQueryParams } from '../../../src/identity/query.ts';
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

  it('refuses every spelling a folding framework reads as the parameter', () => {
    const aliases = ['account_id[]=acme', 'account_id[0]=acme', 'account_id[x][y]=acme', 'account.id=acme', 'account+id=acme', 'account%20id=acme',
      'account[id=acme', '%20account_id=acme', '+account_id=acme', 'account_id%00x=acme', 'ACCOUNT.ID=acme', 'account%2Eid=acme',
      'account_%C4%B1d=acme', 'account_%C4%B0d=acme', 'account_id%5B%5D=acme', 'x=1&account.id=acme', 'account_id=acme&account_id[]=acme'];
    for (const q of aliases) expect(reasonOf(extractQueryAccount(q, param)), q).toBe('400 ambiguous_credentials');
    // Not the parameter under any reading.
    expect(extractQueryAccount('account_idx=1&account-id=2&accountid=3&account_i=4&my.account_id=5&account%255Fid=6', param)).toEqual({ kind: 'none' });
  });

  it('refuses any ; in the query, a separator to some frameworks', () => {
    for (const q of ['x=1;account_id=acme', 'account_id=acme;x=1', 'a=%3B;b', ';']) expect(reasonOf(extractQueryAccount(q, param)), q).toBe('400 ambiguous_credentials');
    expect(extractQueryAccount('x=%3B&account_id=acme', param)).toEqual({ kind: 'account', account: 'acme' });
  });

  it('folds names as PHP, Rack and qs do', () => {
    expect(foldParamName('account.id')).toBe('account_id');
    expect(foldParamName('  account id[0]')).toBe('account_id');
    expect(foldParamName('account[id')).toBe('account_id');
    expect(foldParamName('account_id\0junk')).toBe('account_id');
    expect(foldParamName('ACCOUNT_\u0130D')).toBe('account_id');
  });

  it('folds names as Rack 2 (leading brackets skipped, the name ends at the next bracket), qs, Spring and IIS do', () => {
    for (const name of ['[account_id]', 'account_id]', ']account_id', '[[account_id', '[]account_id', ']]account_id]]', '[account_id][x]', 'account_id]x', '!account_id']) {
      expect(foldParamName(name), name).toBe('account_id');
    }
    for (const q of ['[account_id]=acme', '%5Baccount_id%5D=acme', ']account_id=acme', '[]account_id=acme', '!account_id=acme', 'account_id=a&account%u005Fid=b']) {
      expect(reasonOf(extractQueryAccount(q, param)), q).toBe('400 ambiguous_credentials');
    }
    expect(extractQueryAccount('account%u005Fid=acme', param)).toEqual({ kind: 'account', account: 'acme' });
    // Nested under another name: the parameter is not at the top level anywhere.
    expect(extractQueryAccount('x[account_id]=acme&x]account_id=acme', param)).toEqual({ kind: 'none' });
  });

  it('refuses cookies named like the parameter', () => {
    expect(reasonOf(cookieAlias('session=1; account_id=acme', param))).toBe('400 ambiguous_credentials');
    expect(reasonOf(cookieAlias('account.id=acme', param))).toBe('400 ambiguous_credentials');
    expect(cookieAlias('session=1; account=acme', param)).toEqual({ kind: 'none' });
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

describe('findQueryParams: several parameters in one pass', () => {
  const params = ['access_token', 'bearer_token', 'token'];
  // Every way a query can read for one of the parameters: absent, present, empty, twice, folded
  // spellings, a `;`, and combinations where one parameter is refused and another is not.
  const queries = [
    '', 'limit=10', 'a=1&b=2', 'access_token=x', 'bearer_token=y&access_token=x', 'access_token=', 'access_token',
    'access_token=x&access_token=x', 'access_token=1&access_token=2&access.token=3', 'ACCESS_TOKEN=x', 'access%5Ftoken=x', 'access.token=x', 'access[token]=x', 'access_token=x&access.token=y',
    'access.token=y&bearer_token=z', 'token=a&bearer_token=b&token=c', 'a=1;access_token=x', 'limit=1;2', '&&access_token=%41&&',
    'bearer_token=b&access_token=a&token=t&bearer_token=c', 'xaccess_token=1&access_tokenx=2', 'token=1&to%6Ben=2', 'to ken=1',
  ];

  it.each(queries)('gives for each parameter what findQueryParam gives for it alone: %j', (query) => {
    const one = params.map((param) => findQueryParam(query, 0, query.length, param));
    const found = findQueryParams(query, 0, query.length, params);
    expect(found ?? params.map(() => undefined)).toEqual(one);
    // null (nothing allocated) exactly when no parameter is there or refused.
    expect(found === null).toBe(one.every((r) => r === undefined));
  });

  it('reads only the range it is given', () => {
    const url = '/v1/x?access_token=a&bearer_token=b#token=c';
    expect(findQueryParams(url, url.indexOf('?') + 1, url.indexOf('#'), params)).toEqual(['a', 'b', undefined]);
  });
});
