import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { freePort } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

/*
 * Fault injection against the real gateway process: an upstream that is down, slow, resets
 * mid-body or answers with bytes that are not HTTP; SIGTERM with requests in flight; SIGKILL in the
 * middle of a stream of file-store writes; a file-store write that fails with ENOSPC. Every case
 * checks the exact answer and that the gateway is still alive (and answering) afterwards.
 * Redis faults are in faults-redis.test.ts.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';

function writeConfig(dir: string, yaml: string): string {
  const path = join(dir, 'allowgate.yaml');
  writeFileSync(path, yaml);
  return path;
}

// ---------------------------------------------------------------------------------------------
// Upstream faults: a raw TCP upstream that misbehaves on request, byte for byte.

const CUT_DECLARED = 100_000;
const CUT_SENT = 4_096;

interface FaultUpstream {
  readonly port: number;
  readonly url: string;
  /** Stops listening and drops every connection: from now on, connection refused. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Behaviour by path: `/ok` answers 200 JSON; `/hang` never answers; `/garbage` writes bytes that
 * are not HTTP and keeps the connection open; `/garbage-close` writes others and closes; `/cut`
 * promises a 100,000-byte body, sends 4 KiB and resets the connection (RST); `/stall` sends the
 * same 4 KiB and then goes silent.
 */
