import { describe, it, expect } from 'vitest';
import ipaddr from 'ipaddr.js';
import { bitLength, formatIp, formatIpv4, formatIpv6, ipEquals, parseIp, parseIpInto, type IpAddress } from '../../../src/ip/address.ts';
import { makeRng, type Rng } from './prng.ts';
import { randomAddress } from './helpers.ts';

function words(ip: IpAddress | null): number[] | null {
  return ip ? [...ip.words] : null;
}

/** The address's 16-bit groups as the parser should see them, for building text forms. */
function groupsOf(ip: IpAddress): number[] {
  const g: number[] = [];
  for (const w of ip.words) g.push(w >>> 16, w & 0xffff);
  return g;
}

/** ipaddr.js's view of a valid address: family and bytes, with mapped IPv6 folded to IPv4. */
function oracle(text: string): { family: 4 | 6; bytes: number[] } {
  const parsed = ipaddr.process(text);
  return { family: parsed.kind() === 'ipv4' ? 4 : 6, bytes: parsed.toByteArray() };
}

function bytesOf(ip: IpAddress): number[] {
  const out: number[] = [];
  for (const w of ip.words) out.push(w >>> 24, (w >>> 16) & 255, (w >>> 8) & 255, w & 255);
  return out;
}

/** A random spelling of an IPv6 address: optional zero padding, case, and "::" at any zero run. */
function randomSpelling(rng: Rng, ip: IpAddress): string {
  const g = groupsOf(ip);
  const parts = g.map((v) => {
    let s = v.toString(16);
    if (rng.chance(0.3)) s = s.padStart(rng.between(s.length, 4), '0');
    return rng.chance(0.3) ? s.toUpperCase() : s;
  });
  const runs: [number, number][] = [];
  for (let s = 0; s < 8; ) {
    if (g[s] !== 0) { s++; continue; }
    let e = s;
    while (e < 8 && g[e] === 0) e++;
    runs.push([s, e]);
    s = e;
  }
  if (runs.length === 0 || rng.chance(0.25)) return parts.join(':');
  const [start, end] = rng.pick(runs);
  // Compress any non-empty part of the run, not necessarily all of it.
  const from = rng.between(start, end - 1);
  const to = rng.between(from + 1, end);
  return `${parts.slice(0, from).join(':')}::${parts.slice(to).join(':')}`;
}

describe('parseIp refusals', () => {
  const refused = [
    ['octal-looking IPv4 octet', '010.1.1.1'],
    ['leading zero in the last octet', '10.1.1.01'],
    ['short IPv4', '127.1'],
    ['three-part IPv4', '10.1.2'],
    ['hex IPv4', '0x7f.0.0.1'],
    ['single-number IPv4', '2130706433'],
    ['octet above 255', '256.1.1.1'],
    ['five parts', '1.2.3.4.5'],
    ['empty octet', '1..2.3'],
    ['trailing dot', '1.2.3.4.'],
    ['leading dot', '.1.2.3.4'],
    ['surrounding whitespace', ' 1.2.3.4'],
    ['trailing whitespace', '1.2.3.4 '],
    ['sign', '+1.2.3.4'],
    ['empty', ''],
    ['zone id (name)', 'fe80::1%eth0'],
    ['zone id (number)', 'fe80::1%1'],
    ['brackets', '[::1]'],
    ['brackets with port', '[2001:db8::1]:443'],
    ['triple colon', '1:::2'],
    ['leading triple colon', ':::1'],
    ['two gaps', '1::2::3'],
    ['too many groups', '1:2:3:4:5:6:7:8:9'],
    ['gap plus eight groups', '1:2:3:4:5:6:7::8'],
    ['gap plus eight groups, leading', '::1:2:3:4:5:6:7:8'],
    ['too few groups', '1:2:3:4:5:6:7'],
    ['group of five digits', '12345::'],
    ['single leading colon', ':1:2:3:4:5:6:7'],
    ['single trailing colon', '1:2:3:4:5:6:7:'],
    ['non-hex digit', 'g::1'],
    ['embedded IPv4 not last', '::1.2.3.4:1'],
    ['embedded IPv4 with too many groups', '1:2:3:4:5:6:7:1.2.3.4'],
    ['embedded IPv4 with a leading zero', '::ffff:010.1.1.1'],
    ['embedded short IPv4', '::ffff:127.1'],
    ['IPv4 before the groups', '1.2.3.4::'],
    ['longer than any address', '0000:0000:0000:0000:0000:0000:0000:0000:0000'],
  ] as const;
  for (const [why, text] of refused) {
    it(`refuses ${why}: ${JSON.stringify(text)}`, () => {
      expect(parseIp(text)).toBeNull();
      expect(parseIpInto(text, new Uint32Array(4))).toBe(0);
    });
  }
});

