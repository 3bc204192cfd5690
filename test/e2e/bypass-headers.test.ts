import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';
import { unsignedJwt } from '../unit/identity/support.ts';

/*
 * Header spellings, Connection tricks, duplicate Host, unreadable Authorization and forwarded
 * addresses, against the real gateway process. LOCKED has a list admitting OFFICE only; OPEN has
 * none. Anonymous callers pass (the default), which is what makes an alias dangerous: a request
 * the gateway takes for anonymous reaches an upstream that reads LOCKED's credential in it.
 * Every case states the exact status and reason, and what the upstream received: nothing for a
 * refusal, the checked values for a forwarded request.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const PROXY = '127.0.0.10';
const PROXY2 = '127.0.0.11';
const SPOOF = '127.0.0.99';
const LOCKED = 'AC1';
const OPEN = 'AC2';
const basic = (user: string): string => `Basic ${Buffer.from(`${user}:secret`).toString('base64')}`;

type Headers = readonly (readonly [string, string])[];

interface Case {
  readonly name: string;
  readonly from: string;
  readonly headers: Headers;
  readonly status: number;
  readonly reason?: string;
  /** For a forwarded request: headers the upstream must have received (lower-case names; null: absent). */
  readonly upstream?: Readonly<Record<string, string | null>>;
}

const refused = (name: string, headers: Headers, reason: string, status = 400, from = STRANGER): Case => ({ name, from, headers, status, reason });

const ALIASES: readonly Case[] = [
  ...['X_Auth_ID', 'x_auth_id', 'X_AUTH_ID', 'X.Auth.ID', 'x.auth.id', 'X-Auth_ID', 'X_Auth-ID', 'x.auth_id', 'X-Auth.ID', 'x_AUTH.id']
    .map((name) => refused(`${name} naming a locked account`, [[name, LOCKED]], 'ambiguous_header')),
  refused('an alias beside the real header (open account in the real one)', [['X-Auth-ID', OPEN], ['X_Auth_ID', LOCKED]], 'ambiguous_header'),
  refused('an alias after the real header, same account', [['X-Auth-ID', LOCKED], ['x_auth_id', LOCKED]], 'ambiguous_header'),
  refused('an alias with Basic credentials for the open account', [['Authorization', basic(OPEN)], ['X.Auth.ID', LOCKED]], 'ambiguous_header'),
  ...['X_Forwarded_For', 'x.forwarded.for', 'X-Forwarded_For', 'X_Real_IP', 'X.Real.IP', 'x_real-ip', 'X_Forwarded_Host', 'X_Forwarded_Proto', 'X_Request_Id', 'x.request.id',
    'X_Forwarded_Port', 'X_Forwarded_Prefix', 'X-Forwarded-Client_Cert', 'X_Forwarded', 'True_Client_IP', 'Client_IP', 'client.ip', 'CF_Connecting_IP', 'X_Client_IP',
    'X_Cluster_Client_IP', 'X_Original_Forwarded_For', 'Fastly_Client_IP', 'X_Originating_IP', 'X_Remote_Addr', 'X_Envoy_External_Address']
    .map((name) => refused(`${name} claiming the office address`, [['X-Auth-ID', LOCKED], [name, OFFICE]], 'ambiguous_header')),
  // Client-address names under the pattern, and the literal CGI variable names a client may send.
  ...['HTTP_CLIENT_IP', 'HTTP_X_FORWARDED_FOR', 'Proxy_Client_IP', 'WL_Proxy_Client_IP', 'Fly_Client_IP', 'DO_Connecting_IP', 'X_Vercel_Forwarded_For',
    'CloudFront_Viewer_Address', 'X_Appengine_Remote_Addr', 'Incap.Client.IP', 'X_Coming_From', 'Some_Vendor_Real_IP']
    .map((name) => refused(`${name} claiming the office address`, [['X-Auth-ID', LOCKED], [name, OFFICE]], 'ambiguous_header')),
];

