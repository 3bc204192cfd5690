import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { isHeaderName } from '../http/header-name.ts';
import type { Refusal } from '../http/refusal.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders, type ForwardingFacts } from './headers.ts';
import { classifyUpstreamError, upstreamRefusal, type UpstreamErrorKind } from './upstream-error.ts';

export interface UpstreamSettings {
  /** An origin (scheme, host, port): request paths are forwarded as they are. */
  readonly url: URL;
  /** Keep-alive pool size. */
  readonly connections: number;
  readonly connectTimeoutMs: number;
  /** Time allowed for the upstream's response headers; past it the caller gets 504. */
  readonly headersTimeoutMs: number;
  /** Longest silence allowed while a body streams; past it the exchange is aborted. */
  readonly bodyTimeoutMs: number;
  /** Forward the caller's Host header (a sidecar's upstream usually serves that name). */
  readonly preserveHost: boolean;
}

export interface ForwardHooks {
  /** The upstream answered with this status (its headers are being passed on). */
  responded?(status: number): void;
  /** The upstream failed before a response started: the caller still needs an answer. */
  refuse(req: IncomingMessage, res: ServerResponse, refusal: Refusal, kind: UpstreamErrorKind, requestId: string): void;
  /** The upstream failed mid-response: the caller's connection is cut, nothing can be said. */
  aborted(req: IncomingMessage, kind: UpstreamErrorKind, requestId: string): void;
}

/**
 * Plain HTTP forwarding over a keep-alive undici Pool: the request body streams to the upstream
 * and the response streams straight into the caller's response. The target is fixed at start:
 * only the request's path and query travel, never a host or scheme taken from the request.
 *
 * It drives the pool through `dispatch` with one small handler per exchange rather than
 * `pool.stream`, whose async-resource and writable-lifecycle tracking cost more per request
 * than the rest of the forwarding (measured in bench/engine.ts).
 */
export class HttpForwarder {
  readonly #pool: Pool;
  readonly origin: string;
  readonly #upstreamHost: string | null;
  readonly hooks: ForwardHooks;

  constructor(settings: UpstreamSettings, hooks: ForwardHooks) {
    this.origin = settings.url.origin;
    this.#upstreamHost = settings.preserveHost ? null : settings.url.host;
    this.hooks = hooks;
    this.#pool = new Pool(this.origin, {
      connections: settings.connections,
      connect: { timeout: settings.connectTimeoutMs },
      headersTimeout: settings.headersTimeoutMs,
      bodyTimeout: settings.bodyTimeoutMs,
      keepAliveTimeout: 4_000,
    });
  }

  forward(req: IncomingMessage, res: ServerResponse, facts: Omit<ForwardingFacts, 'upstreamHost'>): void {
    const headers = upstreamRequestHeaders(req.rawHeaders, { peer: facts.peer, peerTrusted: facts.peerTrusted, requestId: facts.requestId, upstreamHost: this.#upstreamHost });
    const exchange = new Exchange(this, req, res, facts.requestId);
    (res as TrackedResponse)[EXCHANGE] = exchange;
    res.on('close', abortIfUnfinished);
    this.#pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers, body: hasBody(req.rawHeaders) ? req : null }, exchange);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

const EXCHANGE = Symbol('allowgate.forward');
type TrackedResponse = ServerResponse & { [EXCHANGE]?: Exchange };

/** A caller that hangs up before its response is complete ends the upstream exchange too. */
function abortIfUnfinished(this: TrackedResponse): void {
  if (!this.writableFinished) this[EXCHANGE]?.callerGone();
}

/** One forwarded request: undici's events mapped onto the caller's response. */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #forwarder: HttpForwarder;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #requestId: string;
  #controller: Dispatcher.DispatchController | null = null;
  #gone = false;

  constructor(forwarder: HttpForwarder, req: IncomingMessage, res: ServerResponse, requestId: string) {
    this.#forwarder = forwarder;
    this.#req = req;
    this.#res = res;
    this.#requestId = requestId;
  }

  callerGone(): void {
    this.#gone = true;
    this.#controller?.abort(new Error('the caller closed the connection'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#gone) controller.abort(new Error('the caller closed the connection'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // Interim responses stay between gateway and upstream: Node's server has already answered
    // the caller's Expect: 100-continue itself.
    if (statusCode < 200) return;
    this.#forwarder.hooks.responded?.(statusCode);
    this.#res.writeHead(statusCode, downstreamResponseHeaders(headers, this.#requestId));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // The caller left first: nothing failed upstream, and nobody is left to answer.
    if (this.#gone) return;
    const kind = classifyUpstreamError(error);
    const { hooks, origin } = this.#forwarder;
    if (this.#res.headersSent) {
      hooks.aborted(this.#req, kind, this.#requestId);
      this.#res.destroy();
    } else if (!this.#req.socket.destroyed) {
      hooks.refuse(this.#req, this.#res, upstreamRefusal(kind, origin), kind, this.#requestId);
    }
  }
}

/**
 * Whether the request carries a body, read from the raw headers: `req.headers` is built lazily
 * by Node, and touching it would build the whole header object for two lookups.
 */
function hasBody(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (isHeaderName(name, 'transfer-encoding')) return true;
    if (isHeaderName(name, 'content-length') && rawHeaders[i + 1] !== '0') return true;
  }
  return false;
}
