import type { Family, IpAddress } from '../../../src/ip/address.ts';
import type { Cidr } from '../../../src/ip/cidr.ts';
import type { TrieRule } from '../../../src/ip/trie.ts';
import type { Rng } from './prng.ts';

/** Reference arithmetic on whole addresses, deliberately independent of the word-level code. */
export function toBig(words: ArrayLike<number>, family: Family): bigint {
  let v = 0n;
  for (let w = 0; w < (family === 4 ? 1 : 4); w++) v = (v << 32n) | BigInt(words[w]! >>> 0);
  return v;
}

export function fromBig(value: bigint, family: Family): Uint32Array {
  const n = family === 4 ? 1 : 4;
  const words = new Uint32Array(n);
  for (let w = n - 1; w >= 0; w--) {
    words[w] = Number(value & 0xffffffffn);
    value >>= 32n;
  }
  return words;
}

export function bits(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** The highest address of the family as a number: all bits set. */
export function topBig(family: Family): bigint {
  return (1n << BigInt(bits(family))) - 1n;
}

export function address(family: Family, value: bigint): IpAddress {
  return { family, words: fromBig(value, family) };
}

export function randomWords(rng: Rng, family: Family): Uint32Array {
  if (family === 4) return Uint32Array.of(rng.u32());
  const words = Uint32Array.of(rng.u32(), rng.u32(), rng.u32(), rng.u32());
  // Real IPv6 addresses are full of zero groups; make runs of them common so compression is exercised.
  if (rng.chance(0.6)) {
    const groups = new Uint16Array(8);
    for (let g = 0; g < 8; g++) groups[g] = rng.chance(0.45) ? 0 : rng.chance(0.3) ? rng.below(16) : rng.below(0x10000);
    for (let w = 0; w < 4; w++) words[w] = groups[2 * w]! * 0x10000 + groups[2 * w + 1]!;
  }
  // The mapped range parses as IPv4, so a random "IPv6" address must avoid it.
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) words[2] = 0xfffe;
  return words;
}

export function randomAddress(rng: Rng, family: Family): IpAddress {
  return { family, words: randomWords(rng, family) };
}

export function cidrOfBig(family: Family, network: bigint, prefix: number): Cidr {
  return { family, words: fromBig(network, family), prefix };
}

export function maskBig(family: Family, prefix: number): bigint {
  const total = BigInt(bits(family));
  const all = (1n << total) - 1n;
  return (all >> BigInt(prefix)) ^ all;
}

export function randomCidr(rng: Rng, family: Family, minPrefix: number, maxPrefix: number): Cidr {
  const prefix = rng.between(minPrefix, maxPrefix);
  const value = toBig(randomWords(rng, family), family) & maskBig(family, prefix);
  return cidrOfBig(family, value, prefix);
}

/** A uniformly random address inside `cidr`. */
export function randomInside(rng: Rng, cidr: Cidr): IpAddress {
  const host = toBig(randomWords(rng, cidr.family), cidr.family) & ~maskBig(cidr.family, cidr.prefix);
  return address(cidr.family, toBig(cidr.words, cidr.family) | host);
}

export function containsBig(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  const mask = maskBig(cidr.family, cidr.prefix);
  return (toBig(ip.words, ip.family) & mask) === toBig(cidr.words, cidr.family);
}

/**
 * The specified semantics, spelled out as a linear scan: longest prefix, then deny over allow,
 * then the earliest rule. Networks are precomputed as BigInts so thousands of scans stay quick.
 */
export function bruteForceMatcher(rules: readonly TrieRule[]): (ip: IpAddress) => number {
  const nets = rules.map((r) => toBig(r.cidr.words, r.cidr.family));
  const masks = rules.map((r) => maskBig(r.cidr.family, r.cidr.prefix));
  return (ip) => {
    const value = toBig(ip.words, ip.family);
    let best = -1;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (rule.cidr.family !== ip.family || (value & masks[i]!) !== nets[i]) continue;
      if (best < 0) { best = i; continue; }
      const current = rules[best]!;
      if (rule.cidr.prefix > current.cidr.prefix) best = i;
      else if (rule.cidr.prefix === current.cidr.prefix && rule.action === 'deny' && current.action === 'allow') best = i;
    }
    return best;
  };
}
