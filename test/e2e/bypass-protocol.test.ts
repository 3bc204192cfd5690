import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { echoGatewayAround } from '../support/gateway-around.ts';
import type { GatewayProcess } from '../support/gateway-process.ts';

/*
 * Malformed and hostile HTTP sent byte for byte over a raw socket to the real gateway process:
 * smuggling probes, open-proxy probes, oversized and slow requests, and path spellings that
 * try to pass as an exempt path. Each case states what must come back and checks that nothing
 * the case should stop reached the upstream.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';

/** Writes `bytes` (optionally in timed pieces) and collects everything until the server closes or `waitMs` passes. */
function raw(port: number, pieces: readonly (string | { pause: number })[], options: { from?: string; waitMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: options.from ?? STRANGER });
    let data = '';
    const done = setTimeout(() => socket.destroy(), options.waitMs ?? 2_000);
    socket.on('data', (d: Buffer) => { data += d.toString('latin1'); });
    socket.on('close', () => { clearTimeout(done); resolve(data); });
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
    void (async () => {
      for (const piece of pieces) {
        if (typeof piece === 'string') socket.write(piece);
        else await new Promise((r) => setTimeout(r, piece.pause));
        if (socket.destroyed) return;
      }
    })();
  });
}

/** The status code and JSON reason of the first response in `text` ('' when none came back). */
function firstResponse(text: string): { status: number; reason?: string } {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  if (match === null) return { status: 0 };
  const reason = /"reason":"([a-z_]+)"/.exec(text)?.[1];
  return reason === undefined ? { status: Number(match[1]) } : { status: Number(match[1]), reason };
}

const lockOffice = async (gw: GatewayProcess): Promise<void> => {
  expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
};
// One gateway for the whole file: anonymous callers are refused (401), /health is exempt.
const stack = echoGatewayAround({
  config: 'identity:\n  anonymous: deny\n  exemptPaths: [/health]\nlimits:\n  headersTimeoutMs: 1000\n  requestTimeoutMs: 1500\n',
  setup: lockOffice,
});

