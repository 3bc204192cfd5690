import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { answerOf, protocolOf, refusalAnswer, viewOf as checkView, type CheckView } from '../../../src/authz/http-protocols.ts';
import { compileTrustedPeerCheck } from '../../../src/client-ip/resolve.ts';
import type { Checked } from '../../../src/gateway/gatekeeper.ts';
import { refusal, type Refusal } from '../../../src/http/refusal.ts';
import { parseCidr } from '../../../src/ip/cidr.ts';

/** The original request of a check, or its refusal, unwrapped for the assertions below. */
function viewOf(...args: Parameters<typeof checkView>): CheckView | Refusal {
  const view = checkView(...args);
  return view.ok ? view.value : view.refusal;
}

const NAMES = { account: 'X-Allowgate-Account', clientIp: 'X-Allowgate-Client-IP' };

function checkRequest(url: string, headers: readonly [string, string][], method = 'GET', peer = '10.0.0.5'): IncomingMessage {
  return { url, method, rawHeaders: headers.flat(), socket: { remoteAddress: peer } } as unknown as IncomingMessage;
}

const allowed: Checked = { requestId: 'r1', peer: '10.0.0.5', peerTrusted: true, client: '198.51.100.7', via: null, account: 'AC1', keyId: null, verdict: 'allow', reason: 'ip_allowed', entryId: 'e1', refusal: null };
const anonymous: Checked = { ...allowed, account: null, verdict: 'anonymous', reason: 'no_credentials', entryId: null };
const denied: Checked = { ...allowed, verdict: 'deny', reason: 'ip_not_allowed', refusal: refusal(403, 'ip_not_allowed', 'IP address 198.51.100.7 is not allowed for account AC1') };

describe('which protocol a check speaks', () => {
  it('goes by path; the query is ignored where Caddy appends the original one', () => {
    expect(protocolOf('/authz/forward-auth')).toBe('forward-auth');
    expect(protocolOf('/authz/forward-auth?limit=5')).toBe('forward-auth');
    expect(protocolOf('/authz/auth-request')).toBe('auth-request');
    expect(protocolOf('/authz/envoy/v1/x?y=1')).toBe('envoy-http');
    for (const other of ['/authz/envoy', '/authz/envoyx/v1', '/authz/forward-auth/x', '/authz', '/', '/AUTHZ/forward-auth']) expect(protocolOf(other), other).toBeNull();
  });
});

describe('the original request of a check', () => {
  it('forward-auth: X-Forwarded-Uri and X-Forwarded-Method, every header kept, the calling proxy as peer and caller', () => {
    const view = viewOf('forward-auth', checkRequest('/authz/forward-auth', [['X-Forwarded-Uri', '/v1/Account/AC1/?a=1'], ['X-Forwarded-Method', 'POST'], ['X-Auth-ID', 'AC1'], ['X-Forwarded-For', '198.51.100.7']])) as CheckView;
    expect(view).toMatchObject({ url: '/v1/Account/AC1/?a=1', method: 'POST', remoteAddress: '10.0.0.5', caller: '10.0.0.5' });
    expect(view.rawHeaders).toContain('X-Auth-ID');
  });

  it('auth-request: X-Original-URI, or the path of ingress-nginx\'s X-Original-URL, which must agree when both are there', () => {
    expect((viewOf('auth-request', checkRequest('/authz/auth-request', [['X-Original-URI', '/v1/x?y=1'], ['X-Original-Method', 'DELETE']])) as CheckView)).toMatchObject({ url: '/v1/x?y=1', method: 'DELETE' });
    expect((viewOf('auth-request', checkRequest('/authz/auth-request', [['X-Original-URL', 'https://api.example.com/v1/x?y=1']])) as CheckView).url).toBe('/v1/x?y=1');
    expect((viewOf('auth-request', checkRequest('/authz/auth-request', [['X-Original-URL', 'http://[::1]:8080/v1/x']])) as CheckView).url).toBe('/v1/x');
    // ingress-nginx writes $scheme://$http_host$request_uri: the client's Host decides where the
    // authority ends unless only a real authority is accepted.
    for (const url of ['https://api.example.com', 'https://api.example.com?y=1', 'http://api.example.com:?/v1/Account/AC1/Call', 'http://a#/v1/x', 'http://x@y/v1/x', 'http://a\\b/v1/x', 'http://h:/v1/x', 'http://h:80x/v1/x', 'http://[::1/v1/x']) {
      expect((viewOf('auth-request', checkRequest('/authz/auth-request', [['X-Original-URL', url]])) as Refusal).reason, url).toBe('invalid_original_uri');
    }
    expect((viewOf('auth-request', checkRequest('/authz/auth-request', [['X-Original-URI', '/v1/x'], ['X-Original-URL', 'http://h/v1/x']])) as CheckView).url).toBe('/v1/x');
    expect((viewOf('auth-request', checkRequest('/authz/auth-request', [['X-Original-URI', '/v1/x'], ['X-Original-URL', 'http://h/health']])) as Refusal).reason).toBe('invalid_original_uri');
    // Without a method header, the subrequest's own.
    expect((viewOf('auth-request', checkRequest('/authz/auth-request', [['X-Original-URI', '/v1/x']], 'HEAD')) as CheckView).method).toBe('HEAD');
  });

  it('envoy-http: the path after the prefix, the check\'s own method', () => {
    expect(viewOf('envoy-http', checkRequest('/authz/envoy/v1/x?y=1', [['x-auth-id', 'AC1']], 'PUT'))).toMatchObject({ url: '/v1/x?y=1', method: 'PUT', caller: '10.0.0.5' });
  });

  it('refuses a check whose target is missing, repeated or not a path: the proxy is set up wrong', () => {
    const reason = (protocol: 'forward-auth' | 'auth-request', headers: [string, string][]): string => (viewOf(protocol, checkRequest('/x', headers)) as Refusal).reason;
    expect(reason('forward-auth', [])).toBe('missing_original_uri');
    expect(reason('auth-request', [['X-Forwarded-Uri', '/v1/x']])).toBe('missing_original_uri');
    expect(reason('forward-auth', [['X-Forwarded-Uri', '/a'], ['x-forwarded-uri', '/b']])).toBe('invalid_original_uri');
    expect(reason('auth-request', [['X-Original-URL', 'http://h/a'], ['X-Original-URL', 'http://h/a']])).toBe('invalid_original_uri');
    expect(reason('forward-auth', [['X-Forwarded-Uri', 'http://evil.example/v1/x']])).toBe('invalid_original_uri');
    expect(reason('auth-request', [['X-Original-URL', '/v1/x']])).toBe('invalid_original_uri');
    expect((viewOf('forward-auth', checkRequest('/x', [])) as Refusal).message).toContain('X-Forwarded-Uri');
  });
});

