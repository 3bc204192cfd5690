import { describe, it, expect } from 'vitest';
import ipaddr from 'ipaddr.js';
import { formatIp, parseIp } from '../../../src/ip/address.ts';
import { cidrContains, clip, formatCidr, hasHostBits, hostCidr, networkOf, parseCidr, wordMask, type Cidr } from '../../../src/ip/cidr.ts';
import { makeRng } from './prng.ts';
import { containsBig, randomAddress, randomCidr, randomInside } from './helpers.ts';

function ok(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(`expected ${text} to parse: ${parsed.error}`);
  return parsed.value;
}

function error(text: string): string {
  const parsed = parseCidr(text);
  if (parsed.ok) throw new Error(`expected ${text} to be refused`);
  return parsed.error;
}

describe('parseCidr', () => {
  const valid: [string, 4 | 6, number[], number, string][] = [
    ['10.0.0.0/8', 4, [0x0a000000], 8, '10.0.0.0/8'],
    ['0.0.0.0/0', 4, [0], 0, '0.0.0.0/0'],
    ['192.0.2.7/32', 4, [0xc0000207], 32, '192.0.2.7/32'],
    ['2001:db8::/32', 6, [0x20010db8, 0, 0, 0], 32, '2001:db8::/32'],
    ['2001:DB8:0:0::/64', 6, [0x20010db8, 0, 0, 0], 64, '2001:db8::/64'],
    ['::/0', 6, [0, 0, 0, 0], 0, '::/0'],
    ['::1/128', 6, [0, 0, 0, 1], 128, '::1/128'],
    ['::ffff:10.0.0.0/104', 4, [0x0a000000], 8, '10.0.0.0/8'],
    ['::ffff:a00:0/104', 4, [0x0a000000], 8, '10.0.0.0/8'],
    ['::ffff:0:0/96', 4, [0], 0, '0.0.0.0/0'],
    ['::ffff:192.0.2.1/128', 4, [0xc0000201], 32, '192.0.2.1/32'],
  ];
  for (const [text, family, words, prefix, formatted] of valid) {
    it(`accepts ${text}`, () => {
      const cidr = ok(text);
      expect(cidr.family).toBe(family);
      expect([...cidr.words]).toEqual(words);
      expect(cidr.prefix).toBe(prefix);
      expect(formatCidr(cidr)).toBe(formatted);
    });
  }

  it('refuses host bits and names the network and the single address', () => {
    const e = error('10.0.0.1/8');
    expect(e).toContain('host bits');
    expect(e).toContain('10.0.0.0/8');
    expect(e).toContain('10.0.0.1');
    const e6 = error('2001:db8::1/32');
    expect(e6).toContain('2001:db8::/32');
    expect(e6).toContain('2001:db8::1');
  });

  const refused: [string, string][] = [
    ['10.0.0.0', 'expected address/prefix'],
    ['10.0.0.0/33', 'out of range'],
    ['2001:db8::/129', 'out of range'],
    ['10.0.0.0/08', 'decimal'],
    ['10.0.0.0/', 'decimal'],
    ['10.0.0.0/-1', 'decimal'],
    ['10.0.0.0/ 8', 'decimal'],
    ['10.0.0.0/8/8', 'decimal'],
    // Four digits fail the syntax check, before the range check.
    ['10.0.0.0/1000', 'prefix length'],
    ['/8', 'not a valid'],
    ['010.0.0.0/8', 'not a valid'],
    ['10.0.0/24', 'not a valid'],
    ['::ffff:10.0.0.0/95', '96-128'],
    ['::ffff:10.0.0.0/8', '96-128'],
    ['fe80::/10%eth0', 'decimal'],
  ];
  for (const [text, fragment] of refused) {
    it(`refuses ${text}`, () => {
      expect(error(text)).toContain(fragment);
    });
  }

  it('clips long input quoted in errors', () => {
    const long = `${'1'.repeat(500)}/8`;
    expect(error(long).length).toBeLessThan(200);
    expect(clip('abc')).toBe('abc');
    expect(clip('x'.repeat(70))).toBe(`${'x'.repeat(64)}…`);
  });
});

describe('masks and networks', () => {
  it('wordMask per word of a prefix', () => {
    expect(wordMask(0, 0)).toBe(0);
    expect(wordMask(1, 0)).toBe(0x80000000);
    expect(wordMask(24, 0)).toBe(0xffffff00);
    expect(wordMask(32, 0)).toBe(0xffffffff);
    expect(wordMask(33, 0)).toBe(0xffffffff);
    expect(wordMask(33, 1)).toBe(0x80000000);
    expect(wordMask(64, 2)).toBe(0);
    expect(wordMask(127, 3)).toBe(0xfffffffe);
    expect(wordMask(128, 3)).toBe(0xffffffff);
  });

  it('networkOf clears host bits; hasHostBits sees them', () => {
    const ip = parseIp('2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff')!;
    expect(formatCidr(networkOf(ip, 40))).toBe('2001:db8:aa00::/40');
    expect(formatCidr(networkOf(ip, 0))).toBe('::/0');
    expect(formatCidr(networkOf(ip, 128))).toBe('2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff/128');
    expect(hasHostBits(ip.words, 127)).toBe(true);
    expect(hasHostBits(ip.words, 128)).toBe(false);
    expect(hasHostBits(networkOf(ip, 77).words, 77)).toBe(false);
    expect(formatCidr(hostCidr(parseIp('192.0.2.1')!))).toBe('192.0.2.1/32');
  });

  it('formatCidr round-trips random networks through parseCidr and ipaddr.js (seed 11)', () => {
    const rng = makeRng(11);
    for (let i = 0; i < 2000; i++) {
      const family = rng.chance(0.5) ? 4 : 6;
      const cidr = randomCidr(rng, family, 0, family === 4 ? 32 : 128);
      const text = formatCidr(cidr);
      const back = ok(text);
      expect(back.family, text).toBe(family);
      expect([...back.words], text).toEqual([...cidr.words]);
      expect(back.prefix, text).toBe(cidr.prefix);
      const [addr, prefix] = ipaddr.parseCIDR(text);
      expect(prefix, text).toBe(cidr.prefix);
      expect(addr.toString(), text).toBe(formatIp(cidr));
    }
  });

  it('cidrContains matches a BigInt reference and ipaddr.js (seed 12)', () => {
    const rng = makeRng(12);
    let inside = 0;
    for (let i = 0; i < 4000; i++) {
      const family = rng.chance(0.5) ? 4 : 6;
      const cidr = randomCidr(rng, family, 0, family === 4 ? 32 : 128);
      const ip = rng.chance(0.5) ? randomInside(rng, cidr) : randomAddress(rng, rng.chance(0.9) ? family : family === 4 ? 6 : 4);
      const expected = containsBig(cidr, ip);
      if (expected) inside++;
      expect(cidrContains(cidr, ip), `${formatIp(ip)} in ${formatCidr(cidr)}`).toBe(expected);
      if (ip.family === family) {
        const parsedIp = ipaddr.parse(formatIp(ip));
        const net = ipaddr.parse(formatIp(cidr));
        expect(parsedIp.match(net, cidr.prefix), `${formatIp(ip)} in ${formatCidr(cidr)}`).toBe(expected);
      }
    }
    expect(inside).toBeGreaterThan(1500);
  });
});