const CONNECTION: readonly Case[] = [
  refused('Connection naming the credential header', [['X-Auth-ID', OPEN], ['Connection', 'close, X-Auth-ID']], 'invalid_connection_header'),
  refused('Connection naming the credential header, and an alias for the locked account', [['X-Auth-ID', OPEN], ['X_Auth_ID', LOCKED], ['Connection', 'X-Auth-ID']], 'ambiguous_header'),
  refused('Connection naming Authorization', [['Authorization', basic(OPEN)], ['Connection', 'keep-alive, Authorization']], 'invalid_connection_header'),
  refused('Connection naming Authorization when none is sent', [['Connection', 'authorization']], 'invalid_connection_header'),
  refused('Connection naming X-Forwarded-For', [['Connection', 'X-Forwarded-For']], 'invalid_connection_header'),
  refused('Connection naming X-Real-IP', [['Connection', 'x-real-ip']], 'invalid_connection_header'),
  refused('Connection naming Forwarded', [['Connection', 'Forwarded']], 'invalid_connection_header'),
  refused('Connection naming X-Forwarded-Host', [['Connection', 'X-Forwarded-Host']], 'invalid_connection_header'),
  refused('Connection naming X-Forwarded-Proto', [['Connection', 'x-forwarded-proto']], 'invalid_connection_header'),
  refused('Connection naming X-Forwarded-Port', [['Connection', 'x-forwarded-port']], 'invalid_connection_header'),
  refused('Connection naming X-Request-Id', [['Connection', 'X-Request-Id']], 'invalid_connection_header'),
  refused('Connection naming Host', [['Connection', 'Host']], 'invalid_connection_header'),
  refused('Connection naming True-Client-IP', [['Connection', 'True-Client-IP']], 'invalid_connection_header'),
  refused('Connection naming an alias of the credential header', [['X-Auth-ID', OPEN], ['Connection', 'X_Auth_ID']], 'invalid_connection_header'),
  refused('Connection with spaces and tabs around the name', [['X-Auth-ID', OPEN], ['Connection', ' keep-alive ,\tx-auth-id\t']], 'invalid_connection_header'),
  refused('a second Connection header naming the credential header', [['X-Auth-ID', OPEN], ['Connection', 'keep-alive'], ['Connection', 'X-AUTH-ID']], 'invalid_connection_header'),
  { name: 'Connection naming an ordinary header drops only that header', from: STRANGER, headers: [['X-Auth-ID', OPEN], ['Connection', 'close, X-Trace'], ['X-Trace', '1']], status: 200, upstream: { 'x-auth-id': OPEN, 'x-trace': null } },
];

const SMALLER: readonly Case[] = [
  refused('two Host headers', [['Host', 'other.example'], ['X-Auth-ID', OPEN]], 'invalid_host'),
  refused('two Host headers, different case', [['host', 'api.example'], ['X-Auth-ID', OPEN]], 'invalid_host'),
  refused('Authorization with an unknown scheme', [['Authorization', `Digest username="${LOCKED}"`]], 'unsupported_authorization', 401),
  refused('Authorization with a token scheme', [['Authorization', 'Token abc']], 'unsupported_authorization', 401),
  refused('Authorization with AWS signature', [['Authorization', `AWS4-HMAC-SHA256 Credential=${LOCKED}/20260101/us-east-1/s3/aws4_request`]], 'unsupported_authorization', 401),
  refused('Authorization: a no-break space after Basic', [['Authorization', `Basic\u00a0${Buffer.from(`${LOCKED}:x`).toString('base64')}`]], 'invalid_authorization'),
  refused('Authorization: a colon after Basic', [['Authorization', `Basic:${Buffer.from(`${LOCKED}:x`).toString('base64')}`]], 'invalid_authorization'),
  refused('Authorization: a comma after Bearer', [['Authorization', `Bearer,${unsignedJwt({ iss: LOCKED })}`]], 'invalid_authorization'),
  refused('Authorization: empty', [['Authorization', '']], 'invalid_authorization'),
  refused('Authorization: a Latin-1 letter in the scheme', [['Authorization', `Basi\u00e7 ${Buffer.from(`${LOCKED}:x`).toString('base64')}`]], 'invalid_authorization'),
  { name: 'Authorization: a tab after Bearer still reads the token', from: STRANGER, headers: [['Authorization', `Bearer\t${unsignedJwt({ iss: LOCKED })}`]], status: 403, reason: 'ip_not_allowed' },
  { name: 'Authorization: Basic in upper case reads the account', from: STRANGER, headers: [['Authorization', basic(LOCKED).replace('Basic', 'BASIC')]], status: 403, reason: 'ip_not_allowed' },
  { name: 'the httpoxy Proxy header is not passed on', from: STRANGER, headers: [['X-Auth-ID', OPEN], ['Proxy', 'http://127.0.0.99:1']], status: 200, upstream: { proxy: null, 'x-auth-id': OPEN } },
];

