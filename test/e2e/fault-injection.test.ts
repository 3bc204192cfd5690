import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { freePort, startRedis } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Faults injected with real processes: a misbehaving upstream, SIGTERM under load, the gateway
 * killed in the middle of file-store writes, a store file that cannot grow (the disk is full),
 * and Redis missing at start.
 */

const OFFICE = '127.0.0.2';

async function addEntry(gw: GatewayProcess, account: string, ip: string): Promise<Response> {
  return gw.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: ip });
}

/** An upstream that speaks broken HTTP on purpose, chosen by the request path. */
async function startBrokenUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server: TcpServer = createTcpServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (data) => {
      const path = data.toString('latin1').split(' ')[1] ?? '';
      if (path === '/garbage') {
        socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
      } else if (path === '/cut') {
        // Promises 100,000 bytes, sends 1,000, then resets the connection.
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\n');
        socket.write(Buffer.alloc(1000, 0x61), () => setTimeout(() => socket.resetAndDestroy(), 20));
      } else {
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((done) => server.close(() => done())),
  };
}

/** A GET through the gateway that reports how the response ended rather than failing on a cut. */
function fetchRaw(url: string): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress: OFFICE }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => { bytes += d.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }));
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('no answer within 5 s')));
    req.end();
  });
}

describe('a misbehaving upstream', () => {
  let upstream: Awaited<ReturnType<typeof startBrokenUpstream>>;
  let gw: GatewayProcess;

  beforeAll(async () => {
    upstream = await startBrokenUpstream();
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url } });
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('answers 502 JSON when the upstream answers with something that is not HTTP', async () => {
    const reply = await send(`${gw.url}/garbage`, { localAddress: OFFICE });
    expect(reply.status).toBe(502);
    expect(reply.json()).toMatchObject({ code: 502, reason: expect.stringMatching(/^upstream_/) });
  });

  it('passes a cut-off response on as cut off (never as complete), and keeps serving', async () => {
    const cut = await fetchRaw(`${gw.url}/cut`);
    expect(cut.status).toBe(200);
    expect(cut.complete).toBe(false);
    expect(cut.bytes).toBeLessThan(100_000);
    const next = await send(`${gw.url}/ok`, { localAddress: OFFICE });
    expect(next.status).toBe(200);
    expect(next.body).toBe('ok');
    expect(gw.child.exitCode).toBeNull();
  });
});

describe('SIGTERM under load', () => {
  it('finishes every request in flight, then exits 0', async () => {
    const upstream: EchoUpstream = await startEchoUpstream();
    const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url } });
    try {
      const inFlight = Array.from({ length: 40 }, (_, i) => send(`${gw.url}/slow?ms=700&n=${i}`, { localAddress: OFFICE, timeoutMs: 10_000 }));
      await waitUntil('40 requests at the upstream', () => upstream.seen.filter((r) => r.url.startsWith('/slow')).length === 40, 5_000);
      const exited = gw.stop('SIGTERM');
      const replies = await Promise.all(inFlight);
      expect(replies.map((r) => r.status)).toEqual(new Array(40).fill(200));
      expect(await exited).toBe(0);
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });
});