describe('the answer', () => {
  it('allows forward-auth and auth-request with both upstream headers always present, empty when there is nothing to say', () => {
    for (const protocol of ['forward-auth', 'auth-request'] as const) {
      const ok = answerOf(protocol, allowed, NAMES);
      expect(ok.status).toBe(200);
      expect(ok.headers).toMatchObject({ 'X-Allowgate-Account': 'AC1', 'X-Allowgate-Client-IP': '198.51.100.7', 'x-request-id': 'r1', 'cache-control': 'no-store' });
      expect(ok.body).toBe('');
      expect(answerOf(protocol, anonymous, NAMES).headers['X-Allowgate-Account']).toBe('');
    }
    const off = answerOf('forward-auth', allowed, { account: null, clientIp: 'X-Client' });
    expect(off.headers['X-Allowgate-Account']).toBeUndefined();
    expect(off.headers['X-Client']).toBe('198.51.100.7');
  });

  it('allows envoy-http with the headers it has, and names the others for removal', () => {
    expect(answerOf('envoy-http', allowed, NAMES).headers['x-envoy-auth-headers-to-remove']).toBeUndefined();
    const anon = answerOf('envoy-http', { ...anonymous, client: null }, NAMES);
    expect(anon.headers['X-Allowgate-Account']).toBeUndefined();
    expect(anon.headers['x-envoy-auth-headers-to-remove']).toBe('X-Allowgate-Account, X-Allowgate-Client-IP');
  });

  it('denies forward-auth and envoy-http with the refusal\'s status and JSON body', () => {
    for (const protocol of ['forward-auth', 'envoy-http'] as const) {
      const no = answerOf(protocol, denied, NAMES);
      expect(no.status).toBe(403);
      expect(JSON.parse(no.body)).toEqual({ error: 'IP address 198.51.100.7 is not allowed for account AC1', code: 403, reason: 'ip_not_allowed', request_id: 'r1' });
      expect(no.headers['content-length']).toBe(Buffer.byteLength(no.body));
    }
    expect(refusalAnswer('forward-auth', refusal(503, 'store_unavailable', 'down'), 'r2').status).toBe(503);
  });

  it('denies auth-request with 401 or 403 only, the true status and body in headers, as printable ASCII', () => {
    const unavailable = refusalAnswer('auth-request', refusal(503, 'store_unavailable', 'the store is down'), 'r2');
    expect(unavailable.status).toBe(403);
    expect(unavailable.headers['X-Allowgate-Status']).toBe('503');
    expect(JSON.parse(unavailable.headers['X-Allowgate-Refusal'] as string)).toMatchObject({ code: 503, reason: 'store_unavailable' });
    expect(refusalAnswer('auth-request', refusal(401, 'invalid_credentials', 'bad'), 'r3').status).toBe(401);
    const accented = refusalAnswer('auth-request', refusal(400, 'invalid_account', 'the account id "Ünï\u2028" is not valid'), 'r4');
    const header = accented.headers['X-Allowgate-Refusal'] as string;
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(JSON.parse(header).error).toBe('the account id "Ünï\u2028" is not valid');
  });
});

describe('trusted callers', () => {
  const cidrs = (...texts: string[]) => texts.map((t) => {
    const parsed = parseCidr(t);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  });

  it('are the listed proxies, anyone in hops mode, and no one otherwise', () => {
    const listed = compileTrustedPeerCheck({ mode: 'list', proxies: cidrs('10.0.0.0/8', '2001:db8::/32') });
    expect([listed('10.1.2.3'), listed('::ffff:10.1.2.3'), listed('2001:db8::5'), listed('11.0.0.1'), listed('::1'), listed(undefined), listed('not-an-ip')]).toEqual([true, true, true, false, false, false, false]);
    const hops = compileTrustedPeerCheck({ mode: 'hops', hops: 1 });
    expect([hops('203.0.113.9'), hops(undefined), hops('x')]).toEqual([true, false, false]);
    for (const none of [compileTrustedPeerCheck({ mode: 'none' }), compileTrustedPeerCheck({ mode: 'hops', hops: 0 }), compileTrustedPeerCheck({ mode: 'list', proxies: [] })]) expect(none('127.0.0.1')).toBe(false);
  });
});
