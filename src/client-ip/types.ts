import type { Refusal } from '../http/refusal.ts';
import type { IpAddress } from '../ip/address.ts';
import type { Cidr } from '../ip/cidr.ts';

/**
 * Whom the gateway believes about the client's address.
 *
 * - `none`: the TCP peer is the client; forwarding headers are never read.
 * - `list`: peers and forwarded entries inside these networks are proxies (`trustedProxies`).
 * - `hops`: exactly this many proxies (0-16) stand in front of the gateway, counting the peer
 *   (`trustedHops`); use it when the proxies' addresses are not stable enough to list.
 */
export type TrustSetting =
  | { readonly mode: 'none' }
  | { readonly mode: 'list'; readonly proxies: readonly Cidr[] }
  | { readonly mode: 'hops'; readonly hops: number };

export type ForwardedSource = 'x-forwarded-for' | 'forwarded' | 'x-real-ip';

export interface ClientIpConfig {
  readonly trust: TrustSetting;
  readonly source: ForwardedSource;
  /** Forwarded entries accepted across all lines of the header (32 by default); more are refused. */
  readonly maxEntries: number;
}

export type ClientIpResult =
  /**
   * `fromHeader` is true exactly when the peer was trusted and the client came from its header;
   * `via` then names the trusted proxies the walk passed between the client and the peer
   * (canonical, comma-separated, left to right), null when there were none.
   */
  | { readonly ok: true; readonly ip: IpAddress; readonly fromHeader: boolean; readonly via: string | null }
  | { readonly ok: false; readonly refusal: Refusal };

/** `peer` is the socket's remote address; `rawHeaders` alternates names and values. */
export type ClientIpResolver = (peer: string | undefined, rawHeaders: readonly string[]) => ClientIpResult;
