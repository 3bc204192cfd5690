/**
 * The real client address: the TCP peer, or, when the peer is a trusted proxy, the address that
 * proxy chain reports.
 *
 * The walk runs from the right, because each proxy appends the address it received the
 * connection from: the right end was written by proxies we trust, the left end by whoever
 * connected first, who may be lying. Hence:
 *
 * - An untrusted peer is the client, whatever it sent: headers from it are never read.
 * - Every entry the walk examines must parse, including the proxies' own entries in hops mode.
 *   A malformed entry refuses the request; falling back to a proxy's address instead would put
 *   every client behind that proxy under the proxy's rules.
 * - Entries left of the chosen client are never examined: they are the client's own claims and
 *   change nothing. They are still split and counted, so the length bound and hop counting are
 *   exact.
 * - A trusted peer that sent no header is refused, never taken as the client itself.
 */

import { refusal } from '../http/refusal.ts';
import { isHeaderName } from '../http/header-name.ts';
import { formatIp, parseIp, parseIpInto, type Family } from '../ip/address.ts';
import { clip, wordMask, type Cidr } from '../ip/cidr.ts';
import { createSpans, splitForwarded, splitXForwardedFor, type Spans } from './chain.ts';
import { isBlank, parseEntryInto } from './entry.ts';
import type { ClientIpConfig, ClientIpResolver, ClientIpResult, ForwardedSource, TrustSetting } from './types.ts';

/** Whether an address (as parsed into words) belongs to a trusted proxy. */
export type TrustCheck = (family: Family, words: Uint32Array) => boolean;

/**
 * The trusted networks as flat word and mask arrays, per family, so the check is a loop over
 * typed arrays with no objects touched.
 */
export function compileTrustCheck(proxies: readonly Cidr[]): TrustCheck {
  const v4 = proxies.filter((c) => c.family === 4);
  const v6 = proxies.filter((c) => c.family === 6);
  const nets4 = new Uint32Array(v4.length);
  const masks4 = new Uint32Array(v4.length);
  v4.forEach((cidr, i) => {
    masks4[i] = wordMask(cidr.prefix, 0);
    nets4[i] = (cidr.words[0]! & masks4[i]!) >>> 0;
  });
  const nets6 = new Uint32Array(v6.length * 4);
  const masks6 = new Uint32Array(v6.length * 4);
  v6.forEach((cidr, i) => {
    for (let w = 0; w < 4; w++) {
      masks6[i * 4 + w] = wordMask(cidr.prefix, w);
      nets6[i * 4 + w] = (cidr.words[w]! & masks6[i * 4 + w]!) >>> 0;
    }
  });
  const count4 = v4.length;
  const count6 = v6.length;
  return (family, words) => {
    if (family === 4) {
      const word = words[0]!;
      for (let i = 0; i < count4; i++) if (((word & masks4[i]!) >>> 0) === nets4[i]) return true;
      return false;
    }
    for (let base = 0; base < count6 * 4; base += 4) {
      if (((words[0]! & masks6[base]!) >>> 0) === nets6[base]
        && ((words[1]! & masks6[base + 1]!) >>> 0) === nets6[base + 1]
        && ((words[2]! & masks6[base + 2]!) >>> 0) === nets6[base + 2]
        && ((words[3]! & masks6[base + 3]!) >>> 0) === nets6[base + 3]) return true;
    }
    return false;
  };
}

/**
 * Whether a peer address is a proxy the gateway believes, under the same trust setting that the
 * client-IP walk uses: listed (list mode), anyone (hops mode, at least one hop), no one otherwise.
 * For the external-authorization surfaces, whose caller is always a proxy asking about someone
 * else's request.
 */
export function compileTrustedPeerCheck(trust: TrustSetting): (peer: string | undefined) => boolean {
  if (trust.mode === 'none' || (trust.mode === 'hops' && trust.hops === 0) || (trust.mode === 'list' && trust.proxies.length === 0)) return () => false;
  if (trust.mode === 'hops') return (peer) => peer !== undefined && parseIp(peer) !== null;
  const listed = compileTrustCheck(trust.proxies);
  const words = new Uint32Array(4);
  return (peer) => {
    const family = peer === undefined ? 0 : parseIpInto(peer, words);
    return family !== 0 && listed(family, words);
  };
}

interface Header {
  /** Lower case, as compared. */
  readonly name: ForwardedSource;
  /** As written in messages. */
  readonly display: string;
}

const HEADERS: Readonly<Record<ForwardedSource, Header>> = {
  'x-forwarded-for': { name: 'x-forwarded-for', display: 'X-Forwarded-For' },
  forwarded: { name: 'forwarded', display: 'Forwarded' },
  'x-real-ip': { name: 'x-real-ip', display: 'X-Real-IP' },
};

/**
 * Builds the per-request resolver. Everything the trust setting implies is decided here; the
 * returned function only parses the peer, finds the header lines and walks them.
 */
