/**
 * Header rewriting between caller and upstream, one set of rules for plain HTTP and WebSocket
 * upgrades. Hop-by-hop headers describe one connection and must not cross the proxy (RFC 9110
 * §7.6.1); the headers that tell the upstream who the client is are rebuilt from the decision, so
 * an upstream reading any of them finds the client the gateway checked, never a client's claim.
 */

import { hasHeaderNamePrefix, HeaderNameSet, isHeaderName } from '../http/header-name.ts';
import { FORWARDING_HEADERS, FORWARDING_PREFIX, HOP_BY_HOP, isClientAddressName, UNCHECKED_ADDRESS_HEADERS } from '../http/forwarding-names.ts';

const HOP = new Set<string>(HOP_BY_HOP);
const UNCHECKED = new Set<string>(UNCHECKED_ADDRESS_HEADERS);

/** Every name the request rewrite treats specially; all other headers pass as they are. */
const SPECIAL = new HeaderNameSet([...HOP_BY_HOP, ...FORWARDING_HEADERS, ...UNCHECKED_ADDRESS_HEADERS, 'host']);

export interface ForwardingFacts {
  /** The TCP peer, canonical text. */
  readonly peer: string;
  /** True when the peer is a trusted proxy whose forwarding header named the client. */
  readonly peerTrusted: boolean;
  /** The client the decision was about, canonical; null when it could not be told (an exempt path). */
  readonly client: string | null;
  /** The trusted proxies between the client and the peer, canonical, comma-separated; null for none. */
  readonly via: string | null;
  readonly requestId: string;
  /** The account the decision was about; null for none. */
  readonly account?: string | null;
}

/** The headers that tell the upstream what was checked (authz.accountHeader, authz.clientIpHeader), lower case; null: not set. */
export interface CheckedHeaderNames {
  readonly account: string | null;
  readonly clientIp: string | null;
}

/** Headers that tell the upstream the checked account and client address (as configured); null: not set. */
export interface AuthzUpstreamHeaders {
  readonly account: string | null;
  readonly clientIp: string | null;
}

export function checkedHeaderNames(names: AuthzUpstreamHeaders): CheckedHeaderNames {
  return { account: names.account?.toLowerCase() ?? null, clientIp: names.clientIp?.toLowerCase() ?? null };
}

export interface RewriteSettings {
  /** Set to replace the Host header with the upstream's own. */
  readonly upstreamHost: string | null;
  /** Drop headers whose name holds `_` (headers.underscores: drop). */
  readonly dropUnderscores: boolean;
  /**
   * Replaced on every forwarded request by the account and client address the decision was
   * about, as the external-authorization answers set them: a caller's own copies never pass.
   */
  readonly checkedHeaders?: CheckedHeaderNames;
}

/** Names listed in a Connection header are hop-by-hop for that message too (lower-cased). */
function connectionTokens(rawHeaders: readonly string[]): Set<string> | null {
  let tokens: Set<string> | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!isHeaderName(rawHeaders[i]!, 'connection')) continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const name = token.trim().toLowerCase();
      // `keep-alive`, `close` and `upgrade` (the usual values) add nothing to drop beyond HOP_BY_HOP.
      if (name && name !== 'close' && !HOP.has(name)) (tokens ??= new Set()).add(name);
    }
  }
  return tokens;
}

