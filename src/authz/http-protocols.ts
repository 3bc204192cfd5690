/**
 * The HTTP external-authorization protocols, each an adapter between its wire format and the
 * Gatekeeper: the check request is turned into the original request's view (its target, its
 * headers, the address it came from), and a Checked into the answer that protocol's proxy acts on.
 * No protocol decides anything itself.
 *
 * - forward-auth: Traefik ForwardAuth and Caddy `forward_auth`. The proxy copies the caller's
 *   headers and adds X-Forwarded-Method, -Proto, -Host, -Uri and -For. 2xx allows; any other
 *   answer is sent to the client as it is.
 * - auth-request: nginx `auth_request`. The subrequest carries the caller's headers plus what the
 *   location sets (X-Original-URI, X-Original-Method, and X-Real-IP or X-Forwarded-For). 2xx
 *   allows; 401 and 403 deny (anything else is a 500 at nginx), so the refusal travels in headers
 *   that an `error_page` location turns back into the status and JSON body the proxy would send.
 * - envoy-http: Envoy ext_authz with an HTTP service. The original path is appended to the
 *   configured prefix; the headers are those listed in `allowed_headers`. 200 allows; anything
 *   else is sent to the client.
 */

import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { AuthzUpstreamHeaders } from '../proxy/headers.ts';
import type { Checked, IncomingView } from '../gateway/gatekeeper.ts';
import { isHeaderName } from '../http/header-name.ts';
import { refusalBody } from '../http/raw-response.ts';
import { ok, refusal, refused, type Refusal, type Result } from '../http/refusal.ts';

export type HttpProtocol = 'forward-auth' | 'auth-request' | 'envoy-http';

export const FORWARD_AUTH_PATH = '/authz/forward-auth';
export const AUTH_REQUEST_PATH = '/authz/auth-request';
/** Envoy's `path_prefix`: the original path follows it. */
export const ENVOY_PREFIX = '/authz/envoy';

/** The original request as a protocol reports it: the Gatekeeper's view, and the method for the log. */
export interface CheckView extends IncomingView {
  readonly method: string;
}

/**
 * Which protocol a check request speaks, from its path. The query is ignored on the fixed paths
 * because Caddy's forward_auth appends the original query string to the check's URI.
 */
export function protocolOf(url: string): HttpProtocol | null {
  if (url.startsWith(ENVOY_PREFIX) && url.charCodeAt(ENVOY_PREFIX.length) === 47 /* / */) return 'envoy-http';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path === FORWARD_AUTH_PATH) return 'forward-auth';
  if (path === AUTH_REQUEST_PATH) return 'auth-request';
  return null;
}

/**
 * The headers each protocol takes the original request's target and method from. nginx setups
 * differ: a hand-written location sets X-Original-URI ($request_uri); ingress-nginx always sets
 * X-Original-URL ($scheme://$http_host$request_uri) and X-Original-URI only with auth-method.
 */
const ORIGINAL: Readonly<Record<'forward-auth' | 'auth-request', { readonly uri: string; readonly uriName: string; readonly url: string | null; readonly method: string }>> = {
  'forward-auth': { uri: 'x-forwarded-uri', uriName: 'X-Forwarded-Uri', url: null, method: 'x-forwarded-method' },
  'auth-request': { uri: 'x-original-uri', uriName: 'X-Original-URI', url: 'x-original-url', method: 'x-original-method' },
};

/**
 * An absolute URL as ingress-nginx writes it, `$scheme://$http_host$request_uri`: the authority
 * must be a host name or a bracketed IP address with an optional port, and the target follows it
 * with `/`. `$http_host` is the client's Host header: anything else in it (`api.example.com:?`,
 * `x@y`, `a\b`, `#`) would move the line between authority and target, so the gateway would
 * check another target than the one the upstream serves.
 */
const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?=\/)/;

/**
 * The original request of a check, or why the check request itself is unusable (the proxy is
 * misconfigured: refused, never guessed at). The calling proxy is the peer the client-IP rules
 * start from, and the caller that must be trusted.
 */
