import { describe, expect, it } from 'vitest';
import { ACCOUNT_ID_DESCRIPTION, ACCOUNT_ID_MAX_LENGTH, ACCOUNT_ID_PATTERN, isValidAccountId, quoteUntrusted } from '../../../src/identity/account-id.ts';

describe('isValidAccountId', () => {
  it('accepts letters, digits and . _ @ - after a leading letter or digit', () => {
    for (const id of ['A', 'acme', 'AC0123456789abcdef', 'user@example.com', 'a.b_c-d', '9lives']) {
      expect(isValidAccountId(id), id).toBe(true);
    }
  });

  it('refuses empty ids, bad leading characters and anything outside the alphabet', () => {
    for (const id of ['', '.acme', '-acme', '_acme', '@acme', 'ac me', 'acme/x', 'acme\\x', 'acme%41', 'açme', 'acme\n', 'a:b', 'a,b']) {
      expect(isValidAccountId(id), JSON.stringify(id)).toBe(false);
    }
  });

  it('allows 128 characters and no more', () => {
    expect(isValidAccountId('a'.repeat(128))).toBe(true);
    expect(isValidAccountId('a'.repeat(129))).toBe(false);
  });

  it('exports the pattern and a description for messages', () => {
    expect(new RegExp(ACCOUNT_ID_PATTERN).test('Acme')).toBe(true);
    expect(ACCOUNT_ID_DESCRIPTION).toContain('1-128');
  });
});

describe('quoteUntrusted', () => {
  it('quotes, escapes control characters and cuts long input', () => {
    expect(quoteUntrusted('a\nb')).toBe('"a\\nb"');
    const long = quoteUntrusted('x'.repeat(1000));
    expect(long.length).toBeLessThan(70);
    expect(long.endsWith('…"')).toBe(true);
  });
});

describe('isValidAccountId and ACCOUNT_ID_PATTERN', () => {
  it('agree on every string (the pattern is what schemas publish, the function what requests run)', () => {
    const pattern = new RegExp(ACCOUNT_ID_PATTERN);
    const alphabet = 'aZ09._@-/ %+:\u00e9\u0000\n';
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let n = 0; n < 20_000; n++) {
      let s = '';
      const length = next() % 6;
      for (let i = 0; i < length; i++) s += alphabet[next() % alphabet.length];
      expect(isValidAccountId(s), JSON.stringify(s)).toBe(pattern.test(s));
    }
    expect(isValidAccountId('a'.repeat(ACCOUNT_ID_MAX_LENGTH))).toBe(true);
    expect(isValidAccountId('a'.repeat(ACCOUNT_ID_MAX_LENGTH + 1))).toBe(false);
  });
});