async function startFaultUpstream(): Promise<FaultUpstream> {
  const sockets = new Set<Socket>();
  const port = await freePort();
  let server: NetServer | null = null;

  const handle = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (data: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = /^[A-Z]+ (\S+) HTTP\/1\.1\r\n/.exec(head)?.[1] ?? '?';
      const body = Buffer.alloc(CUT_SENT, 'b');
      switch (path.split('?')[0]) {
        case '/ok': {
          const json = JSON.stringify({ ok: true, path });
          socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\nconnection: close\r\n\r\n${json}`);
          return;
        }
        case '/hang':
          return;
        case '/garbage':
          socket.write(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe garbage \x01\x02\r\n\r\n', 'latin1'));
          return;
        case '/garbage-close':
          // A TLS ClientHello-like prefix: what a misrouted TLS port sends back.
          socket.end(Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n', 'latin1'));
          return;
        case '/cut':
          socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${CUT_DECLARED}\r\n\r\n`);
          socket.write(body, () => setTimeout(() => socket.resetAndDestroy(), 50));
          return;
        case '/stall':
          socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${CUT_DECLARED}\r\n\r\n`);
          socket.write(body);
          return;
        default:
          socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      }
    });
  };

  const up = (): Promise<void> => new Promise((resolve, reject) => {
    const next = createNetServer(handle);
    next.once('error', reject);
    next.listen(port, '127.0.0.1', () => {
      server = next;
      resolve();
    });
  });
  const down = (): Promise<void> => new Promise((resolve) => {
    const current = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    if (current === null) return resolve();
    current.close(() => resolve());
  });
  await up();
  return { port, url: `http://127.0.0.1:${port}`, down, up, close: down };
}

/** What a caller saw of one response, including one that was cut off. */
interface Outcome {
  readonly status: number;
  readonly declared: number | null;
  readonly bytes: number;
  /** The response arrived whole (its declared length, then a clean end). */
  readonly complete: boolean;
  readonly error: string | null;
}

function fetchOutcome(url: string, localAddress = OFFICE, timeoutMs = 5_000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, localAddress }, (res) => {
      let bytes = 0;
      let error: string | null = null;
      res.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      res.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
      res.on('close', () => {
        clearTimeout(timer);
        const length = res.headers['content-length'];
        resolve({ status: res.statusCode ?? 0, declared: length === undefined ? null : Number(length), bytes, complete: res.complete && error === null, error });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no outcome for ${url} within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end();
  });
}

/** The gateway process is still running, healthy, and still forwards. */
async function assertAlive(gw: GatewayProcess, path = '/ok'): Promise<void> {
  expect(gw.child.exitCode).toBeNull();
  expect(gw.child.signalCode).toBeNull();
  const reply = await send(`${gw.url}${path}`, { localAddress: OFFICE });
  expect(reply.status).toBe(200);
  const health = await fetch(`${gw.adminUrl}/healthz`);
  expect(health.status).toBe(200);
  await health.body?.cancel();
}

describe('upstream faults', () => {
  const dir = scratchDir();
  let upstream: FaultUpstream;
  let gw: GatewayProcess;

  beforeAll(async () => {
    upstream = await startFaultUpstream();
    const config = writeConfig(dir.path, 'upstream:\n  connectTimeoutMs: 1000\n  headersTimeoutMs: 600\n  bodyTimeoutMs: 600\n');
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config, ALLOWGATE_LOG_LEVEL: 'info' } });
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    dir.remove();
  });

  it('answers 502 upstream_unavailable while the upstream refuses connections, and forwards again once it is back', async () => {
    await assertAlive(gw);
    await upstream.down();
    for (let i = 0; i < 3; i++) {
      const reply = await send(`${gw.url}/ok?down=${i}`, { localAddress: OFFICE });
      expect(reply.status).toBe(502);
      expect(reply.headers['content-type']).toBe('application/json');
      expect(reply.json()).toEqual({
        error: `the upstream ${upstream.url} refused the connection or could not be reached`,
        code: 502,
        reason: 'upstream_unavailable',
        request_id: reply.headers['x-request-id'],
      });
    }
    await waitUntil('refusal logged', () => gw.logs.some((l) => l['msg'] === 'upstream failed' && l['kind'] === 'refused' && l['reason'] === 'upstream_unavailable'), 3_000);
    await upstream.up();
    await assertAlive(gw);
  });

  it('answers 504 upstream_timeout when the upstream sends no headers within upstream.headersTimeoutMs', async () => {
    const started = performance.now();
    const reply = await send(`${gw.url}/hang`, { localAddress: OFFICE });
    const elapsed = performance.now() - started;
    expect(reply.status).toBe(504);
    expect(reply.json()).toEqual({
      error: `the upstream ${upstream.url} did not answer in time`,
      code: 504,
      reason: 'upstream_timeout',
      request_id: reply.headers['x-request-id'],
    });
    // The configured 600 ms, not the 30 s default nor the caller's own 5 s timeout.
    expect(elapsed).toBeGreaterThanOrEqual(550);
    expect(elapsed).toBeLessThan(3_000);
    await assertAlive(gw);
  });

  it('cuts the caller off when the upstream resets mid-body, and the next request works', async () => {
    const cut = await fetchOutcome(`${gw.url}/cut`);
    // The head was already passed on: the only honest signal left is an incomplete response.
    expect(cut.status).toBe(200);
    expect(cut.declared).toBe(CUT_DECLARED);
    expect(cut.complete).toBe(false);
    expect(cut.bytes).toBeLessThan(CUT_DECLARED);
    await waitUntil('mid-response failure logged', () => gw.logs.some((l) => l['msg'] === 'upstream failed mid-response' && l['url'] === '/cut' && l['kind'] === 'reset'), 3_000);
    await assertAlive(gw);
  });

  it('cuts the caller off when the upstream goes silent mid-body for longer than upstream.bodyTimeoutMs', async () => {
    const started = performance.now();
    const stalled = await fetchOutcome(`${gw.url}/stall`);
    expect(stalled.status).toBe(200);
    expect(stalled.complete).toBe(false);
    expect(stalled.bytes).toBe(CUT_SENT);
    expect(performance.now() - started).toBeLessThan(3_000);
    await waitUntil('body timeout logged', () => gw.logs.some((l) => l['msg'] === 'upstream failed mid-response' && l['url'] === '/stall' && l['kind'] === 'timeout'), 3_000);
    await assertAlive(gw);
  });

  it('answers 502 upstream_error when the upstream answers with bytes that are not HTTP', async () => {
    for (const path of ['/garbage', '/garbage-close']) {
      const started = performance.now();
      const reply = await send(`${gw.url}${path}`, { localAddress: OFFICE });
      expect(reply.status, path).toBe(502);
      expect(reply.json(), path).toEqual({
        error: `the upstream ${upstream.url} failed to answer`,
        code: 502,
        reason: 'upstream_error',
        request_id: reply.headers['x-request-id'],
      });
      // Refused at once on the bad bytes, not after the headers timeout.
      expect(performance.now() - started, path).toBeLessThan(550);
    }
    await assertAlive(gw);
  });

  it('survives a burst of every fault at once, answering each request as its fault dictates', async () => {
    const paths = ['/ok', '/hang', '/garbage', '/garbage-close', '/cut', '/stall'];
    const burst = Array.from({ length: 60 }, (_, i) => paths[i % paths.length]!);
    const outcomes = await Promise.all(burst.map((path, i) => fetchOutcome(`${gw.url}${path}?n=${i}`).then((o) => [path, o] as const)));
    for (const [path, outcome] of outcomes) {
      switch (path) {
        case '/ok':
          expect(outcome, path).toMatchObject({ status: 200, complete: true });
          break;
        case '/hang':
          expect(outcome, path).toMatchObject({ status: 504, complete: true });
          break;
        case '/garbage':
        case '/garbage-close':
          expect(outcome, path).toMatchObject({ status: 502, complete: true });
          break;
        default:
          expect(outcome, path).toMatchObject({ status: 200, complete: false });
      }
    }
    await assertAlive(gw);
    expect(gw.logs.filter((l) => l['level'] === 'error' || l['level'] === 'fatal')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// SIGTERM under load.

/** How a request to a stopping gateway ended: its status, or the socket error code. */
async function attempt(url: string): Promise<number | string> {
  try {
    return (await send(url, { localAddress: OFFICE, timeoutMs: 2_000 })).status;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
}

/** A gateway with `shutdownTimeoutMs: ms` in front of an echo upstream, for one test; killed and removed after it. */
async function withShutdownGateway(ms: number, run: (gw: GatewayProcess, upstream: EchoUpstream) => Promise<void>): Promise<void> {
  const dir = scratchDir();
  const upstream = await startEchoUpstream();
  const config = writeConfig(dir.path, `shutdownTimeoutMs: ${ms}\n`);
  const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config, ALLOWGATE_LOG_LEVEL: 'info' } });
  try {
    await run(gw, upstream);
  } finally {
    await gw.stop('SIGKILL');
    await upstream.close();
    dir.remove();
  }
}

describe('SIGTERM under load', () => {
  it('finishes every in-flight request with 200, refuses new connections, and exits 0 well within shutdownTimeoutMs', () => withShutdownGateway(5000, async (gw, upstream) => {
    const IN_FLIGHT = 24;
    const inFlight = Array.from({ length: IN_FLIGHT }, (_, i) => send(`${gw.url}/slow?ms=1200&n=${i}`, { localAddress: OFFICE, timeoutMs: 8_000 }));
    await waitUntil('every slow request reached the upstream', () => upstream.seen.filter((r) => r.url.startsWith('/slow')).length === IN_FLIGHT, 5_000);
    const signalled = performance.now();
    const exited = gw.stop('SIGTERM');
    await waitUntil('shutdown logged', () => gw.logs.some((l) => l['msg'] === 'shutting down: finishing in-flight requests'), 2_000);
    // The listeners are closed: new connections, to the proxy and to the admin API, are refused.
    const late: (number | string)[] = [];
    for (let i = 0; i < 5; i++) late.push(await attempt(`${gw.url}/x?late=${i}`), await attempt(`${gw.adminUrl}/healthz`));
    expect(late).toEqual(Array(10).fill('ECONNREFUSED'));
    const replies = await Promise.all(inFlight);
    expect(replies.map((r) => r.status)).toEqual(Array(IN_FLIGHT).fill(200));
    expect(replies.map((r) => r.json<{ url: string }>().url)).toEqual(Array.from({ length: IN_FLIGHT }, (_, i) => `/slow?ms=1200&n=${i}`));
    expect(await exited).toBe(0);
    // Done as soon as the slow requests were: no waiting out the 5 s timeout.
    expect(performance.now() - signalled).toBeLessThan(3_000);
    expect(gw.logs.some((l) => l['msg'] === 'stopped')).toBe(true);
    expect(upstream.seen.some((r) => r.url.includes('late='))).toBe(false);
  }));

  it('closes keep-alive connections once their current response is done, so a busy gateway exits without waiting out the timeout', () => withShutdownGateway(4000, async (gw, upstream) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    try {
      // Four keep-alive callers, each sending its next request as soon as the previous one ends,
      // as a load balancer's pool does. Requests are numbered so the upstream's record tells
      // which ones it saw.
      type Result = { id: number; status: number; reused: boolean } | { id: number; error: string; reused: boolean };
      const results: Result[] = [];
      let next = 0;
      let stopped = false;
      const one = (id: number): Promise<Result> => new Promise((resolve) => {
        const req = httpRequest(`${gw.url}/slow?ms=100&id=${id}`, { agent, localAddress: OFFICE }, (res) => {
          res.resume();
          res.on('end', () => resolve({ id, status: res.statusCode ?? 0, reused: req.reusedSocket }));
          res.on('error', (e: NodeJS.ErrnoException) => resolve({ id, error: `mid-response ${e.code ?? e.message}`, reused: req.reusedSocket }));
        });
        req.on('error', (e: NodeJS.ErrnoException) => resolve({ id, error: e.code ?? e.message, reused: req.reusedSocket }));
        req.setTimeout(6_000, () => req.destroy(new Error('timed out')));
        req.end();
      });
      const worker = async (): Promise<void> => {
        while (!stopped) {
          const result = await one(next++);
          results.push(result);
          // A fresh connection refused: the listener is closed, this caller is done.
          if ('error' in result && result.error === 'ECONNREFUSED') return;
        }
      };
      const workers = Promise.all([worker(), worker(), worker(), worker()]);
      await waitUntil('load running', () => results.length >= 12, 5_000);
      const signalled = performance.now();
      const code = await gw.stop('SIGTERM');
      const took = performance.now() - signalled;
      stopped = true;
      await workers;

      expect(code).toBe(0);
      const seen = new Set(upstream.seen.map((r) => Number(new URL(r.url, 'http://x').searchParams.get('id'))));
      for (const result of results) {
        if ('status' in result) {
          expect(result.status).toBe(200);
          continue;
        }
        // Allowed: a new connection refused, or (the keep-alive race every HTTP client has to
        // retry) a reused idle connection closed just as the request went out, before it was
        // read. A request the upstream saw and the caller lost is a cut, not a clean shutdown.
        expect(result.error === 'ECONNREFUSED' || (result.error === 'ECONNRESET' && result.reused && !seen.has(result.id)), JSON.stringify(result)).toBe(true);
      }
      expect(results.filter((r) => 'status' in r).length).toBeGreaterThanOrEqual(12);
      // Every caller's connection was closed after its current response: nothing held the
      // gateway until the 4 s deadline.
      expect(took).toBeLessThan(2_000);
    } finally {
      agent.destroy();
    }
  }));

  it('cuts a request still running at shutdownTimeoutMs, and exits 0 on time', () => withShutdownGateway(1000, async (gw, upstream) => {
    const quick = send(`${gw.url}/slow?ms=300`, { localAddress: OFFICE });
    const overlong = fetchOutcome(`${gw.url}/slow?ms=8000`, OFFICE, 8_000).then((o) => o, (e: NodeJS.ErrnoException) => e.code ?? e.message);
    await waitUntil('both requests reached the upstream', () => upstream.seen.filter((r) => r.url.startsWith('/slow')).length === 2, 5_000);
    const signalled = performance.now();
    const code = await gw.stop('SIGTERM');
    const took = performance.now() - signalled;
    expect(code).toBe(0);
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2_500);
    expect((await quick).status).toBe(200);
    // Still waiting on its upstream at the deadline: the connection is closed without an answer.
    expect(await overlong).toBe('ECONNRESET');
  }));
});

