import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import { applyForwardingHeaders, type ForwardingFacts } from './headers.ts';
import type { UpstreamSettings } from './http-forwarder.ts';
import { classifyUpstreamError, upstreamRefusal, type UpstreamErrorKind } from './upstream-error.ts';
import { writeRawRefusal } from '../http/raw-response.ts';

/**
 * WebSocket upgrades, proxied by http-proxy-3 once the request has passed the same checks as
 * plain HTTP. Failures before the upstream answered get a JSON error on the raw socket.
 */
export class WsForwarder {
  readonly #proxy: ProxyServer;
  readonly #upstreamHost: string | null;
  readonly #origin: string;

  constructor(settings: UpstreamSettings, onError: (req: IncomingMessage, kind: UpstreamErrorKind) => void) {
    this.#origin = settings.url.origin;
    this.#upstreamHost = settings.preserveHost ? null : settings.url.host;
    this.#proxy = createProxyServer({ target: settings.url.origin, ws: true, xfwd: false, proxyTimeout: settings.headersTimeoutMs });
    this.#proxy.on('error', (error, req, socket) => {
      const kind = classifyUpstreamError(error);
      onError(req, kind);
      if ('writable' in socket && socket.writable && !('headersSent' in socket)) {
        writeRawRefusal(socket, upstreamRefusal(kind, this.#origin), String(req.headers['x-request-id'] ?? ''));
      } else {
        socket.destroy();
      }
    });
  }

  forward(req: IncomingMessage, socket: Duplex, head: Buffer, facts: Omit<ForwardingFacts, 'upstreamHost'>): void {
    applyForwardingHeaders(req.headers, { ...facts, upstreamHost: this.#upstreamHost });
    this.#proxy.ws(req, socket, head);
  }

  close(): void {
    this.#proxy.close();
  }
}
