import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send, type Reply } from '../support/http.ts';
import { startCaddy, startNginx, type ProxyProcess } from '../support/proxies.ts';
import { scratchDir } from '../support/scratch.ts';
import { pollUntil } from '../support/wait.ts';

/**
 * allowgate as the decision service of a real nginx (auth_request) and a real Caddy
 * (forward_auth), each in front of a real upstream, configured by the very example files the docs
 * show (docs/authz/). allowgate runs with no proxy listener and no upstream of its own. Callers
 * play from distinct loopback addresses; the proxies reach allowgate from 127.0.0.1, its one
 * trusted proxy.
 */

const DOCS = fileURLToPath(new URL('../../docs/authz/', import.meta.url));
const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const ANONYMOUS = '127.0.0.4';
const LATECOMER = '127.0.0.5';

const basic = (user: string): string => `Basic ${Buffer.from(`${user}:secret`).toString('base64')}`;

interface Setup {
  readonly name: string;
  /** allowgate's client-IP source for this proxy's check requests. */
  readonly forwardedHeader: string;
  /** The surface label its checks are counted under. */
  readonly surface: string;
  start(authzPort: number, upstreamPort: number): Promise<ProxyProcess>;
}

/** The example file with this test's ports: allowgate's authz listener and the upstream. */
function example(file: string, authzPort: number, upstreamPort: number): string {
  const text = readFileSync(join(DOCS, file), 'utf8');
  expect(text).toContain('127.0.0.1:9191');
  expect(text).toContain('127.0.0.1:3000');
  return text.replaceAll('127.0.0.1:9191', `127.0.0.1:${authzPort}`).replaceAll('127.0.0.1:3000', `127.0.0.1:${upstreamPort}`);
}

const SETUPS: Setup[] = [
  {
    name: 'nginx auth_request',
    forwardedHeader: 'x-real-ip',
    surface: 'auth-request',
    start: (authzPort, upstreamPort) => startNginx((port) => {
      const conf = example('nginx.conf', authzPort, upstreamPort);
      expect(conf).toContain('listen 80;');
      return conf.replace('listen 80;', `listen 127.0.0.1:${port};`);
    }),
  },
  {
    name: 'Caddy forward_auth',
    forwardedHeader: 'x-forwarded-for',
    surface: 'forward-auth',
    start: (authzPort, upstreamPort) => startCaddy((port) => {
      const file = example('Caddyfile', authzPort, upstreamPort);
      expect(file).toContain(':80 {');
      return file.replace(':80 {', `:${port} {\n\tbind 127.0.0.1`);
    }),
  },
];