export function viewOf(protocol: HttpProtocol, req: IncomingMessage): Result<CheckView> {
  const peer = req.socket.remoteAddress;
  const raw = req.rawHeaders;
  if (protocol === 'envoy-http') {
    const url = (req.url ?? '').slice(ENVOY_PREFIX.length);
    return ok({ url, rawHeaders: raw, remoteAddress: peer, caller: peer, method: req.method ?? 'GET' });
  }
  const names = ORIGINAL[protocol];
  let url: string | undefined;
  let fullUrl: string | undefined;
  let method: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (isHeaderName(name, names.uri)) {
      // Two targets leave no way to tell which one the upstream will serve.
      if (url !== undefined) return refused(refusal(400, 'invalid_original_uri', `the check request carries more than one ${names.uriName} header; the proxy must set exactly one`));
      url = raw[i + 1]!;
    } else if (names.url !== null && isHeaderName(name, names.url)) {
      if (fullUrl !== undefined) return refused(refusal(400, 'invalid_original_uri', 'the check request carries more than one X-Original-URL header; the proxy must set exactly one'));
      fullUrl = raw[i + 1]!;
    } else if (isHeaderName(name, names.method)) {
      method ??= raw[i + 1]!;
    }
  }
  if (fullUrl !== undefined) {
    const target = targetOfUrl(fullUrl);
    if (target === null) return refused(refusal(400, 'invalid_original_uri', 'the X-Original-URL header must hold an absolute URL such as https://api.example.com/v1/resource: a scheme, a host name or bracketed IP address with an optional port (nothing else: no ? # @ or \\ in it), then the path'));
    // Both present: the one the proxy did not set came from the client, and must not differ.
    if (url !== undefined && url !== target) return refused(refusal(400, 'invalid_original_uri', 'the check request\'s X-Original-URI and X-Original-URL name different targets'));
    url = target;
  }
  if (url === undefined) {
    return refused(refusal(400, 'missing_original_uri', `the check request carries no ${names.uriName} header: configure the proxy to send the original request target (see docs/external-authorization.md)`));
  }
  if (url.charCodeAt(0) !== 47 /* / */) {
    return refused(refusal(400, 'invalid_original_uri', `the ${names.uriName} header must hold the original request target as a path such as /v1/resource`));
  }
  return ok({ url, rawHeaders: raw, remoteAddress: peer, caller: peer, method: method ?? req.method ?? 'GET' });
}

/** The path and query of an absolute URL, as the request line carried them. */
function targetOfUrl(url: string): string | null {
  const authority = ABSOLUTE_URL.exec(url);
  return authority === null ? null : url.slice(authority[0].length);
}

/** The status and headers of an answer; the body is the refusal's JSON, or empty. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: string;
}

/** nginx reads these through `auth_request_set`: only 401 and 403 reach its error_page. */
export const REFUSAL_STATUS_HEADER = 'X-Allowgate-Status';
export const REFUSAL_BODY_HEADER = 'X-Allowgate-Refusal';

/** What the protocol's proxy is told about a decision. */
export function answerOf(protocol: HttpProtocol, checked: Checked, names: AuthzUpstreamHeaders): HttpAnswer {
  const refused = checked.refusal;
  if (refused !== null) return refusalAnswer(protocol, refused, checked.requestId);
  const headers: OutgoingHttpHeaders = { 'cache-control': 'no-store', 'x-request-id': checked.requestId, 'content-length': 0 };
  if (protocol === 'envoy-http') {
    // Envoy copies listed headers that are present (allowed_upstream_headers), and removes the
    // ones named here, so a client's own copy of a header with nothing to say is dropped.
    let remove = '';
    if (names.account !== null) {
      if (checked.account !== null) headers[names.account] = checked.account;
      else remove = names.account;
    }
    if (names.clientIp !== null) {
      if (checked.client !== null) headers[names.clientIp] = checked.client;
      else remove = remove === '' ? names.clientIp : `${remove}, ${names.clientIp}`;
    }
    if (remove !== '') headers['x-envoy-auth-headers-to-remove'] = remove;
  } else {
    // Always present, empty when there is nothing to say: Traefik and Caddy replace the request's
    // header with the answer's, so a client's own copy never reaches the upstream; nginx's
    // proxy_set_header drops a header whose value is empty.
    if (names.account !== null) headers[names.account] = checked.account ?? '';
    if (names.clientIp !== null) headers[names.clientIp] = checked.client ?? '';
  }
  return { status: 200, headers, body: '' };
}

/** A refusal in the protocol's terms (also for check requests that cannot be read). */
export function refusalAnswer(protocol: HttpProtocol, refused: Refusal, requestId: string): HttpAnswer {
  const body = refusalBody(refused, requestId);
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  if (protocol !== 'auth-request') return { status: refused.status, headers, body };
  headers[REFUSAL_STATUS_HEADER] = String(refused.status);
  headers[REFUSAL_BODY_HEADER] = asciiJson(body);
  return { status: refused.status === 401 ? 401 : 403, headers, body };
}

/** The same JSON with every character outside printable ASCII escaped, as a header value must be. */
function asciiJson(json: string): string {
  return json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
