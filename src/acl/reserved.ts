import { cidrContains, parseCidr, type Cidr } from '../ip/cidr.ts';

/**
 * Address space no caller's API request can legitimately come from over the internet: allowing it
 * is a typo at best, and at worst (loopback, unspecified) a door for anything that reaches the
 * gateway through a local hop. Refused in allow entries unless configured otherwise.
 */
export const DEFAULT_RESERVED: readonly string[] = [
  '0.0.0.0/8', // "this network", unspecified
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local
  '192.0.0.0/24', // IETF protocol assignments
  '192.0.2.0/24', // documentation, TEST-NET-1 (RFC 5737)
  '198.51.100.0/24', // documentation, TEST-NET-2 (RFC 5737)
  '203.0.113.0/24', // documentation, TEST-NET-3 (RFC 5737)
  '198.18.0.0/15', // benchmarking (RFC 2544)
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, and the limited broadcast address
  '::/128', // unspecified
  '::1/128', // loopback
  '100::/64', // discard-only (RFC 6666)
  '2001:2::/48', // benchmarking (RFC 5180)
  '2001:db8::/32', // documentation (RFC 3849)
  '3fff::/20', // documentation (RFC 9637)
  'fe80::/10', // link-local
  'fec0::/10', // site-local, deprecated
  'ff00::/8', // multicast
];

/** Private space: allowed by default (a sidecar often guards internal callers), refusable. */
export const PRIVATE_RANGES: readonly string[] = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10', // shared address space (carrier-grade NAT)
  'fc00::/7', // unique local
];

export interface ReservedRange {
  readonly cidr: Cidr;
  readonly text: string;
  readonly kind: 'reserved' | 'private';
}

export function compileRanges(texts: readonly string[], kind: ReservedRange['kind']): ReservedRange[] {
  return texts.map((text) => {
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new Error(`reserved range ${text}: ${parsed.error}`);
    return { cidr: parsed.value, text, kind };
  });
}

/** True when `inner` lies within `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.prefix <= inner.prefix && cidrContains(outer, inner);
}

/** Two aligned networks overlap exactly when one contains the other. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrCovers(a, b) || cidrCovers(b, a);
}