const ADDRESSES: readonly Case[] = [
  { name: 'direct caller: its X-Forwarded-For, X-Real-IP and Forwarded claims are replaced by the peer', from: OFFICE,
    headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', SPOOF], ['X-Real-IP', SPOOF], ['Forwarded', `for=${SPOOF}`]], status: 200,
    upstream: { 'x-forwarded-for': OFFICE, 'x-real-ip': OFFICE, forwarded: `for=${OFFICE}` } },
  { name: 'direct caller: other client-address headers are removed', from: OFFICE,
    headers: [['X-Auth-ID', LOCKED], ['Client-IP', SPOOF], ['True-Client-IP', SPOOF], ['CF-Connecting-IP', SPOOF], ['X-Client-IP', SPOOF], ['X-Cluster-Client-IP', SPOOF], ['Fastly-Client-IP', SPOOF], ['X-Original-Forwarded-For', SPOOF], ['X-Forwarded', `for=${SPOOF}`]], status: 200,
    upstream: { 'client-ip': null, 'true-client-ip': null, 'cf-connecting-ip': null, 'x-client-ip': null, 'x-cluster-client-ip': null, 'fastly-client-ip': null, 'x-original-forwarded-for': null, 'x-forwarded': null, 'x-real-ip': OFFICE } },
  { name: 'direct caller: X-Forwarded-Proto, -Host, -Port and -Prefix claims are not passed on', from: OFFICE,
    headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-Proto', 'https'], ['X-Forwarded-Host', 'evil.example'], ['X-Forwarded-Port', '443'], ['X-Forwarded-Prefix', '/admin']], status: 200,
    upstream: { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'api.example', 'x-forwarded-port': null, 'x-forwarded-prefix': null } },
  { name: 'a caller refused by the list is refused whatever X-Real-IP it sends', from: STRANGER, headers: [['X-Auth-ID', LOCKED], ['X-Real-IP', OFFICE]], status: 403, reason: 'ip_not_allowed' },
  { name: 'through the proxy: all three headers name the checked client', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', OFFICE]], status: 200,
    upstream: { 'x-forwarded-for': `${OFFICE}, ${PROXY}`, 'x-real-ip': OFFICE, forwarded: `for=${OFFICE}, for=${PROXY}` } },
  { name: 'through the proxy: a spoofed entry left of the client is dropped', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', `${SPOOF}, ${OFFICE}`]], status: 200,
    upstream: { 'x-forwarded-for': `${OFFICE}, ${PROXY}`, 'x-real-ip': OFFICE } },
  { name: 'through the proxy: many spoofed entries left of the client are dropped', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', `${SPOOF}, ${SPOOF}`], ['X-Forwarded-For', OFFICE]], status: 200,
    upstream: { 'x-forwarded-for': `${OFFICE}, ${PROXY}` } },
  { name: 'through the proxy: the caller\'s X-Real-IP is replaced by the checked client', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', OFFICE], ['X-Real-IP', SPOOF]], status: 200,
    upstream: { 'x-real-ip': OFFICE } },
  { name: 'through the proxy: the caller\'s Forwarded is rewritten to the checked chain', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', OFFICE], ['Forwarded', `for=${SPOOF};host=evil.example;proto=https`]], status: 200,
    upstream: { forwarded: `for=${OFFICE}, for=${PROXY}` } },
  { name: 'direct caller: every header named like a client address is removed', from: OFFICE,
    headers: [['X-Auth-ID', LOCKED], ...['Proxy-Client-IP', 'WL-Proxy-Client-IP', 'Fly-Client-IP', 'X-Appengine-Remote-Addr', 'CloudFront-Viewer-Address', 'DO-Connecting-IP', 'Incap-Client-IP',
      'X-Sucuri-ClientIP', 'Ali-CDN-Real-IP', 'X-Vercel-Forwarded-For', 'X-Nf-Client-Connection-Ip', 'CF-Pseudo-IPv4', 'X-Coming-From', 'Remote-Addr', 'X-Acme-Client-IPv6'].map((name): [string, string] => [name, SPOOF]),
    ['X-Zip', '12345']], status: 200,
    upstream: { 'proxy-client-ip': null, 'wl-proxy-client-ip': null, 'fly-client-ip': null, 'x-appengine-remote-addr': null, 'cloudfront-viewer-address': null, 'do-connecting-ip': null,
      'incap-client-ip': null, 'x-sucuri-clientip': null, 'ali-cdn-real-ip': null, 'x-vercel-forwarded-for': null, 'x-nf-client-connection-ip': null, 'cf-pseudo-ipv4': null,
      'x-coming-from': null, 'remote-addr': null, 'x-acme-client-ipv6': null, 'x-zip': '12345', 'x-real-ip': OFFICE } },
  { name: 'through the proxy: other client-address headers are removed', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', OFFICE], ['True-Client-IP', SPOOF], ['X-Client-IP', SPOOF]], status: 200,
    upstream: { 'true-client-ip': null, 'x-client-ip': null } },
  { name: 'through the proxy: its X-Forwarded-Proto and -Port are kept', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', OFFICE], ['X-Forwarded-Proto', 'https'], ['X-Forwarded-Port', '443']], status: 200,
    upstream: { 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' } },
  { name: 'through two proxies: the hop between client and peer is kept, the spoof is not', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', `${SPOOF}, ${OFFICE}, ${PROXY2}`]], status: 200,
    upstream: { 'x-forwarded-for': `${OFFICE}, ${PROXY2}, ${PROXY}`, 'x-real-ip': OFFICE, forwarded: `for=${OFFICE}, for=${PROXY2}, for=${PROXY}` } },
  { name: 'through the proxy, a stranger claiming the office address on the left is refused', from: PROXY, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded-For', `${OFFICE}, ${STRANGER}`], ['X-Real-IP', OFFICE]], status: 403, reason: 'ip_not_allowed' },
];

/** The headers the gateway writes for the upstream with the account and address it checked. */
const GATEWAY_HEADERS: readonly Case[] = [
  { name: 'a caller\'s X-Allowgate-Account naming the locked account is replaced by the checked one', from: STRANGER, headers: [['X-Auth-ID', OPEN], ['X-Allowgate-Account', LOCKED]], status: 200,
    upstream: { 'x-allowgate-account': OPEN, 'x-allowgate-client-ip': STRANGER } },
  { name: 'an anonymous caller\'s X-Allowgate-Account is removed', from: STRANGER, headers: [['X-Allowgate-Account', LOCKED]], status: 200, upstream: { 'x-allowgate-account': null } },
  { name: 'a caller\'s X-Allowgate-Client-IP naming the office is replaced by the checked client', from: STRANGER, headers: [['X-Auth-ID', OPEN], ['X-Allowgate-Client-IP', OFFICE]], status: 200, upstream: { 'x-allowgate-client-ip': STRANGER } },
  { name: 'two X-Allowgate-Account headers are replaced by one', from: OFFICE, headers: [['X-Auth-ID', LOCKED], ['X-Allowgate-Account', OPEN], ['x-allowgate-account', 'AC9']], status: 200, upstream: { 'x-allowgate-account': LOCKED } },
  refused('X_Allowgate_Account naming the locked account', [['X-Auth-ID', OPEN], ['X_Allowgate_Account', LOCKED]], 'ambiguous_header'),
  refused('x.allowgate.account naming the locked account', [['X-Auth-ID', OPEN], ['x.allowgate.account', LOCKED]], 'ambiguous_header'),
  refused('X_Allowgate_Client_IP claiming the office', [['X-Auth-ID', LOCKED], ['X_Allowgate_Client_IP', OFFICE]], 'ambiguous_header'),
  refused('Connection naming X-Allowgate-Account', [['X-Auth-ID', OPEN], ['Connection', 'X-Allowgate-Account']], 'invalid_connection_header'),
];

async function check(gw: GatewayProcess, upstream: EchoUpstream, c: Case, path: string): Promise<void> {
  const reply = await send(`${gw.url}${path}`, { headers: [['Host', 'api.example'], ...c.headers], localAddress: c.from });
  const body = reply.status === 200 ? {} : reply.json();
  expect({ status: reply.status, reason: body['reason'] }, c.name).toEqual({ status: c.status, reason: c.reason });
  const seen = upstream.seen.find((r) => r.url === path);
  if (c.status !== 200) {
    expect(seen, `${c.name}: reached the upstream`).toBeUndefined();
    return;
  }
  expect(seen, `${c.name}: did not reach the upstream`).toBeDefined();
  for (const [name, value] of Object.entries(c.upstream ?? {})) expect(seen!.headers[name] ?? null, `${c.name}: ${name}`).toBe(value);
}

async function gatewayWith(upstream: EchoUpstream, yaml: string, env: Record<string, string> = {}): Promise<{ gw: GatewayProcess; remove: () => void }> {
  const dir = scratchDir();
  const config = join(dir.path, 'allowgate.yaml');
  writeFileSync(config, yaml);
  const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config, ...env } });
  expect((await gw.admin('POST', `/v1/accounts/${LOCKED}/ip-acl`, { ip_address: `${OFFICE}/32` })).status).toBe(201);
  return { gw, remove: dir.remove };
}