// ---------------------------------------------------------------------------------------------
// The embedded file store (ALLOWGATE_STORE=file:PATH): killed mid-write, and a disk that is full.

interface StoredEntry { readonly id: string; readonly cidrs: readonly string[] }
interface StoredRecord { readonly version: number; readonly entries: readonly StoredEntry[] }

/** The store file as the gateway left it; throws if it is not whole, valid JSON in its format. */
function readStoreFile(path: string): Record<string, StoredRecord> {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { format: string; version: number; accounts: Record<string, StoredRecord> };
  expect(doc.format).toBe('allowgate-store');
  expect(doc.version).toBe(1);
  return doc.accounts;
}

/**
 * SIGKILLs the gateway (if still running) and resolves once it is gone. Unlike `stop()`, also
 * right for a process that already died of a signal (its exitCode stays null).
 */
function killGateway(gw: GatewayProcess): Promise<void> {
  const { child } = gw;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function cidrsOf(record: StoredRecord | undefined): string[] {
  return (record?.entries ?? []).map((e) => e.cidrs[0]!);
}

describe('file store: SIGKILL during writes', () => {
  it('reopens after each kill holding every acknowledged write, in an acknowledged (or the in-flight) state, never corrupt', async () => {
    const dir = scratchDir();
    const upstream = await startEchoUpstream();
    const store = join(dir.path, 'data', 'store.json');
    const env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: `file:${store}`, ALLOWGATE_MAX_ENTRIES: '1000', ALLOWGATE_LOG_LEVEL: 'info' };
    const WRITERS = 4;
    const accounts = Array.from({ length: WRITERS }, (_, w) => `ACK${w}`);
    // Per account, the entries in acknowledgement order: each writer writes one account, one
    // entry at a time, so at a kill at most one write per account is unacknowledged.
    const acknowledged = new Map(accounts.map((a) => [a, [] as string[]]));
    // Only the writes answered 201, without the durable ones whose answer the kill swallowed.
    const confirmed = new Set<string>();
    let gw: GatewayProcess | null = null;
    try {
      let seq = 0;
      for (let round = 0; round < 3; round++) {
        gw = await startGateway({ env });
        const current = gw;
        const pending = new Map<string, string>();
        const unexpected: string[] = [];
        let ackedThisRound = 0;
        // Round 0 kills from inside an acknowledgement (other writers are mid-request); later
        // rounds a few milliseconds after one, which lands wherever the writes happen to be. Counted
        // in acknowledgements, not time from start, so a slow machine still writes enough first.
        const killAfterAcks = 25 + round * 7;
        const kill = (): void => void current.child.kill('SIGKILL');
        const writer = async (account: string, w: number): Promise<void> => {
          while (current.child.exitCode === null && current.child.signalCode === null) {
            const n = seq++;
            const cidr = `127.${10 + w}.${Math.floor(n / 250)}.${(n % 250) + 1}/32`;
            pending.set(account, cidr);
            const res = await current.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: cidr }).catch(() => null);
            if (res === null) return;
            if (res.status !== 201) {
              unexpected.push(`${res.status} ${await res.text()}`);
              return;
            }
            await res.body?.cancel();
            pending.delete(account);
            acknowledged.get(account)!.push(cidr);
            confirmed.add(cidr);
            if (++ackedThisRound === killAfterAcks) {
              if (round === 0) kill();
              else setTimeout(kill, round * 4);
            }
          }
        };
        await Promise.all(accounts.map((a, w) => writer(a, w)));
        await killGateway(current);
        expect(current.child.signalCode).toBe('SIGKILL');
        expect(unexpected).toEqual([]);
        expect(ackedThisRound).toBeGreaterThan(5);

        // The file on disk: whole JSON, every acknowledged write in it, at most the one write
        // in flight per account besides, and versions that count the writes.
        const records = readStoreFile(store);
        for (const account of accounts) {
          const held = cidrsOf(records[account]);
          const acked = acknowledged.get(account)!;
          const inFlight = pending.get(account);
          const extra = held.filter((c) => !acked.includes(c));
          expect(held.slice(0, acked.length), account).toEqual(acked);
          expect(extra.length <= 1 && extra.every((c) => c === inFlight), `${account}: unacknowledged ${extra.join(', ')}`).toBe(true);
          expect(records[account]?.version ?? 0).toBe(held.length);
          // Durable but unacknowledged: from now on it is part of the state the next round builds on.
          acked.push(...extra);
        }
      }

      // The last kill's file, opened by a new gateway: the same state served and enforced, and
      // the audit trail (fsync'd before each acknowledgement) has every acknowledged write.
      gw = await startGateway({ env });
      for (const account of accounts) {
        const listed = await gw.admin('GET', `/v1/accounts/${account}/ip-acl?limit=1000`);
        expect(listed.status).toBe(200);
        const body = (await listed.json()) as { version: number; entries: { cidrs: string[] }[] };
        expect(body.entries.map((e) => e.cidrs[0])).toEqual(acknowledged.get(account));
        expect(body.version).toBe(acknowledged.get(account)!.length);
        const trail = (await (await gw.admin('GET', `/v1/audit?account=${account}&limit=1000`)).json()) as { events: { action: string; after: { cidrs: string[] } }[] };
        const audited = new Set(trail.events.filter((e) => e.action === 'entry.create').map((e) => e.after.cidrs[0]));
        // A write whose answer the kill swallowed may have no audit line; an acknowledged one must.
        for (const cidr of acknowledged.get(account)!.filter((c) => confirmed.has(c))) expect(audited.has(cidr), `${account} ${cidr} audited`).toBe(true);
      }
      const first = acknowledged.get('ACK0')![0]!.replace('/32', '');
      const headers = { 'x-auth-id': 'ACK0' };
      expect((await send(`${gw.url}/x`, { headers, localAddress: first })).status).toBe(200);
      const denied = await send(`${gw.url}/x`, { headers, localAddress: STRANGER });
      expect(denied.status).toBe(403);
      expect(denied.json()).toMatchObject({ code: 403, reason: 'ip_not_allowed' });
      // Temporary files the kills left between write and rename are gone (their processes are).
      expect(readdirSync(join(dir.path, 'data')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      // And it still takes writes on that file.
      expect((await gw.admin('POST', '/v1/accounts/ACK0/ip-acl', { ip_address: `${STRANGER}/32` })).status).toBe(201);
      expect((await send(`${gw.url}/x`, { headers, localAddress: STRANGER })).status).toBe(200);
      expect(cidrsOf(readStoreFile(store)['ACK0'])).toEqual([...acknowledged.get('ACK0')!, `${STRANGER}/32`]);
      expect(await gw.stop()).toBe(0);
    } finally {
      if (gw !== null) await killGateway(gw);
      await upstream.close();
      dir.remove();
    }
  });
});

