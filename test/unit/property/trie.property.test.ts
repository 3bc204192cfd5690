import { describe, it, expect } from 'vitest';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import type { Family } from '../../../src/ip/address.ts';
import { formatCidr } from '../../../src/ip/cidr.ts';
import { compileTrie, CompiledTrie, type Action, type TrieRule } from '../../../src/ip/trie.ts';
import { address, bits, cidrOfBig, fromBig, maskBig, toBig, topBig } from '../ip/helpers.ts';

/**
 * The compiled table against a brute-force model, through the public API only (compileTrie,
 * lookup, lookupIp, the slot accessors, toBuffer/fromBuffer): its layout is free to change.
 *
 * Model: among the rules whose network contains the address, the longest prefix wins; on one
 * network present more than once, deny beats allow, then the earliest rule.
 *
 * Rule sets mix both families and are built step by step from earlier rules so that the cases a
 * uniform generator would almost never produce are common: equal networks with either action,
 * networks nested in (or wrapped around) earlier ones, adjacent and sibling blocks, /0 and host
 * routes, and IPv6 networks whose edges sit on 32-bit word boundaries.
 */

const MAX_BITS = 128n;
const ANY_128 = fc.bigInt({ min: 0n, max: (1n << MAX_BITS) - 1n });

const lastOf = (f: Family, first: bigint, prefix: number): bigint => first | (topBig(f) & ~maskBig(f, prefix));

/** An address, biased towards zero runs, all-ones runs and 32-bit word edges (carries in IPv6). */
function valueOf(f: Family): fc.Arbitrary<bigint> {
  const uniform = fc.bigInt({ min: 0n, max: topBig(f) });
  const edges = fc.tuple(fc.integer({ min: 0, max: bits(f) }), fc.integer({ min: -2, max: 2 }))
    .map(([shift, delta]) => ((1n << BigInt(shift)) + BigInt(delta)) & topBig(f));
  if (f === 4) return fc.oneof(uniform, edges, fc.constantFrom(0n, topBig(4)));
  const group = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 0xffff }));
  const groups = fc.array(group, { minLength: 8, maxLength: 8 }).map((g) => g.reduce((v, x) => (v << 16n) | BigInt(x), 0n));
  return fc.oneof(uniform, groups, edges, fc.constantFrom(0n, topBig(6)));
}

function prefixOf(f: Family): fc.Arbitrary<number> {
  const total = bits(f);
  const special = f === 4 ? [0, 1, 8, 16, 24, 31, 32] : [0, 1, 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128];
  return fc.oneof(fc.integer({ min: 0, max: total }), fc.constantFrom(...special));
}

/** One step of building a rule set: a fresh network, or one derived from an earlier rule. */
interface Step {
  readonly family: Family;
  readonly value: bigint;
  readonly prefix: number;
  /** 0-1 fresh, 2 equal, 3 nested inside, 4 wrapped around, 5 the next block, 6 the previous block, 7 the sibling. */
  readonly op: number;
  readonly ref: number;
  readonly noise: bigint;
  readonly deny: boolean;
  readonly id: string;
}

const ID = fc.oneof(fc.constantFrom('a', 'b', 'acct-1', ''), fc.string({ unit: 'grapheme', maxLength: 6 }));

const STEP: fc.Arbitrary<Step> = fc.constantFrom<Family>(4, 6).chain((family) => fc.record({
  family: fc.constant(family),
  value: valueOf(family),
  prefix: prefixOf(family),
  op: fc.integer({ min: 0, max: 7 }),
  ref: fc.nat(),
  noise: ANY_128,
  deny: fc.boolean(),
  id: ID,
}));

function buildRules(steps: readonly Step[]): TrieRule[] {
  const rules: TrieRule[] = [];
  for (const step of steps) {
    const action: Action = step.deny ? 'deny' : 'allow';
    const base = rules.length === 0 ? undefined : rules[step.ref % rules.length]!.cidr;
    let f: Family = step.family;
    let network: bigint;
    let prefix: number;
    if (base === undefined || step.op <= 1) {
      prefix = step.prefix;
      network = step.value & maskBig(f, prefix);
    } else {
      f = base.family;
      const first = toBig(base.words, f);
      const total = bits(f);
      const noise = step.noise & topBig(f);
      switch (step.op) {
        case 2:
          network = first;
          prefix = base.prefix;
          break;
        case 3: // nested: a longer (or equal) prefix inside the base network
          prefix = base.prefix + (step.prefix % (total - base.prefix + 1));
          network = (first | (noise & ~maskBig(f, base.prefix))) & maskBig(f, prefix);
          break;
        case 4: // wrapped around: a shorter (or equal) prefix containing the base network
          prefix = step.prefix % (base.prefix + 1);
          network = first & maskBig(f, prefix);
          break;
        case 5:
        case 6: { // adjacent, same size, when there is room
          const size = 1n << BigInt(total - base.prefix);
          const next = step.op === 5 ? first + size : first - size;
          prefix = base.prefix;
          network = next < 0n || next > topBig(f) ? first : next;
          break;
        }
        default: // the other half of the parent
          prefix = base.prefix;
          network = base.prefix === 0 ? first : first ^ (1n << BigInt(total - base.prefix));
      }
    }
    rules.push({ cidr: cidrOfBig(f, network, prefix), action, id: step.id });
  }
  return rules;
}

