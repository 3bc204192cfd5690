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
 * X-Real-IP and Forwarded instead.
 */
export const UNCHECKED_ADDRESS_HEADERS = [
  'client-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'cf-connecting-ipv6', 'fastly-client-ip',
  'akamai-client-ip', 'x-cluster-client-ip', 'x-original-forwarded-for', 'forwarded-for', 'x-forwarded',
  'x-originating-ip', 'x-remote-ip', 'x-remote-addr', 'x-real-client-ip', 'x-proxyuser-ip',
  'x-envoy-external-address', 'x-appengine-user-ip', 'x-azure-clientip', 'x-azure-socketip',
] as const;
