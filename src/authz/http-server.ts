import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ListenerLimits } from '../gateway/server.ts';
import type { AuthzUpstreamHeaders } from '../proxy/headers.ts';
import type { Checked, Gatekeeper } from '../gateway/gatekeeper.ts';
import type { RequestObserver } from '../observability/observer.ts';
import { requestIdFrom } from '../gateway/request-id.ts';
import { sendRefusal } from '../gateway/server.ts';
import type { Duplex } from 'node:stream';
import { writeRawRefusal } from '../http/raw-response.ts';
import { refusal } from '../http/refusal.ts';
import type { Logger } from '../observability/logger.ts';
import { redactUrl } from '../observability/redact-url.ts';
import { answerOf, AUTH_REQUEST_PATH, ENVOY_PREFIX, FORWARD_AUTH_PATH, protocolOf, refusalAnswer, viewOf, type CheckView, type HttpAnswer, type HttpProtocol } from './http-protocols.ts';

export interface AuthzHttpParts {
  readonly gatekeeper: Gatekeeper;
  readonly upstreamHeaders: AuthzUpstreamHeaders;
  readonly limits: ListenerLimits;
  readonly logger: Logger;
  /** One per protocol: metrics and the access log tell them apart. */
  readonly observers: Readonly<Record<HttpProtocol, RequestObserver>>;
}

const NOT_FOUND = refusal(404, 'not_found', `the authorization listener serves ${FORWARD_AUTH_PATH} (Traefik, Caddy), ${AUTH_REQUEST_PATH} (nginx) and ${ENVOY_PREFIX}/... (Envoy HTTP)`);

/**
 * The HTTP decision listener: each check is read by its protocol's adapter, decided by the
 * Gatekeeper the proxy listener uses, and answered in that protocol's terms.
 */
export function createAuthzHttpServer(parts: AuthzHttpParts): Server {
  const { gatekeeper, upstreamHeaders, limits, logger, observers } = parts;
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requireHostHeader: false,
  });
  server.maxConnections = limits.maxConnections;

  const answer = (protocol: HttpProtocol, view: CheckView, res: ServerResponse, checked: Checked, start: number): void => {
    const observer = observers[protocol];
    const original = { method: view.method, url: view.url };
    observer.decided(original, checked, (performance.now() - start) / 1000);
    const status = send(res, answerOf(protocol, checked, upstreamHeaders));
    observer.finished(original, checked, status, (performance.now() - start) / 1000);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const start = performance.now();
    const protocol = protocolOf(req.url ?? '');
    if (protocol === null) {
      sendRefusal(res, NOT_FOUND, requestIdFrom(req.rawHeaders));
      return;
    }
    const read = viewOf(protocol, req);
    if (!read.ok) {
      // The proxy asking is set up wrong: said in the log too, since its users only see a refusal.
      logger.warn({ protocol, peer: req.socket.remoteAddress, reason: read.refusal.reason }, `authorization check refused: ${read.refusal.message}`);
      send(res, refusalAnswer(protocol, read.refusal, requestIdFrom(req.rawHeaders)));
      return;
    }
    const view = read.value;
    const checked = gatekeeper.check(view);
    if (checked instanceof Promise) {
      checked.then((c) => answer(protocol, view, res, c, start), (error: unknown) => {
        logger.error({ err: error, protocol, url: redactUrl(view.url) }, 'authorization check failed');
        if (!res.headersSent) send(res, refusalAnswer(protocol, refusal(500, 'internal_error', 'the gateway failed to check this request'), requestIdFrom(req.rawHeaders)));
      });
    } else {
      answer(protocol, view, res, checked, start);
    }
  });

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    writeRawRefusal(socket, tooLarge ? refusal(431, 'headers_too_large', `check request headers exceed ${limits.maxHeaderBytes} bytes`) : refusal(400, 'bad_request', 'the check request is not valid HTTP/1.1'), '');
  });
  return server;
}

function send(res: ServerResponse, { status, headers, body }: HttpAnswer): number {
  res.writeHead(status, headers);
  res.end(body);
  return status;
}