describe.each(SETUPS)('external authorization behind a real $name', (setup) => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let proxy: ProxyProcess;
  const dir = scratchDir();

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    const config = join(dir.path, 'allowgate.yaml');
    writeFileSync(config, 'identity:\n  exemptPaths: [/health]\n');
    gw = await startGateway({
      args: ['--config', config],
      env: {
        ALLOWGATE_LISTEN: 'off',
        ALLOWGATE_AUTHZ_LISTEN: '127.0.0.1:0',
        ALLOWGATE_TRUSTED_PROXIES: '127.0.0.1',
        ALLOWGATE_FORWARDED_HEADER: setup.forwardedHeader,
      },
    });
    expect(gw.port).toBe(0);
    expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: OFFICE })).status).toBe(201);
    expect((await gw.admin('POST', '/v1/accounts/AC2/ip-acl', { ip_address: OFFICE })).status).toBe(201);
    proxy = await setup.start(gw.authzPort, upstream.port);
  }, 30_000);

  afterAll(async () => {
    await proxy?.stop();
    await gw?.stop();
    await upstream?.close();
    dir.remove();
  });

  /** A request through the proxy; the upstream's echo of it when it got that far. */
  const call = async (from: string, headers: readonly (readonly [string, string])[], path = '/v1/Account/AC1/Calls?limit=5'): Promise<{ reply: Reply; seen: EchoUpstream['seen'][number] | undefined }> => {
    const before = upstream.seen.length;
    const reply = await send(`${proxy.url}${path}`, { localAddress: from, headers: [['host', `127.0.0.1:${proxy.port}`], ...headers] });
    return { reply, seen: upstream.seen.slice(before).find((r) => r.url === path) };
  };

  const refusalOf = (reply: Reply): { error: string; code: number; reason: string; request_id: string } => {
    expect(reply.headers['content-type']).toContain('application/json');
    const body = reply.json<{ error: string; code: number; reason: string; request_id: string }>();
    expect(body.code).toBe(reply.status);
    expect(reply.headers['x-request-id']).toBe(body.request_id);
    return body;
  };

  it('lets an allowed caller through, and the upstream reads the account and address that were checked, never the client\'s own', async () => {
    const { reply, seen } = await call(OFFICE, [['x-auth-id', 'AC1'], ['x-allowgate-account', 'AC9'], ['x-allowgate-client-ip', '203.0.113.9'], ['x-forwarded-for', '203.0.113.9']]);
    expect(reply.status, proxy.output()).toBe(200);
    expect(seen).toBeDefined();
    expect(seen!.method).toBe('GET');
    expect(seen!.headers['x-allowgate-account']).toBe('AC1');
    expect(seen!.headers['x-allowgate-client-ip']).toBe(OFFICE);
    expect(seen!.headers['x-forwarded-for']).toBe(OFFICE);
  });

  it('refuses a caller outside the list with the proxy\'s 403 JSON body, before the upstream sees it', async () => {
    const { reply, seen } = await call(STRANGER, [['x-auth-id', 'AC1']]);
    expect(reply.status).toBe(403);
    const body = refusalOf(reply);
    expect(body.reason).toBe('ip_not_allowed');
    expect(body.error).toBe(`IP address ${STRANGER} is not allowed for account AC1`);
    expect(seen).toBeUndefined();
  });

  it('judges a caller that forges X-Forwarded-For and X-Real-IP by its own address', async () => {
    const { reply, seen } = await call(STRANGER, [['x-auth-id', 'AC1'], ['x-forwarded-for', OFFICE]]);
    expect(reply.status).toBe(403);
    expect(refusalOf(reply).error).toContain(STRANGER);
    expect(seen).toBeUndefined();
    // X-Real-IP and Forwarded naming the office as well: claims the upstream could read, refused.
    const claimed = await call(STRANGER, [['x-auth-id', 'AC1'], ['x-forwarded-for', OFFICE], ['x-real-ip', OFFICE], ['forwarded', `for=${OFFICE}`]]);
    expect(claimed.reply.status).toBe(400);
    expect(refusalOf(claimed.reply).reason).toBe('ambiguous_client_address');
    expect(claimed.seen).toBeUndefined();
    // And a forged chain naming a stranger does not shut out the office either.
    const office = await call(OFFICE, [['x-auth-id', 'AC1'], ['x-forwarded-for', STRANGER]]);
    expect(office.reply.status).toBe(200);
    expect(office.seen?.headers['x-allowgate-client-ip']).toBe(OFFICE);
  });

  it('checks the target the upstream serves, not a target the client names in the check\'s own headers', async () => {
    // /health is exempt; a client claiming it in the headers the proxy sets is still checked:
    // the proxy replaces the header it sets, and one it does not set (nginx here sets
    // X-Original-URI, not X-Original-URL) must agree with it.
    const forged = await call(STRANGER, [['x-auth-id', 'AC1'], ['x-original-uri', '/health'], ['x-forwarded-uri', '/health']]);
    expect(forged.reply.status).toBe(403);
    expect(refusalOf(forged.reply).reason).toBe('ip_not_allowed');
    expect(forged.seen).toBeUndefined();
    const conflicting = await call(OFFICE, [['x-auth-id', 'AC1'], ['x-original-url', 'http://x/health']]);
    if (setup.surface === 'auth-request') {
      expect(conflicting.reply.status).toBe(400);
      expect(refusalOf(conflicting.reply).reason).toBe('invalid_original_uri');
      expect(conflicting.seen).toBeUndefined();
    } else {
      expect(conflicting.reply.status).toBe(200);
    }
    const health = await call(STRANGER, [], '/health');
    expect(health.reply.status).toBe(200);
  });

  it('lets an anonymous caller pass (identity.anonymous: pass) without any account header, even one the client forged', async () => {
    const { reply, seen } = await call(ANONYMOUS, [['x-allowgate-account', 'AC1']]);
    expect(reply.status).toBe(200);
    // nginx drops the empty header; Caddy sends it empty: either way not the client's value.
    expect(seen!.headers['x-allowgate-account'] ?? '').toBe('');
    expect(seen!.headers['x-allowgate-client-ip']).toBe(ANONYMOUS);
  });

  it('refuses credentials that name two accounts, or one header twice, even from an allowed address', async () => {
    const mixed = await call(OFFICE, [['x-auth-id', 'AC1'], ['authorization', basic('AC2')]]);
    expect(mixed.reply.status).toBe(400);
    expect(refusalOf(mixed.reply).reason).toBe('ambiguous_credentials');
    expect(mixed.seen).toBeUndefined();
    const twice = await call(OFFICE, [['x-auth-id', 'AC1'], ['X-Auth-Id', 'AC2']]);
    expect(twice.reply.status).toBe(400);
    expect(refusalOf(twice.reply).reason).toBe('ambiguous_credentials');
    expect(twice.seen).toBeUndefined();
  });

  it('refuses a credential sent under a name upstreams fold into the real one (X_Auth_ID), where the proxy passes such names on', async () => {
    const { reply, seen } = await call(OFFICE, [['x-auth-id', 'AC1'], ['X_Auth_ID', 'AC2']]);
    if (setup.surface === 'auth-request') {
      // nginx drops names with underscores (ignore_invalid_headers on): neither allowgate nor the API sees it.
      expect(reply.status).toBe(200);
      expect(seen!.headers['x_auth_id']).toBeUndefined();
      expect(seen!.headers['x-allowgate-account']).toBe('AC1');
    } else {
      // Caddy passes it on, to the check and to the API alike: a CGI or WSGI upstream would read it as X-Auth-ID.
      expect(reply.status).toBe(400);
      expect(refusalOf(reply).reason).toBe('ambiguous_header');
      expect(seen).toBeUndefined();
    }
  });

  it('refuses a request naming another client address in a header the upstream could read, whichever name it uses', async () => {
    // AC3 has no list: only the claim can make the request fail.
    const claims: [string, string][] = [['Forwarded', `for=${OFFICE}`], ['Forwarded', `for="[::1]"`], ['True-Client-IP', OFFICE], ['X-Client-IP', OFFICE], ['CF-Connecting-IP', OFFICE],
      ['Fly-Client-IP', OFFICE], ['X-Cluster-Client-IP', `${STRANGER}, ${OFFICE}`], ['X-Vendor-Real-IP', OFFICE]];
    // nginx replaces X-Real-IP in the check with the address it saw (allowgate's source); Caddy passes the client's on.
    if (setup.surface === 'forward-auth') claims.push(['X-Real-IP', OFFICE]);
    for (const [name, value] of claims) {
      const before = upstream.seen.length;
      const { reply } = await call(STRANGER, [['x-auth-id', 'AC3'], [name, value]]);
      expect(reply.status, `${name}: ${value}`).toBe(400);
      expect(refusalOf(reply).reason, name).toBe('ambiguous_client_address');
      expect(upstream.seen.length, `${name} reached the upstream`).toBe(before);
    }
  });

  it('passes claims naming the checked client, and the shipped configuration keeps them from the upstream', async () => {
    const { reply, seen } = await call(STRANGER, [['x-auth-id', 'AC3'], ['Forwarded', `for=${STRANGER}`], ['True-Client-IP', STRANGER], ['X-Client-IP', STRANGER], ['CF-Connecting-IP', STRANGER], ['X-Real-IP', STRANGER]]);
    expect(reply.status).toBe(200);
    expect([seen!.headers['forwarded'], seen!.headers['true-client-ip'], seen!.headers['x-client-ip'], seen!.headers['cf-connecting-ip']]).toEqual([undefined, undefined, undefined, undefined]);
    expect(seen!.headers['x-real-ip']).toBe(STRANGER);
    if (setup.surface === 'auth-request') {
      // nginx's check carries its own X-Real-IP: the client's claim goes nowhere, and the upstream reads the address nginx saw.
      const own = await call(STRANGER, [['x-auth-id', 'AC3'], ['X-Real-IP', OFFICE]]);
      expect(own.reply.status).toBe(200);
      expect(own.seen!.headers['x-real-ip']).toBe(STRANGER);
    }
  });

  it('refuses a target that URL parsers read as a host name and a path (//host/...)', async () => {
    for (const path of ['//evil/v1/Account/AC1/Calls', '//evil@x/v1/Account/AC1/Calls', '//127.0.0.1:1/v1/Account/AC1/Calls']) {
      const before = upstream.seen.length;
      const { reply } = await call(STRANGER, [], path);
      expect(reply.status, path).toBe(400);
      expect(refusalOf(reply).reason, path).toBe('invalid_request_target');
      expect(upstream.seen.length, `${path} reached the upstream`).toBe(before);
    }
  });

  it('refuses an X-Original-URL whose authority a client\'s Host could stretch (ingress-nginx writes $scheme://$http_host$request_uri)', async () => {
    const before = upstream.seen.length;
    const { reply } = await call(OFFICE, [['x-auth-id', 'AC1'], ['x-original-url', 'http://api.example.com:?/health']]);
    if (setup.surface === 'auth-request') {
      expect(reply.status).toBe(400);
      expect(refusalOf(reply).reason).toBe('invalid_original_uri');
      expect(upstream.seen.length).toBe(before);
    } else {
      // forward-auth reads X-Forwarded-Uri, which Caddy sets: the header is nobody's business.
      expect(reply.status).toBe(200);
    }
  });

  it('passes a 401 on with its JSON body', async () => {
    const { reply, seen } = await call(OFFICE, [['authorization', 'Basic !!!']]);
    expect(reply.status).toBe(401);
    expect(refusalOf(reply).reason).toBe('invalid_credentials');
    expect(seen).toBeUndefined();
  });

  it('counts the checks under their surface, logs them with the original request, and records recent callers for the lockout guard', async () => {
    await call(LATECOMER, [['x-auth-id', 'AC2']]);
    const text = await (await gw.admin('GET', '/metrics')).text();
    const count = (decision: string, reason: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`allowgate_requests_total{surface="${setup.surface}",decision="${decision}",reason="${reason}"}`));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(count('allow', 'ip_allowed')).toBeGreaterThanOrEqual(2);
    expect(count('deny', 'ip_not_allowed')).toBeGreaterThanOrEqual(4);
    expect(count('deny', 'ambiguous_credentials')).toBe(2);
    expect(count('exempt', 'exempt_path')).toBe(1);
    expect(text).not.toMatch(/allowgate_requests_total\{surface="proxy"/);
    // The log is written asynchronously: wait for the line rather than race it.
    const refused = await pollUntil('the refusal logged', async () => gw.logs.find((l) => l['surface'] === setup.surface && l['client_ip'] === LATECOMER), 5_000);
    expect(refused).toMatchObject({ msg: 'request refused', method: 'GET', url: '/v1/Account/AC1/Calls?limit=5', account: 'AC2', decision: 'deny', reason: 'ip_not_allowed', status: 403 });
    const recent = await pollUntil('the office recorded as a recent caller of AC1', async () => {
      const body = await (await gw.admin('GET', '/v1/accounts/AC1/recent-ips')).json() as { ips: { ip: string }[] };
      return body.ips.some((c) => c.ip === OFFICE) ? body.ips.map((c) => c.ip) : undefined;
    }, 5_000);
    // Refused callers are not the account's callers.
    expect(recent).not.toContain(STRANGER);
  });

  it('fails closed when allowgate cannot be reached: the proxy refuses and the upstream sees nothing', async () => {
    expect(await gw.stop()).toBe(0);
    const { reply, seen } = await call(OFFICE, [['x-auth-id', 'AC1']]);
    // nginx: 500 (the auth subrequest failed); Caddy: 502 (its forward_auth upstream is down).
    expect(reply.status).toBe(setup.surface === 'auth-request' ? 500 : 502);
    expect(seen).toBeUndefined();
  });
});
