import { describe, it, expect } from 'vitest';
import { parseEntryInto, parseForwardedEntry } from '../../../src/client-ip/entry.ts';
import { formatIp } from '../../../src/ip/address.ts';

describe('parseForwardedEntry accepts', () => {
  const accepted: [string, string, 4 | 6][] = [
    ['192.0.2.1', '192.0.2.1', 4],
    ['  192.0.2.1  ', '192.0.2.1', 4],
    ['\t192.0.2.1\t', '192.0.2.1', 4],
    ['192.0.2.1:5678', '192.0.2.1', 4],
    ['192.0.2.1:1', '192.0.2.1', 4],
    ['192.0.2.1:65535', '192.0.2.1', 4],
    [' 192.0.2.1:443 ', '192.0.2.1', 4],
    ['[2001:db8::1]:443', '2001:db8::1', 6],
    ['[2001:db8::1]', '2001:db8::1', 6],
    [' [2001:DB8::1]:8080\t', '2001:db8::1', 6],
    ['2001:db8::1', '2001:db8::1', 6],
    ['::1', '::1', 6],
    // Without brackets the last group is part of the address, not a port.
    ['2001:db8::1:443', '2001:db8::1:443', 6],
    ['::ffff:192.0.2.1', '192.0.2.1', 4],
    ['[::ffff:192.0.2.1]:80', '192.0.2.1', 4],
  ];
  it.each(accepted)('%j as %s', (text, expected, family) => {
    const ip = parseForwardedEntry(text);
    expect(ip).not.toBeNull();
    expect(formatIp(ip!)).toBe(expected);
    expect(ip!.family).toBe(family);
    expect(ip!.words.length).toBe(family === 4 ? 1 : 4);
  });
});

describe('parseForwardedEntry refuses', () => {
  const refused: [string, string][] = [
    ['empty', ''],
    ['blanks only', ' \t '],
    ['port separator without port', '192.0.2.1:'],
    ['port above 65535', '192.0.2.1:65536'],
    ['six-digit port', '192.0.2.1:000080'],
    ['non-numeric port', '192.0.2.1:8a'],
    ['signed port', '192.0.2.1:-1'],
    ['obfuscated port', '192.0.2.1:_abc'],
    ['blank before the port', '192.0.2.1 :80'],
    ['unclosed bracket', '[2001:db8::1'],
    ['bracket then separator without port', '[2001:db8::1]:'],
    ['junk after the bracket', '[2001:db8::1]x'],
    ['bracketed port above 65535', '[2001:db8::1]:99999'],
    ['doubled brackets', '[[2001:db8::1]]'],
    ['bracketed IPv4', '[192.0.2.1]'],
    ['bracketed IPv4 with port', '[192.0.2.1]:80'],
    ['empty brackets', '[]'],
    ['short IPv4', '127.1'],
    ['hex IPv4', '0x7f.0.0.1'],
    ['octal-looking IPv4', '010.0.0.1'],
    ['short IPv4 with port', '127.1:80'],
    ['zone id', 'fe80::1%eth0'],
    ['bracketed zone id', '[fe80::1%25eth0]:80'],
    ['RFC 7239 unknown', 'unknown'],
    ['RFC 7239 obfuscated identifier', '_hidden'],
    ['two addresses', '192.0.2.1 198.51.100.7'],
    ['a list', '192.0.2.1, 198.51.100.7'],
    ['host name', 'proxy.example.com'],
  ];
  it.each(refused)('%s (%j)', (_label, text) => {
    expect(parseForwardedEntry(text)).toBeNull();
  });
});

describe('parseEntryInto', () => {
  it('reads only its range of a longer text', () => {
    const text = '198.51.100.7, [2001:db8::5]:443 ,10.0.0.1';
    const out = new Uint32Array(4);
    expect(parseEntryInto(text, 0, 12, out)).toBe(4);
    expect(formatIp({ family: 4, words: out.slice(0, 1) })).toBe('198.51.100.7');
    expect(parseEntryInto(text, 13, 32, out)).toBe(6);
    expect(formatIp({ family: 6, words: out })).toBe('2001:db8::5');
    expect(parseEntryInto(text, 33, text.length, out)).toBe(4);
    expect(out[0]).toBe(0x0a000001);
  });

  it('does not look past the end of its range for a closing bracket', () => {
    expect(parseEntryInto('[2001:db8::1, x]', 0, 12, new Uint32Array(4))).toBe(0);
    expect(parseEntryInto('[2001:db8::1]', 0, 5, new Uint32Array(4))).toBe(0);
  });
});
