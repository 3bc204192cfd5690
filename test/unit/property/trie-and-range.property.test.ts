import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Family } from '../../../src/ip/address.ts';
import { formatCidr, parseCidr } from '../../../src/ip/cidr.ts';
import { rangeToCidrs } from '../../../src/ip/range.ts';
import { compileTrie, CompiledTrie, type TrieRule } from '../../../src/ip/trie.ts';
import { address, bits, bruteForceMatcher, cidrOfBig, maskBig, toBig } from '../ip/helpers.ts';

/**
 * Properties over random inputs (fast-check, fixed seeds): the compiled table against a
 * brute-force model, probed at every network's edges; range-to-CIDR conversion exact and minimal.
 */

const family = fc.constantFrom<Family>(4, 6);

/** A network biased towards the overlaps real lists have: short, nested, equal and host prefixes. */
function networkOf(f: Family) {
  const total = bits(f);
  return fc.tuple(fc.bigInt({ min: 0n, max: (1n << BigInt(total)) - 1n }), fc.oneof(fc.integer({ min: 0, max: total }), fc.constantFrom(0, 1, total - 1, total)))
    .map(([value, prefix]) => cidrOfBig(f, value & maskBig(f, prefix), prefix));
}

function rulesOf(f: Family) {
  return fc.array(fc.tuple(networkOf(f), fc.boolean()), { minLength: 0, maxLength: 40 }).chain((base) => {
    // Nest some rules inside earlier ones and repeat some networks exactly.
    const derived = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: bits(f) }), fc.bigInt({ min: 0n, max: (1n << BigInt(bits(f))) - 1n }), fc.boolean()), { maxLength: 20 });
    return derived.map((extra) => {
      const rules: TrieRule[] = base.map(([cidr, deny], i) => ({ cidr, action: deny ? 'deny' : 'allow', id: `b${i}` }));
      for (const [k, grow, noise, deny] of extra) {
        if (rules.length === 0) break;
        const parent = rules[k % rules.length]!.cidr;
        const prefix = Math.min(bits(f), parent.prefix + (grow % (bits(f) - parent.prefix + 1)));
        const inside = (toBig(parent.words, f) | (noise & ~maskBig(f, parent.prefix))) & maskBig(f, prefix);
        rules.push({ cidr: cidrOfBig(f, inside, prefix), action: deny ? 'deny' : 'allow', id: `d${rules.length}` });
      }
      return rules;
    });
  });
}

describe('compiled table against a brute-force model', () => {
  it('answers like the model at the first and last address of every network, one past each, and at random addresses; so does its serialized copy', () => {
    fc.assert(fc.property(family.chain((f) => fc.tuple(fc.constant(f), rulesOf(f), fc.array(fc.bigInt({ min: 0n, max: (1n << BigInt(bits(f))) - 1n }), { maxLength: 20 }))), ([f, rules, randoms]) => {
      const trie = compileTrie(rules);
      const copy = CompiledTrie.fromBuffer(trie.toBuffer());
      const model = bruteForceMatcher(rules);
      const max = (1n << BigInt(bits(f))) - 1n;
      const probes = new Set<bigint>(randoms);
      for (const { cidr } of rules) {
        const first = toBig(cidr.words, f);
        const last = first | (~maskBig(f, cidr.prefix) & max);
        for (const p of [first - 1n, first, last, last + 1n]) if (p >= 0n && p <= max) probes.add(p);
      }
      for (const p of probes) {
        const ip = address(f, p);
        const expected = model(ip);
        expect(trie.lookupIp(ip)).toBe(expected);
        expect(copy.lookupIp(ip)).toBe(expected);
      }
      // Every slot describes its own input rule.
      rules.forEach((rule, slot) => {
        expect(formatCidr(trie.cidrOf(slot))).toBe(formatCidr(rule.cidr));
        expect(trie.actionOf(slot)).toBe(rule.action);
        expect(trie.idOf(slot)).toBe(rule.id);
      });
      expect(trie.intervalCount).toBeLessThanOrEqual(2 * rules.length + 2);
    }), { seed: 20261123, numRuns: 300 });
  });
});

describe('range to CIDRs', () => {
  it('covers exactly the range, in order, without overlap, with the fewest networks', () => {
    fc.assert(fc.property(family.chain((f) => {
      const max = (1n << BigInt(bits(f))) - 1n;
      return fc.tuple(fc.constant(f), fc.bigInt({ min: 0n, max }), fc.bigInt({ min: 0n, max: 1n << 20n }));
    }), ([f, start, span]) => {
      const max = (1n << BigInt(bits(f))) - 1n;
      const end = start + span > max ? max : start + span;
      const cidrs = rangeToCidrs(address(f, start), address(f, end));
      let next = start;
      for (const cidr of cidrs) {
        const first = toBig(cidr.words, f);
        expect(first).toBe(next); // contiguous and ordered: no gap, no overlap
        expect(parseCidr(formatCidr(cidr)).ok).toBe(true); // a valid network (no host bits)
        next = first + (1n << BigInt(bits(f) - cidr.prefix));
      }
      expect(next - 1n).toBe(end);
      // Minimal: the greedy largest-aligned-block cover is optimal for a range.
      let count = 0;
      for (let at = start; at <= end; count++) {
        let size = 1n;
        while (at % (size * 2n) === 0n && at + size * 2n - 1n <= end) size *= 2n;
        at += size;
      }
      expect(cidrs).toHaveLength(count);
    }), { seed: 7, numRuns: 500 });
  });
});
