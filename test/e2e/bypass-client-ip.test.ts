import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';

/*
 * Attempts to choose one's own client address, against the real gateway process. Account AC1
 * allows only ALLOWED (and one IPv6 host); the trusted proxy is PROXY. Every case states the
 * exact status and reason: a bypass shows up as a 200 where a refusal was due.
 */

const PROXY = '127.0.0.10';
const ALLOWED = '127.0.0.2';
const STRANGER = '127.0.0.3';
const ALLOWED_V6 = '2001:db8::5';

interface Case {
  readonly name: string;
  /** The TCP peer (a loopback source address). */
  readonly peer: string;
  /** Header lines in order, as sent (names in any case, repeats kept). */
  readonly headers: readonly (readonly [string, string])[];
  readonly status: number;
  readonly reason?: string;
}

const XFF = 'X-Forwarded-For';

const XFF_CASES: readonly Case[] = [
  { name: 'XFF from an untrusted peer is ignored', peer: STRANGER, headers: [[XFF, ALLOWED]], status: 403, reason: 'ip_not_allowed' },
  { name: 'XFF naming the allowed address from an untrusted peer, several lines', peer: STRANGER, headers: [[XFF, ALLOWED], [XFF, ALLOWED]], status: 403, reason: 'ip_not_allowed' },
  { name: 'the trusted proxy vouches for the allowed client', peer: PROXY, headers: [[XFF, ALLOWED]], status: 200 },
  { name: 'an allowed address added on the left by the client is not the client', peer: PROXY, headers: [[XFF, `${ALLOWED}, ${STRANGER}`]], status: 403, reason: 'ip_not_allowed' },
  { name: 'a spoofed entry on the left does not hide the real client', peer: PROXY, headers: [[XFF, `${STRANGER}, ${ALLOWED}`]], status: 200 },
  { name: 'a long spoofed chain on the left', peer: PROXY, headers: [[XFF, `${Array.from({ length: 20 }, () => ALLOWED).join(', ')}, ${STRANGER}`]], status: 403, reason: 'ip_not_allowed' },
  { name: 'a chain longer than maxEntries', peer: PROXY, headers: [[XFF, Array.from({ length: 40 }, () => ALLOWED).join(',')]], status: 400, reason: 'forwarded_chain_too_long' },
  { name: 'the limit counts entries across lines', peer: PROXY, headers: [[XFF, Array.from({ length: 20 }, () => ALLOWED).join(',')], [XFF, Array.from({ length: 20 }, () => ALLOWED).join(',')]], status: 400, reason: 'forwarded_chain_too_long' },
  { name: 'spaces and tabs around entries', peer: PROXY, headers: [[XFF, `  ${STRANGER} ,\t${ALLOWED}\t`]], status: 200 },
  { name: 'an empty item in the chain', peer: PROXY, headers: [[XFF, `${STRANGER},,${ALLOWED}`]], status: 200 },
  { name: 'an empty rightmost item', peer: PROXY, headers: [[XFF, `${ALLOWED}, `]], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'a port on an IPv4 entry', peer: PROXY, headers: [[XFF, `${ALLOWED}:4711`]], status: 200 },
  { name: 'a bracketed IPv6 entry with a port', peer: PROXY, headers: [[XFF, `[${ALLOWED_V6}]:443`]], status: 200 },
  { name: 'short IPv4 (127.1 style)', peer: PROXY, headers: [[XFF, '127.2']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'hex IPv4', peer: PROXY, headers: [[XFF, '0x7f.0.0.2']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'octal-looking IPv4', peer: PROXY, headers: [[XFF, '0127.0.0.2']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'leading zero IPv4', peer: PROXY, headers: [[XFF, '127.0.0.02']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'integer IPv4', peer: PROXY, headers: [[XFF, '2130706434']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'IPv4-mapped IPv6 is the IPv4 address', peer: PROXY, headers: [[XFF, `::ffff:${ALLOWED}`]], status: 200 },
  { name: 'IPv4-mapped IPv6 in hex is the IPv4 address', peer: PROXY, headers: [[XFF, '::ffff:7f00:2']], status: 200 },
  { name: 'IPv4-compatible IPv6 is another address', peer: PROXY, headers: [[XFF, `::${ALLOWED}`]], status: 403, reason: 'ip_not_allowed' },
  { name: 'uppercase IPv6', peer: PROXY, headers: [[XFF, ALLOWED_V6.toUpperCase()]], status: 200 },
  { name: 'fully expanded IPv6', peer: PROXY, headers: [[XFF, '2001:0db8:0000:0000:0000:0000:0000:0005']], status: 200 },
  { name: 'IPv6 with a zone id', peer: PROXY, headers: [[XFF, 'fe80::1%eth0']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'the allowed IPv6 host with a zone id', peer: PROXY, headers: [[XFF, `${ALLOWED_V6}%1`]], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'a hostname', peer: PROXY, headers: [[XFF, 'localhost']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'several XFF lines are one chain, in order (client last)', peer: PROXY, headers: [[XFF, STRANGER], [XFF, ALLOWED]], status: 200 },
  { name: 'several XFF lines are one chain, in order (stranger last)', peer: PROXY, headers: [[XFF, ALLOWED], [XFF, STRANGER]], status: 403, reason: 'ip_not_allowed' },
  { name: 'header name in odd case', peer: PROXY, headers: [['x-FORWARDED-for', ALLOWED]], status: 200 },
  { name: 'XFF holding only the trusted proxy: the proxy is the client', peer: PROXY, headers: [[XFF, PROXY]], status: 403, reason: 'ip_not_allowed' },
  { name: 'allowed address then the trusted proxy: walked past the proxy', peer: PROXY, headers: [[XFF, `${ALLOWED}, ${PROXY}`]], status: 200 },
  { name: 'a trusted proxy that sent no XFF', peer: PROXY, headers: [], status: 400, reason: 'missing_forwarded_for' },
  { name: 'Forwarded and X-Real-IP are not read when X-Forwarded-For is the source', peer: PROXY, headers: [['Forwarded', `for=${ALLOWED}`], ['X-Real-IP', ALLOWED]], status: 400, reason: 'missing_forwarded_for' },
  { name: 'X-Real-IP from an untrusted peer', peer: STRANGER, headers: [['X-Real-IP', ALLOWED]], status: 403, reason: 'ip_not_allowed' },
];

const FORWARDED_CASES: readonly Case[] = [
  { name: 'Forwarded for= from the trusted proxy', peer: PROXY, headers: [['Forwarded', `for=${ALLOWED}`]], status: 200 },
  { name: 'Forwarded for= quoted', peer: PROXY, headers: [['Forwarded', `for="${ALLOWED}"`]], status: 200 },
  { name: 'Forwarded for= quoted IPv6 with brackets and port', peer: PROXY, headers: [['Forwarded', `for="[${ALLOWED_V6}]:443"`]], status: 200 },
  // RFC 7239 wants IPv6 quoted; a trusted proxy configured as `for=$remote_addr` writes it bare.
  // Tolerated: it is the proxy's word, not the client's, and reads as exactly one address.
  { name: 'Forwarded unquoted IPv6 from the trusted proxy (tolerated)', peer: PROXY, headers: [['Forwarded', `for=${ALLOWED_V6}`]], status: 200 },
  { name: 'Forwarded with other parameters', peer: PROXY, headers: [['Forwarded', `proto=https;for=${ALLOWED};by=${PROXY}`]], status: 200 },
  { name: 'Forwarded elements: spoofed left, real client right', peer: PROXY, headers: [['Forwarded', `for=${ALLOWED}, for=${STRANGER}`]], status: 403, reason: 'ip_not_allowed' },
  { name: 'Forwarded obfuscated identifier', peer: PROXY, headers: [['Forwarded', 'for=_hidden']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'Forwarded unknown', peer: PROXY, headers: [['Forwarded', 'for=unknown']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'Forwarded short IPv4 in quotes', peer: PROXY, headers: [['Forwarded', 'for="127.2"']], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'Forwarded with two for= in one element', peer: PROXY, headers: [['Forwarded', `for=${STRANGER};for=${ALLOWED}`]], status: 400, reason: 'invalid_forwarded_for' },
  { name: 'Forwarded from an untrusted peer', peer: STRANGER, headers: [['Forwarded', `for=${ALLOWED}`]], status: 403, reason: 'ip_not_allowed' },
  { name: 'X-Forwarded-For is not read when Forwarded is the source', peer: PROXY, headers: [[XFF, ALLOWED]], status: 400, reason: 'missing_forwarded_for' },
];

async function expectCase(gw: GatewayProcess, c: Case): Promise<void> {
  const reply = await send(`${gw.url}/v1/resource`, { headers: [['Host', 'api.example'], ['X-Auth-ID', 'AC1'], ...c.headers], localAddress: c.peer });
  const body = reply.status === 200 ? {} : reply.json();
  expect({ status: reply.status, reason: body['reason'] }, c.name).toEqual({ status: c.status, reason: c.reason });
}

async function gatewayWith(upstream: EchoUpstream, env: Record<string, string>): Promise<GatewayProcess> {
  const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_TRUSTED_PROXIES: PROXY, ...env } });
  for (const ip of [`${ALLOWED}/32`, `${ALLOWED_V6}/128`]) {
    const res = await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: ip });
    expect(res.status).toBe(201);
  }
  return gw;
}

describe('client IP: no spoofing past the trusted proxies (X-Forwarded-For)', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    upstream = await startEchoUpstream();
    gw = await gatewayWith(upstream, {});
  });
  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it.each(XFF_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await expectCase(gw, c);
  });

  it('stayed up through all of it', async () => {
    expect(gw.child.exitCode).toBeNull();
    expect((await gw.admin('GET', '/healthz')).status).toBe(200);
  });
});

describe('client IP: no spoofing past the trusted proxies (Forwarded)', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    upstream = await startEchoUpstream();
    gw = await gatewayWith(upstream, { ALLOWGATE_FORWARDED_HEADER: 'forwarded' });
  });
  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it.each(FORWARDED_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await expectCase(gw, c);
  });
});
