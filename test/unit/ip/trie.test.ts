import { describe, it, expect } from 'vitest';
import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { formatIp, parseIp, parseIpInto, type Family, type IpAddress } from '../../../src/ip/address.ts';
import { cidrContains, formatCidr, parseCidr, type Cidr } from '../../../src/ip/cidr.ts';
import { compileTrie, CompiledTrie, type Action, type TrieRule } from '../../../src/ip/trie.ts';
import { makeRng, type Rng } from './prng.ts';
import { bits, bruteForceMatcher, cidrOfBig, maskBig, randomAddress, randomCidr, randomInside, toBig, topBig } from './helpers.ts';

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function rule(text: string, action: Action, id: string): TrieRule {
  return { cidr: cidr(text), action, id };
}

function ip(text: string): IpAddress {
  const parsed = parseIp(text);
  if (!parsed) throw new Error(`bad address ${text}`);
  return parsed;
}

/** The id of the deciding rule, or null: readable expectations for hand-written cases. */
function decide(trie: CompiledTrie, address: string): string | null {
  const slot = trie.lookupIp(ip(address));
  return slot < 0 ? null : trie.idOf(slot);
}

/**
 * Random rules that overlap the way real lists do: nested networks, exact duplicates with the
 * same or the opposite action, host routes, and a few very short prefixes.
 */
function randomRules(rng: Rng, family: Family, count: number): TrieRule[] {
  const rules: TrieRule[] = [];
  const total = bits(family);
  for (let i = 0; i < count; i++) {
    const action: Action = rng.chance(0.5) ? 'allow' : 'deny';
    const id = `r${family}-${i}`;
    const roll = rng.u32() / 0x100000000;
    let network: Cidr;
    if (rules.length > 0 && roll < 0.12) {
      network = rng.pick(rules).cidr; // duplicate network
    } else if (rules.length > 0 && roll < 0.35) {
      const parent = rng.pick(rules).cidr; // nested inside an existing network
      const prefix = rng.between(parent.prefix, total);
      const inside = toBig(randomInside(rng, parent).words, family) & maskBig(family, prefix);
      network = cidrOfBig(family, inside, prefix);
    } else if (roll < 0.37) {
      network = randomCidr(rng, family, 0, 4);
    } else {
      network = randomCidr(rng, family, family === 4 ? 8 : 16, total);
    }
    rules.push({ cidr: network, action, id });
  }
  return rules;
}

function randomProbe(rng: Rng, rules: readonly TrieRule[], family: Family): IpAddress {
  const own = rules.filter((r) => r.cidr.family === family);
  if (own.length > 0 && rng.chance(0.75)) return randomInside(rng, rng.pick(own).cidr);
  return randomAddress(rng, family);
}

function withCrc(buf: Buffer): Buffer {
  buf.writeUInt32LE(crc32(buf.subarray(12)), 8);
  return buf;
}