export function compileClientIpResolver(config: ClientIpConfig): ClientIpResolver {
  const { trust, source, maxEntries } = config;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`clientIp maxEntries must be a positive integer, got ${maxEntries}`);
  if (trust.mode === 'hops' && (!Number.isInteger(trust.hops) || trust.hops < 0 || trust.hops > 16)) {
    throw new RangeError(`clientIp trustedHops must be an integer 0-16, got ${trust.hops}`);
  }

  const peerWords = new Uint32Array(4);
  const entryWords = new Uint32Array(4);
  const header = HEADERS[source];

  // No proxy is trusted: the same as having none in front.
  if (trust.mode === 'none' || (trust.mode === 'hops' && trust.hops === 0) || (trust.mode === 'list' && trust.proxies.length === 0)) {
    return (peer) => {
      const family = peer === undefined ? 0 : parseIpInto(peer, peerWords);
      return family === 0 ? invalidPeer(peer) : found(family, peerWords, false);
    };
  }

  // In hops mode the peer is a proxy by definition; in list mode it must be on the list, and so
  // must every entry the walk passes over.
  const listed = trust.mode === 'list' ? compileTrustCheck(trust.proxies) : null;
  const hops = trust.mode === 'hops' ? trust.hops : 0;

  if (source === 'x-real-ip') {
    return (peer, rawHeaders) => {
      const peerFamily = peer === undefined ? 0 : parseIpInto(peer, peerWords);
      if (peerFamily === 0) return invalidPeer(peer);
      if (listed !== null && !listed(peerFamily, peerWords)) return found(peerFamily, peerWords, false);
      let at = -1;
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        if (!isHeaderName(rawHeaders[i]!, header.name)) continue;
        // Two values leave no way to tell which one the proxy wrote.
        if (at >= 0) return fail('invalid_forwarded_for', 'the request carries more than one X-Real-IP header; a proxy sets exactly one');
        at = i + 1;
      }
      if (at < 0) return missing(header, peerFamily, peerWords);
      const value = rawHeaders[at]!;
      const family = parseEntryInto(value, 0, value.length, entryWords);
      return family === 0 ? invalidEntry(header, value, 0, value.length, false) : found(family, entryWords, true);
    };
  }

  const spans: Spans = createSpans(maxEntries);
  const split = source === 'forwarded' ? splitForwarded : splitXForwardedFor;
  return (peer, rawHeaders) => {
    const peerFamily = peer === undefined ? 0 : parseIpInto(peer, peerWords);
    if (peerFamily === 0) return invalidPeer(peer);
    if (listed !== null && !listed(peerFamily, peerWords)) return found(peerFamily, peerWords, false);

    spans.count = 0;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      if (!isHeaderName(rawHeaders[i]!, header.name)) continue;
      if (!split(rawHeaders[i + 1]!, i + 1, spans)) {
        return fail('forwarded_chain_too_long', `the ${header.display} header carries more than ${maxEntries} entries`);
      }
    }

    // Hops: the peer is one proxy, so the client is `hops - 1` entries in from the right; with
    // fewer entries than that, the leftmost is the furthest anyone can see.
    const stop = listed === null ? Math.max(0, spans.count - hops) : 0;
    // The proxies passed on the way, for the forwarded chain; most requests pass none.
    let passed: string[] | null = null;
    for (let k = spans.count - 1; k >= stop; k--) {
      const value = rawHeaders[spans.line[k]!]!;
      const start = spans.start[k]!;
      const end = spans.end[k]!;
      const broken = spans.broken[k] === 1;
      const family = broken ? 0 : parseEntryInto(value, start, end, entryWords);
      if (family === 0) return invalidEntry(header, value, start, end, broken);
      // In list mode an all-proxy chain ends at its leftmost entry: the best anyone can tell.
      if (k === stop || (listed !== null && !listed(family, entryWords))) {
        return found(family, entryWords, true, passed === null ? null : passed.reverse().join(', '));
      }
      (passed ??= []).push(formatIp({ family, words: entryWords.slice(0, family === 4 ? 1 : 4) }));
    }
    // Every header line yields at least one entry, so only an absent header gets here.
    return missing(header, peerFamily, peerWords);
  };
}

function found(family: Family, words: Uint32Array, fromHeader: boolean, via: string | null = null): ClientIpResult {
  return { ok: true, ip: { family, words: words.slice(0, family === 4 ? 1 : 4) }, fromHeader, via };
}

function fail(reason: string, message: string): ClientIpResult {
  return { ok: false, refusal: refusal(400, reason, message) };
}

function invalidPeer(peer: string | undefined): ClientIpResult {
  const message = peer === undefined
    ? 'the connection reports no peer address'
    : `the connection's peer address '${clip(peer)}' is not an IP address`;
  return fail('invalid_peer', message);
}

function missing(header: Header, family: Family, words: Uint32Array): ClientIpResult {
  const proxy = formatIp({ family, words });
  return fail('missing_forwarded_for', `the trusted proxy at ${proxy} sent no ${header.display} header, so the client's address is unknown`);
}

function invalidEntry(header: Header, text: string, start: number, end: number, broken: boolean): ClientIpResult {
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  const entry = clip(text.slice(start, end));
  if (header.name === 'forwarded') {
    const message = broken
      ? `the Forwarded element '${entry}' does not carry exactly one well-formed for= parameter`
      : `the Forwarded for= value '${entry}' is not an IP address`;
    return fail('invalid_forwarded_for', message);
  }
  if (entry === '') return fail('invalid_forwarded_for', `the ${header.display} header has an empty entry`);
  return fail('invalid_forwarded_for', `the ${header.display} entry '${entry}' is not an IP address`);
}