describe('protocol: smuggling, open-proxy and resource-exhaustion probes', () => {

  const seen = (marker: string): boolean => stack.upstream.seen.some((r) => r.url.includes(marker));

  interface Probe {
    readonly name: string;
    readonly request: string;
    readonly from: string;
    readonly expected: { status: number; reason?: string };
    /** A path that must never reach the upstream. */
    readonly never?: string;
  }
  const clte = `0\r\n\r\nGET /smuggled-clte HTTP/1.1\r\nHost: gw\r\n\r\n`;
  const PROBES: readonly Probe[] = [
    { name: 'Content-Length with Transfer-Encoding (CL.TE)', from: OFFICE, never: '/smuggled-clte', expected: { status: 400, reason: 'bad_request' },
      request: `POST /a HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\nContent-Length: ${clte.length}\r\nTransfer-Encoding: chunked\r\n\r\n${clte}` },
    { name: 'two different Content-Length values', from: OFFICE, expected: { status: 400, reason: 'bad_request' },
      request: 'POST /a HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello' },
    { name: 'obsolete line folding hiding a second header value', from: OFFICE, never: '/fold', expected: { status: 400, reason: 'bad_request' },
      request: 'GET /fold HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\n X-Auth-ID: AC2\r\n\r\n' },
    { name: 'a chunked body with a bad chunk size', from: OFFICE, expected: { status: 400, reason: 'bad_request' },
      request: 'POST /chunk HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n' },
    // Rack parses a POST body without Content-Type as a form, where a bearer token could hide.
    { name: 'a POST body without Content-Type or Authorization (a form to Rack)', from: OFFICE, never: '/untyped', expected: { status: 400, reason: 'ambiguous_credentials' },
      request: 'POST /untyped HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\nContent-Length: 5\r\n\r\nhello' },
    { name: 'an absolute-form target (never an open proxy)', from: OFFICE, never: '/steal', expected: { status: 400, reason: 'invalid_request_target' },
      request: 'GET http://evil.example/steal HTTP/1.1\r\nHost: evil.example\r\nX-Auth-ID: AC1\r\n\r\n' },
    { name: 'CONNECT (never a tunnel)', from: OFFICE, expected: { status: 405, reason: 'method_not_allowed' },
      request: 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nX-Auth-ID: AC1\r\n\r\n' },
    { name: 'the asterisk-form target (OPTIONS *)', from: OFFICE, expected: { status: 400, reason: 'invalid_request_target' },
      request: 'OPTIONS * HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\n\r\n' },
    { name: 'headers over the size limit', from: OFFICE, never: '/big', expected: { status: 431, reason: 'headers_too_large' },
      request: `GET /big HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n` },
    // Node charges overhead per header line: 3,000 three-byte headers exceed 16 KiB, so none can
    // hide past Node's 2,000-header cut.
    { name: 'thousands of tiny headers', from: STRANGER, never: '/many', expected: { status: 431, reason: 'headers_too_large' },
      request: `GET /many HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\n${'a:1\r\n'.repeat(3_000)}X-Auth-ID: AC2\r\n\r\n` },
    { name: 'a WebSocket upgrade from a denied address', from: STRANGER, expected: { status: 403, reason: 'ip_not_allowed' },
      request: 'GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Auth-ID: AC1\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n' },
  ];

  it.each(PROBES.map((p) => [p.name, p] as const))('refuses %s', async (_name, probe) => {
    const text = await raw(stack.gw.port, [probe.request], { from: probe.from });
    expect(firstResponse(text)).toEqual(probe.expected);
    if (probe.never !== undefined) expect(seen(probe.never)).toBe(false);
  });

  it('drops a caller that sends its headers too slowly (slowloris)', async () => {
    const started = Date.now();
    const text = await raw(stack.gw.port, ['GET /slow-headers HTTP/1.1\r\nHost: gw\r\n', { pause: 800 }, 'X-A: 1\r\n', { pause: 800 }, 'X-B: 1\r\n', { pause: 800 }, 'X-C: 1\r\n'], { from: OFFICE, waitMs: 5_000 });
    expect(firstResponse(text)).toEqual({ status: 408, reason: 'request_timeout' });
    expect(Date.now() - started).toBeLessThan(4_500);
    expect(seen('/slow-headers')).toBe(false);
  });

  it('ends an exchange whose body never finishes arriving', async () => {
    const started = Date.now();
    const text = await raw(stack.gw.port, ['POST /slow-body HTTP/1.1\r\nHost: gw\r\nX-Auth-ID: AC1\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\nonly-part'], { from: OFFICE, waitMs: 6_000 });
    expect(Date.now() - started).toBeLessThan(5_500);
    // The request was already streaming to the upstream when the body stalled: the caller is
    // told it timed out, and the upstream sees its request end unfinished.
    expect(firstResponse(text)).toEqual({ status: 408, reason: 'request_timeout' });
  });

  it('stayed up through all of it', async () => {
    expect(stack.gw.child.exitCode).toBeNull();
    expect((await stack.gw.admin('GET', '/healthz')).status).toBe(200);
  });
});

describe('paths: no spelling of a protected route passes as exempt', () => {
  // Without credentials, anything not exempt is 401 missing_credentials.
  const EXEMPT = ['/health', '/health/live', '/health?probe=1'];
  const NOT_EXEMPT = [
    '/health/../v1/secret', '/health/%2e%2e/v1/secret', '/health/%2E%2E/v1/secret', '/health/.%2e/v1/secret',
    '/health%2f..%2fv1/secret', '/health/..%2fv1/secret', '/health//../v1/secret',
    '/./health/../v1/secret', '/health/./../v1/secret', '/HEALTH', '/Health/x', '/health./', '/health.', '/health..',
    '/health;x=1', '/health\\..\\v1\\secret', '/healthz', '/health-admin', '/v1/health', '/health%00', '/health%20',
  ];

  it.each(EXEMPT)('%s is exempt', async (path) => {
    const text = await raw(stack.gw.port, [`GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`]);
    expect(firstResponse(text).status).toBe(200);
  });

  it.each(NOT_EXEMPT)('%s goes through the full checks', async (path) => {
    const text = await raw(stack.gw.port, [`GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`]);
    expect(firstResponse(text), path).toEqual({ status: 401, reason: 'missing_credentials' });
  });
});

describe('request targets that URL parsers read as a host name and a path', () => {
  // Anonymous callers pass here and the account comes from the path: a target the gateway matched
  // no template in, while the upstream routes /v1/Account/AC1/Call, would reach it as anonymous.
  const pathStack = stack.also('identity:\n  strategies:\n    - {type: path, templates: ["/v1/Account/{account}/"]}\n', lockOffice);
  const seen = (marker: string): boolean => stack.upstream.seen.some((r) => r.url.includes(marker));
  const networkPathSeen = (): boolean => stack.upstream.seen.some((r) => r.url.includes('evil') || /^(\/\/|\/\\|\\)/.test(r.url));

  const TARGETS = [
    '//evil/v1/Account/AC1/Call', '//evil@x/v1/Account/AC1/Call', '//127.0.0.1:1/v1/Account/AC1/Call', '/\\evil/v1/Account/AC1/Call',
    '//evil/v1/Account/AC1/Call?x=1', '///v1/Account/AC1/Call', '/\\/v1/Account/AC1/Call', '\\evil/v1/Account/AC1/Call',
  ];
  it.each(TARGETS)('GET %s is refused before any template is matched', async (target) => {
    const text = await raw(pathStack.gw.port, [`GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`]);
    expect(firstResponse(text), target).toEqual({ status: 400, reason: target.startsWith('\\') ? expect.stringMatching(/^(invalid_request_target|bad_request)$/) : 'invalid_request_target' });
    expect(networkPathSeen()).toBe(false);
  });

  it('refuses the same targets as a WebSocket upgrade', async () => {
    const text = await raw(pathStack.gw.port, ['GET //evil/v1/Account/AC1/Call HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n']);
    expect(firstResponse(text)).toEqual({ status: 400, reason: 'invalid_request_target' });
    expect(networkPathSeen()).toBe(false);
  });

  it('still checks the account in an ordinary target, and lets paths with // further on through', async () => {
    expect(firstResponse(await raw(pathStack.gw.port, ['GET /v1/Account/AC1/Call HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n']))).toEqual({ status: 403, reason: 'ip_not_allowed' });
    expect(firstResponse(await raw(pathStack.gw.port, ['GET /v1/Account/AC1/Call HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n'], { from: OFFICE }))).toEqual({ status: 200 });
    expect(firstResponse(await raw(pathStack.gw.port, ['GET /v2/files//x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n']))).toEqual({ status: 200 });
    expect(seen('/v2/files//x')).toBe(true);
  });
});

describe('paths: // at the start is refused, not matched against exempt paths', () => {
  it('//health/../v1/secret', async () => {
    const text = await raw(stack.gw.port, ['GET //health/../v1/secret HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n']);
    expect(firstResponse(text)).toEqual({ status: 400, reason: 'invalid_request_target' });
  });
});