describe('file store under faults', () => {
  it('keeps every acknowledged write when killed (SIGKILL) in the middle of writes, three times over', async () => {
    const dir = scratchDir();
    const store = join(dir.path, 'store.json');
    const env = { ALLOWGATE_STORE: `file:${store}` };
    const acknowledged = new Set<string>();
    try {
      for (let round = 0; round < 3; round++) {
        const gw = await startGateway({ env });
        let n = 0;
        // Writes back to back; the kill lands while one of them is being written.
        const writer = (async () => {
          for (;;) {
            const ip = `198.51.${100 + round}.${n++}`;
            const res = await addEntry(gw, `ACK${n % 5}`, ip).catch(() => null);
            if (res === null || res.status !== 201) return;
            acknowledged.add(ip);
          }
        })();
        await waitUntil('some writes acknowledged', () => acknowledged.size >= 20 * (round + 1), 10_000);
        await gw.stop('SIGKILL');
        await writer;
      }
      // The file is whole, and the restarted gateway holds every acknowledged entry.
      expect(() => JSON.parse(readFileSync(store, 'utf8'))).not.toThrow();
      const gw = await startGateway({ env });
      try {
        const held = new Set<string>();
        for (let a = 0; a < 5; a++) {
          const body = (await (await gw.admin('GET', `/v1/accounts/ACK${a}/ip-acl`)).json()) as { entries: { ip_address: string }[] };
          for (const entry of body.entries) held.add(entry.ip_address);
        }
        for (const ip of acknowledged) expect(held.has(ip), ip).toBe(true);
        // At most the write in flight at each kill got in without its acknowledgement.
        expect(held.size - acknowledged.size).toBeLessThanOrEqual(3);
      } finally {
        await gw.stop();
      }
    } finally {
      dir.remove();
    }
  });

  it('refuses a write the disk cannot take with a JSON error, keeping and enforcing the old state', async () => {
    const dir = scratchDir();
    const upstream = await startEchoUpstream();
    const store = join(dir.path, 'store.json');
    const audit = join(dir.path, 'audit.jsonl');
    // The process may not grow any file past 8 KiB: writes beyond fail as on a full disk.
    const gw = await startGateway({
      env: { ALLOWGATE_STORE: `file:${store}`, ALLOWGATE_AUDIT_PATH: audit, ALLOWGATE_UPSTREAM_URL: upstream.url },
      wrap: ['prlimit', '--fsize=8192', '--'],
    });
    try {
      expect((await addEntry(gw, 'ACD', `${OFFICE}/32`)).status).toBe(201);
      let refused: Response | null = null;
      let written = 1;
      for (let i = 0; i < 200 && refused === null; i++) {
        const res = await addEntry(gw, `ACD${i % 10}`, `198.51.100.${i}`);
        if (res.status === 201) written++;
        else refused = res;
      }
      expect(refused, 'a write past the file size limit').not.toBeNull();
      expect(refused!.status).toBe(503);
      expect(await refused!.json()).toMatchObject({ code: 503, reason: 'store_write_failed', error: expect.stringMatching(/EFBIG.*nothing was changed/) });
      expect(gw.child.exitCode).toBeNull();
      // The old state is intact on disk and still enforced.
      expect(() => JSON.parse(readFileSync(store, 'utf8'))).not.toThrow();
      const allowed = await send(`${gw.url}/x`, { localAddress: OFFICE, headers: { 'x-auth-id': 'ACD' } });
      expect(allowed.status).toBe(200);
      const stranger = await send(`${gw.url}/x`, { localAddress: '127.0.0.3', headers: { 'x-auth-id': 'ACD' } });
      expect(stranger.status).toBe(403);
      let listed = 0;
      for (let a = 0; a < 10; a++) {
        const body = (await (await gw.admin('GET', `/v1/accounts/ACD${a}/ip-acl`)).json()) as { entries: unknown[] };
        listed += body.entries.length;
      }
      expect(listed + 1).toBe(written);
    } finally {
      await gw.stop();
      await upstream.close();
      dir.remove();
    }
  });
});

describe('Redis missing at start', () => {
  it('starts not ready and refuses with 503, then enforces once Redis comes up', async () => {
    const upstream = await startEchoUpstream();
    const port = await freePort();
    const dir = scratchDir();
    const config = join(dir.path, 'allowgate.yaml');
    writeFileSync(config, '# Redis from the environment\n');
    const gw = await startGateway({ env: { ALLOWGATE_STORE: `redis://127.0.0.1:${port}`, ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config } });
    let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
    try {
      expect((await fetch(`${gw.adminUrl}/readyz`)).status).toBe(503);
      const early = await send(`${gw.url}/x`, { localAddress: OFFICE, headers: { 'x-auth-id': 'ACR1' } });
      expect(early.status).toBe(503);
      expect(early.json()).toMatchObject({ code: 503, reason: 'store_unavailable' });

      redis = await startRedis(['--port', String(port)]);
      await waitUntil('ready once Redis is up', async () => (await fetch(`${gw.adminUrl}/readyz`)).status === 200, 10_000);
      expect((await addEntry(gw, 'ACR1', `${OFFICE}/32`)).status).toBe(201);
      expect((await send(`${gw.url}/x`, { localAddress: OFFICE, headers: { 'x-auth-id': 'ACR1' } })).status).toBe(200);
      expect((await send(`${gw.url}/x`, { localAddress: '127.0.0.3', headers: { 'x-auth-id': 'ACR1' } })).status).toBe(403);
    } finally {
      await gw.stop();
      await redis?.stop();
      await upstream.close();
      dir.remove();
    }
  });
});
