/**
 * Account ids as numbers. Many upstreams look an account up by comparing or casting the id as a
 * number: PHP's `==` on numeric strings (`'0123' == '123'`, `'1.23e2' == '123'`), `(int)` and
 * `intval`, Ruby's `to_i` and ActiveRecord's `find` (`find("123-acme")` finds 123), SQL casting a
 * string compared with an integer column (MySQL `'123abc' = 123`), JavaScript's `Number` and
 * `parseInt` (`0x7B`), Python's `int` (`1_23`). An id the gateway checks as one account may then be
 * served as another whose id is that number. Values are canonical decimal text (exact, not
 * floating point), integers only: an id is an account's number or it is not.
 */

/** Exponents past this are no account's id, whatever a parser makes of them. */
const MAX_EXPONENT = 64;

const DIGITS = /^[0-9]+$/;
const UNDERSCORED = /^[0-9]+(?:_[0-9]+)+$/;
const DECIMAL = /^([0-9]+)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/;
const RADIX = /^0([xXoObB])([0-9a-fA-F]+(?:_[0-9a-fA-F]+)*)$/;
const LEADING_DIGITS = /^[0-9]+/;
const LEADING_UNDERSCORED = /^[0-9]+(?:_[0-9]+)*/;
const LEADING_DECIMAL = /^([0-9]+)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?/;
const LEADING_HEX = /^0[xX]([0-9a-fA-F]+)/;

/**
 * The number a whole id spells, if it spells one: digits with leading zeros, a decimal or
 * exponent form that is an integer (`123.0`, `1.23e2`, `123.`), digits grouped by `_`, a `0x`,
 * `0o` or `0b` literal. Stored ids are indexed by this.
 */
export function numericValue(id: string): string | null {
  const first = id.charCodeAt(0);
  if (!(first >= 48 && first <= 57)) return null;
  if (DIGITS.test(id)) return canonical(id);
  if (UNDERSCORED.test(id)) return canonical(id.replaceAll('_', ''));
  const decimal = DECIMAL.exec(id);
  if (decimal !== null) return integral(decimal[1]!, decimal[2] ?? '', decimal[3]);
  const radix = RADIX.exec(id);
  if (radix !== null) return radixValue(radix[1]!, radix[2]!.replaceAll('_', ''));
  return null;
}

/**
 * Every number an id sent by a caller may be read as: the whole id's value, and the values of its
 * numeric prefix as lenient casts read it (`123abc`, `123-acme`, `1e3x`, `0x7Bz`).
 */
export function numericReadings(id: string): readonly string[] {
  const first = id.charCodeAt(0);
  if (!(first >= 48 && first <= 57)) return NONE;
  const out: string[] = [];
  const add = (value: string | null): void => {
    if (value !== null && !out.includes(value)) out.push(value);
  };
  add(numericValue(id));
  add(canonical(LEADING_DIGITS.exec(id)![0]));
  add(canonical(LEADING_UNDERSCORED.exec(id)![0].replaceAll('_', '')));
  const decimal = LEADING_DECIMAL.exec(id)!;
  add(integral(decimal[1]!, decimal[2] ?? '', decimal[3]));
  const hex = LEADING_HEX.exec(id);
  if (hex !== null) add(radixValue('x', hex[1]!));
  return out;
}

const NONE: readonly string[] = [];

function canonical(digits: string): string {
  let start = 0;
  while (start < digits.length - 1 && digits.charCodeAt(start) === 48) start++;
  return start === 0 ? digits : digits.slice(start);
}

/** int.frac × 10^exp as canonical decimal text when it is an integer; null otherwise. */
function integral(int: string, frac: string, exponent: string | undefined): string | null {
  const exp = exponent === undefined ? 0 : Number(exponent);
  if (Math.abs(exp) > MAX_EXPONENT) return null;
  const digits = int + frac;
  const shift = exp - frac.length;
  if (/^0*$/.test(digits)) return '0';
  if (shift >= 0) return canonical(digits + '0'.repeat(shift));
  const cut = digits.length + shift;
  if (cut <= 0 ? !/^0*$/.test(digits) : !/^0*$/.test(digits.slice(cut))) return null;
  return cut <= 0 ? '0' : canonical(digits.slice(0, cut));
}

function radixValue(kind: string, digits: string): string | null {
  const base = kind === 'x' || kind === 'X' ? 16 : kind === 'o' || kind === 'O' ? 8 : 2;
  let value = 0n;
  for (const c of digits) {
    const d = parseInt(c, 16);
    if (d >= base) return null;
    value = value * BigInt(base) + BigInt(d);
  }
  return value.toString();
}