describe('headers: what the gateway reads is what the upstream reads', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let remove: () => void;
  let n = 0;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    ({ gw, remove } = await gatewayWith(upstream, `clientIp:\n  trustedProxies: [${PROXY}, ${PROXY2}]\n`));
  });
  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    remove?.();
  });

  describe('header-name aliases', () => {
    it.each(ALIASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => check(gw, upstream, c, `/alias/${n++}`));
  });
  describe('Connection naming what the gateway reads or writes', () => {
    it.each(CONNECTION.map((c) => [c.name, c] as const))('%s', async (_name, c) => check(gw, upstream, c, `/connection/${n++}`));
  });
  describe('Host and Authorization', () => {
    it.each(SMALLER.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      // The two-Host cases carry their second Host in the case; the first is the one every request sends.
      await check(gw, upstream, c, `/smaller/${n++}`);
    });
  });
  describe('forwarded addresses', () => {
    it.each(ADDRESSES.map((c) => [c.name, c] as const))('%s', async (_name, c) => check(gw, upstream, c, `/address/${n++}`));
  });

  describe('the headers the gateway writes for the upstream', () => {
    it.each(GATEWAY_HEADERS.map((c) => [c.name, c] as const))('%s', async (_name, c) => check(gw, upstream, c, `/written/${n++}`));
  });

  it('stayed up through all of it', async () => {
    expect(gw.child.exitCode).toBeNull();
    expect((await gw.admin('GET', '/healthz')).status).toBe(200);
  });
});

