import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
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
 */
export class HttpForwarder {
  readonly #pool: Pool;
  readonly #origin: string;
  readonly #upstreamHost: string | null;
  readonly #hooks: ForwardHooks;

  constructor(settings: UpstreamSettings, hooks: ForwardHooks) {
    this.#origin = settings.url.origin;
    this.#upstreamHost = settings.preserveHost ? null : settings.url.host;
    this.#hooks = hooks;
    this.#pool = new Pool(this.#origin, {
      connections: settings.connections,
      connect: { timeout: settings.connectTimeoutMs },
      headersTimeout: settings.headersTimeoutMs,
      bodyTimeout: settings.bodyTimeoutMs,
      keepAliveTimeout: 4_000,
    });
  }

  forward(req: IncomingMessage, res: ServerResponse, facts: Omit<ForwardingFacts, 'upstreamHost'>): void {
    const headers = upstreamRequestHeaders(req.rawHeaders, { peer: facts.peer, peerTrusted: facts.peerTrusted, requestId: facts.requestId, upstreamHost: this.#upstreamHost });
    this.#pool.stream(
      {
        path: req.url ?? '/',
        method: req.method ?? 'GET',
        headers,
        body: hasBody(req.rawHeaders) ? req : null,
      },
      ({ statusCode, headers: upstreamHeaders }) => {
        this.#hooks.responded?.(statusCode);
        res.writeHead(statusCode, downstreamResponseHeaders(upstreamHeaders, facts.requestId));
        return res;
      },
      (error) => {
        if (error === null) return;
        const kind = classifyUpstreamError(error);
        if (res.headersSent) {
          this.#hooks.aborted(req, kind, facts.requestId);
          res.destroy();
        } else if (!req.socket.destroyed) {
          this.#hooks.refuse(req, res, upstreamRefusal(kind, this.#origin), kind, facts.requestId);
        }
      },
    );
  }

  close(): Promise<void> {
    return this.#pool.close();
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