describe('compileTrie semantics', () => {
  it('an empty trie matches nothing', () => {
    const trie = compileTrie([]);
    expect(trie.ruleCount).toBe(0);
    expect(trie.lookupIp(ip('10.0.0.1'))).toBe(-1);
    expect(trie.lookupIp(ip('::1'))).toBe(-1);
    expect(CompiledTrie.fromBuffer(trie.toBuffer()).lookupIp(ip('::1'))).toBe(-1);
  });

  it('the most specific network wins, regardless of input order', () => {
    const rules = [
      rule('10.1.2.0/24', 'allow', 'c'),
      rule('10.0.0.0/8', 'allow', 'a'),
      rule('10.1.0.0/16', 'deny', 'b'),
      rule('10.1.2.3/32', 'deny', 'd'),
    ];
    for (const order of [rules, [...rules].reverse()]) {
      const trie = compileTrie(order);
      expect(decide(trie, '10.9.9.9')).toBe('a');
      expect(decide(trie, '10.1.9.9')).toBe('b');
      expect(decide(trie, '10.1.2.9')).toBe('c');
      expect(decide(trie, '10.1.2.3')).toBe('d');
      expect(decide(trie, '11.0.0.0')).toBeNull();
      expect(decide(trie, '9.255.255.255')).toBeNull();
    }
  });

  it('on the same network deny beats allow, then the earliest rule wins', () => {
    const trie = compileTrie([
      rule('192.0.2.0/24', 'allow', 'allow-1'),
      rule('192.0.2.0/24', 'deny', 'deny-1'),
      rule('192.0.2.0/24', 'deny', 'deny-2'),
      rule('192.0.2.0/24', 'allow', 'allow-2'),
      rule('2001:db8::/32', 'allow', 'v6-allow-1'),
      rule('2001:db8::/32', 'allow', 'v6-allow-2'),
    ]);
    expect(decide(trie, '192.0.2.77')).toBe('deny-1');
    expect(decide(trie, '2001:db8::77')).toBe('v6-allow-1');
  });

  it('keeps the families apart, including /0 and the IPv4-mapped range', () => {
    const trie = compileTrie([rule('0.0.0.0/0', 'deny', 'all-v4'), rule('::/0', 'allow', 'all-v6')]);
    expect(decide(trie, '203.0.113.1')).toBe('all-v4');
    expect(decide(trie, '::ffff:203.0.113.1')).toBe('all-v4');
    expect(decide(trie, '2001:db8::1')).toBe('all-v6');
    expect(decide(trie, '::')).toBe('all-v6');
    const onlyV6 = compileTrie([rule('::/0', 'allow', 'x')]);
    expect(decide(onlyV6, '0.0.0.0')).toBeNull();
  });

  it('matches host routes and networks that end mid-word in IPv6', () => {
    const trie = compileTrie([
      rule('2001:db8::/33', 'allow', 'half'),
      rule('2001:db8:0:0:8000::/65', 'deny', 'mid'),
      rule('2001:db8::1/128', 'deny', 'host'),
      rule('255.255.255.255/32', 'allow', 'bcast'),
    ]);
    expect(decide(trie, '2001:db8::1')).toBe('host');
    expect(decide(trie, '2001:db8::2')).toBe('half');
    expect(decide(trie, '2001:db8::8000:0:0:5')).toBe('mid');
    expect(decide(trie, '2001:db8:8000::')).toBeNull();
    expect(decide(trie, '255.255.255.255')).toBe('bcast');
    expect(decide(trie, '255.255.255.254')).toBeNull();
  });

  it('looks up from a reused 4-word scratch array, as the request path does', () => {
    const trie = compileTrie([rule('10.0.0.0/8', 'allow', 'v4'), rule('2001:db8::/32', 'deny', 'v6')]);
    const scratch = new Uint32Array(4);
    expect(trie.lookup(parseIpInto('2001:db8::5', scratch) as Family, scratch)).toBe(1);
    expect(trie.lookup(parseIpInto('10.2.3.4', scratch) as Family, scratch)).toBe(0);
    expect(trie.lookup(parseIpInto('11.2.3.4', scratch) as Family, scratch)).toBe(-1);
  });

  it('describes every slot, shadowed ones included', () => {
    const trie = compileTrie([
      rule('10.0.0.0/8', 'allow', 'entry-1'),
      rule('10.0.0.0/8', 'deny', 'entry-2'),
      rule('2001:db8:80::/41', 'allow', 'entry-1'),
    ]);
    expect(trie.ruleCount).toBe(3);
    expect([0, 1, 2].map((s) => trie.idOf(s))).toEqual(['entry-1', 'entry-2', 'entry-1']);
    expect([0, 1, 2].map((s) => trie.actionOf(s))).toEqual(['allow', 'deny', 'allow']);
    expect([0, 1, 2].map((s) => trie.prefixOf(s))).toEqual([8, 8, 41]);
    expect([0, 1, 2].map((s) => formatCidr(trie.cidrOf(s)))).toEqual(['10.0.0.0/8', '10.0.0.0/8', '2001:db8:80::/41']);
    expect(trie.cidrOf(2).family).toBe(6);
    for (const bad of [-1, 3, 1.5, Number.NaN]) {
      expect(() => trie.idOf(bad)).toThrow(RangeError);
      expect(() => trie.actionOf(bad)).toThrow(RangeError);
      expect(() => trie.prefixOf(bad)).toThrow(RangeError);
      expect(() => trie.cidrOf(bad)).toThrow(RangeError);
    }
  });

  it('refuses malformed rules instead of enforcing a different network', () => {
    const hostBits: Cidr = { family: 4, words: Uint32Array.of(0x0a000001), prefix: 8 };
    expect(() => compileTrie([{ cidr: hostBits, action: 'allow', id: 'x' }])).toThrow(/host bits/);
    const longPrefix: Cidr = { family: 4, words: Uint32Array.of(0), prefix: 33 };
    expect(() => compileTrie([{ cidr: longPrefix, action: 'allow', id: 'x' }])).toThrow(/out of range/);
    const shortWords: Cidr = { family: 6, words: Uint32Array.of(0), prefix: 0 };
    expect(() => compileTrie([{ cidr: shortWords, action: 'allow', id: 'x' }])).toThrow(/4 words/);
    expect(() => compileTrie([{ cidr: cidr('10.0.0.0/8'), action: 'maybe' as Action, id: 'x' }])).toThrow(/action/);
    expect(() => compileTrie([{ cidr: cidr('10.0.0.0/8'), action: 'allow', id: '\ud800' }])).toThrow(/well-formed/);
  });

  it('reports its memory: one allocation for its own tables and its rules, the empty family shared', () => {
    const rules = [rule('10.0.0.0/8', 'allow', 'a'), rule('10.1.0.0/16', 'deny', 'b'), rule('10.2.0.0/16', 'deny', 'c')];
    const trie = compileTrie(rules);
    // IPv4: none, 10/8, 10.1/16, 10.2/16, 10/8 again from 10.3.0.0, none from 11.0.0.0 (8 bytes
    // each) and a 3-word index; IPv6 has no rule, so its table is the shared one (not counted);
    // 12 bytes a rule.
    expect(trie.intervalCount).toBe(6 + 1);
    expect(trie.byteLength).toBe(6 * 8 + 12 + rules.length * 12);
    // Beyond the tables: the views, the trie object and the three one-letter ids.
    expect(trie.retainedBytes).toBeGreaterThan(trie.byteLength + 3 * 24);
    const both = compileTrie([...rules, rule('2001:db8::/32', 'allow', 'd')]);
    expect(both.byteLength).toBe(6 * 8 + 12 + 3 * 20 + 12 + 4 * 12);
    expect(both.retainedBytes).toBeGreaterThan(trie.retainedBytes + 3 * 20 + 12);
  });
});

