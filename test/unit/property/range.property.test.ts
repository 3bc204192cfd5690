import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { Family, IpAddress } from '../../../src/ip/address.ts';
import { formatCidr, hasHostBits, type Cidr } from '../../../src/ip/cidr.ts';
import { rangeToCidrs } from '../../../src/ip/range.ts';
import { address, bits, maskBig, toBig, topBig } from '../ip/helpers.ts';

/**
 * rangeToCidrs(first, last) against BigInt arithmetic written here: the networks are sorted,
 * touch end to end without overlap and cover exactly [first, last] (so their union is the range),
 * and there are as few of them as a simple greedy cover needs, each one maximal.
 */

const sizeOf = (cidr: Cidr): bigint => 1n << BigInt(bits(cidr.family) - cidr.prefix);

/** An address biased towards 0, the top, powers of two and 32-bit word edges (carries in IPv6). */
function valueOf(f: Family): fc.Arbitrary<bigint> {
  const edges = fc.tuple(fc.integer({ min: 0, max: bits(f) }), fc.integer({ min: -3, max: 3 }))
    .map(([shift, delta]) => ((1n << BigInt(shift)) + BigInt(delta)) & topBig(f));
  const aligned = fc.tuple(fc.bigInt({ min: 0n, max: topBig(f) }), fc.integer({ min: 0, max: bits(f) }))
    .map(([v, prefix]) => v & maskBig(f, prefix));
  return fc.oneof(fc.bigInt({ min: 0n, max: topBig(f) }), edges, aligned, fc.constantFrom(0n, 1n, topBig(f) - 1n, topBig(f)));
}

/** A span: short, a power of two give or take one, or anything. */
function spanOf(f: Family): fc.Arbitrary<bigint> {
  return fc.oneof(
    fc.bigInt({ min: 0n, max: 1n << 12n }),
    fc.tuple(fc.integer({ min: 0, max: bits(f) }), fc.integer({ min: -1, max: 1 })).map(([k, d]) => (1n << BigInt(k)) + BigInt(d)),
    fc.bigInt({ min: 0n, max: topBig(f) }),
  );
}

interface Range { readonly f: Family; readonly first: bigint; readonly last: bigint }

const RANGE: fc.Arbitrary<Range> = fc.constantFrom<Family>(4, 6).chain((f) => fc.oneof(
  // start and span
  fc.tuple(valueOf(f), spanOf(f)).map(([a, span]) => ({ f, first: a, last: a + span > topBig(f) ? topBig(f) : a + span })),
  // span ending at an edge
  fc.tuple(valueOf(f), spanOf(f)).map(([b, span]) => ({ f, first: b - span < 0n ? 0n : b - span, last: b })),
  // two arbitrary ends
  fc.tuple(valueOf(f), valueOf(f)).map(([a, b]) => ({ f, first: a < b ? a : b, last: a < b ? b : a })),
));

/**
 * The reference: from the low end, repeatedly the largest block that starts there (its size
 * divides the start) and fits in what is left (its size is at most the rest of the range).
 */
function greedyCount(f: Family, first: bigint, last: bigint): number {
  const floorPow2 = (n: bigint): bigint => 1n << BigInt(n.toString(2).length - 1);
  let count = 0;
  for (let at = first; at <= last; count++) {
    const aligned = at === 0n ? 1n << BigInt(bits(f)) : at & -at;
    const fits = floorPow2(last - at + 1n);
    at += aligned < fits ? aligned : fits;
  }
  return count;
}

const run = ({ f, first, last }: Range): { from: IpAddress; to: IpAddress; cidrs: Cidr[] } => {
  const from = address(f, first);
  const to = address(f, last);
  return { from, to, cidrs: rangeToCidrs(from, to) };
};

describe('range to CIDRs', () => {
  it('is exact: well-formed networks, ascending, end to end without gap or overlap, from the first address to the last', () => {
    fc.assert(fc.property(RANGE, (range) => {
      const { f, first, last } = range;
      const { from, to, cidrs } = run(range);
      expect(cidrs.length).toBeGreaterThan(0);
      // One row per network, compared at once (an expect() per network would dominate the run
      // time); `gap` is how far a network starts from where the one before it ended (the first: from `first`).
      let next = first;
      const rows = cidrs.map((cidr) => {
        const start = toBig(cidr.words, f);
        const row = { family: cidr.family, words: cidr.words.length, prefixInRange: cidr.prefix >= 0 && cidr.prefix <= bits(f), hostBits: hasHostBits(cidr.words, cidr.prefix), gap: start - next };
        next = start + sizeOf(cidr);
        return row;
      });
      expect(rows).toEqual(rows.map(() => ({ family: f, words: f === 4 ? 1 : 4, prefixInRange: true, hostBits: false, gap: 0n })));
      expect(next - 1n).toBe(last);
      // The inputs are left as they were, and no two networks share a words array.
      expect([toBig(from.words, f), toBig(to.words, f)]).toEqual([first, last]);
      expect(new Set(cidrs.map((c) => c.words)).size).toBe(cidrs.length);
    }), { seed: 0x2a9e, numRuns: 3000 });
  });

  it('is minimal: as many networks as the greedy reference, each one maximal, at most 2 * bits - 2', () => {
    fc.assert(fc.property(RANGE, (range) => {
      const { f, first, last } = range;
      const { cidrs } = run(range);
      expect(cidrs.length).toBe(greedyCount(f, first, last));
      expect(cidrs.length).toBeLessThanOrEqual(Math.max(1, 2 * bits(f) - 2));
      // Maximal: the network one bit shorter reaches outside the range.
      const notMaximal = cidrs.filter((cidr) => {
        if (cidr.prefix === 0) return false;
        const parentFirst = toBig(cidr.words, f) & maskBig(f, cidr.prefix - 1);
        return parentFirst >= first && parentFirst + 2n * sizeOf(cidr) - 1n <= last;
      });
      expect(notMaximal.map(formatCidr)).toEqual([]);
    }), { seed: 0x313, numRuns: 3000 });
  });

  it('refuses a range that runs backwards or mixes families', () => {
    fc.assert(fc.property(RANGE, valueOf(4), valueOf(6), ({ f, first, last }, v4, v6) => {
      if (first < last) expect(() => rangeToCidrs(address(f, last), address(f, first))).toThrow(RangeError);
      expect(() => rangeToCidrs(address(4, v4), address(6, v6))).toThrow(RangeError);
      expect(() => rangeToCidrs(address(6, v6), address(4, v4))).toThrow(RangeError);
    }), { seed: 0xbad, numRuns: 300 });
  });
});