describe('headers: X-Forwarded-For is rebuilt from the header the client was read from', () => {
  let upstream: EchoUpstream;
  beforeAll(async () => {
    upstream = await startEchoUpstream();
  });
  afterAll(async () => upstream?.close());

  it('clientIp.header: forwarded: a caller\'s X-Forwarded-For never names another client upstream', async () => {
    const { gw, remove } = await gatewayWith(upstream, `clientIp:\n  trustedProxies: [${PROXY}]\n  header: forwarded\n`);
    try {
      await check(gw, upstream, { name: 'Forwarded names the office, X-Forwarded-For a spoof', from: PROXY, status: 200,
        headers: [['X-Auth-ID', LOCKED], ['Forwarded', `for=${OFFICE}`], ['X-Forwarded-For', SPOOF]],
        upstream: { 'x-forwarded-for': `${OFFICE}, ${PROXY}`, 'x-real-ip': OFFICE, forwarded: `for=${OFFICE}, for=${PROXY}` } }, '/fwd/1');
      await check(gw, upstream, { name: 'Forwarded names the stranger, X-Forwarded-For the office', from: PROXY, status: 403, reason: 'ip_not_allowed',
        headers: [['X-Auth-ID', LOCKED], ['Forwarded', `for=${STRANGER}`], ['X-Forwarded-For', OFFICE]] }, '/fwd/2');
    } finally {
      await gw.stop();
      remove();
    }
  });

  it('clientIp.header: x-real-ip: X-Forwarded-For and Forwarded follow the checked X-Real-IP', async () => {
    const { gw, remove } = await gatewayWith(upstream, `clientIp:\n  trustedProxies: [${PROXY}]\n  header: x-real-ip\n`);
    try {
      await check(gw, upstream, { name: 'X-Real-IP names the office, the others a spoof', from: PROXY, status: 200,
        headers: [['X-Auth-ID', LOCKED], ['X-Real-IP', OFFICE], ['X-Forwarded-For', SPOOF], ['Forwarded', `for=${SPOOF}`]],
        upstream: { 'x-forwarded-for': `${OFFICE}, ${PROXY}`, 'x-real-ip': OFFICE, forwarded: `for=${OFFICE}, for=${PROXY}` } }, '/real/1');
    } finally {
      await gw.stop();
      remove();
    }
  });
});