describe('compileTrie against a brute-force matcher', () => {
  for (const seed of [1, 2, 3]) {
    it(`gives the brute-force answer for random mixed rules and addresses (seed ${seed})`, () => {
      const rng = makeRng(seed);
      const rules = [...randomRules(rng, 4, 1500), ...randomRules(rng, 6, 1500)];
      // Interleave families so slots of both are mixed in input order.
      for (let i = rules.length - 1; i > 0; i--) {
        const j = rng.below(i + 1);
        [rules[i], rules[j]] = [rules[j]!, rules[i]!];
      }
      const trie = compileTrie(rules);
      const restored = CompiledTrie.fromBuffer(trie.toBuffer());
      const reference = bruteForceMatcher(rules);
      expect(trie.ruleCount).toBe(rules.length);
      const distinct = new Set(rules.map((r) => `${r.cidr.family} ${formatCidr(r.cidr)}`)).size;
      expect(trie.intervalCount).toBeLessThanOrEqual(2 * distinct + 2);
      let hits = 0;
      const scratch = new Uint32Array(4);
      for (let i = 0; i < 4000; i++) {
        const family: Family = rng.chance(0.5) ? 4 : 6;
        const probe = randomProbe(rng, rules, family);
        const expected = reference(probe);
        if (expected >= 0) hits++;
        const label = formatIp(probe);
        expect(trie.lookupIp(probe), label).toBe(expected);
        expect(restored.lookupIp(probe), label).toBe(expected);
        // The same through the text parser and a shared scratch array.
        expect(trie.lookup(parseIpInto(label, scratch) as Family, scratch), label).toBe(expected);
      }
      expect(hits).toBeGreaterThan(2000);
      for (let s = 0; s < rules.length; s++) {
        const r = rules[s]!;
        expect(formatCidr(restored.cidrOf(s))).toBe(formatCidr(r.cidr));
        expect(restored.actionOf(s)).toBe(r.action);
        expect(restored.idOf(s)).toBe(r.id);
        expect(restored.prefixOf(s)).toBe(r.cidr.prefix);
      }
    });
  }

  it('is exact at the edges of every rule network (seed 9)', () => {
    const rng = makeRng(9);
    const rules = [...randomRules(rng, 4, 400), ...randomRules(rng, 6, 400)];
    const trie = compileTrie(rules);
    const reference = bruteForceMatcher(rules);
    for (const r of rules) {
      const family = r.cidr.family;
      const first = toBig(r.cidr.words, family);
      const last = first | ((1n << BigInt(bits(family) - r.cidr.prefix)) - 1n);
      const max = topBig(family);
      for (const v of [first - 1n, first, last, last + 1n]) {
        if (v < 0n || v > max) continue;
        const probe: IpAddress = { family, words: cidrOfBig(family, v, bits(family)).words };
        expect(trie.lookupIp(probe), formatIp(probe)).toBe(reference(probe));
      }
    }
  });

  it('does not depend on input order beyond the earliest-rule tie break (seed 10)', () => {
    const rng = makeRng(10);
    const rules = randomRules(rng, 4, 1000);
    const reversed = [...rules].reverse();
    const a = compileTrie(rules);
    const b = compileTrie(reversed);
    for (let i = 0; i < 2000; i++) {
      const probe = randomProbe(rng, rules, 4);
      const sa = a.lookupIp(probe);
      const sb = b.lookupIp(probe);
      expect(sa < 0, formatIp(probe)).toBe(sb < 0);
      if (sa < 0) continue;
      expect(formatCidr(b.cidrOf(sb))).toBe(formatCidr(a.cidrOf(sa)));
      expect(b.actionOf(sb)).toBe(a.actionOf(sa));
    }
  });
});

