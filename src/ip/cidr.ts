import { bitLength, formatIp, parseIp, type Family, type IpAddress } from './address.ts';

/** A network: its first address and prefix length. Host bits of `words` are always zero. */
export interface Cidr {
  readonly family: Family;
  readonly words: Uint32Array;
  readonly prefix: number;
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const PREFIX = /^(0|[1-9][0-9]*)$/;

/** Mask for the word at `wordIndex` of a prefix, as an unsigned 32-bit value. */
export function wordMask(prefix: number, wordIndex: number): number {
  const bits = prefix - wordIndex * 32;
  if (bits >= 32) return 0xffffffff;
  if (bits <= 0) return 0;
  return (0xffffffff << (32 - bits)) >>> 0;
}

export function hasHostBits(words: ArrayLike<number>, prefix: number): boolean {
  for (let w = 0; w < words.length; w++) {
    if (((words[w]! & ~wordMask(prefix, w)) >>> 0) !== 0) return true;
  }
  return false;
}

export function networkOf(ip: IpAddress, prefix: number): Cidr {
  const words = new Uint32Array(ip.words.length);
  for (let w = 0; w < words.length; w++) words[w] = (ip.words[w]! & wordMask(prefix, w)) >>> 0;
  return { family: ip.family, words, prefix };
}

export function hostCidr(ip: IpAddress): Cidr {
  return { family: ip.family, words: ip.words.slice(), prefix: bitLength(ip.family) };
}

/**
 * `address/prefix`, strictly. A prefix written against an IPv4-mapped IPv6 address
 * (`::ffff:10.0.0.0/104`) becomes the IPv4 network it denotes.
 *
 * A CIDR with host bits set (`10.0.0.1/8`) is refused, not normalized: the person who typed it
 * may have meant the single host or the network, and silently widening a rule to a /8 is the
 * worse guess. The error names the network form so the fix is one copy-paste away.
 */
export function parseCidr(text: string): Parsed<Cidr> {
  const slash = text.indexOf('/');
  if (slash < 0) return { ok: false, error: `'${clip(text)}' is not a CIDR: expected address/prefix, e.g. 203.0.113.0/24` };
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const ip = parseIp(addrText);
  if (!ip) return { ok: false, error: `'${clip(addrText)}' is not a valid IPv4 or IPv6 address` };
  if (!PREFIX.test(prefixText)) return { ok: false, error: `prefix length '${clip(prefixText)}' must be a decimal number` };
  let prefix = Number(prefixText);
  const mapped = ip.family === 4 && addrText.includes(':');
  if (mapped) {
    if (prefix < 96 || prefix > 128) {
      return { ok: false, error: `prefix /${prefix} on IPv4-mapped address '${clip(addrText)}' must be 96-128` };
    }
    prefix -= 96;
  }
  const max = bitLength(ip.family);
  if (prefix > max) return { ok: false, error: `prefix length /${prefix} is out of range for IPv${ip.family} (0-${max})` };
  if (hasHostBits(ip.words, prefix)) {
    const network = formatCidr(networkOf(ip, prefix));
    return { ok: false, error: `'${clip(text)}' has host bits set: the network is ${network} (or use ${formatIp(ip)} for the single address)` };
  }
  return { ok: true, value: { family: ip.family, words: ip.words, prefix } };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  for (let w = 0; w < cidr.words.length; w++) {
    const mask = wordMask(cidr.prefix, w);
    if (mask === 0) return true;
    if (((ip.words[w]! & mask) >>> 0) !== cidr.words[w]) return false;
  }
  return true;
}

/**
 * Attacker- or operator-supplied text as it may be quoted back in an error message or a log:
 * shortened, with control characters escaped so a value cannot forge lines.
 */
export function clip(text: string, max = 64): string {
  const short = text.length <= max ? text : `${text.slice(0, max)}…`;
  return short.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
