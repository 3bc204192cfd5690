import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxyServer } from 'http-proxy-3';
import { applyForwardingHeaders, type ForwardingFacts } from './headers.ts';
import type { UpstreamSettings } from './http-forwarder.ts';
import { classifyUpstreamError, upstreamRefusal, type UpstreamErrorKind } from './upstream-error.ts';
import { writeRawRefusal } from '../http/raw-response.ts';

/**
 * WebSocket upgrades, proxied by http-proxy-3 once the request has passed the same checks as
 * plain HTTP. Failures before the upstream answered get a JSON error on the raw socket. The proxy
 * engine is loaded with the first upgrade: most APIs never see one, and it is MBs of heap.
 */
export class WsForwarder {
  #proxy: Promise<ProxyServer> | null = null;
  #closed = false;
  readonly #settings: UpstreamSettings;
  readonly #onError: (req: IncomingMessage, kind: UpstreamErrorKind) => void;
  readonly #upstreamHost: string | null;
  readonly #origin: string;

  constructor(settings: UpstreamSettings, onError: (req: IncomingMessage, kind: UpstreamErrorKind) => void) {
    this.#settings = settings;
    this.#onError = onError;
    this.#origin = settings.url.origin;
    this.#upstreamHost = settings.preserveHost ? null : settings.url.host;
  }

  async #create(): Promise<ProxyServer> {
    const { createProxyServer } = await import('http-proxy-3');
    const settings = this.#settings;
    const onError = this.#onError;
    const proxy = createProxyServer({ target: settings.url.origin, ws: true, xfwd: false, proxyTimeout: settings.headersTimeoutMs });
    proxy.on('error', (error, req, socket) => {
      const kind = classifyUpstreamError(error);
      onError(req, kind);
      if ('writable' in socket && socket.writable && !('headersSent' in socket)) {
        writeRawRefusal(socket, upstreamRefusal(kind, this.#origin), String(req.headers['x-request-id'] ?? ''));
      } else {
        socket.destroy();
      }
    });
    return proxy;
  }

  forward(req: IncomingMessage, socket: Duplex, head: Buffer, facts: Omit<ForwardingFacts, 'upstreamHost'>): void {
    applyForwardingHeaders(req.headers, { ...facts, upstreamHost: this.#upstreamHost });
    (this.#proxy ??= this.#create()).then((proxy) => {
      if (this.#closed || socket.destroyed) socket.destroy();
      else proxy.ws(req, socket, head);
    }, () => socket.destroy());
  }

  close(): void {
    this.#closed = true;
    void this.#proxy?.then((proxy) => proxy.close(), () => undefined);
  }
}
