import { createServer, request, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Lifecycle, listen } from '../../../src/app/lifecycle.ts';

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.closeAllConnections();
});

function server(): Server {
  const s = createServer((_req, res) => res.end('ok'));
  servers.push(s);
  return s;
}

function get(port: number): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'keep-alive' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    }).on('error', reject).end();
  });
}

describe('Lifecycle', () => {
  it('runs the before steps, drains every listener, then the after steps in order, once', async () => {
    const lifecycle = new Lifecycle(1_000);
    const order: string[] = [];
    const a = await lifecycle.listen(server(), { host: '127.0.0.1', port: 0 });
    const b = await lifecycle.listen(server(), { host: '127.0.0.1', port: 0 });
    expect((await get(a.port)).status).toBe(200);
    lifecycle.drains(async (timeoutMs) => {
      order.push(`other listener drained within ${timeoutMs} ms`);
    });
    lifecycle.before(() => void order.push('before'));
    lifecycle.after(() => void order.push('after 1'));
    lifecycle.after(async () => {
      order.push('after 2');
    });
    const first = lifecycle.shutdown();
    expect(lifecycle.shutdown()).toBe(first);
    await first;
    expect(order).toEqual(['before', 'other listener drained within 1000 ms', 'after 1', 'after 2']);
    await expect(get(a.port)).rejects.toThrow(/ECONNREFUSED/);
    await expect(get(b.port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a failing step ends the shutdown with its error', async () => {
    const lifecycle = new Lifecycle(1_000);
    const order: string[] = [];
    lifecycle.after(() => {
      throw new Error('store did not close');
    });
    lifecycle.after(() => void order.push('not reached'));
    await expect(lifecycle.shutdown()).rejects.toThrow('store did not close');
    expect(order).toEqual([]);
  });

  it('listen names the address it could not take', async () => {
    const taken = await listen(server(), { host: '127.0.0.1', port: 0 });
    await expect(listen(server(), { host: '127.0.0.1', port: taken.port })).rejects.toThrow(`cannot listen on 127.0.0.1:${taken.port}: `);
  });
});
