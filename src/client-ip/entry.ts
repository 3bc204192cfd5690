/**
 * One address as proxies write it into a forwarding header: surrounding spaces, an optional
 * port, brackets around IPv6. Everything that decides what the address *is* stays with the strict
 * address parser, so `127.1`, `0x7f.0.0.1` or `fe80::1%eth0` are refused here too.
 */

import { parseIpInto, type Family, type IpAddress } from '../ip/address.ts';

const SP = 32;
const HTAB = 9;
const COLON = 58;
const LBRACKET = 91;
const RBRACKET = 93;
const CH_0 = 48;
const CH_9 = 57;

export function isBlank(c: number): boolean {
  return c === SP || c === HTAB;
}

/**
 * Parses the entry in text[start, end) into `out` (length >= 4) and returns its family, or 0
 * when it is not an address. Slices a substring only when the entry is not the whole text.
 *
 * Forms: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`.
 * Two or more colons without brackets are one IPv6 address: reading a port off the end of
 * `2001:db8::1:443` would be a guess, so none is attempted.
 */
export function parseEntryInto(text: string, start: number, end: number, out: Uint32Array): Family | 0 {
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  if (start === end) return 0;

  if (text.charCodeAt(start) === LBRACKET) {
    let close = start + 1;
    while (close < end && text.charCodeAt(close) !== RBRACKET) close++;
    if (close === end) return 0;
    if (close + 1 < end && (text.charCodeAt(close + 1) !== COLON || !isPort(text, close + 2, end))) return 0;
    // Brackets exist to set an IPv6 address apart from its port; `[192.0.2.1]` is no standard
    // spelling, and accepting it would only widen what an attacker can feed the parser.
    if (indexOfColon(text, start + 1, close) < 0) return 0;
    return parseRange(text, start + 1, close, out);
  }

  const colon = indexOfColon(text, start, end);
  if (colon >= 0 && indexOfColon(text, colon + 1, end) < 0) {
    if (!isPort(text, colon + 1, end)) return 0;
    return parseRange(text, start, colon, out);
  }
  return parseRange(text, start, end, out);
}

/** Allocating convenience form of {@link parseEntryInto} for a whole string. */
export function parseForwardedEntry(text: string): IpAddress | null {
  const scratch = new Uint32Array(4);
  const family = parseEntryInto(text, 0, text.length, scratch);
  if (family === 0) return null;
  return { family, words: family === 4 ? scratch.slice(0, 1) : scratch };
}

function parseRange(text: string, start: number, end: number, out: Uint32Array): Family | 0 {
  return parseIpInto(start === 0 && end === text.length ? text : text.slice(start, end), out);
}

function indexOfColon(text: string, start: number, end: number): number {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) === COLON) return i;
  return -1;
}

/** 1-5 decimal digits, at most 65535. */
function isPort(text: string, start: number, end: number): boolean {
  const digits = end - start;
  if (digits < 1 || digits > 5) return false;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < CH_0 || c > CH_9) return false;
    value = value * 10 + (c - CH_0);
  }
  return value <= 65535;
}
