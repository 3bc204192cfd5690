import { describe, expect, it } from 'vitest';
import { downstreamResponseHeaders, upstreamRequestHeaders, type ForwardingFacts, type RewriteSettings } from '../../../src/proxy/headers.ts';

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!]);
  return out;
}

const RAW = [
  'Host', 'api.example', 'Connection', 'keep-alive, X-Drop-Me', 'Keep-Alive', 'timeout=5', 'X-Drop-Me', '1',
  'TE', 'trailers', 'X-Forwarded-For', '203.0.113.1', 'X-Forwarded-For', '198.51.100.2', 'Forwarded', 'for=192.0.2.9;host=evil',
  'X-Real-IP', '192.0.2.9', 'X-Request-Id', 'caller-id', 'Authorization', 'Basic abc', 'Expect', '100-continue', 'Accept', 'a', 'Accept', 'b',
  'Proxy-Authorization', 'Basic eHg6eHg=', 'True-Client-IP', '192.0.2.9', 'Client-IP', '192.0.2.9', 'X-Forwarded-Port', '443', 'X_Custom', 'u',
];

const KEEP_HOST: RewriteSettings = { upstreamHost: null, dropUnderscores: false };
const direct: ForwardingFacts = { peer: '127.0.0.5', peerTrusted: false, client: '127.0.0.5', via: null, requestId: 'rid' };
const proxied: ForwardingFacts = { peer: '10.0.0.1', peerTrusted: true, client: '198.51.100.2', via: null, requestId: 'rid' };

const only = (out: [string, string][], name: string): string[] => out.filter(([n]) => n === name).map(([, v]) => v);

describe('upstreamRequestHeaders', () => {
  it('drops hop-by-hop headers, and every client-address claim from a peer that is not trusted', () => {
    const out = pairs(upstreamRequestHeaders(RAW, direct, KEEP_HOST));
    const names = out.map(([n]) => n);
    for (const gone of ['connection', 'keep-alive', 'x-drop-me', 'te', 'expect', 'proxy-authorization', 'true-client-ip', 'client-ip', 'x-forwarded-port']) expect(names).not.toContain(gone);
    expect(only(out, 'x-forwarded-for')).toEqual(['127.0.0.5']);
    expect(only(out, 'x-real-ip')).toEqual(['127.0.0.5']);
    expect(only(out, 'forwarded')).toEqual(['for=127.0.0.5']);
    expect(only(out, 'x-request-id')).toEqual(['rid']);
    expect(only(out, 'x-forwarded-proto')).toEqual(['http']);
    expect(only(out, 'x-forwarded-host')).toEqual(['api.example']);
    expect(only(out, 'host')).toEqual(['api.example']);
    expect(only(out, 'authorization')).toEqual(['Basic abc']);
    expect(only(out, 'x_custom')).toEqual(['u']);
    expect(only(out, 'accept')).toEqual(['a', 'b']);
  });

  it('from a trusted proxy: the chain from the checked client on, the same chain in Forwarded, X-Real-IP the client', () => {
    const out = pairs(upstreamRequestHeaders(RAW, proxied, { upstreamHost: 'upstream:3000', dropUnderscores: false }));
    // 203.0.113.1 stood left of the client: never examined, so not passed on.
    expect(only(out, 'x-forwarded-for')).toEqual(['198.51.100.2, 10.0.0.1']);
    expect(only(out, 'forwarded')).toEqual(['for=198.51.100.2, for=10.0.0.1']);
    expect(only(out, 'x-real-ip')).toEqual(['198.51.100.2']);
    expect(only(out, 'host')).toEqual(['upstream:3000']);
    expect(only(out, 'x-request-id')).toEqual(['rid']);
    expect(only(out, 'x-forwarded-port')).toEqual(['443']);
    expect(only(out, 'true-client-ip')).toEqual([]);
  });

  it('keeps the trusted hops between the client and the peer, and brackets IPv6 in Forwarded', () => {
    const out = pairs(upstreamRequestHeaders(['Host', 'h'], { peer: '10.0.0.1', peerTrusted: true, client: '2001:db8::7', via: '10.0.0.2, 10.0.0.3', requestId: 'r' }, KEEP_HOST));
    expect(only(out, 'x-forwarded-for')).toEqual(['2001:db8::7, 10.0.0.2, 10.0.0.3, 10.0.0.1']);
    expect(only(out, 'forwarded')).toEqual(['for="[2001:db8::7]", for=10.0.0.2, for=10.0.0.3, for=10.0.0.1']);
    expect(only(out, 'x-real-ip')).toEqual(['2001:db8::7']);
  });

  it('drops names with underscores when asked to', () => {
    const out = pairs(upstreamRequestHeaders(RAW, direct, { upstreamHost: null, dropUnderscores: true }));
    expect(only(out, 'x_custom')).toEqual([]);
    expect(only(out, 'accept')).toEqual(['a', 'b']);
  });

  it('writes the upgrade pair back for a WebSocket handshake, and nothing else hop-by-hop', () => {
    const out = pairs(upstreamRequestHeaders(['Host', 'h', 'Connection', 'Upgrade, Keep-Alive', 'Upgrade', 'websocket', 'Keep-Alive', '1', 'TE', 'trailers', 'Proxy-Authorization', 'x', 'Sec-WebSocket-Key', 'k'], direct, KEEP_HOST, 'websocket'));
    expect(only(out, 'connection')).toEqual(['upgrade']);
    expect(only(out, 'upgrade')).toEqual(['websocket']);
    for (const gone of ['keep-alive', 'te', 'proxy-authorization']) expect(only(out, gone)).toEqual([]);
    expect(only(out, 'sec-websocket-key')).toEqual(['k']);
  });
});

describe('downstreamResponseHeaders', () => {
  it('drops hop-by-hop headers and keeps repeated Set-Cookie', () => {
    const out = downstreamResponseHeaders({ connection: 'close, x-internal', 'x-internal': '1', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' }, 'rid');
    expect(out).toEqual({ 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain', 'x-request-id': 'rid' });
  });
});

describe('the headers that tell the upstream what was checked', () => {
  const settings: RewriteSettings = { upstreamHost: null, dropUnderscores: false, checkedHeaders: { account: 'x-allowgate-account', clientIp: 'x-allowgate-client-ip' } };
  const raw = ['Host', 'h', 'X-Allowgate-Account', 'AC9', 'x-allowgate-account', 'AC8', 'X-ALLOWGATE-CLIENT-IP', '192.0.2.9', 'X-Auth-ID', 'AC1'];

  it('replaces every copy a caller sent with the checked account and client', () => {
    const out = pairs(upstreamRequestHeaders(raw, { ...proxied, account: 'AC1' }, settings));
    expect(only(out, 'x-allowgate-account')).toEqual(['AC1']);
    expect(only(out, 'x-allowgate-client-ip')).toEqual(['198.51.100.2']);
  });

  it('leaves a header out when there is nothing to say, and passes them untouched when not configured', () => {
    const out = pairs(upstreamRequestHeaders(raw, { ...direct, account: null }, settings));
    expect(only(out, 'x-allowgate-account')).toEqual([]);
    expect(only(out, 'x-allowgate-client-ip')).toEqual(['127.0.0.5']);
    expect(only(pairs(upstreamRequestHeaders(raw, direct, KEEP_HOST)), 'x-allowgate-account')).toEqual(['AC9', 'AC8']);
  });
});

