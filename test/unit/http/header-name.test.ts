import { describe, expect, it } from 'vitest';
import { HeaderNameSet, isHeaderName } from '../../../src/http/header-name.ts';

describe('isHeaderName', () => {
  it('matches any letter case and nothing else', () => {
    expect(isHeaderName('X-Forwarded-For', 'x-forwarded-for')).toBe(true);
    expect(isHeaderName('X-FORWARDED-FOR', 'x-forwarded-for')).toBe(true);
    expect(isHeaderName('x-forwarded-fo', 'x-forwarded-for')).toBe(false);
    expect(isHeaderName('x_forwarded_for', 'x-forwarded-for')).toBe(false);
    // Case folding by 0x20 would turn CR (0x0d) into '-' (0x2d): only letters fold.
    expect(isHeaderName('x\rforwarded\rfor', 'x-forwarded-for')).toBe(false);
  });
});

describe('HeaderNameSet', () => {
  const set = new HeaderNameSet(['connection', 'keep-alive', 'host', 'te']);

  it('answers with the lower-case member for a name of any case', () => {
    expect(set.match('Connection')).toBe('connection');
    expect(set.match('KEEP-ALIVE')).toBe('keep-alive');
    expect(set.match('Host')).toBe('host');
    expect(set.match('TE')).toBe('te');
  });

  it('answers null for names of a member length that are not members, and for other lengths', () => {
    expect(set.match('User-Agent')).toBeNull(); // the length of connection and keep-alive
    expect(set.match('Hosts')).toBeNull();
    expect(set.match('')).toBeNull();
  });

  it('refuses members that are not lower case', () => {
    expect(() => new HeaderNameSet(['Host'])).toThrow(/lower case/);
  });
});
