import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * Fair use of the upstream pool, against the real process: stalled uploads from one address (and
 * from ten) cannot take the connections another caller needs, a body that stops arriving is
 * ended with 408 and its connection freed, and a request that cannot get a connection in time is
 * answered 503 upstream_busy instead of hanging.
 */

const BODY_IDLE_MS = 3_000;
const STALLED = 130;

let upstream: EchoUpstream;
/** upstream.connections 128, as measured in the report that asked for this. */
let pool128: GatewayProcess;
/** Every pool setting at its default. */
let defaults: GatewayProcess;
/** Two connections, no per-caller cap: only the queue timeout protects. */
let tiny: GatewayProcess;
const dir = scratchDir();

function configFile(name: string, lines: string[]): string {
  const path = join(dir.path, name);
  writeFileSync(path, lines.join('\n'));
  return path;
}

beforeAll(async () => {
  upstream = await startEchoUpstream();
  const env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_LOG_ALLOW_SAMPLE: '0', ALLOWGATE_BODY_IDLE_TIMEOUT_MS: String(BODY_IDLE_MS) };
  [pool128, defaults, tiny] = await Promise.all([
    startGateway({ env: { ...env, ALLOWGATE_CONFIG: configFile('pool128.yaml', ['upstream:', '  connections: 128']) } }),
    startGateway({ env }),
    startGateway({ env: { ...env, ALLOWGATE_CONFIG: configFile('tiny.yaml', ['upstream:', '  connections: 2', '  clientShare: 1', '  accountShare: 1', '  queueTimeoutMs: 500']) } }),
  ]);
}, 30_000);

afterAll(async () => {
  await Promise.all([pool128?.stop(), defaults?.stop(), tiny?.stop()]);
  await upstream?.close();
  dir.remove();
});

interface Stalled {
  readonly socket: Socket;
  /** Everything the gateway sent, once it closed the connection. */
  readonly closed: Promise<string>;
}

/** An upload that sends its headers and one byte of a 1 MB body, then nothing. */
async function stalledUpload(gw: GatewayProcess, from: string, account: string): Promise<Stalled> {
  const socket = connect({ port: gw.port, host: '127.0.0.1', localAddress: from });
  await once(socket, 'connect');
  const closed = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
  });
  socket.write(`POST /v1/upload HTTP/1.1\r\nHost: api\r\nX-Auth-ID: ${account}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\nx`);
  return { socket, closed };
}

async function timedGet(gw: GatewayProcess, account: string): Promise<{ status: number; ms: number; reason?: string }> {
  const start = performance.now();
  const res = await fetch(`${gw.url}/v1/ok`, { headers: { 'x-auth-id': account }, signal: AbortSignal.timeout(20_000) });
  const body = (await res.json()) as { reason?: string };
  return { status: res.status, ms: performance.now() - start, ...(body.reason === undefined ? {} : { reason: body.reason }) };
}