describe('headers.underscores', () => {
  let upstream: EchoUpstream;
  beforeAll(async () => {
    upstream = await startEchoUpstream();
  });
  afterAll(async () => upstream?.close());

  it('pass (default) forwards other names with _, drop removes them, refuse answers 400; aliases are refused in every mode', async () => {
    for (const [mode, expected] of [['pass', 'yes'], ['drop', null], ['refuse', 'refused']] as const) {
      const { gw, remove } = await gatewayWith(upstream, `headers:\n  underscores: ${mode}\n`);
      try {
        const custom = { name: `${mode}: X_Custom_Flag`, from: STRANGER, headers: [['X-Auth-ID', OPEN], ['X_Custom_Flag', 'yes']] as Headers };
        if (expected === 'refused') await check(gw, upstream, { ...custom, status: 400, reason: 'invalid_header_name' }, `/us/${mode}/1`);
        else await check(gw, upstream, { ...custom, status: 200, upstream: { x_custom_flag: expected, 'x-auth-id': OPEN } }, `/us/${mode}/1`);
        await check(gw, upstream, refused(`${mode}: X_Auth_ID`, [['X-Auth-ID', OPEN], ['X_Auth_ID', LOCKED]], 'ambiguous_header'), `/us/${mode}/2`);
      } finally {
        await gw.stop();
        remove();
      }
    }
  });
});

describe('identity.unreadableAuthorization: anonymous', () => {
  let upstream: EchoUpstream;
  beforeAll(async () => {
    upstream = await startEchoUpstream();
  });
  afterAll(async () => upstream?.close());

  const unreadable: Headers[] = [
    [['Authorization', `Digest username="${LOCKED}"`]],
    [['Authorization', `Basic\u00a0${Buffer.from(`${LOCKED}:x`).toString('base64')}`]],
    [['Authorization', `Bearer,${unsignedJwt({ iss: LOCKED })}`]],
  ];

  it('passes an unreadable Authorization as an anonymous caller (anonymous: pass), the upstream authenticating it', async () => {
    const { gw, remove } = await gatewayWith(upstream, 'identity:\n  unreadableAuthorization: anonymous\n');
    try {
      for (const [i, headers] of unreadable.entries()) {
        await check(gw, upstream, { name: `pass: ${headers[0]![1]}`, from: STRANGER, headers, status: 200, upstream: { authorization: headers[0]![1] } }, `/anon-pass/${i}`);
      }
      // Readable credentials are read as ever: the locked account from a stranger is refused.
      await check(gw, upstream, { name: 'pass: readable Basic', from: STRANGER, headers: [['Authorization', basic(LOCKED)]], status: 403, reason: 'ip_not_allowed' }, '/anon-pass/readable');
    } finally {
      await gw.stop();
      remove();
    }
  });

  it('refuses it like any caller without credentials under anonymous: deny', async () => {
    const { gw, remove } = await gatewayWith(upstream, 'identity:\n  unreadableAuthorization: anonymous\n  anonymous: deny\n');
    try {
      for (const [i, headers] of unreadable.entries()) {
        await check(gw, upstream, refused(`deny: ${headers[0]![1]}`, headers, 'missing_credentials', 401), `/anon-deny/${i}`);
      }
    } finally {
      await gw.stop();
      remove();
    }
  });
});
