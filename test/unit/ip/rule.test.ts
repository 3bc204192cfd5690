import { describe, it, expect } from 'vitest';
import { formatCidr } from '../../../src/ip/cidr.ts';
import { formatRuleCidrs, parseRule, RULE_FORMS } from '../../../src/ip/rule.ts';
import { makeRng } from './prng.ts';
import { address, randomCidr } from './helpers.ts';

function cidrsOf(text: string): string[] {
  const parsed = parseRule(text);
  if (!parsed.ok) throw new Error(`expected ${JSON.stringify(text)} to parse: ${parsed.error}`);
  return formatRuleCidrs(parsed.value.cidrs);
}

function errorOf(text: string): string {
  const parsed = parseRule(text);
  if (parsed.ok) throw new Error(`expected ${JSON.stringify(text)} to be refused, got ${formatRuleCidrs(parsed.value.cidrs).join(' ')}`);
  return parsed.error;
}

describe('parseRule: accepted forms', () => {
  it('single addresses become host networks', () => {
    expect(cidrsOf('192.0.2.7')).toEqual(['192.0.2.7/32']);
    expect(cidrsOf('2001:DB8::7')).toEqual(['2001:db8::7/128']);
    expect(cidrsOf('::ffff:192.0.2.7')).toEqual(['192.0.2.7/32']);
  });

  it('CIDRs in both families', () => {
    expect(cidrsOf('203.0.113.0/24')).toEqual(['203.0.113.0/24']);
    expect(cidrsOf('0.0.0.0/0')).toEqual(['0.0.0.0/0']);
    expect(cidrsOf('2001:db8::/32')).toEqual(['2001:db8::/32']);
    expect(cidrsOf('2001:0DB8:0000::/48')).toEqual(['2001:db8::/48']);
    expect(cidrsOf('::ffff:10.0.0.0/104')).toEqual(['10.0.0.0/8']);
  });

  it('IPv4 netmasks, contiguous only', () => {
    expect(cidrsOf('192.168.0.0/255.255.255.0')).toEqual(['192.168.0.0/24']);
    expect(cidrsOf('10.0.0.0/255.0.0.0')).toEqual(['10.0.0.0/8']);
    expect(cidrsOf('0.0.0.0/0.0.0.0')).toEqual(['0.0.0.0/0']);
    expect(cidrsOf('192.0.2.1/255.255.255.255')).toEqual(['192.0.2.1/32']);
    expect(cidrsOf('172.16.0.0/255.240.0.0')).toEqual(['172.16.0.0/12']);
    expect(cidrsOf('128.0.0.0/128.0.0.0')).toEqual(['128.0.0.0/1']);
  });

  it('every contiguous netmask maps to its prefix length', () => {
    for (let prefix = 0; prefix <= 32; prefix++) {
      const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
      const text = `0.0.0.0/${mask >>> 24}.${(mask >>> 16) & 255}.${(mask >>> 8) & 255}.${mask & 255}`;
      expect(cidrsOf(text), text).toEqual([`0.0.0.0/${prefix}`]);
    }
  });

  it('full dash ranges, spaces optional, both families', () => {
    const expected = [
      '192.168.0.10/31', '192.168.0.12/30', '192.168.0.16/28', '192.168.0.32/27', '192.168.0.64/26',
      '192.168.0.128/25', '192.168.1.0/24', '192.168.2.0/23', '192.168.4.0/22', '192.168.8.0/23',
      '192.168.10.0/28', '192.168.10.16/30', '192.168.10.20/32',
    ];
    expect(cidrsOf('192.168.0.10 - 192.168.10.20')).toEqual(expected);
    expect(cidrsOf('192.168.0.10-192.168.10.20')).toEqual(expected);
    expect(cidrsOf('  192.168.0.10 -192.168.10.20\t')).toEqual(expected);
    expect(cidrsOf('10.0.0.0 - 10.0.0.255')).toEqual(['10.0.0.0/24']);
    expect(cidrsOf('10.0.0.5 - 10.0.0.5')).toEqual(['10.0.0.5/32']);
    expect(cidrsOf('2001:db8::1 - 2001:db8::ff')).toEqual([
      '2001:db8::1/128', '2001:db8::2/127', '2001:db8::4/126', '2001:db8::8/125',
      '2001:db8::10/124', '2001:db8::20/123', '2001:db8::40/122', '2001:db8::80/121',
    ]);
    expect(cidrsOf('2001:db8::-2001:db8::ffff')).toEqual(['2001:db8::/112']);
    expect(cidrsOf('::ffff:10.0.0.0 - 10.0.0.3')).toEqual(['10.0.0.0/30']);
  });

  it('short ranges on the last octet', () => {
    expect(cidrsOf('192.168.10.10-20')).toEqual(['192.168.10.10/31', '192.168.10.12/30', '192.168.10.16/30', '192.168.10.20/32']);
    expect(cidrsOf('192.168.10.10 - 20')).toEqual(cidrsOf('192.168.10.10-20'));
    expect(cidrsOf('192.168.10.0-255')).toEqual(['192.168.10.0/24']);
    expect(cidrsOf('192.168.10.7-7')).toEqual(['192.168.10.7/32']);
  });

  it('keeps the input without surrounding whitespace', () => {
    const parsed = parseRule('  10.0.0.1 - 10.0.0.2 \n');
    expect(parsed.ok && parsed.value.input).toBe('10.0.0.1 - 10.0.0.2');
  });

  it('normalizes random ranges written in the full and short forms to the same minimal CIDRs (seed 5)', () => {
    const rng = makeRng(5);
    for (let i = 0; i < 500; i++) {
      const base = rng.u32() & 0xffffff00;
      const lo = rng.below(256);
      const hi = rng.between(lo, 255);
      const start = address(4, BigInt(base + lo));
      const end = address(4, BigInt(base + hi));
      const fmt = (v: number): string => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
      const full = cidrsOf(`${fmt(start.words[0]!)} - ${fmt(end.words[0]!)}`);
      expect(cidrsOf(`${fmt(start.words[0]!)}-${hi}`)).toEqual(full);
      // The blocks add up to the range (range.test.ts checks exactness and minimality in depth).
      const sizes = full.map((c) => 2 ** (32 - Number(c.split('/')[1])));
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(hi - lo + 1);
    }
  });

  it('a CIDR written any way parses to itself (seed 6)', () => {
    const rng = makeRng(6);
    for (let i = 0; i < 1000; i++) {
      const family = rng.chance(0.5) ? 4 : 6;
      const cidr = randomCidr(rng, family, 0, family === 4 ? 32 : 128);
      const text = formatCidr(cidr);
      expect(cidrsOf(text)).toEqual([text]);
      if (cidr.prefix === (family === 4 ? 32 : 128)) {
        expect(cidrsOf(text.split('/')[0]!)).toEqual([text]);
      }
    }
  });
});