/** The specified decision, as a linear scan over the rules. */
function modelOf(rules: readonly TrieRule[]): (f: Family, value: bigint) => number {
  const nets = rules.map((r) => toBig(r.cidr.words, r.cidr.family));
  const masks = rules.map((r) => maskBig(r.cidr.family, r.cidr.prefix));
  return (f, value) => {
    let best = -1;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (rule.cidr.family !== f || (value & masks[i]!) !== nets[i]) continue;
      if (best < 0) { best = i; continue; }
      const current = rules[best]!;
      if (rule.cidr.prefix > current.cidr.prefix) best = i;
      else if (rule.cidr.prefix === current.cidr.prefix && rule.action === 'deny' && current.action === 'allow') best = i;
    }
    return best;
  };
}

interface Probe { readonly f: Family; readonly value: bigint }

/** Each rule's first and last address and the addresses just outside, both ends of each family, and random ones. */
function probesOf(rules: readonly TrieRule[], randoms: readonly Probe[]): Probe[] {
  const seen = new Map<string, Probe>();
  const add = (f: Family, value: bigint): void => {
    if (value >= 0n && value <= topBig(f)) seen.set(`${f}/${value}`, { f, value });
  };
  for (const f of [4, 6] as const) { add(f, 0n); add(f, topBig(f)); }
  for (const { cidr } of rules) {
    const first = toBig(cidr.words, cidr.family);
    const last = lastOf(cidr.family, first, cidr.prefix);
    for (const v of [first - 1n, first, last, last + 1n]) add(cidr.family, v);
  }
  for (const { f, value } of randoms) add(f, value);
  return [...seen.values()];
}

const PROBE: fc.Arbitrary<Probe> = fc.constantFrom<Family>(4, 6).chain((f) => valueOf(f).map((value) => ({ f, value })));

const scenario = fc.record({
  steps: fc.array(STEP, { maxLength: 48, size: 'max' }),
  randoms: fc.array(PROBE, { maxLength: 24 }),
  junk: fc.array(fc.nat({ max: 0xffffffff }), { minLength: 3, maxLength: 3 }),
}).map(({ steps, randoms, junk }) => {
  const rules = buildRules(steps);
  return { rules, probes: probesOf(rules, randoms), junk };
});

/** Both lookup entries: `lookup` with a reused 4-word scratch (IPv4 leaves stale words behind), and `lookupIp`. */
function answers(trie: CompiledTrie, probes: readonly Probe[], junk: readonly number[]): number[][] {
  const scratch = new Uint32Array(4);
  return probes.map(({ f, value }) => {
    const words = fromBig(value, f);
    scratch.set(f === 4 ? [words[0]!, ...junk] : words);
    return [trie.lookup(f, scratch), trie.lookupIp(address(f, value))];
  });
}

function describeSlots(trie: CompiledTrie): unknown[] {
  return Array.from({ length: trie.ruleCount }, (_, slot) => {
    const cidr = trie.cidrOf(slot);
    return [cidr.family, [...cidr.words], cidr.prefix, formatCidr(cidr), trie.prefixOf(slot), trie.actionOf(slot), trie.idOf(slot)];
  });
}

const expectedSlots = (rules: readonly TrieRule[]): unknown[] =>
  rules.map((r) => [r.cidr.family, [...r.cidr.words], r.cidr.prefix, formatCidr(r.cidr), r.cidr.prefix, r.action, r.id]);

describe('compiled trie against a brute-force model', () => {
  it('decides every probe like the model: the most specific network, then deny over allow, then the earliest rule', () => {
    fc.assert(fc.property(scenario, ({ rules, probes, junk }) => {
      const trie = compileTrie(rules);
      const model = modelOf(rules);
      const expected = probes.map(({ f, value }) => { const slot = model(f, value); return [slot, slot]; });
      expect(answers(trie, probes, junk)).toEqual(expected);
    }), { seed: 0x7e1e, numRuns: 250 });
  });

  it('describes every slot as its input rule: network, prefix, action and id', () => {
    fc.assert(fc.property(scenario, ({ rules }) => {
      const trie = compileTrie(rules);
      expect(trie.ruleCount).toBe(rules.length);
      expect(describeSlots(trie)).toEqual(expectedSlots(rules));
    }), { seed: 0x51075, numRuns: 250 });
  });

  it('round-trips through toBuffer/fromBuffer, also from an unaligned view: same answers, same slots, same bytes', () => {
    fc.assert(fc.property(scenario, fc.integer({ min: 0, max: 7 }), ({ rules, probes, junk }, offset) => {
      const trie = compileTrie(rules);
      const bytes = trie.toBuffer();
      const shifted = new Uint8Array(bytes.length + offset + 3);
      shifted.set(bytes, offset);
      const model = modelOf(rules);
      const expected = probes.map(({ f, value }) => { const slot = model(f, value); return [slot, slot]; });
      for (const copy of [CompiledTrie.fromBuffer(bytes), CompiledTrie.fromBuffer(shifted.subarray(offset, offset + bytes.length))]) {
        expect(copy.ruleCount).toBe(rules.length);
        expect(answers(copy, probes, junk)).toEqual(expected);
        expect(describeSlots(copy)).toEqual(expectedSlots(rules));
        expect(Buffer.compare(copy.toBuffer(), bytes)).toBe(0);
      }
    }), { seed: 0xb0f, numRuns: 150 });
  });
});
