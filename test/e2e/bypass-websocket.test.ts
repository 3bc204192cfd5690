import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { SeenRequest } from '../support/echo-upstream.ts';
import { echoGatewayAround } from '../support/gateway-around.ts';

/*
 * WebSocket upgrades follow the same forwarding rules as plain HTTP: the same refusals, the same
 * header rewriting, and the request target passed on byte for byte. Handshakes are written over
 * raw sockets to the real gateway process; the upstream records each one as it arrived.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const PROXY = '127.0.0.10';
const SPOOF = '127.0.0.99';
const KEY = 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

/** Writes `text` from `from` and collects what comes back until the server closes, the upgrade is answered, or `waitMs` passes. */
function raw(port: number, text: string, from: string, waitMs = 1_500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    let data = '';
    const done = setTimeout(() => socket.destroy(), waitMs);
    let switched = false;
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      // A switched connection stays open: once the handshake is answered, give relayed bytes a moment.
      if (!switched && data.startsWith('HTTP/1.1 101 ') && data.includes('\r\n\r\n')) {
        switched = true;
        setTimeout(() => socket.destroy(), 200);
      }
    });
    socket.on('close', () => { clearTimeout(done); resolve(data); });
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
    socket.write(text);
  });
}

function statusOf(text: string): { status: number; reason?: string } {
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
  const reason = /"reason":"([a-z_]+)"/.exec(text)?.[1];
  return reason === undefined ? { status } : { status, reason };
}

interface Case {
  readonly name: string;
  readonly target: string;
  /** Header lines after Host (each ending in \r\n); the handshake's Connection/Upgrade come from here too. */
  readonly lines: string;
  readonly from?: string;
  readonly method?: string;
  readonly expected: { status: number; reason?: string };
  /** What the upstream must have received, for a handshake that went through. */
  readonly upstream?: (seen: SeenRequest) => void;
}

const UPGRADE = 'Connection: Upgrade\r\nUpgrade: websocket\r\n';
const AS = (account: string): string => `X-Auth-ID: ${account}\r\n`;
const header = (seen: SeenRequest, name: string): string | undefined => seen.headers[name] as string | undefined;

const CASES: readonly Case[] = [
  { name: 'a dot-dot spelled with escapes arrives as sent', target: '/v1/a/%2e%2e/%2E%2e/admin', lines: UPGRADE + AS('AC1'), expected: { status: 101 },
    upstream: (s) => expect(s.url).toBe('/v1/a/%2e%2e/%2E%2e/admin') },
  { name: 'backslashes and dot-dots arrive as sent', target: '/v1/a\\..\\..\\admin', lines: UPGRADE + AS('AC1'), expected: { status: 101 },
    upstream: (s) => expect(s.url).toBe('/v1/a\\..\\..\\admin') },
  { name: 'plain dot segments and double slashes arrive as sent', target: '/v1/./a/../b//c', lines: UPGRADE + AS('AC1'), expected: { status: 101 },
    upstream: (s) => expect(s.url).toBe('/v1/./a/../b//c') },
  { name: 'an encoded slash and a query arrive as sent', target: '/v1/a%2Fb?x=%2F&y=%zz', lines: UPGRADE + AS('AC1'), expected: { status: 101 },
    upstream: (s) => expect(s.url).toBe('/v1/a%2Fb?x=%2F&y=%zz') },
  { name: 'Proxy-Authorization, Keep-Alive and TE are not forwarded', target: '/ws/hop',
    lines: `Connection: Upgrade, Keep-Alive\r\nUpgrade: websocket\r\n${AS('AC1')}Proxy-Authorization: Basic eDp5\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n`, expected: { status: 101 },
    upstream: (s) => expect([header(s, 'proxy-authorization'), header(s, 'keep-alive'), header(s, 'te'), header(s, 'connection'), header(s, 'upgrade')]).toEqual([undefined, undefined, undefined, 'upgrade', 'websocket']) },
  { name: 'a header named in Connection is not forwarded', target: '/ws/named', lines: `Connection: Upgrade, X-Trace\r\nUpgrade: websocket\r\n${AS('AC1')}X-Trace: 1\r\n`, expected: { status: 101 },
    upstream: (s) => expect(header(s, 'x-trace')).toBeUndefined() },
  { name: 'repeated headers keep their order and case', target: '/ws/repeat', lines: `${UPGRADE}${AS('AC1')}X-Thing: a\r\nx-thing: b\r\n${KEY}`, expected: { status: 101 },
    upstream: (s) => {
      const things = s.rawHeaders.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === 'x-thing' ? [`${v}: ${s.rawHeaders[i + 1]}`] : []));
      expect(things).toEqual(['X-Thing: a', 'x-thing: b']);
      expect(header(s, 'sec-websocket-key')).toBe('dGhlIHNhbXBsZSBub25jZQ==');
    } },
  { name: 'a direct caller\'s address claims are replaced by the peer', target: '/ws/direct',
    lines: `${UPGRADE}${AS('AC1')}X-Forwarded-For: ${SPOOF}\r\nX-Real-IP: ${SPOOF}\r\nForwarded: for=${SPOOF}\r\nTrue-Client-IP: ${SPOOF}\r\n`, expected: { status: 101 },
    upstream: (s) => expect([header(s, 'x-forwarded-for'), header(s, 'x-real-ip'), header(s, 'forwarded'), header(s, 'true-client-ip')]).toEqual([OFFICE, OFFICE, `for=${OFFICE}`, undefined]) },
  { name: 'through the trusted proxy: the checked client in all three headers', target: '/ws/proxied', from: PROXY,
    lines: `${UPGRADE}${AS('AC1')}X-Forwarded-For: ${SPOOF}, ${OFFICE}\r\nX-Real-IP: ${SPOOF}\r\n`, expected: { status: 101 },
    upstream: (s) => expect([header(s, 'x-forwarded-for'), header(s, 'x-real-ip'), header(s, 'forwarded')]).toEqual([`${OFFICE}, ${PROXY}`, OFFICE, `for=${OFFICE}, for=${PROXY}`]) },

  { name: 'from a denied address', target: '/ws', from: STRANGER, lines: UPGRADE + AS('AC1'), expected: { status: 403, reason: 'ip_not_allowed' } },
  { name: 'a credential header alias', target: '/ws', from: STRANGER, lines: `${UPGRADE}X_Auth_ID: AC1\r\n`, expected: { status: 400, reason: 'ambiguous_header' } },
  { name: 'a client-address header alias', target: '/ws', lines: `${UPGRADE}${AS('AC1')}X_Real_IP: ${SPOOF}\r\n`, expected: { status: 400, reason: 'ambiguous_header' } },
  { name: 'Connection naming the credential header', target: '/ws', lines: `Connection: Upgrade, X-Auth-ID\r\nUpgrade: websocket\r\n${AS('AC2')}`, expected: { status: 400, reason: 'invalid_connection_header' } },
  { name: 'Connection naming X-Forwarded-For', target: '/ws', lines: `Connection: Upgrade, X-Forwarded-For\r\nUpgrade: websocket\r\n${AS('AC1')}`, expected: { status: 400, reason: 'invalid_connection_header' } },
  { name: 'two Host headers', target: '/ws', lines: `Host: other\r\n${UPGRADE}${AS('AC1')}`, expected: { status: 400, reason: 'invalid_host' } },
  { name: 'an Authorization scheme the gateway cannot read', target: '/ws', lines: `${UPGRADE}Authorization: Digest username="AC1"\r\n`, expected: { status: 401, reason: 'unsupported_authorization' } },
  { name: 'a no-break space after Basic', target: '/ws', from: STRANGER, lines: `${UPGRADE}Authorization: Basic\u00a0${Buffer.from('AC1:x').toString('base64')}\r\n`, expected: { status: 400, reason: 'invalid_authorization' } },
  { name: 'an alias of the header naming the checked account', target: '/ws', lines: `${UPGRADE}${AS('AC1')}X_Allowgate_Account: AC2\r\n`, expected: { status: 400, reason: 'ambiguous_header' } },
  { name: 'a fragment in the target', target: '/ws#frag', lines: UPGRADE + AS('AC1'), expected: { status: 400, reason: 'invalid_request_target' } },
  { name: 'an h2c upgrade (a tunnel the gateway would never see into)', target: '/ws', lines: `Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n${AS('AC1')}`, expected: { status: 400, reason: 'unsupported_upgrade' } },
  { name: 'websocket and h2c offered together', target: '/ws', lines: `Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n${AS('AC1')}`, expected: { status: 400, reason: 'unsupported_upgrade' } },
  { name: 'two Upgrade headers', target: '/ws', lines: `Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n${AS('AC1')}`, expected: { status: 400, reason: 'unsupported_upgrade' } },
  { name: 'an upgrade by POST', target: '/ws', method: 'POST', lines: `${UPGRADE}${AS('AC1')}Content-Length: 0\r\n`, expected: { status: 400, reason: 'unsupported_upgrade' } },
  { name: 'an upgrade carrying a body', target: '/ws', lines: `${UPGRADE}${AS('AC1')}Content-Length: 38\r\n`, expected: { status: 400, reason: 'unsupported_upgrade' } },
];

