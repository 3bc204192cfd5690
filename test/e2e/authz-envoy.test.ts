import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvoyCheckClient, envoyCheckRequest, type CheckOptions, type EnvoyCheckResponse } from '../support/envoy-check.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { pollUntil } from '../support/wait.ts';

/**
 * Envoy's ext_authz protocols against the real gateway (Envoy itself is not installable here):
 * gRPC through a grpc-js client sending CheckRequests as Envoy's HTTP filter fills them in, and
 * the HTTP service through requests shaped as Envoy sends them. The gateway runs as a decision
 * service only (no proxy listener, no upstream), trusting 127.0.0.1, where the client runs.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const V6_OFFICE = '2001:db8:1::7';
const basic = (user: string): string => `Basic ${Buffer.from(`${user}:secret`).toString('base64')}`;

const header = (response: EnvoyCheckResponse, name: string): string | undefined =>
  response.ok_response?.headers?.find((h) => h.header.key === name)?.header.value;

const refusalOf = (response: EnvoyCheckResponse): { error: string; code: number; reason: string; request_id: string } => {
  expect(response.http_response).toBe('denied_response');
  const denied = response.denied_response!;
  expect(denied.headers?.find((h) => h.header.key === 'content-type')?.header.value).toBe('application/json');
  const body = JSON.parse(denied.body ?? '') as { error: string; code: number; reason: string; request_id: string };
  expect(denied.headers?.find((h) => h.header.key === 'x-request-id')?.header.value).toBe(body.request_id);
  expect(response.status?.message).toBe(body.error);
  return body;
};

describe('Envoy ext_authz', () => {
  let gw: GatewayProcess;
  let client: EnvoyCheckClient;
  const check = (path: string, options: CheckOptions = {}): Promise<EnvoyCheckResponse> => client.check(envoyCheckRequest(path, options));

  beforeAll(async () => {
    gw = await startGateway({
      env: {
        ALLOWGATE_LISTEN: 'off',
        ALLOWGATE_AUTHZ_LISTEN: '127.0.0.1:0',
        ALLOWGATE_AUTHZ_GRPC_LISTEN: '127.0.0.1:0',
        // Envoy on this host, and an L7 load balancer in 10.9.0.0/16 in front of it.
        ALLOWGATE_TRUSTED_PROXIES: '127.0.0.1, 10.9.0.0/16',
      },
    });
    expect(gw.port).toBe(0);
    expect(gw.authzGrpcPort).toBeGreaterThan(0);
    for (const ip of [OFFICE, V6_OFFICE]) expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: ip })).status).toBe(201);
    expect((await gw.admin('POST', '/v1/accounts/AC2/ip-acl', { ip_address: OFFICE })).status).toBe(201);
    expect((await gw.admin('POST', '/v1/accounts/AC3/ip-acl', { ip_address: OFFICE })).status).toBe(201);
    expect((await gw.admin('PUT', '/v1/accounts/AC3', { mode: 'report-only' })).status).toBe(200);
    client = new EnvoyCheckClient(`127.0.0.1:${gw.authzGrpcPort}`);
  }, 30_000);

  afterAll(async () => {
    client?.close();
    await gw?.stop();
  });

  describe('gRPC (envoy.service.auth.v3.Authorization/Check)', () => {
    it('allows the source Envoy reports, telling the upstream the account and address checked', async () => {
      const response = await check('/v1/Account/AC1/Calls?limit=5', { source: { ip: OFFICE }, headers: [['x-auth-id', 'AC1']] });
      expect(response.status?.code ?? 0).toBe(0);
      expect(response.http_response).toBe('ok_response');
      expect(header(response, 'x-allowgate-account')).toBe('AC1');
      expect(header(response, 'x-allowgate-client-ip')).toBe(OFFICE);
      expect(response.ok_response?.headers?.every((h) => h.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD')).toBe(true);
      expect(response.ok_response?.headers_to_remove ?? []).toEqual([]);
      expect(response.dynamic_metadata?.fields?.['decision']?.stringValue).toBe('allow');
      expect(response.dynamic_metadata?.fields?.['account']?.stringValue).toBe('AC1');
    });

    it('denies another source with the proxy\'s 403 JSON body, and PERMISSION_DENIED', async () => {
      const response = await check('/v1/Account/AC1/Calls', { source: { ip: STRANGER }, headers: [['x-auth-id', 'AC1']] });
      expect(response.status?.code).toBe(7);
      expect(response.denied_response?.status?.code).toBe('Forbidden');
      const body = refusalOf(response);
      expect(body).toMatchObject({ code: 403, reason: 'ip_not_allowed', error: `IP address ${STRANGER} is not allowed for account AC1` });
    });

    it('judges IPv6 sources too', async () => {
      const allowed = await check('/v1/x', { source: { ip: V6_OFFICE }, headers: [['x-auth-id', 'AC1']] });
      expect(header(allowed, 'x-allowgate-client-ip')).toBe(V6_OFFICE);
      const denied = await check('/v1/x', { source: { ip: '2001:db8:1::8' }, headers: [['x-auth-id', 'AC1']] });
      expect(refusalOf(denied).reason).toBe('ip_not_allowed');
    });

    it('ignores X-Forwarded-For from an untrusted source, and walks it past a trusted one (a load balancer before Envoy)', async () => {
      const forged = await check('/v1/x', { source: { ip: STRANGER }, headers: [['x-auth-id', 'AC1'], ['x-forwarded-for', OFFICE], ['x-real-ip', OFFICE]] });
      expect(refusalOf(forged).error).toContain(STRANGER);
      // Envoy's peer is the balancer (trusted): the client is the entry it appended.
      const behind = await check('/v1/x', { source: { ip: '10.9.0.4' }, headers: [['x-auth-id', 'AC1'], ['x-forwarded-for', `${STRANGER}, ${OFFICE}`]] });
      expect(header(behind, 'x-allowgate-client-ip')).toBe(OFFICE);
      const spoofedBehind = await check('/v1/x', { source: { ip: '10.9.0.4' }, headers: [['x-auth-id', 'AC1'], ['x-forwarded-for', `${OFFICE}, ${STRANGER}`]] });
      expect(refusalOf(spoofedBehind).error).toContain(STRANGER);
    });

    it('lets anonymous requests pass (identity.anonymous: pass) and removes the account header a client may have sent', async () => {
      const response = await check('/v1/x', { source: { ip: STRANGER }, headers: [['x-allowgate-account', 'AC1']] });
      expect(response.status?.code ?? 0).toBe(0);
      expect(response.ok_response?.headers_to_remove).toEqual(['x-allowgate-account']);
      expect(header(response, 'x-allowgate-client-ip')).toBe(STRANGER);
      expect(header(response, 'x-allowgate-account')).toBeUndefined();
    });

    it('refuses credentials naming two accounts, and a credential header sent twice when Envoy passes raw headers', async () => {
      const mixed = await check('/v1/x', { source: { ip: OFFICE }, headers: [['x-auth-id', 'AC1'], ['authorization', basic('AC2')]] });
      expect(mixed.status?.code).toBe(3);
      expect(mixed.denied_response?.status?.code).toBe('BadRequest');
      expect(refusalOf(mixed).reason).toBe('ambiguous_credentials');
      const twice = await check('/v1/x', { source: { ip: OFFICE }, rawHeaders: true, headers: [['x-auth-id', 'AC1'], ['x-auth-id', 'AC2']] });
      expect(refusalOf(twice).reason).toBe('ambiguous_credentials');
      // Envoy's headers map merges repeats with a comma: no account id has one, so it is refused too.
      const merged = await check('/v1/x', { source: { ip: OFFICE }, headers: [['x-auth-id', 'AC1'], ['x-auth-id', 'AC2']] });
      expect(refusalOf(merged).reason).toBe('invalid_account');
    });

    it('refuses a credential header under a name upstreams fold into the real one (x_auth_id)', async () => {
      const response = await check('/v1/x', { source: { ip: OFFICE }, rawHeaders: true, headers: [['x-auth-id', 'AC1'], ['x_auth_id', 'AC2']] });
      expect(refusalOf(response).reason).toBe('ambiguous_header');
    });

    it('refuses a check whose request names another client address the upstream could read, and a //host target', async () => {
      for (const [name, value] of [['true-client-ip', OFFICE], ['forwarded', `for=${OFFICE}`], ['x-real-ip', OFFICE], ['fly-client-ip', OFFICE]] as const) {
        const claimed = await check('/v1/x', { source: { ip: STRANGER }, headers: [['x-auth-id', 'AC9'], [name, value]] });
        expect(refusalOf(claimed).reason, name).toBe('ambiguous_client_address');
        expect(claimed.denied_response?.status?.code).toBe('BadRequest');
      }
      const own = await check('/v1/x', { source: { ip: STRANGER }, headers: [['x-auth-id', 'AC9'], ['true-client-ip', STRANGER]] });
      expect(own.status?.code ?? 0).toBe(0);
      for (const path of ['//evil/v1/Account/AC1/Calls', '/\\evil/v1/Account/AC1/Calls']) {
        expect(refusalOf(await check(path, { source: { ip: STRANGER } })).reason, path).toBe('invalid_request_target');
      }
    });

    it('reports without refusing for an account in report-only mode', async () => {
      const response = await check('/v1/x', { source: { ip: STRANGER }, headers: [['x-auth-id', 'AC3']] });
      expect(response.status?.code ?? 0).toBe(0);
      expect(response.dynamic_metadata?.fields?.['decision']?.stringValue).toBe('report_only');
      expect(header(response, 'x-allowgate-account')).toBe('AC3');
    });

    it('refuses a check with no IP source or no HTTP request, rather than judging half of it', async () => {
      const pipe = await check('/v1/x', { source: { pipe: '/run/envoy.sock' }, headers: [['x-auth-id', 'AC1']] });
      expect(refusalOf(pipe).reason).toBe('invalid_peer');
      const tcp = await check('/v1/x', { noHttp: true });
      expect(tcp.status?.code).toBe(3);
      expect(refusalOf(tcp).reason).toBe('invalid_check_request');
    });

    it('fails the call on bytes that are not a CheckRequest', async () => {
      const { Client, credentials } = await import('@grpc/grpc-js');
      const raw = new Client(`127.0.0.1:${gw.authzGrpcPort}`, credentials.createInsecure());
      try {
        const error = await new Promise<{ code: number } | null>((resolve) => {
          raw.makeUnaryRequest('/envoy.service.auth.v3.Authorization/Check', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0x7f, 0x01]), (e) => resolve(e));
        });
        // grpc-js answers a request it cannot deserialize with INTERNAL: Envoy then applies its failure mode.
        expect(error?.code).toBe(13);
      } finally {
        raw.close();
      }
    });
  });

  describe('HTTP service (path_prefix /authz/envoy)', () => {
    const envoyHttp = (path: string, headers: readonly (readonly [string, string])[]) =>
      send(`${gw.authzUrl}/authz/envoy${path}`, { method: 'GET', localAddress: '127.0.0.1', headers: [['host', 'api.example.com'], ['x-envoy-internal', 'true'], ...headers] });

    it('allows with the upstream headers Envoy copies (allowed_upstream_headers)', async () => {
      const reply = await envoyHttp('/v1/Account/AC1/Calls?limit=5', [['x-auth-id', 'AC1'], ['x-forwarded-for', OFFICE]]);
      expect(reply.status).toBe(200);
      expect(reply.headers['x-allowgate-account']).toBe('AC1');
      expect(reply.headers['x-allowgate-client-ip']).toBe(OFFICE);
      expect(reply.headers['x-envoy-auth-headers-to-remove']).toBeUndefined();
    });

    it('denies with the JSON body Envoy passes to the client', async () => {
      const reply = await envoyHttp('/v1/x', [['x-auth-id', 'AC1'], ['x-forwarded-for', `${OFFICE}, ${STRANGER}`]]);
      expect(reply.status).toBe(403);
      expect(reply.json()).toMatchObject({ reason: 'ip_not_allowed', error: `IP address ${STRANGER} is not allowed for account AC1` });
    });

    it('refuses what the proxy listener refuses before any list: a folded header name, a fragment in the target', async () => {
      const folded = await envoyHttp('/v1/x', [['x-auth-id', 'AC1'], ['X_Auth_ID', 'AC2'], ['x-forwarded-for', OFFICE]]);
      expect(folded.status).toBe(400);
      expect(folded.json()).toMatchObject({ reason: 'ambiguous_header' });
      const fragment = await check('/v1/x?a=1#&account_id=AC2', { source: { ip: OFFICE }, headers: [['x-auth-id', 'AC1']] });
      expect(refusalOf(fragment).reason).toBe('invalid_request_target');
    });

    it('refuses client-address claims and //host targets as the gRPC service does', async () => {
      const claimed = await envoyHttp('/v1/x', [['x-auth-id', 'AC9'], ['x-forwarded-for', STRANGER], ['cf-connecting-ip', OFFICE]]);
      expect(claimed.status).toBe(400);
      expect(claimed.json()).toMatchObject({ reason: 'ambiguous_client_address' });
      const network = await envoyHttp('//evil/v1/Account/AC1/Calls', [['x-forwarded-for', STRANGER]]);
      expect(network.status).toBe(400);
      expect(network.json()).toMatchObject({ reason: 'invalid_request_target' });
    });

    it('asks Envoy to remove the headers it has nothing to say in', async () => {
      const reply = await envoyHttp('/v1/x', [['x-forwarded-for', STRANGER]]);
      expect(reply.status).toBe(200);
      expect(reply.headers['x-envoy-auth-headers-to-remove']).toBe('X-Allowgate-Account');
    });

    it('refuses checks from a caller that is not a trusted proxy, whatever it claims', async () => {
      const reply = await send(`${gw.authzUrl}/authz/envoy/v1/x`, { localAddress: STRANGER, headers: [['x-auth-id', 'AC1'], ['x-forwarded-for', OFFICE]] });
      expect(reply.status).toBe(403);
      expect(reply.json()).toMatchObject({ reason: 'untrusted_caller' });
      expect(reply.json<{ error: string }>().error).toContain(STRANGER);
    });

    it('answers 404 JSON outside the protocols\' paths', async () => {
      const reply = await send(`${gw.authzUrl}/v1/x`, { localAddress: '127.0.0.1' });
      expect(reply.status).toBe(404);
      expect(reply.json()).toMatchObject({ reason: 'not_found' });
    });
  });

  it('counts gRPC and HTTP checks under their own surface, and records their recent callers', async () => {
    const text = await (await gw.admin('GET', '/metrics')).text();
    const total = (labels: string): number => text.split('\n')
      .filter((l) => l.startsWith('allowgate_requests_total{') && l.includes(labels))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(total('surface="envoy-grpc",decision="allow"')).toBeGreaterThanOrEqual(3);
    expect(total('surface="envoy-grpc",decision="deny"')).toBeGreaterThanOrEqual(7);
    expect(total('surface="envoy-grpc",decision="report_only"')).toBe(1);
    expect(total('surface="envoy-http",decision="allow"')).toBeGreaterThanOrEqual(1);
    expect(total('surface="envoy-http",decision="deny",reason="untrusted_caller"')).toBe(1);
    expect(text).toMatch(/^allowgate_decision_duration_seconds_count\{surface="envoy-grpc"\} [1-9]/m);
    // The log is written asynchronously: wait for the line rather than race it.
    const logged = await pollUntil('the report-only check logged', async () => gw.logs.find((l) => l['surface'] === 'envoy-grpc' && l['decision'] === 'report_only'), 5_000);
    expect(logged).toMatchObject({ msg: 'request would be refused (report-only)', account: 'AC3', client_ip: STRANGER, url: '/v1/x' });
    await pollUntil('the IPv6 office recorded as a recent caller of AC1', async () => {
      const body = await (await gw.admin('GET', '/v1/accounts/AC1/recent-ips')).json() as { ips: { ip: string }[] };
      return body.ips.some((c) => c.ip === V6_OFFICE) ? true : undefined;
    }, 5_000);
  });
});