/**
 * The request headers for the upstream, as a flat [name, value, ...] list (order and repeats
 * kept). For an upgrade (`upgrade` set to the caller's Upgrade value) the pair Connection: upgrade
 * and Upgrade is written back after the hop-by-hop headers are gone.
 *
 * The client's address, in the three headers upstreams read it from:
 * - `X-Forwarded-For`: the checked client, the trusted proxies after it, and the peer. Entries a
 *   caller wrote left of the client are dropped: the gateway never examined them, and an upstream
 *   taking the leftmost entry would take the caller's claim for the client. From an untrusted peer
 *   it is the peer alone.
 * - `X-Real-IP`: the checked client.
 * - `Forwarded`: rewritten to the same chain (`for=` only), rather than removed, so an upstream
 *   that prefers RFC 7239 (Rack 3, Spring's ForwardedHeaderFilter) agrees with one reading
 *   X-Forwarded-For; a caller's or proxy's other parameters in it are not passed on.
 * Headers other stacks read a client address from (Client-IP, True-Client-IP, and every name the
 * client-address pattern matches: Fly-Client-IP, X-Vercel-Forwarded-For, ...) are removed.
 * The other `X-Forwarded-*` headers pass only from a trusted proxy; X-Forwarded-Proto and
 * -Host are then kept, else set by the gateway.
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], facts: ForwardingFacts, settings: RewriteSettings, upgrade: string | null = null): string[] {
  const dropAlso = connectionTokens(rawHeaders);
  const out: string[] = [];
  let proto: string | null = null;
  let forwardedHost: string | null = null;
  let host: string | null = null;
  const trusted = facts.peerTrusted;
  const dropUnderscores = settings.dropUnderscores;
  const checkedAccount = settings.checkedHeaders?.account ?? null;
  const checkedClient = settings.checkedHeaders?.clientIp ?? null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    // Names listed in Connection are rare, so only then is a lower-cased copy made.
    if (dropAlso !== null && dropAlso.has(name.toLowerCase())) continue;
    if (dropUnderscores && name.indexOf('_') >= 0) continue;
    if ((checkedAccount !== null && isHeaderName(name, checkedAccount)) || (checkedClient !== null && isHeaderName(name, checkedClient))) continue;
    const special = SPECIAL.match(name);
    if (special === null) {
      if (!trusted && name.length > FORWARDING_PREFIX.length && hasHeaderNamePrefix(name, FORWARDING_PREFIX)) continue;
      // Any other name that says "the client's address" (Fly-Client-IP, DO-Connecting-IP, ...).
      if (isClientAddressName(name)) continue;
      out.push(name, value);
      continue;
    }
    if (HOP.has(special) || UNCHECKED.has(special)) continue;
    if (special === 'host') {
      host ??= value;
      if (settings.upstreamHost === null) out.push(name, value);
      continue;
    }
    if (!trusted) continue;
    if (special === 'x-forwarded-proto') proto ??= value;
    else if (special === 'x-forwarded-host') forwardedHost ??= value;
    // X-Forwarded-For, Forwarded, X-Real-IP and X-Request-Id are written below.
  }
  if (settings.upstreamHost !== null) out.push('host', settings.upstreamHost);
  if (upgrade !== null) out.push('connection', 'upgrade', 'upgrade', upgrade);
  const client = trusted && facts.client !== null ? facts.client : facts.peer;
  const chain = trusted && facts.client !== null ? `${facts.client}${facts.via === null ? '' : `, ${facts.via}`}, ${facts.peer}` : facts.peer;
  out.push('x-forwarded-for', chain);
  out.push('x-real-ip', client);
  out.push('forwarded', forwardedFor(chain));
  out.push('x-forwarded-proto', proto ?? 'http');
  if (forwardedHost !== null || host !== null) out.push('x-forwarded-host', (forwardedHost ?? host)!);
  out.push('x-request-id', facts.requestId);
  if (checkedAccount !== null && facts.account != null) out.push(checkedAccount, facts.account);
  if (checkedClient !== null && facts.client !== null) out.push(checkedClient, facts.client);
  return out;
}

/** The RFC 7239 form of an X-Forwarded-For chain: IPv6 addresses quoted in brackets. */
function forwardedFor(chain: string): string {
  if (chain.indexOf(':') < 0) return chain.indexOf(',') < 0 ? `for=${chain}` : chain.split(', ').map((a) => `for=${a}`).join(', ');
  return chain.split(', ').map((a) => (a.indexOf(':') < 0 ? `for=${a}` : `for="[${a}]"`)).join(', ');
}

/** Response headers for the caller: hop-by-hop removed, repeats (Set-Cookie) kept. */
export function downstreamResponseHeaders(headers: Record<string, string | string[] | undefined>, requestId: string): Record<string, string | string[]> {
  const dropAlso = typeof headers['connection'] === 'string' ? connectionTokens(['connection', headers['connection']]) : null;
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP.has(name) || dropAlso?.has(name)) continue;
    out[name] = value;
  }
  out['x-request-id'] ??= requestId;
  return out;
}