const stack = echoGatewayAround({
  config: `clientIp:\n  trustedProxies: [${PROXY}]\n`,
  setup: async (gw) => {
    expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
  },
});

describe('WebSocket upgrades: the same forwarding rules as HTTP', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = stack.upstream.seen.length;
    const text = await raw(stack.gw.port, `${c.method ?? 'GET'} ${c.target} HTTP/1.1\r\nHost: gw\r\n${c.lines}\r\n`, c.from ?? OFFICE);
    expect(statusOf(text), c.name).toEqual(c.expected);
    const arrived = stack.upstream.seen.slice(before);
    if (c.expected.status !== 101) {
      expect(arrived, `${c.name}: reached the upstream`).toEqual([]);
      return;
    }
    expect(text).toMatch(/\r\nx-request-id: [^\r]+\r\n/i);
    expect(arrived).toHaveLength(1);
    c.upstream?.(arrived[0]!);
  });

  it('relays data both ways once switched', async () => {
    const text = await raw(stack.gw.port, `GET /ws/echo HTTP/1.1\r\nHost: gw\r\n${UPGRADE}${AS('AC1')}\r\nping-frame`, OFFICE);
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
    expect(text.endsWith('ping-frame')).toBe(true);
  });

  it('an upstream that refuses the upgrade: its answer comes back and nothing sent after the handshake reaches it', async () => {
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\n\r\n';
    const text = await raw(stack.gw.port, `GET /no-upgrade HTTP/1.1\r\nHost: gw\r\n${UPGRADE}${AS('AC1')}\r\n${smuggled}`, OFFICE, 2_000);
    expect(statusOf(text)).toEqual({ status: 400 });
    expect(text).toContain('no upgrade');
    expect(text).toMatch(/connection: close/i);
    expect(stack.upstream.seen.some((r) => r.url === '/no-upgrade')).toBe(true);
    expect(stack.upstream.seen.filter((r) => r.url === '/after-refused-upgrade' || r.url === '/smuggled')).toEqual([]);
  });

  it('stayed up through all of it', async () => {
    expect(stack.gw.child.exitCode).toBeNull();
    expect((await stack.gw.admin('GET', '/healthz')).status).toBe(200);
  });
});
