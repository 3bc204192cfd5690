import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isHeaderName } from '../http/header-name.ts';
import { ok, refusal, refused, type Refusal, type Result } from '../http/refusal.ts';
import { refusalBody, writeRawRefusal } from '../http/raw-response.ts';
import type { Logger } from '../observability/logger.ts';
import { redactUrl } from '../observability/redact-url.ts';
import type { HttpForwarder } from '../proxy/http-forwarder.ts';
import type { WsForwarder } from '../proxy/ws-forwarder.ts';
import type { Checked, Gatekeeper, IncomingView } from './gatekeeper.ts';
import type { RequestObserver } from '../observability/observer.ts';
import { requestIdFrom } from './request-id.ts';

export interface ListenerLimits {
    readonly maxHeaderBytes: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    /** Longest silence of a request body being forwarded (408 past it); 0: none. */
    readonly bodyIdleTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    /** Open connections on the proxy listener; a request on a further one is answered 503, past a margin they are closed at accept. */
    readonly maxConnections: number;
}

export interface ProxyServerParts {
  readonly gatekeeper: Gatekeeper;
  readonly http: HttpForwarder;
  readonly ws: WsForwarder;
  readonly logger: Logger;
  readonly limits: ListenerLimits;
  /** Told of every decision and every finished exchange (metrics, access log, recent callers). */
  readonly observer: RequestObserver;
}

/**
 * What the upgrade path forwards: a WebSocket handshake, GET without a body. Any other protocol
 * (`h2c` above all: the upstream would then take HTTP/2 requests on the tunnel that the gateway
 * never sees) is refused, and so is a body, which would ride ahead of the handshake's answer.
 */
function upgradeProtocol(req: IncomingMessage): Result<string> {
  let protocol: string | null = null;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (isHeaderName(name, 'upgrade')) {
      if (protocol !== null) return UNSUPPORTED_UPGRADE;
      protocol = raw[i + 1]!.trim();
    } else if (isHeaderName(name, 'transfer-encoding') || (isHeaderName(name, 'content-length') && raw[i + 1]!.trim() !== '0')) {
      return refused(refusal(400, 'unsupported_upgrade', 'an upgrade request cannot carry a body'));
    }
  }
  if (protocol === null || protocol.toLowerCase() !== 'websocket') return UNSUPPORTED_UPGRADE;
  if (req.method !== 'GET') return refused(refusal(400, 'unsupported_upgrade', 'a WebSocket handshake is a GET request'));
  return ok(protocol);
}

const UNSUPPORTED_UPGRADE = refused(refusal(400, 'unsupported_upgrade', 'only WebSocket upgrades (Upgrade: websocket) are forwarded'));

/**
 * Only origin-form targets (`/path?query`) are served: absolute-form and authority-form (CONNECT)
 * would turn the gateway into an open proxy, and `OPTIONS *` addresses the gateway itself.
 */
function targetRefusal(req: IncomingMessage): Refusal | null {
  if (req.method === 'CONNECT') return refusal(405, 'method_not_allowed', 'CONNECT is not supported: the gateway only forwards to its configured upstream');
  const url = req.url;
  if (url === undefined || url.charCodeAt(0) !== 47 /* / */) {
    return refusal(400, 'invalid_request_target', 'the request target must be a path such as /v1/resource (absolute URLs are not proxied)');
  }
  return null;
}

