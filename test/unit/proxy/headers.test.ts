import { describe, expect, it } from 'vitest';
import { applyForwardingHeaders, downstreamResponseHeaders, upstreamRequestHeaders } from '../../../src/proxy/headers.ts';

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!]);
  return out;
}

const RAW = [
  'Host', 'api.example', 'Connection', 'keep-alive, X-Drop-Me', 'Keep-Alive', 'timeout=5', 'X-Drop-Me', '1',
  'TE', 'trailers', 'X-Forwarded-For', '203.0.113.1', 'X-Forwarded-For', '198.51.100.2', 'Forwarded', 'for=192.0.2.9',
  'X-Real-IP', '192.0.2.9', 'X-Request-Id', 'caller-id', 'Authorization', 'Basic abc', 'Expect', '100-continue', 'Accept', 'a', 'Accept', 'b',
];

describe('upstreamRequestHeaders', () => {
  it('drops hop-by-hop headers, and a caller\'s forwarding headers when the peer is not trusted', () => {
    const out = pairs(upstreamRequestHeaders(RAW, { peer: '127.0.0.5', peerTrusted: false, requestId: 'rid', upstreamHost: null }));
    const names = out.map(([n]) => n);
    for (const gone of ['connection', 'keep-alive', 'x-drop-me', 'te', 'forwarded', 'x-real-ip', 'expect']) expect(names).not.toContain(gone);
    expect(out.filter(([n]) => n === 'x-forwarded-for')).toEqual([['x-forwarded-for', '127.0.0.5']]);
    expect(out).toContainEqual(['x-request-id', 'rid']);
    expect(out).toContainEqual(['x-forwarded-proto', 'http']);
    expect(out).toContainEqual(['x-forwarded-host', 'api.example']);
    expect(out).toContainEqual(['host', 'api.example']);
    expect(out).toContainEqual(['authorization', 'Basic abc']);
    expect(out.filter(([n]) => n === 'accept')).toEqual([['accept', 'a'], ['accept', 'b']]);
  });

  it('extends the chain a trusted proxy sent, all lines in order, and can replace Host', () => {
    const out = pairs(upstreamRequestHeaders(RAW, { peer: '10.0.0.1', peerTrusted: true, requestId: 'rid', upstreamHost: 'upstream:3000' }));
    expect(out.filter(([n]) => n === 'x-forwarded-for')).toEqual([['x-forwarded-for', '203.0.113.1, 198.51.100.2, 10.0.0.1']]);
    expect(out.filter(([n]) => n === 'host')).toEqual([['host', 'upstream:3000']]);
    expect(out).toContainEqual(['forwarded', 'for=192.0.2.9']);
    expect(out.filter(([n]) => n === 'x-request-id')).toEqual([['x-request-id', 'rid']]);
  });
});

describe('applyForwardingHeaders (WebSocket path)', () => {
  it('keeps Upgrade/Connection and rewrites the forwarding headers', () => {
    const headers: Record<string, string | string[] | undefined> = { host: 'h', connection: 'Upgrade', upgrade: 'websocket', 'x-forwarded-for': '1.2.3.4', 'x-real-ip': '1.2.3.4' };
    applyForwardingHeaders(headers, { peer: '127.0.0.9', peerTrusted: false, requestId: 'rid', upstreamHost: null });
    expect(headers).toMatchObject({ connection: 'Upgrade', upgrade: 'websocket', 'x-forwarded-for': '127.0.0.9', 'x-request-id': 'rid', 'x-forwarded-host': 'h' });
    expect(headers['x-real-ip']).toBeUndefined();
  });
});

describe('downstreamResponseHeaders', () => {
  it('drops hop-by-hop headers and keeps repeated Set-Cookie', () => {
    const out = downstreamResponseHeaders({ connection: 'close, x-internal', 'x-internal': '1', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' }, 'rid');
    expect(out).toEqual({ 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain', 'x-request-id': 'rid' });
  });
});
