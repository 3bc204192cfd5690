import { describe, it, expect } from 'vitest';
import type { Family } from '../../../src/ip/address.ts';
import { parseIp } from '../../../src/ip/address.ts';
import { formatCidr, hasHostBits, type Cidr } from '../../../src/ip/cidr.ts';
import { compareWords, rangeToCidrs } from '../../../src/ip/range.ts';
import { makeRng, type Rng } from './prng.ts';
import { address, bits, containsBig, randomWords, toBig, topBig } from './helpers.ts';

/**
 * The minimal cover computed top-down: a block fully inside the range is taken whole, a block
 * overlapping it is split in two. That yields exactly the maximal aligned blocks inside the range,
 * by a different route than the greedy scan under test.
 */
function referenceCover(family: Family, first: bigint, last: bigint): string[] {
  const total = bits(family);
  const out: string[] = [];
  const visit = (net: bigint, prefix: number): void => {
    const size = 1n << BigInt(total - prefix);
    const end = net + size - 1n;
    if (end < first || net > last) return;
    if (net >= first && end <= last) {
      out.push(formatCidr({ family, words: address(family, net).words, prefix }));
      return;
    }
    visit(net, prefix + 1);
    visit(net + size / 2n, prefix + 1);
  };
  visit(0n, 0);
  return out;
}

function range(first: string, last: string): string[] {
  return rangeToCidrs(parseIp(first)!, parseIp(last)!).map(formatCidr);
}

/** The cidrs tile [first, last] exactly: ascending, aligned, adjacent, no gaps, no overlap. */
function expectExactTiling(family: Family, cidrs: readonly Cidr[], first: bigint, last: bigint): void {
  const total = BigInt(bits(family));
  let expectedStart = first;
  for (const cidr of cidrs) {
    expect(cidr.family).toBe(family);
    expect(cidr.words.length).toBe(family === 4 ? 1 : 4);
    expect(hasHostBits(cidr.words, cidr.prefix), formatCidr(cidr)).toBe(false);
    const start = toBig(cidr.words, family);
    expect(start, formatCidr(cidr)).toBe(expectedStart);
    expectedStart = start + (1n << (total - BigInt(cidr.prefix)));
  }
  expect(expectedStart - 1n).toBe(last);
}

function randomEndpoint(rng: Rng, family: Family): bigint {
  let v = toBig(randomWords(rng, family), family);
  // Land on or next to block boundaries often: that is where off-by-one errors live.
  if (rng.chance(0.5)) {
    const k = BigInt(rng.below(bits(family)));
    const low = (1n << k) - 1n;
    v = rng.chance(0.5) ? v & ~low : v | low;
  }
  return v;
}

function randomRange(rng: Rng, family: Family): [bigint, bigint] {
  const a = randomEndpoint(rng, family);
  if (rng.chance(0.5)) {
    // Short spans as well as huge ones.
    const max = topBig(family);
    const span = toBig(randomWords(rng, family), family) >> BigInt(rng.below(bits(family)));
    const b = a + span > max ? max : a + span;
    return [a, b];
  }
  const b = randomEndpoint(rng, family);
  return a <= b ? [a, b] : [b, a];
}

