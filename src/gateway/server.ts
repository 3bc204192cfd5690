import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { refusal, type Refusal } from '../http/refusal.ts';
import { refusalBody, writeRawRefusal } from '../http/raw-response.ts';
import type { Logger } from '../observability/logger.ts';
import { redactUrl } from '../observability/redact-url.ts';
import type { HttpForwarder } from '../proxy/http-forwarder.ts';
import type { WsForwarder } from '../proxy/ws-forwarder.ts';
import type { Checked, Gatekeeper } from './gatekeeper.ts';
import { requestIdFrom } from './request-id.ts';

export interface ProxyServerParts {
  readonly gatekeeper: Gatekeeper;
  readonly http: HttpForwarder;
  readonly ws: WsForwarder;
  readonly logger: Logger;
  readonly limits: { readonly maxHeaderBytes: number; readonly headersTimeoutMs: number; readonly requestTimeoutMs: number; readonly keepAliveTimeoutMs: number };
  /** Called for every request or upgrade about to be forwarded (recent callers, later metrics). */
  readonly forwarded?: (checked: Checked) => void;
}

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

export interface GatewayServer {
  readonly server: Server;
  /**
   * Cuts proxied WebSocket connections. An upgraded socket leaves the HTTP server's connection
   * tracking, so shutdown has to end these itself once their grace period is over.
   */
  destroyUpgraded(): void;
}

/** The proxy listener: every request and upgrade is checked, then forwarded or refused. */
export function createGatewayServer(parts: ProxyServerParts): GatewayServer {
  const upgraded = new Set<Duplex>();
  const { gatekeeper, logger, limits } = parts;
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // A request carrying both Content-Length and Transfer-Encoding is refused by the parser.
    requireHostHeader: true,
  });

  const logDecision = (req: IncomingMessage, checked: Checked, status: number): void => {
    const entry = {
      request_id: checked.requestId,
      method: req.method,
      url: redactUrl(req.url ?? ''),
      peer: checked.peer,
      client_ip: checked.client,
      account: checked.account,
      decision: checked.verdict,
      reason: checked.reason,
      entry_id: checked.entryId,
      status,
    };
    if (checked.refusal !== null) logger.warn(entry, 'request refused');
    else if (checked.verdict === 'report_only') logger.warn(entry, 'request would be refused (report-only)');
    else if (checked.verdict === 'fail_open') logger.warn(entry, 'request forwarded unchecked: store unavailable (onStoreUnavailable: open)');
    else logger.debug(entry, 'request forwarded');
  };

  const onChecked = (req: IncomingMessage, res: ServerResponse, checked: Checked): void => {
    if (checked.refusal !== null) {
      logDecision(req, checked, checked.refusal.status);
      sendRefusal(res, checked.refusal, checked.requestId);
      return;
    }
    logDecision(req, checked, 0);
    parts.forwarded?.(checked);
    parts.http.forward(req, res, { peer: checked.peer, peerTrusted: checked.peerTrusted, requestId: checked.requestId });
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const early = targetRefusal(req);
    if (early !== null) {
      sendRefusal(res, early, requestIdFrom(req.rawHeaders));
      return;
    }
    const checked = gatekeeper.check(viewOf(req));
    if (checked instanceof Promise) {
      checked.then((c) => onChecked(req, res, c), (error: unknown) => failInternal(res, req, logger, error));
    } else {
      onChecked(req, res, checked);
    }
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const early = targetRefusal(req);
    if (early !== null) {
      writeRawRefusal(socket, early, requestIdFrom(req.rawHeaders));
      return;
    }
    const proceed = (checked: Checked): void => {
      if (checked.refusal !== null) {
        logDecision(req, checked, checked.refusal.status);
        writeRawRefusal(socket, checked.refusal, checked.requestId);
        return;
      }
      logDecision(req, checked, 101);
      parts.forwarded?.(checked);
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      // A caller that closed its side is done; finishing ours too lets the proxy engine close the
      // upstream side instead of holding a half-open pair until the upstream hangs up.
      socket.once('end', () => socket.end());
      parts.ws.forward(req, socket, head, { peer: checked.peer, peerTrusted: checked.peerTrusted, requestId: checked.requestId });
    };
    const checked = gatekeeper.check(viewOf(req));
    if (checked instanceof Promise) checked.then(proceed, () => socket.destroy());
    else proceed(checked);
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
        ? refusal(400, 'request_timeout', 'the request was not received in time')
        : refusal(400, 'bad_request', 'the request is not valid HTTP/1.1');
    writeRawRefusal(socket, refused, '');
  });

  return {
    server,
    destroyUpgraded: () => {
      for (const socket of upgraded) socket.destroy();
    },
  };
}

function viewOf(req: IncomingMessage): { url: string; rawHeaders: readonly string[]; remoteAddress: string | undefined } {
  return { url: req.url ?? '/', rawHeaders: req.rawHeaders, remoteAddress: req.socket.remoteAddress };
}

function failInternal(res: ServerResponse, req: IncomingMessage, logger: Logger, error: unknown): void {
  logger.error({ err: error, url: redactUrl(req.url ?? '') }, 'request check failed');
  if (!res.headersSent) sendRefusal(res, refusal(500, 'internal_error', 'the gateway failed to check this request'), requestIdFrom(req.rawHeaders));
}