describe('serialization', () => {
  const sample = (): CompiledTrie => compileTrie([
    rule('10.0.0.0/8', 'allow', 'entry-1'),
    rule('10.1.0.0/16', 'deny', 'règle ✓'),
    rule('10.1.0.0/16', 'allow', ''),
    rule('2001:db8::/32', 'deny', '\ufeffbom'),
    rule('2001:db8::1/128', 'allow', 'entry-1'),
  ]);

  it('round-trips to identical bytes and answers, ids included', () => {
    const trie = sample();
    const buf = trie.toBuffer();
    const back = CompiledTrie.fromBuffer(buf);
    expect(back.toBuffer().equals(buf)).toBe(true);
    expect(back.ruleCount).toBe(trie.ruleCount);
    expect(back.byteLength).toBe(trie.byteLength);
    expect(back.intervalCount).toBe(trie.intervalCount);
    expect([0, 1, 2, 3, 4].map((s) => back.idOf(s))).toEqual(['entry-1', 'règle ✓', '', '\ufeffbom', 'entry-1']);
    expect(decide(back, '10.1.2.3')).toBe('règle ✓');
    expect(decide(back, '2001:db8::1')).toBe('entry-1');
    expect(decide(back, '2001:db8::2')).toBe('\ufeffbom');
  });

  it('reads a buffer at an unaligned offset of a larger allocation', () => {
    const buf = sample().toBuffer();
    const host = Buffer.alloc(buf.length + 3);
    buf.copy(host, 3);
    const back = CompiledTrie.fromBuffer(host.subarray(3));
    expect(decide(back, '10.1.2.3')).toBe('règle ✓');
    // The trie owns its memory: later writes to the source buffer change nothing.
    host.fill(0);
    expect(decide(back, '10.1.2.3')).toBe('règle ✓');
  });

  it('refuses every truncation and any trailing byte', () => {
    const buf = sample().toBuffer();
    for (let len = 0; len < buf.length; len++) {
      expect(() => CompiledTrie.fromBuffer(buf.subarray(0, len)), `length ${len}`).toThrow(/corrupt/);
    }
    expect(() => CompiledTrie.fromBuffer(Buffer.concat([buf, Buffer.of(0)]))).toThrow(/length/);
  });

  it('refuses any single flipped bit', () => {
    const buf = sample().toBuffer();
    for (let byte = 0; byte < buf.length; byte++) {
      for (let bit = 0; bit < 8; bit += 3) {
        const bad = Buffer.from(buf);
        bad[byte]! ^= 1 << bit;
        expect(() => CompiledTrie.fromBuffer(bad), `byte ${byte} bit ${bit}`).toThrow(/corrupt/);
      }
    }
  });

  it('names a wrong magic, version or checksum', () => {
    const buf = sample().toBuffer();
    const magic = Buffer.from(buf);
    magic.write('JUNK', 0, 'latin1');
    expect(() => CompiledTrie.fromBuffer(magic)).toThrow(/magic/);
    const version = Buffer.from(buf);
    version.writeUInt32LE(1, 4);
    expect(() => CompiledTrie.fromBuffer(version)).toThrow(/version 1/);
    const payload = Buffer.from(buf);
    payload[buf.length - 1]! ^= 0x80;
    expect(() => CompiledTrie.fromBuffer(payload)).toThrow(/checksum/);
    const huge = Buffer.from(buf);
    huge.writeUInt32LE(0xffffffff, 24);
    expect(() => CompiledTrie.fromBuffer(withCrc(huge))).toThrow(/does not match/);
  });

  // Structure checks behind a valid checksum: the layout is documented in trie.ts, so these
  // offsets follow it: a 32-byte header, IPv4 intervals of 2 words (first address, slot + 1), one
  // IPv6 interval of 5 words, then the rule table.
  describe('structural validation behind a valid checksum', () => {
    const v4Only = (): Buffer => compileTrie([
      rule('10.0.0.0/8', 'allow', 'a'),
      rule('10.1.0.0/16', 'deny', 'b'),
      rule('10.2.0.0/16', 'deny', 'c'),
    ]).toBuffer();
    const interval = (i: number, word: number): number => 32 + i * 8 + word * 4;
    const rules = 32 + 6 * 8 + 20; // ruleInterval, then ruleId, then ruleMeta (u16)
    const ruleId = rules + 3 * 4;
    const ruleMeta = ruleId + 3 * 4;

    it('sanity: the offsets match the documented layout', () => {
      const buf = v4Only();
      expect(buf.readUInt32LE(24)).toBe(6); // IPv4 interval count
      expect([0, 1, 2, 3, 4, 5].map((i) => buf.readUInt32LE(interval(i, 0)))).toEqual([0, 0x0a000000, 0x0a010000, 0x0a020000, 0x0a030000, 0x0b000000]);
      expect([0, 1, 2, 3, 4, 5].map((i) => buf.readUInt32LE(interval(i, 1)))).toEqual([0, 1, 2, 3, 1, 0]);
      expect([0, 1, 2].map((r) => buf.readUInt32LE(rules + r * 4))).toEqual([1, 2, 3]);
      expect(buf.readUInt16LE(ruleMeta + 2)).toBe(16 | 0x100);
      expect(CompiledTrie.fromBuffer(withCrc(Buffer.from(buf))).ruleCount).toBe(3);
    });

    const mutations: [string, (b: Buffer) => void, RegExp][] = [
      ['a first interval not at address 0', (b) => b.writeUInt32LE(1, interval(0, 0)), /interval 0 does not start at address 0/],
      ['starts out of order', (b) => b.writeUInt32LE(0x0a000000, interval(2, 0)), /interval 2 does not start after/],
      ['neighbours with one answer', (b) => b.writeUInt32LE(1, interval(2, 1)), /interval 2 repeats the answer/],
      ['a slot past the rule count', (b) => b.writeUInt32LE(50, interval(5, 1)), /names rule 49 of 3/],
      ['an interval outside the network it names', (b) => b.writeUInt32LE(2, interval(4, 1)), /interval 4 lies outside the network of rule 1/],
      ['a network start answered by nothing', (b) => b.writeUInt32LE(0, interval(3, 1)), /without a valid rule/],
      ['a rule id past the id table', (b) => b.writeUInt32LE(7, ruleId), /names id 7/],
      ['a rule interval past the table', (b) => b.writeUInt32LE(77, rules), /names interval 77 out of range/],
      ['a rule pointed at another network', (b) => b.writeUInt32LE(2, rules), /not its network address/],
      ['unknown rule flags', (b) => { b[ruleMeta + 1]! |= 0x10; }, /unknown flags/],
      ['a prefix beyond 32', (b) => { b[ruleMeta]! = 40; }, /prefix \/40 for IPv4/],
      ['invalid UTF-8 in an id', (b) => { b[b.length - 4]! = 0xff; }, /not valid UTF-8/],
    ];
    for (const [what, mutate, message] of mutations) {
      it(`refuses ${what}`, () => {
        const bad = Buffer.from(v4Only());
        mutate(bad);
        expect(() => CompiledTrie.fromBuffer(withCrc(bad))).toThrow(message);
      });
    }

    it('refuses a shadowed rule that should have won', () => {
      // Two rules on one network: slot 1 (deny) wins; pointing the interval at slot 0 (allow) is a lie.
      const buf = compileTrie([rule('10.0.0.0/8', 'allow', 'a'), rule('10.0.0.0/8', 'deny', 'b')]).toBuffer();
      expect(buf.readUInt32LE(interval(1, 1))).toBe(2);
      buf.writeUInt32LE(1, interval(1, 1));
      expect(() => CompiledTrie.fromBuffer(withCrc(buf))).toThrow(/rule 1 should win over rule 0/);
    });

    it('any random damage behind a valid checksum either throws or leaves lookups in bounds (seed 31)', () => {
      const rng = makeRng(31);
      const rules = [...randomRules(rng, 4, 60), ...randomRules(rng, 6, 60)];
      const good = compileTrie(rules).toBuffer();
      let refused = 0;
      for (let i = 0; i < 3000; i++) {
        const bad = Buffer.from(good);
        const edits = rng.between(1, 3);
        for (let k = 0; k < edits; k++) {
          const at = 32 + rng.below(good.length - 32 - 3);
          if (rng.chance(0.5)) bad[at] = rng.below(256);
          else bad.writeUInt32LE(rng.chance(0.5) ? rng.below(300) : rng.u32(), at & ~3);
        }
        withCrc(bad);
        let trie: CompiledTrie;
        try {
          trie = CompiledTrie.fromBuffer(bad);
        } catch (error) {
          expect(error).toBeInstanceOf(Error);
          expect((error as Error).message).toMatch(/^compiled trie buffer is corrupt: /);
          refused++;
          continue;
        }
        for (let q = 0; q < 20; q++) {
          const family: Family = rng.chance(0.5) ? 4 : 6;
          const probe = randomProbe(rng, rules, family);
          const slot = trie.lookupIp(probe);
          expect(Number.isInteger(slot) && slot >= -1 && slot < trie.ruleCount).toBe(true);
          if (slot >= 0) {
            expect(typeof trie.idOf(slot)).toBe('string');
            // Damage may change which rule answers, never to one whose network misses the address.
            expect(cidrContains(trie.cidrOf(slot), probe)).toBe(true);
          }
        }
      }
      expect(refused).toBeGreaterThan(1000);
    });
  });
});
