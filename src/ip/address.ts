/**
 * Strict IP address parsing and formatting.
 *
 * An address is a family plus its bits in 32-bit words, most significant first: one word for
 * IPv4, four for IPv6. Parsing refuses every form whose meaning depends on who reads it (leading
 * zeros that some stacks read as octal, short `127.1` and hex `0x7f.0.0.1` IPv4, zone ids), so the
 * gateway, the upstream and the operator can never see two different addresses in one string.
 *
 * An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, `::ffff:a01:203`) *is* the IPv4 address: it
 * parses to family 4, so socket peers, headers, rules and lookups agree on one form.
 */

export type Family = 4 | 6;

export interface IpAddress {
  readonly family: Family;
  /** Length 1 for IPv4, 4 for IPv6; unsigned 32-bit words, most significant first. */
  readonly words: Uint32Array;
}

const CH_0 = 48;
const CH_9 = 57;
const CH_DOT = 46;
const CH_COLON = 58;

/**
 * Parses `text` into `out` (length >= 4) without allocating; returns the family, or 0 when the
 * text is not a strict address. For IPv4 only `out[0]` is written. This is the hot-path entry:
 * callers keep one scratch array per lookup site.
 */
export function parseIpInto(text: string, out: Uint32Array): Family | 0 {
  const len = text.length;
  if (len === 0 || len > 45) return 0;
  // One pass for the common case: dotted IPv4 fails within five characters on IPv6 text.
  const v4 = parseIpv4Range(text, 0, len);
  if (v4 >= 0) {
    out[0] = v4;
    return 4;
  }
  return text.includes(':') ? parseIpv6Into(text, out) : 0;
}

/** Allocating convenience form for cold paths (config, admin input). */
export function parseIp(text: string): IpAddress | null {
  const scratch = new Uint32Array(4);
  const family = parseIpInto(text, scratch);
  if (family === 0) return null;
  return { family, words: family === 4 ? scratch.slice(0, 1) : scratch };
}

/** Dotted decimal IPv4 in text[start, end) as an unsigned 32-bit value, or -1. */
function parseIpv4Range(text: string, start: number, end: number): number {
  let value = 0;
  let parts = 0;
  let i = start;
  while (parts < 4) {
    const partStart = i;
    let part = 0;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c < CH_0 || c > CH_9) break;
      part = part * 10 + (c - CH_0);
      i++;
    }
    const digits = i - partStart;
    if (digits === 0 || digits > 3 || part > 255) return -1;
    // "010" is octal to some parsers and decimal to others: refuse rather than guess.
    if (digits > 1 && text.charCodeAt(partStart) === CH_0) return -1;
    value = value * 256 + part;
    parts++;
    if (parts < 4) {
      if (i >= end || text.charCodeAt(i) !== CH_DOT) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}

/** Hex digit values by character code, -1 for anything else (codes >= 128 are never digits). */
const HEX = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let d = 0; d < 10; d++) table[CH_0 + d] = d;
  for (let d = 0; d < 6; d++) {
    table[97 + d] = 10 + d;
    table[65 + d] = 10 + d;
  }
  return table;
})();

// Groups are collected here before being packed into words; reused so parsing does not allocate.
const groups = new Uint16Array(8);

function parseIpv6Into(text: string, out: Uint32Array): Family | 0 {
  const end = text.length;
  let count = 0; // groups written so far
  let gapAt = -1; // index in groups where "::" stands
  let i = 0;
  if (text.charCodeAt(0) === CH_COLON) {
    if (text.charCodeAt(1) !== CH_COLON) return 0;
    gapAt = 0;
    i = 2;
    if (i === end) return finishIpv6(count, gapAt, out);
  }
  for (;;) {
    // One group: hex digits, or a trailing dotted IPv4 worth two groups.
    const groupStart = i;
    let value = 0;
    while (i < end) {
      const c = text.charCodeAt(i);
      const h = c < 128 ? HEX[c]! : -1;
      if (h < 0) break;
      value = (value << 4) | h;
      i++;
    }
    const digits = i - groupStart;
    if (i < end && text.charCodeAt(i) === CH_DOT) {
      if (count > 6) return 0;
      const v4 = parseIpv4Range(text, groupStart, end);
      if (v4 < 0) return 0;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      return finishIpv6(count, gapAt, out);
    }
    if (digits === 0 || digits > 4 || count >= 8) return 0;
    groups[count++] = value;
    if (i === end) return finishIpv6(count, gapAt, out);
    if (text.charCodeAt(i) !== CH_COLON) return 0; // '%' (zone id) and anything else
    i++;
    if (text.charCodeAt(i) === CH_COLON) {
      if (gapAt >= 0) return 0;
      gapAt = count;
      i++;
      if (i === end) return finishIpv6(count, gapAt, out);
    } else if (i === end) {
      return 0;
    }
  }
}

function finishIpv6(count: number, gapAt: number, out: Uint32Array): Family | 0 {
  if (gapAt < 0 ? count !== 8 : count > 7) return 0;
  if (gapAt >= 0) {
    // Open the gap: the groups after "::" move to the end, zeros fill in.
    const zeros = 8 - count;
    for (let g = count - 1; g >= gapAt; g--) groups[g + zeros] = groups[g]!;
    for (let g = gapAt; g < gapAt + zeros; g++) groups[g] = 0;
  }
  const w0 = ((groups[0]! << 16) | groups[1]!) >>> 0;
  const w1 = ((groups[2]! << 16) | groups[3]!) >>> 0;
  const w2 = ((groups[4]! << 16) | groups[5]!) >>> 0;
  const w3 = ((groups[6]! << 16) | groups[7]!) >>> 0;
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) {
    out[0] = w3;
    return 4;
  }
  out[0] = w0;
  out[1] = w1;
  out[2] = w2;
  out[3] = w3;
  return 6;
}

export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** RFC 5952 canonical text: lower case, the longest run of two or more zero groups compressed. */
export function formatIpv6(words: ArrayLike<number>): string {
  const g: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = words[w]!;
    g.push(word >>> 16, word & 0xffff);
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let s = 0; s < 8; ) {
    if (g[s] !== 0) { s++; continue; }
    let e = s;
    while (e < 8 && g[e] === 0) e++;
    if (e - s > bestLen) { bestStart = s; bestLen = e - s; }
    s = e;
  }
  const hex = (from: number, to: number): string => g.slice(from, to).map((v) => v.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

export function formatIp(ip: IpAddress): string {
  return ip.family === 4 ? formatIpv4(ip.words[0]!) : formatIpv6(ip.words);
}

export function bitLength(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  if (a.family !== b.family) return false;
  for (let i = 0; i < a.words.length; i++) if (a.words[i] !== b.words[i]) return false;
  return true;
}
