import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { isHeaderName } from '../http/header-name.ts';
import { refusal, type Refusal } from '../http/refusal.ts';
import { Admission, capOf, TicketState, type Ticket } from './admission.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders, type CheckedHeaderNames, type ForwardingFacts, type RewriteSettings } from './headers.ts';
import { classifyUpstreamError, upstreamRefusal, type UpstreamErrorKind } from './upstream-error.ts';

export interface UpstreamSettings {
  /** An origin (scheme, host, port): request paths are forwarded as they are. */
  readonly url: URL;
  /** Keep-alive pool size: requests that run upstream at once. */
  readonly connections: number;
  /** Longest wait for a free upstream connection; past it the caller gets 503 upstream_busy. */
  readonly queueTimeoutMs: number;
  /** Share of the connections one client address may hold (waiting or running). */
  readonly clientShare: number;
  /** Share of the connections one account may hold (anonymous callers share one). */
  readonly accountShare: number;
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
  refuse(req: IncomingMessage, res: ServerResponse, refusal: Refusal, failure: UpstreamFailure): void;
  /** The upstream failed mid-response: the caller's connection is cut, nothing can be said. */
  aborted(req: IncomingMessage, failure: UpstreamFailure): void;
  /**
   * The gateway answered for the upstream to protect it or the other callers: a cap reached
   * (429), no connection free in time (503 upstream_busy), a request body that stopped (408).
   */
  shed(req: IncomingMessage, res: ServerResponse, refusal: Refusal, facts: ExchangeFacts): void;
}

/** What the forwarder needs to know of a checked request. */
export interface ExchangeFacts extends ForwardingFacts {
  readonly account: string | null;
}

/** An upstream exchange that failed: what kind of failure, its cause, and whose request it was. */
export interface UpstreamFailure {
  readonly kind: UpstreamErrorKind;
  readonly cause: Error;
  readonly facts: ExchangeFacts;
}

export interface ForwarderOptions {
  /** Longest silence of a request body being forwarded; past it 408 and the connection closed. 0: no limit. */
  readonly bodyIdleTimeoutMs: number;
  /** Drop headers whose name holds `_` (headers.underscores: drop). */
  readonly dropUnderscores: boolean;
  /** Set from the decision on every forwarded request (see RewriteSettings). */
  readonly checkedHeaders?: CheckedHeaderNames;
}

