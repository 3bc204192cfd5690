import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { readFileSync } from 'node:fs';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Sample values of one metric family, keyed by their label text (`{decision="allow",...}`). */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(name.length, space), Number(line.slice(space + 1)));
  }
  return out;
}

function hasPromtool(): boolean {
  return spawnSync('promtool', ['--version']).status === 0;
}

describe('metrics of a running gateway', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_METRICS_ACCOUNTS: 'AC1', ALLOWGATE_LOG_LEVEL: 'info' } });
    await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` });
    await gw.admin('POST', '/v1/accounts/AC2/ip-acl', { ip_address: `${OFFICE}/32` });
    await gw.admin('PUT', '/v1/accounts/AC3', { mode: 'report-only' });
    await gw.admin('POST', '/v1/accounts/AC3/ip-acl', { ip_address: `${OFFICE}/32` });
    // Traffic of every kind: allowed, denied (two accounts), report-only, anonymous, refused identity.
    await send(`${gw.url}/a`, { headers: { 'x-auth-id': 'AC1' }, localAddress: OFFICE });
    await send(`${gw.url}/a`, { headers: { 'x-auth-id': 'AC1' }, localAddress: STRANGER });
    await send(`${gw.url}/a`, { headers: { 'x-auth-id': 'AC2' }, localAddress: STRANGER });
    await send(`${gw.url}/a`, { headers: { 'x-auth-id': 'AC3' }, localAddress: STRANGER });
    await send(`${gw.url}/a`, { localAddress: STRANGER });
    await send(`${gw.url}/a`, { headers: { 'x-auth-id': 'AC1', authorization: `Basic ${Buffer.from('AC9:x').toString('base64')}` }, localAddress: OFFICE });
    // Validation refusals (one by the change, one of input the API cannot read) and a 404 on the admin API.
    await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` });
    await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '300.1.2.3' });
    await gw.admin('POST', '/api/v1/Account/AC1/ip-acl', { ip_address: 'not-an-address', name: 'office' }, { 'x-auth-id': 'AC1', 'x-auth-token': ADMIN_TOKEN });
    await gw.admin('GET', '/v1/accounts/AC1/ip-acl/nope');
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('counts each decision with its reason, and the opted-in account only', async () => {
    const res = await fetch(`${gw.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const requests = samples(text, 'allowgate_requests_total');
    expect(requests.get('{surface="proxy",decision="allow",reason="ip_allowed"}')).toBe(1);
    expect(requests.get('{surface="proxy",decision="deny",reason="ip_not_allowed"}')).toBe(2);
    expect(requests.get('{surface="proxy",decision="report_only",reason="ip_not_allowed"}')).toBe(1);
    expect(requests.get('{surface="proxy",decision="anonymous",reason="no_credentials"}')).toBe(1);
    expect(requests.get('{surface="proxy",decision="deny",reason="ambiguous_credentials"}')).toBe(1);
    const accounts = samples(text, 'allowgate_account_requests_total');
    expect([...accounts.keys()].sort()).toEqual(['{account="AC1",decision="allow"}', '{account="AC1",decision="deny"}']);
    expect(samples(text, 'allowgate_decision_duration_seconds_count').get('{surface="proxy"}')).toBe(6);
    expect(samples(text, 'allowgate_decision_duration_seconds_bucket').has('{surface="proxy",le="0.00001"}')).toBe(true);
    expect(samples(text, 'allowgate_request_duration_seconds_count').get('{surface="proxy",decision="allow"}')).toBe(1);
    expect(samples(text, 'allowgate_upstream_responses_total').get('{status_class="2xx"}')).toBeGreaterThanOrEqual(2);
    expect(samples(text, 'allowgate_validation_refusals_total').get('{reason="duplicate"}')).toBe(1);
    // Native and compatible surface alike.
    expect(samples(text, 'allowgate_validation_refusals_total').get('{reason="invalid_format"}')).toBe(2);
    // Which version runs, the store in step (an embedded store always is: the scrape time), and connections against their limit.
    expect([...samples(text, 'allowgate_build_info').keys()]).toEqual([`{version="${PACKAGE_VERSION}",revision="unknown",nodejs="${process.version}"}`]);
    expect(Math.abs(samples(text, 'allowgate_store_last_sync_timestamp_seconds').get('')! - Date.now() / 1000)).toBeLessThan(60);
    expect(samples(text, 'allowgate_proxy_connections_limit').get('')).toBe(10_000);
    expect(samples(text, 'allowgate_proxy_connections').has('')).toBe(true);
    expect(samples(text, 'allowgate_upstream_in_flight').get('')).toBe(0);
    expect(samples(text, 'allowgate_admin_requests_total').get('{route="/v1/accounts/{account}/ip-acl/{id}",method="GET",status="404"}')).toBe(1);
    expect(samples(text, 'allowgate_store_up').get('{store="memory"}')).toBe(1);
    expect(samples(text, 'allowgate_cache_entries').get('')).toBeGreaterThanOrEqual(3);
    expect(samples(text, 'allowgate_rules_loaded').get('')).toBeGreaterThanOrEqual(3);
    expect(samples(text, 'allowgate_cache_misses_total').get('')).toBeGreaterThan(0);
    expect(samples(text, 'allowgate_compile_duration_seconds_count').get('')).toBeGreaterThan(0);
    expect(samples(text, 'allowgate_store_operation_duration_seconds_count').get('{operation="update"}')).toBeGreaterThan(0);
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_gc_duration_seconds');
  });

  it('passes promtool check metrics when promtool is installed', async () => {
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(text).toMatch(/^# HELP allowgate_requests_total /m);
    // CI installs promtool (Debian package prometheus); elsewhere only the line above is checked.
    if (hasPromtool()) {
      const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      const problems = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.trim() !== '');
      // prom-client's default process metrics include three gauges named *_total, which promtool's
      // linter flags; they are the library's, not ours. Everything else must pass clean.
      const known = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
      expect(problems.filter((line) => !known.test(line))).toEqual([]);
      expect(result.error).toBeUndefined();
    }
  });
});

describe('metrics on a listener of their own, behind a token', () => {
  it('serves /metrics there only, and refuses scrapes without the token', async () => {
    const gw = await startGateway({ env: { ALLOWGATE_METRICS_LISTEN: '127.0.0.1:0', ALLOWGATE_METRICS_TOKEN: 'scrape-token-123' } });
    try {
      const listening = gw.logs.find((l) => l['msg'] === 'allowgate listening')!;
      const url = `http://127.0.0.1:${String(listening['metrics_port'])}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      const ok = await fetch(url, { headers: { authorization: 'Bearer scrape-token-123' } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('allowgate_store_up');
      expect((await fetch(`${gw.adminUrl}/metrics`)).status).not.toBe(200);
    } finally {
      await gw.stop();
    }
  });
});
