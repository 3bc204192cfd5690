/**
 * The header names the gateway interprets or writes on the way to the upstream, in one place: the
 * request screen refuses other spellings of them, and the forwarding rewrite acts on them.
 * All lower case, dashed.
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the like: they describe one connection, never forwarded. */
export const HOP_BY_HOP = [
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
  // The gateway's own server already answered `Expect: 100-continue` to the caller.
  'expect',
  // Not hop-by-hop, but never an upstream's business: CGI makes it HTTP_PROXY, which many HTTP
  // clients take for their proxy setting (httpoxy).
  'proxy',
] as const;

/**
 * Headers through which the gateway tells the upstream who the client is and what it asked for;
 * the gateway writes them itself (a trusted proxy's X-Forwarded-Proto and -Host are kept).
 */
export const FORWARDING_HEADERS = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded', 'x-request-id'] as const;

/** Every `X-Forwarded-*` name belongs to the forwarding family: only a trusted proxy may send one. */
export const FORWARDING_PREFIX = 'x-forwarded-';

/** The headers a client address is read from (clientIp.header chooses one; all three are rewritten). */
export const CLIENT_ADDRESS_SOURCES = ['x-forwarded-for', 'forwarded', 'x-real-ip'] as const;

/**
 * Headers some stacks and frameworks read as the client's address (Rails' Client-IP, CDNs'
 * True-Client-IP and CF-Connecting-IP, PHP snippets' X-Client-IP and X-Cluster-Client-IP, ...).
 * The gateway does not read them, so it cannot vouch for them: they are removed before
 * forwarding, whoever sent them, and the upstream finds the checked client in X-Forwarded-For,
 * X-Real-IP and Forwarded instead. The list names the usual ones; `isClientAddressName` holds the
 * pattern that also catches the rest (Fly-Client-IP, DO-Connecting-IP, X-Vercel-Forwarded-For, ...).
 */
export const UNCHECKED_ADDRESS_HEADERS = [
  'client-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'cf-connecting-ipv6', 'fastly-client-ip',
  'akamai-client-ip', 'x-cluster-client-ip', 'x-original-forwarded-for', 'forwarded-for', 'x-forwarded',
  'x-originating-ip', 'x-remote-ip', 'x-remote-addr', 'x-real-client-ip', 'x-proxyuser-ip',
  'x-envoy-external-address', 'x-appengine-user-ip', 'x-azure-clientip', 'x-azure-socketip',
  'proxy-client-ip', 'wl-proxy-client-ip', 'fly-client-ip', 'x-appengine-remote-addr', 'cloudfront-viewer-address',
  'do-connecting-ip', 'incap-client-ip', 'x-sucuri-clientip', 'ali-cdn-real-ip', 'x-vercel-forwarded-for',
  'x-nf-client-connection-ip', 'cf-pseudo-ipv4', 'x-coming-from', 'remote-addr', 'http-client-ip', 'http-x-forwarded-for',
] as const;

/**
 * How a header name says "the client's address", whoever defined it: it ends in `-ip`, `-ipv4`
 * or `-ipv6` (or `clientip`, `realip`, `remoteip`, `socketip`, `userip` written as one word),
 * names a remote, client, viewer or external address, says where a request is coming from, or
 * holds `forwarded-for` anywhere (X-Vercel-Forwarded-For, the literal HTTP_X_FORWARDED_FOR a
 * CGI-minded client sends). Compared from the end, without copying the name.
 */
const ADDRESS_NAME_ENDINGS = [
  '-ip', '-ipv4', '-ipv6', 'clientip', 'realip', 'remoteip', 'socketip', 'userip',
  'remote-addr', 'remoteaddr', 'client-addr', 'remote-address', 'client-address', 'viewer-address', 'external-address',
  'coming-from', 'forwarded',
] as const;
const ADDRESS_NAME_PART = 'forwarded-for';

/**
 * Whether `name` is a client-address header under the pattern above: compared ignoring case,
 * and with `folded` also reading `_` and `.` as `-` (how CGI, WSGI, Rack and PHP read names).
 */
export function isClientAddressName(name: string, folded = false): boolean {
  const last = name.charCodeAt(name.length - 1) | 0x20;
  // p (ip, clientip...), 4 and 6 (ipv4, ipv6), r (addr, forwarded-for), s (address), m (from), d (forwarded).
  if (last !== 0x70 && last !== 0x34 && last !== 0x36 && last !== 0x72 && last !== 0x73 && last !== 0x6d && last !== 0x64) {
    return name.length > ADDRESS_NAME_PART.length && containsName(name, ADDRESS_NAME_PART, folded);
  }
  for (const ending of ADDRESS_NAME_ENDINGS) if (endsWithName(name, ending, folded)) return true;
  return name.length >= ADDRESS_NAME_PART.length && containsName(name, ADDRESS_NAME_PART, folded);
}

function sameNameChar(got: number, want: number, folded: boolean): boolean {
  if (got === want) return true;
  if (want === 45 /* - */) return folded && (got === 95 /* _ */ || got === 46 /* . */);
  return want >= 97 && want <= 122 && (got | 0x20) === want;
}

function endsWithName(name: string, lower: string, folded: boolean): boolean {
  const offset = name.length - lower.length;
  if (offset < 0) return false;
  for (let i = lower.length - 1; i >= 0; i--) if (!sameNameChar(name.charCodeAt(offset + i), lower.charCodeAt(i), folded)) return false;
  return true;
}

function containsName(name: string, lower: string, folded: boolean): boolean {
  const first = lower.charCodeAt(0);
  for (let at = 0; at + lower.length <= name.length; at++) {
    if (!sameNameChar(name.charCodeAt(at), first, folded)) continue;
    let i = 1;
    while (i < lower.length && sameNameChar(name.charCodeAt(at + i), lower.charCodeAt(i), folded)) i++;
    if (i === lower.length) return true;
  }
  return false;
}