/** How often queued and streaming exchanges are checked: the resolution of both timeouts. */
const SWEEP_MS = 250;

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
  readonly #rewrite: RewriteSettings;
  readonly hooks: ForwardHooks;
  readonly admission: Admission;
  /** Changed in place by a configuration reload. */
  bodyIdleTimeoutMs: number;
  readonly #sweep: NodeJS.Timeout;
  readonly #clientCap: Refusal;
  readonly #accountCap: Refusal;

  constructor(settings: UpstreamSettings, hooks: ForwardHooks, options: ForwarderOptions) {
    this.origin = settings.url.origin;
    this.#rewrite = { upstreamHost: settings.preserveHost ? null : settings.url.host, dropUnderscores: options.dropUnderscores, ...(options.checkedHeaders === undefined ? {} : { checkedHeaders: options.checkedHeaders }) };
    this.hooks = hooks;
    this.bodyIdleTimeoutMs = options.bodyIdleTimeoutMs;
    this.admission = new Admission({
      connections: settings.connections,
      perClient: capOf(settings.connections, settings.clientShare),
      perAccount: capOf(settings.connections, settings.accountShare),
      queueTimeoutMs: settings.queueTimeoutMs,
    });
    const { perClient, perAccount } = this.admission.limits;
    this.#clientCap = refusal(429, 'client_concurrency_limit',
      `this client address already has ${perClient} requests in flight (upstream.clientShare of upstream.connections); retry when one has finished`);
    this.#accountCap = refusal(429, 'account_concurrency_limit',
      `this account already has ${perAccount} requests in flight (upstream.accountShare of upstream.connections); retry when one has finished`);
    this.#sweep = setInterval(() => this.admission.sweep(performance.now()), SWEEP_MS);
    this.#sweep.unref();
    this.#pool = new Pool(this.origin, {
      connections: settings.connections,
      connect: { timeout: settings.connectTimeoutMs },
      headersTimeout: settings.headersTimeoutMs,
      bodyTimeout: settings.bodyTimeoutMs,
      keepAliveTimeout: 4_000,
    });
  }

  forward(req: IncomingMessage, res: ServerResponse, facts: ExchangeFacts): void {
    const exchange = new Exchange(this, req, res, facts);
    (res as TrackedResponse)[EXCHANGE] = exchange;
    res.on('close', abortIfUnfinished);
    const turnedAway = this.admission.admit(exchange, performance.now());
    if (turnedAway !== null) exchange.shed(turnedAway === 'client' ? this.#clientCap : this.#accountCap);
  }

  /** Called by an exchange given its slot. */
  dispatch(exchange: Exchange, req: IncomingMessage, facts: ExchangeFacts): void {
    const headers = upstreamRequestHeaders(req.rawHeaders, facts, this.#rewrite);
    this.#pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers, body: exchange.hasBody ? req : null }, exchange);
  }

  close(): Promise<void> {
    clearInterval(this.#sweep);
    return this.#pool.close();
  }
}

const UPSTREAM_BUSY = (queueTimeoutMs: number): Refusal =>
  refusal(503, 'upstream_busy', `no upstream connection became free within ${queueTimeoutMs} ms (upstream.queueTimeoutMs): the upstream is saturated; retry shortly`);
const BODY_TIMEOUT = (idleMs: number): Refusal =>
  refusal(408, 'body_timeout', `the request body stopped arriving for ${idleMs} ms (limits.bodyIdleTimeoutMs); the connection is closed`);

const EXCHANGE = Symbol('allowgate.forward');
type TrackedResponse = ServerResponse & { [EXCHANGE]?: Exchange };

/** A caller that hangs up before its response is complete ends the upstream exchange too. */
function abortIfUnfinished(this: TrackedResponse): void {
  if (!this.writableFinished) this[EXCHANGE]?.callerGone();
}

/**
 * One forwarded request: its place in the admission queue, then undici's events mapped onto the
 * caller's response.
 */
class Exchange implements Dispatcher.DispatchHandler, Ticket {
  readonly #forwarder: HttpForwarder;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #facts: ExchangeFacts;
  readonly client: string;
  readonly account: string;
  readonly hasBody: boolean;
  state: TicketState = TicketState.New;
  queuedAt = 0;
  #controller: Dispatcher.DispatchController | null = null;
  /** The caller left, or the gateway answered it itself: upstream failures are nobody's news. */
  #gone = false;
  /** Body-idle watch: the caller's socket byte count when last seen moving, and when. */
  #bytesRead = -1;
  #movedAt = 0;

  constructor(forwarder: HttpForwarder, req: IncomingMessage, res: ServerResponse, facts: ExchangeFacts) {
    this.#forwarder = forwarder;
    this.#req = req;
    this.#res = res;
    this.#facts = facts;
    this.client = facts.client ?? facts.peer;
    // Anonymous requests (no account) are one tenant between them.
    this.account = facts.account ?? '';
    this.hasBody = hasBody(req.rawHeaders);
  }

  run(): void {
    if (this.hasBody) this.#movedAt = performance.now();
    this.#forwarder.dispatch(this, this.#req, this.#facts);
  }

  expire(): void {
    this.shed(UPSTREAM_BUSY(this.#forwarder.admission.limits.queueTimeoutMs));
  }

  /**
   * A body that stops arriving holds an upstream connection for nothing: past
   * limits.bodyIdleTimeoutMs without a byte, the exchange is aborted and the caller told 408 (or
   * cut, if the upstream already answered). Waiting on the upstream (it stopped reading, so the
   * gateway did too) is not the caller's silence and does not count.
   */
  watch(now: number): void {
    const idleMs = this.#forwarder.bodyIdleTimeoutMs;
    if (!this.hasBody || idleMs === 0 || this.#req.complete || this.#gone) return;
    const socket = this.#req.socket;
    const bytesRead = socket.bytesRead;
    if (bytesRead !== this.#bytesRead || this.#req.readableLength > 0) {
      this.#bytesRead = bytesRead;
      this.#movedAt = now;
      return;
    }
    if (now - this.#movedAt < idleMs) return;
    this.shed(BODY_TIMEOUT(idleMs));
    this.#controller?.abort(new Error('the request body stopped arriving'));
  }

  /** Answers the caller for the upstream and closes the connection (a body may still be unread). */
  shed(refused: Refusal): void {
    this.#gone = true;
    this.#forwarder.admission.release(this);
    const res = this.#res;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.shouldKeepAlive = false;
    this.#forwarder.hooks.shed(this.#req, res, refused, this.#facts);
  }

  callerGone(): void {
    this.#gone = true;
    this.#forwarder.admission.release(this);
    this.#controller?.abort(new Error('the caller closed the connection'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#gone) controller.abort(new Error('the caller closed the connection'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // Interim responses stay between gateway and upstream: Node's server has already answered
    // the caller's Expect: 100-continue itself.
    if (statusCode < 200 || this.#gone) return;
    this.#forwarder.hooks.responded?.(statusCode);
    this.#res.writeHead(statusCode, downstreamResponseHeaders(headers, this.#facts.requestId));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#gone) return;
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#forwarder.admission.release(this);
    if (!this.#gone) this.#res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#forwarder.admission.release(this);
    // The caller left first, or was answered already: nothing failed upstream, nobody to tell.
    if (this.#gone) return;
    const failure: UpstreamFailure = { kind: classifyUpstreamError(error), cause: error, facts: this.#facts };
    const { hooks, origin } = this.#forwarder;
    if (this.#res.headersSent) {
      hooks.aborted(this.#req, failure);
      this.#res.destroy();
    } else if (!this.#req.socket.destroyed) {
      hooks.refuse(this.#req, this.#res, upstreamRefusal(failure.kind, origin), failure);
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