describe('file store: disk full', () => {
  it('refuses a write that fails with ENOSPC with a JSON 503, keeps the old state on disk and enforces it, and takes writes again once there is room', async () => {
    const dir = scratchDir();
    const upstream = await startEchoUpstream();
    const store = join(dir.path, 'store.json');
    const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: `file:${store}`, ALLOWGATE_LOG_LEVEL: 'info' } });
    const headers = { 'x-auth-id': 'ACF' };
    const decide = async (from: string): Promise<number> => (await send(`${gw.url}/x`, { headers, localAddress: from })).status;
    try {
      const created = await gw.admin('POST', '/v1/accounts/ACF/ip-acl', { ip_address: `${OFFICE}/32` });
      expect(created.status).toBe(201);
      const officeEntry = ((await created.json()) as { id: string }).id;
      expect([await decide(OFFICE), await decide(STRANGER)]).toEqual([200, 403]);
      const before = readFileSync(store);

      // The store replaces its file through `.store.json.<pid>.<n>.tmp` in the same directory.
      // Each of the next temporary names is made a symlink to /dev/full, so the write itself fails
      // with a real ENOSPC, as on a full disk. (Permissions cannot do this here: the tests run as
      // root, which writes into a read-only directory regardless.)
      const pid = gw.child.pid!;
      const traps = Array.from({ length: 200 }, (_, n) => join(dir.path, `.store.json.${pid}.${n + 1}.tmp`));
      for (const trap of traps) if (!existsSync(trap)) symlinkSync('/dev/full', trap);
      const trapsLeft = (): number => readdirSync(dir.path).filter((f) => f.endsWith('.tmp')).length;
      const set = trapsLeft();

      const expected = {
        error: `the change was not saved: writing ${store} failed (ENOSPC); nothing was changed, retry once the disk is writable`,
        code: 503,
        reason: 'store_write_failed',
      };
      const add = await gw.admin('POST', '/v1/accounts/ACF/ip-acl', { ip_address: `${STRANGER}/32` });
      expect(add.status).toBe(503);
      expect(add.headers.get('content-type')).toBe('application/json');
      expect(await add.json()).toEqual(expected);
      // Removing the office entry or changing the account's settings: refused the same way.
      const remove = await gw.admin('DELETE', `/v1/accounts/ACF/ip-acl/${officeEntry}`);
      expect(remove.status).toBe(503);
      expect(await remove.json()).toEqual(expected);
      const settings = await gw.admin('PUT', '/v1/accounts/ACF', { mode: 'off' });
      expect(settings.status).toBe(503);
      expect(await settings.json()).toEqual(expected);
      // Each refused write went through one trap (and removed it): the failure was real, not a guess.
      expect(trapsLeft()).toBe(set - 3);

      // Nothing changed: not the file, not the list and its version, not what is enforced.
      expect(readFileSync(store).equals(before)).toBe(true);
      const listed = await gw.admin('GET', '/v1/accounts/ACF/ip-acl');
      expect(listed.headers.get('etag')).toBe('"1"');
      expect(((await listed.json()) as { entries: { id: string }[] }).entries.map((e) => e.id)).toEqual([officeEntry]);
      expect([await decide(OFFICE), await decide(STRANGER)]).toEqual([200, 403]);
      const trail = (await (await gw.admin('GET', '/v1/audit?account=ACF')).json()) as { events: { action: string }[] };
      expect(trail.events.map((e) => e.action)).toEqual(['entry.create']);
      // Visible to monitoring: three failed store updates.
      const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/^allowgate_store_errors_total\{operation="update"\} 3$/m);
      expect(metrics).toMatch(/^allowgate_store_write_failures_total\{reason="store_write_failed"\} 3$/m);
      // And said at error level with the cause: once for the three (a full disk fails every
      // write alike; the next line, after the interval, says how many were held back).
      const failures = gw.logs.filter((l) => l['msg'] === 'store write failed: the change was not saved');
      expect(failures.map((l) => [l['level'], l['store'], l['reason'], String(l['cause']).includes('ENOSPC'), l['suppressed']])).toEqual([['error', 'file', 'store_write_failed', true, 0]]);
      await assertAlive(gw, '/x');

      // Room again: the same change goes through and is enforced at once.
      for (const trap of traps) rmSync(trap, { force: true });
      const retried = await gw.admin('POST', '/v1/accounts/ACF/ip-acl', { ip_address: `${STRANGER}/32` });
      expect(retried.status).toBe(201);
      expect(retried.headers.get('etag')).toBe('"2"');
      expect([await decide(OFFICE), await decide(STRANGER)]).toEqual([200, 200]);
      expect(cidrsOf(readStoreFile(store)['ACF'])).toEqual([`${OFFICE}/32`, `${STRANGER}/32`]);
      expect(await gw.stop()).toBe(0);
    } finally {
      await killGateway(gw);
      await upstream.close();
      dir.remove();
    }
  });
});