describe('parseIp acceptance', () => {
  const accepted: [string, 4 | 6, number[], string][] = [
    ['0.0.0.0', 4, [0], '0.0.0.0'],
    ['255.255.255.255', 4, [0xffffffff], '255.255.255.255'],
    ['10.0.0.1', 4, [0x0a000001], '10.0.0.1'],
    ['::', 6, [0, 0, 0, 0], '::'],
    ['::1', 6, [0, 0, 0, 1], '::1'],
    ['1::', 6, [0x00010000, 0, 0, 0], '1::'],
    ['2001:db8::1', 6, [0x20010db8, 0, 0, 1], '2001:db8::1'],
    ['2001:DB8::A', 6, [0x20010db8, 0, 0, 0xa], '2001:db8::a'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', 6, [0x20010db8, 0, 0, 1], '2001:db8::1'],
    ['1:2:3:4:5:6:7::', 6, [0x00010002, 0x00030004, 0x00050006, 0x00070000], '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', 6, [0x00000002, 0x00030004, 0x00050006, 0x00070008], '0:2:3:4:5:6:7:8'],
    ['64:ff9b::192.0.2.33', 6, [0x0064ff9b, 0, 0, 0xc0000221], '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:1.2.3.4', 6, [0x00010002, 0x00030004, 0x00050006, 0x01020304], '1:2:3:4:5:6:102:304'],
    // IPv4-compatible (deprecated, not mapped) stays IPv6.
    ['::1.2.3.4', 6, [0, 0, 0, 0x01020304], '::102:304'],
    ['::ffff:10.1.2.3', 4, [0x0a010203], '10.1.2.3'],
    ['::ffff:a01:203', 4, [0x0a010203], '10.1.2.3'],
    ['::FFFF:A01:203', 4, [0x0a010203], '10.1.2.3'],
    ['0:0:0:0:0:ffff:10.1.2.3', 4, [0x0a010203], '10.1.2.3'],
    ['0000:0000:0000:0000:0000:ffff:0a01:0203', 4, [0x0a010203], '10.1.2.3'],
    ['::ffff:0.0.0.0', 4, [0], '0.0.0.0'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', 6, [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  for (const [text, family, expected, formatted] of accepted) {
    it(`accepts ${text}`, () => {
      const ip = parseIp(text);
      expect(ip?.family).toBe(family);
      expect(words(ip)).toEqual(expected);
      expect(ip!.words.length).toBe(family === 4 ? 1 : 4);
      expect(formatIp(ip!)).toBe(formatted);
    });
  }

  it('parseIpInto writes the same words into a reused scratch array', () => {
    const scratch = new Uint32Array(4);
    expect(parseIpInto('2001:db8::7', scratch)).toBe(6);
    expect([...scratch]).toEqual([0x20010db8, 0, 0, 7]);
    expect(parseIpInto('192.0.2.1', scratch)).toBe(4);
    expect(scratch[0]).toBe(0xc0000201);
    expect(parseIpInto('::ffff:192.0.2.9', scratch)).toBe(4);
    expect(scratch[0]).toBe(0xc0000209);
    expect(parseIpInto('nope', scratch)).toBe(0);
  });
});

describe('RFC 5952 formatting', () => {
  const cases: [string, string][] = [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // equal runs: the first is compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['2001:DB8:0:0:0:0:0:ABCD', '2001:db8::abcd'],
    ['2001:0db8:00ff:0000:0000:0000:0001:0010', '2001:db8:ff::1:10'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
  ];
  for (const [input, expected] of cases) {
    it(`${input} -> ${expected}`, () => {
      const ip = parseIp(input)!;
      expect(formatIpv6(ip.words)).toBe(expected);
      expect(formatIp(ip)).toBe(expected);
    });
  }

  it('formats IPv4 as plain dotted decimal', () => {
    expect(formatIpv4(0)).toBe('0.0.0.0');
    expect(formatIpv4(0xffffffff)).toBe('255.255.255.255');
    expect(formatIpv4(0xc0a8010a)).toBe('192.168.1.10');
  });
});

describe('parseIp against ipaddr.js on random addresses', () => {
  it('agrees on random IPv4 addresses and round-trips their text (seed 101)', () => {
    const rng = makeRng(101);
    for (let i = 0; i < 3000; i++) {
      const ip = randomAddress(rng, 4);
      const text = formatIp(ip);
      const parsed = parseIp(text);
      expect(parsed, text).not.toBeNull();
      expect(ipEquals(parsed!, ip), text).toBe(true);
      expect(oracle(text), text).toEqual({ family: 4, bytes: bytesOf(ip) });
      expect(ipaddr.IPv4.parse(text).toString()).toBe(text);
    }
  });

  it('agrees on random IPv6 addresses in many spellings (seed 202)', () => {
    const rng = makeRng(202);
    for (let i = 0; i < 3000; i++) {
      const ip = randomAddress(rng, 6);
      const canonical = formatIp(ip);
      expect(ipaddr.IPv6.parse(canonical).toRFC5952String(), 'canonical text').toBe(canonical);
      for (let k = 0; k < 4; k++) {
        const text = randomSpelling(rng, ip);
        const parsed = parseIp(text);
        expect(parsed, text).not.toBeNull();
        expect(ipEquals(parsed!, ip), text).toBe(true);
        expect(formatIp(parsed!), text).toBe(canonical);
        expect(oracle(text), text).toEqual({ family: 6, bytes: bytesOf(ip) });
      }
    }
  });

  it('folds random IPv4-mapped addresses in hex and dotted form to IPv4 (seed 303)', () => {
    const rng = makeRng(303);
    for (let i = 0; i < 1000; i++) {
      const v4 = rng.u32();
      const dotted = formatIpv4(v4);
      const hex = `::ffff:${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
      for (const text of [`::ffff:${dotted}`, hex, hex.toUpperCase(), `0:0:0:0:0:ffff:${dotted}`]) {
        const parsed = parseIp(text);
        expect(parsed?.family, text).toBe(4);
        expect(parsed!.words[0], text).toBe(v4);
        expect(oracle(text), text).toEqual({ family: 4, bytes: bytesOf({ family: 4, words: Uint32Array.of(v4) }) });
      }
    }
  });

  it('never accepts a string ipaddr.js rejects, and reads accepted ones the same way (seed 404)', () => {
    // Short strings over the address alphabet hit the edge cases (gaps, empty groups, stray dots)
    // far more often than random bytes would.
    const rng = makeRng(404);
    const alphabet = ['0', '1', '9', 'a', 'F', ':', ':', '.', '.', '25', '255', 'ffff', '::'];
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      let text = '';
      const len = rng.between(1, 14);
      for (let k = 0; k < len; k++) text += rng.pick(alphabet);
      const parsed = parseIp(text);
      if (!parsed) continue;
      accepted++;
      expect(ipaddr.isValid(text), text).toBe(true);
      // ipaddr.js treats "::a.b.c.d" as mapped; the parser follows RFC 4291 (IPv4-compatible).
      if (/^::[0-9.]+$/.test(text)) continue;
      expect(oracle(text), text).toEqual({ family: parsed.family, bytes: bytesOf(parsed) });
    }
    expect(accepted).toBeGreaterThan(200);
  });
});

describe('helpers', () => {
  it('bitLength and ipEquals', () => {
    expect(bitLength(4)).toBe(32);
    expect(bitLength(6)).toBe(128);
    expect(ipEquals(parseIp('10.0.0.1')!, parseIp('::ffff:10.0.0.1')!)).toBe(true);
    expect(ipEquals(parseIp('10.0.0.1')!, parseIp('10.0.0.2')!)).toBe(false);
    expect(ipEquals(parseIp('::1')!, parseIp('0.0.0.1')!)).toBe(false);
    expect(ipEquals(parseIp('::1')!, parseIp('0::0:1')!)).toBe(true);
  });
});