describe('rangeToCidrs', () => {
  it('splits 192.168.0.10 - 192.168.10.20 into its 13 maximal blocks', () => {
    expect(range('192.168.0.10', '192.168.10.20')).toEqual([
      '192.168.0.10/31', '192.168.0.12/30', '192.168.0.16/28', '192.168.0.32/27', '192.168.0.64/26',
      '192.168.0.128/25', '192.168.1.0/24', '192.168.2.0/23', '192.168.4.0/22', '192.168.8.0/23',
      '192.168.10.0/28', '192.168.10.16/30', '192.168.10.20/32',
    ]);
  });

  it('handles single addresses, whole spaces and near-whole spaces', () => {
    expect(range('10.0.0.1', '10.0.0.1')).toEqual(['10.0.0.1/32']);
    expect(range('10.0.0.0', '10.0.0.255')).toEqual(['10.0.0.0/24']);
    expect(range('0.0.0.0', '255.255.255.255')).toEqual(['0.0.0.0/0']);
    expect(range('::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual(['::/0']);
    expect(range('255.255.255.255', '255.255.255.255')).toEqual(['255.255.255.255/32']);
    expect(range('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))
      .toEqual(['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128']);
    const allButLast = range('0.0.0.0', '255.255.255.254');
    expect(allButLast).toHaveLength(32);
    expect(allButLast[0]).toBe('0.0.0.0/1');
    expect(allButLast[31]).toBe('255.255.255.254/32');
    const allButFirst = range('::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
    expect(allButFirst).toHaveLength(128);
    expect(allButFirst[0]).toBe('::1/128');
    expect(allButFirst[127]).toBe('8000::/1');
  });

  it('carries across IPv6 word boundaries', () => {
    expect(range('2001:db8::ffff:ffff', '2001:db8::1:0:0')).toEqual(['2001:db8::ffff:ffff/128', '2001:db8::1:0:0/128']);
    expect(range('2001:db8:0:0:ffff:ffff:ffff:fffe', '2001:db8:0:1::1'))
      .toEqual(['2001:db8::ffff:ffff:ffff:fffe/127', '2001:db8:0:1::/127']);
    expect(range('2001:db8::', '2001:db8:0:1:ffff:ffff:ffff:ffff')).toEqual(['2001:db8::/63']);
  });

  it('refuses mixed families and reversed ranges', () => {
    expect(() => rangeToCidrs(parseIp('10.0.0.1')!, parseIp('::1')!)).toThrow(/family/);
    expect(() => rangeToCidrs(parseIp('10.0.0.2')!, parseIp('10.0.0.1')!)).toThrow(/above/);
    expect(() => rangeToCidrs(parseIp('::2')!, parseIp('::1')!)).toThrow(/above/);
  });

  it('does not alias the returned networks with each other or the inputs', () => {
    const first = parseIp('10.0.0.1')!;
    const cidrs = rangeToCidrs(first, parseIp('10.0.0.6')!);
    expect(cidrs.map(formatCidr)).toEqual(['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6/32']);
    expect(first.words[0]).toBe(0x0a000001);
    expect(new Set(cidrs.map((c) => c.words)).size).toBe(cidrs.length);
  });

  for (const family of [4, 6] as const) {
    it(`matches the top-down reference and tiles the range exactly, IPv${family} (seed ${family * 1000})`, () => {
      const rng = makeRng(family * 1000);
      for (let i = 0; i < 1500; i++) {
        const [a, b] = randomRange(rng, family);
        const cidrs = rangeToCidrs(address(family, a), address(family, b));
        const label = `${a} - ${b}`;
        expect(cidrs.map(formatCidr), label).toEqual(referenceCover(family, a, b));
        expectExactTiling(family, cidrs, a, b);
        expect(cidrs.length, label).toBeLessThanOrEqual(Math.max(1, 2 * bits(family) - 2));
      }
    });
  }

  it('covers exactly the addresses of small IPv4 ranges, checked address by address (seed 77)', () => {
    const rng = makeRng(77);
    for (let i = 0; i < 200; i++) {
      const a = BigInt(rng.u32() & ~0x3ff) + BigInt(rng.below(1024));
      const b = a + BigInt(rng.below(600));
      if (b > 0xffffffffn) continue;
      const cidrs = rangeToCidrs(address(4, a), address(4, b));
      for (let v = a - 40n; v <= b + 40n; v++) {
        if (v < 0n || v > 0xffffffffn) continue;
        const ip = address(4, v);
        const covered = cidrs.filter((c) => containsBig(c, ip)).length;
        expect(covered, `${v} in [${a}, ${b}]`).toBe(v >= a && v <= b ? 1 : 0);
      }
    }
  });

  it('compareWords orders multi-word values as unsigned numbers', () => {
    expect(compareWords(Uint32Array.of(1, 0), Uint32Array.of(0, 0xffffffff), 2)).toBe(1);
    expect(compareWords(Uint32Array.of(0x80000000), Uint32Array.of(1), 1)).toBe(1);
    expect(compareWords(Uint32Array.of(5, 6), Uint32Array.of(5, 6), 2)).toBe(0);
    expect(compareWords(Uint32Array.of(5, 6), Uint32Array.of(5, 7), 2)).toBe(-1);
  });
});