describe('parseRule: errors say what was expected', () => {
  const cases: [string, string, string[]][] = [
    ['empty', '', ['empty', '203.0.113.0/24', '203.0.113.10-20']],
    ['only whitespace', '   ', ['empty']],
    ['garbage', 'example.com', ['not a valid', '203.0.113.7', '2001:db8::/48', '255.255.255.0', '203.0.113.10 - 203.0.113.20', '203.0.113.10-20']],
    ['short IPv4', '127.1', ['not a valid', '203.0.113.0/24']],
    ['octal-looking octet', '010.0.0.1', ['not a valid']],
    ['zone id', 'fe80::1%eth0', ['not a valid']],
    ['brackets', '[2001:db8::1]', ['not a valid']],
    ['host bits in a CIDR', '10.0.0.1/8', ['host bits', '10.0.0.0/8', '10.0.0.1']],
    ['host bits in an IPv6 CIDR', '2001:db8::1/32', ['host bits', '2001:db8::/32']],
    ['prefix too long', '10.0.0.0/33', ['out of range', '0-32']],
    ['IPv6 prefix too long', '2001:db8::/129', ['out of range', '0-128']],
    ['prefix not decimal', '10.0.0.0/x', ['decimal', '203.0.113.0/24', '255.255.255.0']],
    ['prefix with leading zero', '10.0.0.0/08', ['decimal']],
    ['empty prefix', '10.0.0.0/', ['decimal']],
    ['space before slash', '10.0.0.0 /24', ['not a valid']],
    ['bad CIDR address', '10.0.0/24', ['not a valid', '203.0.113.0/24']],
    ['mapped prefix too short', '::ffff:10.0.0.0/8', ['96-128']],
    ['non-contiguous netmask', '10.0.0.0/255.0.255.0', ['not contiguous', '255.255.255.0', '/24']],
    ['netmask with a hole at the end', '10.0.0.0/255.255.255.253', ['not contiguous']],
    ['netmask host bits', '192.168.0.1/255.255.255.0', ['host bits', '192.168.0.0/255.255.255.0', '192.168.0.0/24', '192.168.0.1']],
    ['invalid netmask', '10.0.0.0/255.255.0', ['not a dotted IPv4 netmask', '255.255.255.0']],
    ['netmask on IPv6', '2001:db8::/ffff:ffff::', ['IPv6', 'prefix length', '2001:db8::/48']],
    ['dotted netmask on IPv6', '2001:db8::/255.255.0.0', ['IPv6']],
    ['netmask on a mapped address', '::ffff:10.0.0.0/255.0.0.0', ['dotted IPv4 address']],
    ['range without end', '10.0.0.1 -', ['missing a range end']],
    ['range without start', '- 10.0.0.1', ['missing a range start']],
    ['two dashes', '10.0.0.1 - 10.0.0.2 - 10.0.0.3', ["more than one '-'", '203.0.113.10 - 203.0.113.20']],
    ['bad range start', '10.0.0 - 10.0.0.9', ['range start', 'not a valid', '203.0.113.10 - 203.0.113.20']],
    ['bad range end', '10.0.0.1 - 10.0.0', ['range end', 'not a valid']],
    ['CIDR in a range', '10.0.0.0/24 - 10.0.1.0/24', ['range start', 'not a valid']],
    ['mixed families', '10.0.0.1 - 2001:db8::1', ['mixes IPv4 and IPv6', 'same family']],
    ['mixed families, v6 first', '::1 - 10.0.0.1', ['mixes IPv6 and IPv4']],
    ['reversed range', '10.0.0.9 - 10.0.0.1', ['runs backwards', '10.0.0.1 - 10.0.0.9']],
    ['reversed IPv6 range', '2001:db8::9 - 2001:db8::1', ['runs backwards', '2001:db8::1 - 2001:db8::9']],
    ['IPv6 range over the IPv4-mapped block', '::fffe:ffff:ffff - ::1:0:0:0', ['spans the IPv4-mapped block ::ffff:0:0/96', 'every IPv4 address']],
    ['IPv6 range from :: to the top', ':: - ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', ['spans the IPv4-mapped block']],
    ['reversed short range', '192.168.10.20-10', ['runs backwards', '10', '20']],
    ['short range above 255', '192.168.10.10-256', ['0-255']],
    ['short range with leading zero', '192.168.10.10-020', ['leading zeros']],
    ['short range on IPv6', '2001:db8::1-20', ['dotted IPv4 start', '2001:db8::1 - 2001:db8::ff']],
    ['short range on a mapped start', '::ffff:10.0.0.1-20', ['dotted IPv4 start']],
    ['short range of two octets', '192.168.10.10-11.20', ['range end', 'not a valid']],
  ];
  for (const [why, text, fragments] of cases) {
    it(`${why}: ${JSON.stringify(text)}`, () => {
      const error = errorOf(text);
      for (const fragment of fragments) expect(error).toContain(fragment);
    });
  }

  it('the forms help text names every form with an example', () => {
    for (const example of ['203.0.113.7', '2001:db8::1', '203.0.113.0/24', '2001:db8::/48', '203.0.113.0/255.255.255.0',
      '203.0.113.10 - 203.0.113.20', '2001:db8::1 - 2001:db8::ff', '203.0.113.10-20']) {
      expect(RULE_FORMS).toContain(example);
      expect(parseRule(example).ok, example).toBe(true);
    }
  });

  it('quotes long garbage clipped', () => {
    expect(errorOf('x'.repeat(1000)).length).toBeLessThan(600);
  });
});