export function sendRefusal(res: ServerResponse, refused: Refusal, requestId: string): void {
  const body = refusalBody(refused, requestId);
  res.writeHead(refused.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}

const EXCHANGE = Symbol('allowgate.exchange');

/** How often header and request timeouts are checked: their resolution. */
const CHECKING_INTERVAL_MS = 250;
const DROP_REPORT_MS = 10_000;

/**
 * Connections past limits.maxConnections are still accepted, up to this many more, so that their
 * request gets a 503 saying why instead of a bare close; past that margin Node closes them at
 * accept. Each is held only until its first request is answered, or this long idle.
 */
const OVER_CAPACITY_MARGIN = (max: number): number => Math.max(16, Math.ceil(max / 100));
const OVER_CAPACITY_IDLE_MS = 2_000;
const OVER_CAPACITY = Symbol('allowgate.overCapacity');
type MarkedSocket = Socket & { [OVER_CAPACITY]?: true };

interface Exchange {
  readonly req: IncomingMessage;
  readonly checked: Checked;
  readonly start: number;
}

type TrackedResponse = ServerResponse & { [EXCHANGE]?: Exchange };

export interface GatewayServer {
  readonly server: Server;
  /**
   * Cuts proxied WebSocket connections. An upgraded socket leaves the HTTP server's connection
   * tracking, so shutdown has to end these itself once their grace period is over.
   */
  destroyUpgraded(): void;
  /** Open connections on the listener (those over the limit, still being answered, included). */
  openConnections(): number;
  /** New limits from a configuration reload: timeouts and the connection limit (maxHeaderBytes needs a restart). */
  setLimits(limits: ListenerLimits): void;
}

/** The proxy listener: every request and upgrade is checked, then forwarded or refused. */
export function createGatewayServer(parts: ProxyServerParts): GatewayServer {
  const upgraded = new Set<Duplex>();
  const { gatekeeper, logger, observer } = parts;
  // Replaced whole by setLimits (a configuration reload); read at each use.
  let limits = parts.limits;
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node enforces the two timeouts above only when it sweeps its connections (every 30 s by
    // default), which would let a slow caller hold a connection far past its limit.
    connectionsCheckingInterval: CHECKING_INTERVAL_MS,
    // A request carrying both Content-Length and Transfer-Encoding is refused by the parser.
    requireHostHeader: true,
  });
  // Over the limit: answered 503 within a small margin, closed at accept past it; said in the log
  // at most every 10 s.
  server.maxConnections = limits.maxConnections + OVER_CAPACITY_MARGIN(limits.maxConnections);
  let dropped = 0;
  let droppedSince = 0;
  const overLimit = (): void => {
    dropped++;
    const now = Date.now();
    if (now - droppedSince < DROP_REPORT_MS) return;
    logger.warn({ refused: dropped, max_connections: limits.maxConnections }, 'connections refused: limits.maxConnections reached');
    dropped = 0;
    droppedSince = now;
  };
  server.on('drop', overLimit);
  let open = 0;
  server.on('connection', (socket: MarkedSocket) => {
    open++;
    socket.once('close', () => open--);
    if (open <= limits.maxConnections) return;
    socket[OVER_CAPACITY] = true;
    overLimit();
    socket.setTimeout(OVER_CAPACITY_IDLE_MS, () => socket.destroy());
  });
  let tooMany = refusal(503, 'too_many_connections', `the gateway holds its limit of ${limits.maxConnections} connections (limits.maxConnections); retry shortly`);
  /** A refusal decided before any check: a connection over the limit, or a target never served. */
  const earlyRefusal = (req: IncomingMessage): Refusal | null => ((req.socket as MarkedSocket)[OVER_CAPACITY] === true ? tooMany : targetRefusal(req));

  // One listener for every response: the exchange rides on the response object, so no closure
  // is made per request.
  function onClose(this: TrackedResponse): void {
    const exchange = this[EXCHANGE]!;
    observer.finished(exchange.req, exchange.checked, this.statusCode, (performance.now() - exchange.start) / 1000);
  }

  const onChecked = (req: IncomingMessage, res: ServerResponse, checked: Checked, start: number): void => {
    observer.decided(req, checked, (performance.now() - start) / 1000);
    (res as TrackedResponse)[EXCHANGE] = { req, checked, start };
    res.on('close', onClose);
    if (checked.refusal !== null) {
      sendRefusal(res, checked.refusal, checked.requestId);
      return;
    }
    parts.http.forward(req, res, checked);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const start = performance.now();
    const early = earlyRefusal(req);
    if (early !== null) {
      // An over-limit connection is closed once answered, freeing its place.
      if (early === tooMany) res.shouldKeepAlive = false;
      sendRefusal(res, early, requestIdFrom(req.rawHeaders));
      return;
    }
    const checked = gatekeeper.check(viewOf(req));
    if (checked instanceof Promise) {
      checked.then((c) => onChecked(req, res, c, start), (error: unknown) => failInternal(res, req, logger, error));
    } else {
      onChecked(req, res, checked, start);
    }
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const start = performance.now();
    socket.on('error', () => socket.destroy());
    const early = earlyRefusal(req);
    const upgrade = early === null ? upgradeProtocol(req) : refused(early);
    if (!upgrade.ok) {
      writeRawRefusal(socket, upgrade.refusal, requestIdFrom(req.rawHeaders));
      return;
    }
    const proceed = (checked: Checked): void => {
      observer.decided(req, checked, (performance.now() - start) / 1000);
      const status = checked.refusal?.status ?? 101;
      socket.once('close', () => observer.finished(req, checked, status, (performance.now() - start) / 1000));
      if (checked.refusal !== null) {
        writeRawRefusal(socket, checked.refusal, checked.requestId);
        return;
      }
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      // A caller that closed its side is done; finishing ours too lets the proxy engine close the
      // upstream side instead of holding a half-open pair until the upstream hangs up.
      socket.once('end', () => socket.end());
      parts.ws.forward(req, socket, head, checked, upgrade.value);
    };
    const checked = gatekeeper.check(viewOf(req));
    if (checked instanceof Promise) checked.then(proceed, () => socket.destroy());
    else proceed(checked);
  });

  // CONNECT never reaches 'request'; without a listener Node would drop the socket unanswered.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    writeRawRefusal(socket, targetRefusal(req)!, requestIdFrom(req.rawHeaders));
  });

  // Malformed requests (bad framing, oversized headers, smuggling attempts) never reach 'request'.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const timeout = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const refused = tooLarge
      ? refusal(431, 'headers_too_large', `request headers exceed ${limits.maxHeaderBytes} bytes`)
      : timeout
        ? refusal(408, 'request_timeout', 'the request was not received in time')
        : refusal(400, 'bad_request', 'the request is not valid HTTP/1.1');
    writeRawRefusal(socket, refused, '');
  });

  return {
    server,
    destroyUpgraded: () => {
      for (const socket of upgraded) socket.destroy();
    },
    openConnections: () => open,
    setLimits: (next) => {
      // maxHeaderBytes is the parser's, fixed when the server was created: kept as it was.
      limits = { ...next, maxHeaderBytes: limits.maxHeaderBytes };
      server.headersTimeout = limits.headersTimeoutMs;
      server.requestTimeout = limits.requestTimeoutMs;
      server.keepAliveTimeout = limits.keepAliveTimeoutMs;
      server.maxConnections = limits.maxConnections + OVER_CAPACITY_MARGIN(limits.maxConnections);
      tooMany = refusal(503, 'too_many_connections', `the gateway holds its limit of ${limits.maxConnections} connections (limits.maxConnections); retry shortly`);
    },
  };
}

function viewOf(req: IncomingMessage): IncomingView {
  // The headers are the request's own: Content-Length and Transfer-Encoding say whether it has a body.
  return { url: req.url ?? '/', rawHeaders: req.rawHeaders, remoteAddress: req.socket.remoteAddress, method: req.method, framed: true };
}

function failInternal(res: ServerResponse, req: IncomingMessage, logger: Logger, error: unknown): void {
  logger.error({ err: error, url: redactUrl(req.url ?? '') }, 'request check failed');
  if (!res.headersSent) sendRefusal(res, refusal(500, 'internal_error', 'the gateway failed to check this request'), requestIdFrom(req.rawHeaders));
}
