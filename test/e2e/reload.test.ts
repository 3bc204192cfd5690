import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Signals and configuration, against the real process: SIGHUP reloads the file (trust, identity,
 * log level, admin credentials and limits in place; the rest reported as needing a restart), an
 * invalid file changes nothing, and misspelled variables or an unacknowledged trust-everything
 * setting refuse the start.
 */

const CLIENT = '198.51.100.7';
const SECOND_TOKEN = 'a-second-admin-token-for-reload';

let upstream: EchoUpstream;
let gw: GatewayProcess;
const dir = scratchDir();
const configPath = join(dir.path, 'allowgate.yaml');

function writeConfig(lines: string[]): void {
  writeFileSync(configPath, lines.join('\n'));
}

async function status(headers: Record<string, string>): Promise<number> {
  return (await fetch(`${gw.url}/v1/ok`, { headers })).status;
}

async function hangUp(msg: string): Promise<Record<string, unknown>> {
  const seen = gw.logs.length;
  gw.child.kill('SIGHUP');
  await waitUntil(`'${msg}' logged`, () => gw.logs.slice(seen).some((l) => l['msg'] === msg), 5_000);
  return gw.logs.slice(seen).find((l) => l['msg'] === msg)!;
}

beforeAll(async () => {
  upstream = await startEchoUpstream();
  writeConfig(['log:', '  level: info', 'limits:', '  bodyIdleTimeoutMs: 5000']);
  gw = await startGateway({ env: { ALLOWGATE_CONFIG: configPath, ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_LOG_LEVEL: '' } });
  expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: CLIENT })).status).toBe(201);
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  dir.remove();
});

describe('SIGHUP', () => {
  it('applies trust, identity and credentials in place, says which changes need a restart, and keeps serving', async () => {
    // Before: the loopback peer is not a trusted proxy, so its X-Forwarded-For is not believed.
    expect(await status({ 'x-auth-id': 'AC1', 'x-forwarded-for': CLIENT })).toBe(403);
    expect((await fetch(`${gw.adminUrl}/v1/accounts/AC1/ip-acl`, { headers: { authorization: `Bearer ${SECOND_TOKEN}` } })).status).toBe(401);

    writeConfig([
      'clientIp:', '  trustedProxies: [127.0.0.1]',
      'identity:', '  exemptPaths: [/v1/health]',
      'admin:', '  credentials:', `    - {name: ops, role: admin, tokenSha256: ${createHash('sha256').update(SECOND_TOKEN).digest('hex')}}`,
      'log:', '  level: debug',
      'limits:', '  bodyIdleTimeoutMs: 2000',
      // Read once at start: reported, not applied.
      'upstream:', '  connections: 7',
    ]);
    const line = await hangUp('configuration reloaded; some changes take effect only after a restart');
    expect(line['applied']).toEqual(expect.arrayContaining(['clientIp.trust', 'identity.exemptPaths', 'admin.credentials', 'log.level', 'limits.bodyIdleTimeoutMs']));
    expect(line['needs_restart']).toEqual(['upstream.connections']);
    expect(line['level']).toBe('warn');

    // Same process, new trust: the forwarded client is checked against the list.
    expect(gw.child.exitCode).toBeNull();
    expect(await status({ 'x-auth-id': 'AC1', 'x-forwarded-for': CLIENT })).toBe(200);
    expect(await status({ 'x-auth-id': 'AC1', 'x-forwarded-for': '203.0.113.9' })).toBe(403);
    // A new exempt path (checks skipped for a stranger), and a new credential.
    expect((await fetch(`${gw.url}/v1/health`, { headers: { 'x-auth-id': 'AC1', 'x-forwarded-for': '203.0.113.9' } })).status).toBe(200);
    expect((await fetch(`${gw.adminUrl}/v1/accounts/AC1/ip-acl`, { headers: { authorization: `Bearer ${SECOND_TOKEN}` } })).status).toBe(200);
  });

  it('keeps the running configuration when the file is invalid, and says why', async () => {
    writeConfig(['clientIp:', '  trustedProxies: [127.0.0.1]', 'limits:', '  bodyIdelTimeoutMs: 1000']);
    const line = await hangUp('configuration not reloaded: it is invalid; the running configuration stays');
    expect(line['level']).toBe('error');
    expect(String(line['error'])).toContain("unknown config key 'limits.bodyIdelTimeoutMs'");
    expect(gw.child.exitCode).toBeNull();
    // Still the configuration of the last good reload.
    expect(await status({ 'x-auth-id': 'AC1', 'x-forwarded-for': CLIENT })).toBe(200);
    expect((await fetch(`${gw.adminUrl}/v1/accounts/AC1/ip-acl`, { headers: { authorization: `Bearer ${SECOND_TOKEN}` } })).status).toBe(200);
  });
});

describe('start-up refusals', () => {
  it('refuses a misspelled ALLOWGATE_ variable, naming the real one, with exit code 2', async () => {
    await expect(startGateway({ env: { ALLOWGATE_TRUSTED_PROXY: '10.0.0.0/8' } })).rejects.toThrow(/exited with 2.*unknown environment variable ALLOWGATE_TRUSTED_PROXY: did you mean ALLOWGATE_TRUSTED_PROXIES\?/s);
  });

  it('refuses to trust every address unless acknowledged, and logs it when acknowledged', async () => {
    await expect(startGateway({ env: { ALLOWGATE_TRUSTED_PROXIES: '0.0.0.0/0', ALLOWGATE_LISTEN: '0.0.0.0:0' } })).rejects.toThrow(/exited with 2.*holds 0\.0\.0\.0\/0, which trusts every address/s);
    const trusting = await startGateway({ env: { ALLOWGATE_TRUSTED_PROXIES: '0.0.0.0/0', ALLOWGATE_ACKNOWLEDGE_TRUST_ALL: 'true' } });
    try {
      expect(trusting.logs.some((l) => l['level'] === 'warn' && String(l['trust_all']).includes('0.0.0.0/0'))).toBe(true);
    } finally {
      await trusting.stop();
    }
  });
});

describe('readiness.upstream', () => {
  it('keeps /readyz at 503 while the upstream does not accept connections, 200 once it does, and 503 again when it stops', async () => {
    const free = await startEchoUpstream();
    const port = free.port;
    await free.close();
    const gated = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: `http://127.0.0.1:${port}`, ALLOWGATE_READINESS_UPSTREAM: 'true' } });
    const readyz = async (): Promise<{ status: number; body: { upstream?: { reachable: boolean; error?: string } } }> => {
      const res = await fetch(`${gated.adminUrl}/readyz`);
      return { status: res.status, body: (await res.json()) as { upstream?: { reachable: boolean; error?: string } } };
    };
    let api: EchoUpstream | null = null;
    try {
      const before = await readyz();
      expect(before.status).toBe(503);
      expect(before.body.upstream).toEqual({ url: `http://127.0.0.1:${port}`, reachable: false, error: 'ECONNREFUSED' });
      expect((await fetch(`${gated.adminUrl}/healthz`)).status).toBe(200);
      api = await startEchoUpstream(port);
      await waitUntil('ready once the API listens', async () => (await readyz()).status === 200, 10_000);
      await api.close();
      api = null;
      await waitUntil('not ready once the API stops', async () => (await readyz()).status === 503, 10_000);
    } finally {
      await api?.close();
      await gated.stop();
    }
  });
});
