import { describe, expect, it } from 'vitest';
import { numericReadings, numericValue } from '../../../src/policy/numeric-ids.ts';

describe('account ids as numbers', () => {
  it('gives the integer a whole id spells, as canonical decimal text', () => {
    const cases: [string, string | null][] = [
      ['123', '123'], ['0123', '123'], ['000', '0'], ['123.0', '123'], ['123.', '123'], ['1.23e2', '123'], ['12.3E1', '123'], ['1230e-1', '123'],
      ['1_23', '123'], ['0x7B', '123'], ['0x7b', '123'], ['0o173', '123'], ['0b1111011', '123'], ['1e2', '100'],
      ['12.5', null], ['1.23e1', null], ['abc', null], ['123abc', null], ['1e999', null], ['0x', null], ['0b2', null], ['', null],
    ];
    for (const [id, value] of cases) expect(numericValue(id), id).toBe(value);
  });

  it('also gives every number a lenient cast reads from a numeric prefix', () => {
    expect(numericReadings('123-acme')).toEqual(['123']);
    expect(numericReadings('123abc')).toEqual(['123']);
    expect(numericReadings('1e3x')).toEqual(expect.arrayContaining(['1', '1000']));
    expect(numericReadings('0x7Bz')).toEqual(expect.arrayContaining(['0', '123']));
    expect(numericReadings('12.5')).toEqual(['12']);
    expect(numericReadings('acme')).toEqual([]);
  });
});
