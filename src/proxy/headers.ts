/**
 * Header rewriting between caller and upstream. Hop-by-hop headers describe one connection and
 * must not cross the proxy (RFC 9110 §7.6.1); forwarding headers are rebuilt by the gateway so
 * the upstream sees the client the gateway checked, never a client's own claim.
 */

import { HeaderNameSet, isHeaderName } from '../http/header-name.ts';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
  // The gateway's own server already answered `Expect: 100-continue` to the caller.
  'expect',
]);

/** Forwarding headers the gateway sets itself; a caller's copies are dropped or extended. */
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'forwarded', 'x-real-ip']);

/** Every name the request rewrite treats specially; all other headers pass as they are. */
const SPECIAL = new HeaderNameSet([...HOP_BY_HOP, ...FORWARDING, 'host']);

export interface ForwardingFacts {
  /** The TCP peer, canonical text. */
  readonly peer: string;
  /** True when the peer is a trusted proxy, so its forwarding headers are kept and extended. */
  readonly peerTrusted: boolean;
  readonly requestId: string;
  /** Set to replace the Host header with the upstream's own. */
  readonly upstreamHost: string | null;
}

/** Names listed in a Connection header are hop-by-hop for that message too. */
function connectionTokens(rawHeaders: readonly string[]): Set<string> | null {
  let tokens: Set<string> | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!isHeaderName(rawHeaders[i]!, 'connection')) continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const name = token.trim().toLowerCase();
      // `keep-alive` and `close` (the usual values) add nothing to drop beyond HOP_BY_HOP.
      if (name && name !== 'close' && !HOP_BY_HOP.has(name)) (tokens ??= new Set()).add(name);
    }
  }
  return tokens;
}

/**
 * The request headers for the upstream, as a flat [name, value, ...] list (order and repeats
 * kept). X-Forwarded-For gets the peer appended when the peer is trusted (the chain it vouches
 * for stays intact) and is reset to the peer otherwise (a caller's own entries are not passed on).
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], facts: ForwardingFacts): string[] {
  const dropAlso = connectionTokens(rawHeaders);
  const out: string[] = [];
  let xff: string | null = null;
  let proto: string | null = null;
  let forwardedHost: string | null = null;
  let host: string | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    // Names listed in Connection are rare, so only then is a lower-cased copy made.
    if (dropAlso !== null && dropAlso.has(name.toLowerCase())) continue;
    const special = SPECIAL.match(name);
    if (special !== null) {
      if (HOP_BY_HOP.has(special)) continue;
      if (special === 'host') {
        host ??= value;
        if (facts.upstreamHost !== null) continue;
      } else {
        if (!facts.peerTrusted) continue;
        if (special === 'x-forwarded-for') { xff = xff === null ? value : `${xff}, ${value}`; continue; }
        if (special === 'x-forwarded-proto') { proto ??= value; continue; }
        if (special === 'x-forwarded-host') { forwardedHost ??= value; continue; }
        if (special === 'x-request-id') continue;
      }
    }
    out.push(name, value);
  }
  if (facts.upstreamHost !== null) out.push('host', facts.upstreamHost);
  out.push('x-forwarded-for', xff === null ? facts.peer : `${xff}, ${facts.peer}`);
  out.push('x-forwarded-proto', proto ?? 'http');
  if (forwardedHost !== null || host !== null) out.push('x-forwarded-host', (forwardedHost ?? host)!);
  out.push('x-request-id', facts.requestId);
  return out;
}

/** Response headers for the caller: hop-by-hop removed, repeats (Set-Cookie) kept. */
export function downstreamResponseHeaders(headers: Record<string, string | string[] | undefined>, requestId: string): Record<string, string | string[]> {
  const dropAlso = typeof headers['connection'] === 'string' ? connectionTokens(['connection', headers['connection']]) : null;
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || dropAlso?.has(name)) continue;
    out[name] = value;
  }
  out['x-request-id'] ??= requestId;
  return out;
}

/**
 * The same forwarding rules applied in place to a parsed header object, for the WebSocket path
 * (its proxy engine copies `req.headers` and needs Connection/Upgrade left intact).
 */
export function applyForwardingHeaders(headers: Record<string, string | string[] | undefined>, facts: ForwardingFacts): void {
  const xff = facts.peerTrusted ? headers['x-forwarded-for'] : undefined;
  const proto = facts.peerTrusted ? headers['x-forwarded-proto'] : undefined;
  const forwardedHost = facts.peerTrusted ? headers['x-forwarded-host'] : undefined;
  for (const name of FORWARDING) delete headers[name];
  const chain = Array.isArray(xff) ? xff.join(', ') : xff;
  headers['x-forwarded-for'] = chain ? `${chain}, ${facts.peer}` : facts.peer;
  headers['x-forwarded-proto'] = (Array.isArray(proto) ? proto[0] : proto) ?? 'http';
  const host = (Array.isArray(forwardedHost) ? forwardedHost[0] : forwardedHost) ?? headers['host'];
  if (typeof host === 'string') headers['x-forwarded-host'] = host;
  headers['x-request-id'] = facts.requestId;
  if (facts.upstreamHost !== null) headers['host'] = facts.upstreamHost;
}
