/**
 * The processes a proxy benchmark measures, other than allowgate itself: the upstream and the
 * bare forwarders. Each runs in a process of its own (`node bench/lib/servers.ts <kind> <port>
 * [upstream port]`) so that every target pays the same process and event-loop costs.
 */
import { createServer, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { createProxyServer } from 'http-proxy-3';

/** The upstream: a fixed 100-byte JSON body, keep-alive. */
const BODY = JSON.stringify({ ok: true, service: 'bench-upstream', padding: 'x'.repeat(56) });

function upstream(port: number): void {
  createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
    res.end(BODY);
  }).listen(port, '127.0.0.1');
}

/** Bare undici forwarder through `dispatch`, as allowgate forwards: no checks, no header rewrite. */
function undiciDispatch(port: number, target: string): void {
  const pool = new Pool(target, { connections: 128, keepAliveTimeout: 4_000 });
  class Handler implements Dispatcher.DispatchHandler {
    readonly #res: ServerResponse;
    constructor(res: ServerResponse) {
      this.#res = res;
    }
    onRequestStart(): void {}
    onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
      if (status >= 200) this.#res.writeHead(status, headers);
    }
    onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
      if (!this.#res.write(chunk)) {
        c.pause();
        this.#res.once('drain', () => c.resume());
      }
    }
    onResponseEnd(): void {
      this.#res.end();
    }
    onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
      if (process.env['BENCH_DEBUG']) console.error(error);
      if (this.#res.headersSent) this.#res.destroy();
      else this.#res.writeHead(502).end();
    }
  }
  createServer((req: IncomingMessage, res: ServerResponse) => {
    pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers: req.headers, body: null }, new Handler(res));
  }).listen(port, '127.0.0.1');
}

/** Bare undici forwarder through `pool.stream`, the documented streaming API. */
function undiciStream(port: number, target: string): void {
  const pool = new Pool(target, { connections: 128, keepAliveTimeout: 4_000 });
  createServer((req, res) => {
    pool.stream({ path: req.url ?? '/', method: req.method ?? 'GET', headers: req.headers, body: null }, ({ statusCode, headers }) => {
      res.writeHead(statusCode, headers);
      return res;
    }, (error) => {
      if (error !== null && !res.headersSent) res.writeHead(502).end();
    });
  }).listen(port, '127.0.0.1');
}

/** Bare http-proxy-3 forwarder with a keep-alive agent. */
function httpProxy(port: number, target: string): void {
  const proxy = createProxyServer({ target, agent: new Agent({ keepAlive: true, maxSockets: 128 }) });
  proxy.on('error', (_error, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502).end();
  });
  createServer((req, res) => proxy.web(req, res)).listen(port, '127.0.0.1');
}

const [kind, port, upstreamPort] = process.argv.slice(2);
const target = `http://127.0.0.1:${upstreamPort}`;
switch (kind) {
  case 'upstream': upstream(Number(port)); break;
  case 'undici-dispatch': undiciDispatch(Number(port), target); break;
  case 'undici-stream': undiciStream(Number(port), target); break;
  case 'http-proxy-3': httpProxy(Number(port), target); break;
  default: throw new Error(`unknown server kind '${kind}': upstream, undici-dispatch, undici-stream or http-proxy-3`);
}
process.on('SIGTERM', () => process.exit(0));