function get(gw: GatewayProcess, path: string, account: string, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}${path}`, { localAddress: from, headers: { 'x-auth-id': account }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1] ?? 0);
}

function reasonOf(answer: string): string | undefined {
  const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
  return body.startsWith('{') ? (JSON.parse(body) as { reason: string }).reason : undefined;
}

async function metric(gw: GatewayProcess, name: string, labels = ''): Promise<number> {
  const text = await (await gw.admin('GET', '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function shedCount(gw: GatewayProcess): Promise<number> {
  return (await metric(gw, 'allowgate_shed_requests_total', '{reason="client_concurrency_limit"}')) + (await metric(gw, 'allowgate_shed_requests_total', '{reason="account_concurrency_limit"}'));
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

/** Opens the uploads, checks the other caller is served while they are held, then that all are cleaned up. */
async function scenario(gw: GatewayProcess, addresses: readonly string[], account: string) {
  const shedBefore = await shedCount(gw);
  const stalled: Stalled[] = [];
  for (let i = 0; i < STALLED; i++) stalled.push(await stalledUpload(gw, addresses[i % addresses.length]!, account));
  // Give the gateway time to admit (or turn away) every one of them.
  await waitFor(async () => (await metric(gw, 'allowgate_upstream_in_flight')) + (await shedCount(gw)) - shedBefore === STALLED, 2_500);
  const held = await metric(gw, 'allowgate_upstream_in_flight');
  const other = await timedGet(gw, 'ACOTHER');
  const answers = await Promise.all(stalled.map((s) => s.closed));
  const freed = await waitFor(async () => (await metric(gw, 'allowgate_upstream_in_flight')) === 0 && (await metric(gw, 'allowgate_upstream_queued')) === 0, 5_000);
  return { held, other, answers, freed };
}

describe('fair use of the upstream pool', () => {
  it(`${STALLED} stalled uploads from one address hold at most a quarter of 128 connections; another caller gets 200 at once; the stalled ones get 429 or, after limits.bodyIdleTimeoutMs, 408 and are closed`, async () => {
    const { held, other, answers, freed } = await scenario(pool128, ['127.0.0.2'], 'ACSLOW');
    expect(held).toBe(32);
    expect(other).toMatchObject({ status: 200 });
    // Answered while the 32 uploads still hold their connections (they end at BODY_IDLE_MS).
    expect(other.ms).toBeLessThan(BODY_IDLE_MS);
    const byStatus = (status: number) => answers.filter((a) => statusOf(a) === status);
    expect(byStatus(429)).toHaveLength(STALLED - 32);
    expect(byStatus(429).every((a) => reasonOf(a) === 'client_concurrency_limit' && /\r\nconnection: close\r\n/i.test(a))).toBe(true);
    expect(byStatus(408)).toHaveLength(32);
    expect(byStatus(408).every((a) => reasonOf(a) === 'body_timeout')).toBe(true);
    expect(freed).toBe(true);
    expect(await metric(pool128, 'allowgate_shed_requests_total', '{reason="body_timeout"}')).toBe(32);
    // None reached the upstream as a complete request.
    expect(upstream.seen.filter((r) => r.url === '/v1/upload')).toHaveLength(0);
  });

  it(`${STALLED} stalled uploads of one account spread over 10 addresses hold at most half the connections; another account's caller gets 200 at once`, async () => {
    const addresses = Array.from({ length: 10 }, (_, i) => `127.0.0.${20 + i}`);
    const before = await metric(pool128, 'allowgate_shed_requests_total', '{reason="account_concurrency_limit"}');
    const { held, other, answers, freed } = await scenario(pool128, addresses, 'ACSPREAD');
    expect(held).toBe(64);
    expect(other).toMatchObject({ status: 200 });
    expect(other.ms).toBeLessThan(BODY_IDLE_MS);
    expect(answers.filter((a) => statusOf(a) === 429 && reasonOf(a) === 'account_concurrency_limit')).toHaveLength(STALLED - 64);
    expect(answers.filter((a) => statusOf(a) === 408)).toHaveLength(64);
    expect(await metric(pool128, 'allowgate_shed_requests_total', '{reason="account_concurrency_limit"}') - before).toBe(STALLED - 64);
    expect(freed).toBe(true);
  });

  it('with the default pool every stalled upload gets a connection of its own and another caller still gets 200 at once; all are ended after limits.bodyIdleTimeoutMs', async () => {
    const { held, other, answers, freed } = await scenario(defaults, ['127.0.0.3'], 'ACSLOW');
    expect(held).toBe(STALLED);
    expect(other).toMatchObject({ status: 200 });
    expect(other.ms).toBeLessThan(BODY_IDLE_MS);
    expect(answers.every((a) => statusOf(a) === 408)).toBe(true);
    expect(freed).toBe(true);
  });

  it('answers 503 upstream_busy to a request that waited upstream.queueTimeoutMs for a connection, and serves the next one once a connection is free', async () => {
    // From two other addresses: one client may not hold both connections and queue a third.
    const slow = [get(tiny, '/slow?ms=2500', 'AC1', '127.0.0.5'), get(tiny, '/slow?ms=2500', 'AC2', '127.0.0.6')];
    await waitFor(async () => (await metric(tiny, 'allowgate_upstream_in_flight')) === 2, 2_000);
    const start = performance.now();
    const queued = await fetch(`${tiny.url}/v1/ok`, { headers: { 'x-auth-id': 'AC3' } });
    const waited = performance.now() - start;
    expect(queued.status).toBe(503);
    expect(await queued.json()).toMatchObject({ code: 503, reason: 'upstream_busy' });
    expect(waited).toBeGreaterThanOrEqual(450);
    expect(await Promise.all(slow)).toEqual([200, 200]);
    expect((await fetch(`${tiny.url}/v1/ok`, { headers: { 'x-auth-id': 'AC3' } })).status).toBe(200);
    expect(await metric(tiny, 'allowgate_shed_requests_total', '{reason="upstream_busy"}')).toBe(1);
    // The refusals are in the log, with who was refused and why.
    expect(tiny.logs.some((l) => l['msg'] === 'request shed: upstream capacity' && l['reason'] === 'upstream_busy' && l['account'] === 'AC3' && l['client_ip'] === '127.0.0.1')).toBe(true);
  });
});
