import { describe, expect, it } from 'vitest';
import { compilePathTemplates, extractPathAccount } from '../../../src/identity/path.ts';
import { splitTarget } from '../../../src/identity/target.ts';
import type { Extraction } from '../../../src/identity/types.ts';

function reasonOf(result: Extraction): string | undefined {
  return result.kind === 'refused' ? `${result.refusal.status} ${result.refusal.reason}` : undefined;
}

describe('splitTarget', () => {
  it('separates path and raw query', () => {
    expect(splitTarget('/v1/x?account_id=A&b=%20')).toEqual({ path: '/v1/x', query: 'account_id=A&b=%20' });
    expect(splitTarget('/v1/x')).toEqual({ path: '/v1/x', query: null });
    expect(splitTarget('/v1/x?')).toEqual({ path: '/v1/x', query: '' });
  });

  it('reduces the absolute form to its path', () => {
    expect(splitTarget('http://api.example.com/v1/Account/A/?x=1')).toEqual({ path: '/v1/Account/A/', query: 'x=1' });
    expect(splitTarget('HTTPS://api.example.com')).toEqual({ path: '/', query: null });
    expect(splitTarget('http://api.example.com?x=1')).toEqual({ path: '/', query: 'x=1' });
  });

  it('drops a fragment', () => {
    expect(splitTarget('/v1/x?a=1#frag?b=2')).toEqual({ path: '/v1/x', query: 'a=1' });
  });
});

describe('path templates', () => {
  it('refuses templates that cannot work', () => {
    expect(() => compilePathTemplates([])).toThrow(/at least one template/);
    expect(() => compilePathTemplates(['v1/{account}'])).toThrow(/must start with \//);
    expect(() => compilePathTemplates(['/v1/Account/'])).toThrow(/exactly once/);
    expect(() => compilePathTemplates(['/v1/{account}/{account}/'])).toThrow(/exactly once/);
    expect(() => compilePathTemplates(['/v1/acc-{account}/'])).toThrow(/whole segment/);
    expect(() => compilePathTemplates(['/v1//{account}'])).toThrow(/empty segment/);
    expect(() => compilePathTemplates(['/v1/../{account}'])).toThrow(/\. or \.\./);
    expect(() => compilePathTemplates(['/v1/%41/{account}'])).toThrow(/plain path/);
  });
});

describe('path strategy', () => {
  const templates = compilePathTemplates(['/v1/Account/{account}/']);
  const at = (path: string): Extraction => extractPathAccount(path, templates);

  it('captures the account segment and matches as a prefix by whole segments', () => {
    expect(at('/v1/Account/acme/')).toEqual({ kind: 'account', account: 'acme' });
    expect(at('/v1/Account/acme')).toEqual({ kind: 'account', account: 'acme' });
    expect(at('/v1/Account/acme/Calls/123')).toEqual({ kind: 'account', account: 'acme' });
  });

  it('finds nothing on other paths', () => {
    for (const path of ['/', '/v1', '/v1/Account', '/v1/Account/', '/v1/Accounts/acme/', '/v2/Account/acme/', '/x/v1/Account/acme/', '*', '']) {
      expect(at(path), path).toEqual({ kind: 'none' });
    }
  });

  it('percent-decodes the captured segment', () => {
    expect(at('/v1/Account/user%40example.com/Calls')).toEqual({ kind: 'account', account: 'user@example.com' });
    expect(at('/v1/Account/%61cme/')).toEqual({ kind: 'account', account: 'acme' });
  });

  it('refuses an encoded / or \\ in the captured segment', () => {
    for (const path of ['/v1/Account/a%2Fb/', '/v1/Account/a%2fb/', '/v1/Account/a%5Cb/', '/v1/Account/a%5cb/']) {
      const result = at(path);
      expect(reasonOf(result), path).toBe('400 invalid_account');
      if (result.kind === 'refused') expect(result.refusal.message).toContain('encoded /');
    }
  });

  it('refuses a captured segment that does not decode, or is not a valid id', () => {
    expect(reasonOf(at('/v1/Account/ac%zzme/'))).toBe('400 invalid_account');
    expect(reasonOf(at('/v1/Account/%C3%28/'))).toBe('400 invalid_account');
    expect(reasonOf(at('/v1/Account/ac%20me/'))).toBe('400 invalid_account');
    expect(reasonOf(at('/v1/Account/.acme/'))).toBe('400 invalid_account');
  });

  it('refuses spellings an upstream might route to an account the literal match misses', () => {
    for (const path of [
      '/v1/account/acme/',
      '/V1/ACCOUNT/acme/',
      '/v1//Account/acme/',
      '/v1/./Account/acme/',
      '/v1/x/../Account/acme/',
      '/v1/Acc%6Funt/acme/',
      '/v1\\Account\\acme/',
      '/v1;x=1/Account/acme/',
      '/v1/Account/acme/../../Account/other/',
      '/v1/Account//acme/',
    ]) {
      expect(reasonOf(at(path)), path).toBe('400 noncanonical_path');
    }
  });

  it('lets dot segments and escapes after the account through', () => {
    expect(at('/v1/Account/acme/Calls/./x')).toEqual({ kind: 'account', account: 'acme' });
    expect(at('/v1/Account/acme/Calls%2F1')).toEqual({ kind: 'account', account: 'acme' });
  });

  it('tries every template and refuses two that disagree', () => {
    const several = compilePathTemplates(['/v1/Account/{account}/', '/v2/{account}', '/v1/{account}/']);
    expect(extractPathAccount('/v2/acme/x', several)).toEqual({ kind: 'account', account: 'acme' });
    expect(extractPathAccount('/v1/acme/x', several)).toEqual({ kind: 'account', account: 'acme' });
    expect(reasonOf(extractPathAccount('/v1/Account/acme/', several))).toBe('400 ambiguous_credentials');
  });
});
