/**
 * The processes the proxy benchmarks measure other than allowgate itself: the upstream and the
 * bare forwarders (no checks). Each runs in a process of its own,
 * `node bench/lib/forwarders.ts <kind> <port> [upstream port]`, so every target pays the same
 * process and event-loop costs; `startServer` starts one and waits until it accepts connections.
 *
 * The undici forwarders do what allowgate's forwarder does (src/proxy/http-forwarder.ts) minus the
 * checks: a keep-alive undici Pool, the request's hop-by-hop headers dropped and X-Forwarded-For
 * set, the response's hop-by-hop headers dropped, the body streamed with back-pressure.
 */
import { createServer, Agent, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Pool, type Dispatcher } from 'undici';
import { createProxyServer } from 'http-proxy-3';
import { freePort, start, waitForPort } from './processes.ts';

export type ServerKind = 'upstream' | 'undici-dispatch' | 'undici-stream' | 'http-proxy-3';

/** The upstream's answer: exactly 100 bytes of JSON. */
export const UPSTREAM_BODY = (() => {
  const base = { ok: true, service: 'bench-upstream', padding: '' };
  const padding = 100 - Buffer.byteLength(JSON.stringify(base));
  return JSON.stringify({ ...base, padding: 'x'.repeat(padding) });
})();

const POOL_CONNECTIONS = 128;
const KEEP_ALIVE_MS = 4_000;

function upstream(port: number): void {
  const body = Buffer.from(UPSTREAM_BODY);
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1');
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);

/** The caller's headers minus hop-by-hop ones, X-Forwarded-For set to the peer: a flat list. */
function requestHeaders(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower === 'x-forwarded-for') continue;
    out.push(name, raw[i + 1]!);
  }
  out.push('x-forwarded-for', req.socket.remoteAddress ?? '');
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

function newPool(target: string): Pool {
  return new Pool(target, { connections: POOL_CONNECTIONS, keepAliveTimeout: KEEP_ALIVE_MS });
}

/** undici through `dispatch` with one small handler per exchange: allowgate's way. */
function undiciDispatch(port: number, target: string): void {
  const pool = newPool(target);
  class Exchange implements Dispatcher.DispatchHandler {
    readonly #res: ServerResponse;
    constructor(res: ServerResponse) {
      this.#res = res;
    }
    onRequestStart(): void {}
    onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
      if (status >= 200) this.#res.writeHead(status, responseHeaders(headers));
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
      if (this.#res.destroyed) return;
      process.stderr.write(`undici-dispatch: ${error.message}\n`);
      if (this.#res.headersSent) this.#res.destroy();
      else this.#res.writeHead(502).end();
    }
  }
  createServer((req, res) => {
    pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers: requestHeaders(req), body: hasBody(req) ? req : null }, new Exchange(res));
  }).listen(port, '127.0.0.1');
}

/** undici through `pool.stream`, its documented streaming API. */
function undiciStream(port: number, target: string): void {
  const pool = newPool(target);
  createServer((req, res) => {
    pool.stream({ path: req.url ?? '/', method: req.method ?? 'GET', headers: requestHeaders(req), body: hasBody(req) ? req : null }, ({ statusCode, headers }) => {
      res.writeHead(statusCode, responseHeaders(headers));
      return res;
    }, (error) => {
      if (error === null) return;
      // A caller that hung up (wrk ending a run) is no upstream failure.
      if (res.destroyed || req.socket.destroyed) return;
      process.stderr.write(`undici-stream: ${error.message}\n`);
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  }).listen(port, '127.0.0.1');
}

/** http-proxy-3 with a keep-alive agent; it does its own hop-by-hop and X-Forwarded-* handling. */
function httpProxy3(port: number, target: string): void {
  const proxy = createProxyServer({ target, xfwd: true, agent: new Agent({ keepAlive: true, maxSockets: POOL_CONNECTIONS, keepAliveMsecs: KEEP_ALIVE_MS }) });
  proxy.on('error', (error, _req, res) => {
    process.stderr.write(`http-proxy-3: ${error.message}\n`);
    if ('writeHead' in res && !res.headersSent) res.writeHead(502).end();
  });
  createServer((req, res) => proxy.web(req, res)).listen(port, '127.0.0.1');
}

export interface RunningServer {
  readonly kind: ServerKind;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
}

const SELF = fileURLToPath(import.meta.url);

/** Starts `kind` in a process of its own on a free loopback port and waits for it. */
export async function startServer(kind: ServerKind, upstreamPort = 0): Promise<RunningServer> {
  const port = await freePort();
  const child = start(process.execPath, [SELF, kind, String(port), String(upstreamPort)]);
  await waitForPort(port);
  return { kind, pid: child.pid ?? 0, port, url: `http://127.0.0.1:${port}` };
}

if (process.argv[1] === SELF) {
  const [kind, port, upstreamPort] = process.argv.slice(2) as [ServerKind, string, string];
  const target = `http://127.0.0.1:${upstreamPort}`;
  switch (kind) {
    case 'upstream': upstream(Number(port)); break;
    case 'undici-dispatch': undiciDispatch(Number(port), target); break;
    case 'undici-stream': undiciStream(Number(port), target); break;
    case 'http-proxy-3': httpProxy3(Number(port), target); break;
    default: throw new Error(`unknown server kind '${String(kind)}': upstream, undici-dispatch, undici-stream or http-proxy-3`);
  }
  process.on('SIGTERM', () => process.exit(0));
}
