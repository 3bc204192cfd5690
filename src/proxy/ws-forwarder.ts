import { request as httpRequest, STATUS_CODES, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { writeRawRefusal } from '../http/raw-response.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders, type ForwardingFacts, type RewriteSettings } from './headers.ts';
import type { UpstreamSettings } from './http-forwarder.ts';
import { classifyUpstreamError, upstreamRefusal, type UpstreamErrorKind } from './upstream-error.ts';

/**
 * WebSocket upgrades, forwarded once the request has passed the same checks as plain HTTP, with
 * the same header rewriting (upstreamRequestHeaders) and the request target passed on byte for
 * byte. A node:http client request carries the handshake: its path is sent as given and its
 * headers as a raw list (order, case and repeats kept), where a proxy engine would re-parse the
 * target (turning `/a/%2e%2e/admin` into `/admin`) and rebuild the headers from `req.headers`.
 *
 * Bytes the caller sent after its handshake are held back until the upstream has switched
 * protocols: an upstream that answers anything but 101 gets nothing more, and the caller gets that
 * answer and a closed connection, so no second request can ride past the checks on the upgrade.
 */
export class WsForwarder {
  readonly #origin: URL;
  readonly #rewrite: RewriteSettings;
  readonly #headersTimeoutMs: number;
  readonly #onError: (req: IncomingMessage, kind: UpstreamErrorKind, requestId: string) => void;
  readonly #pending = new Set<ClientRequest>();
  readonly #tunnels = new Set<Duplex>();

  constructor(settings: UpstreamSettings, rewrite: Omit<RewriteSettings, 'upstreamHost'>, onError: (req: IncomingMessage, kind: UpstreamErrorKind, requestId: string) => void) {
    this.#origin = settings.url;
    this.#rewrite = { ...rewrite, upstreamHost: settings.preserveHost ? null : settings.url.host };
    this.#headersTimeoutMs = settings.headersTimeoutMs;
    this.#onError = onError;
  }

  /** `upgrade` is the caller's Upgrade value, already checked to be a WebSocket upgrade. */
  forward(req: IncomingMessage, socket: Duplex, head: Buffer, facts: ForwardingFacts, upgrade: string): void {
    const origin = this.#origin;
    const https = origin.protocol === 'https:';
    const headers = upstreamRequestHeaders(req.rawHeaders, facts, this.#rewrite, upgrade);
    const outgoing = (https ? httpsRequest : httpRequest)({
      host: origin.hostname.replace(/^\[|\]$/g, ''),
      port: origin.port === '' ? (https ? 443 : 80) : Number(origin.port),
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers,
      setHost: false,
      agent: false,
      timeout: this.#headersTimeoutMs,
    });
    this.#pending.add(outgoing);
    let answered = false;
    const fail = (error: Error): void => {
      if (answered) return;
      answered = true;
      const kind = classifyUpstreamError(error);
      this.#onError(req, kind, facts.requestId);
      if (socket.writable) writeRawRefusal(socket, upstreamRefusal(kind, origin.origin), facts.requestId);
      else socket.destroy();
    };
    const callerGone = (): void => {
      if (!answered) outgoing.destroy();
    };
    socket.once('close', callerGone);
    outgoing.on('timeout', () => outgoing.destroy(Object.assign(new Error('the upstream did not answer the upgrade in time'), { code: 'ETIMEDOUT' })));
    outgoing.on('error', fail);
    outgoing.on('close', () => this.#pending.delete(outgoing));

    outgoing.on('upgrade', (res: IncomingMessage, upstream: Duplex, upstreamHead: Buffer) => {
      answered = true;
      socket.off('close', callerGone);
      (upstream as Socket).setTimeout(0);
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      socket.write(statusLine(res) + rawHeaderLines(res.rawHeaders, facts.requestId) + '\r\n');
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstream.write(head);
      this.#tunnel(socket, upstream);
    });

    outgoing.on('response', (res: IncomingMessage) => {
      answered = true;
      socket.off('close', callerGone);
      // Not switched: the answer goes back, then the connection closes; the caller's extra bytes
      // never reach the upstream.
      const lines = objectHeaderLines(downstreamResponseHeaders(res.headers, facts.requestId));
      socket.write(`${statusLine(res)}${lines}connection: close\r\n\r\n`);
      res.on('data', (chunk: Buffer) => socket.write(chunk));
      res.on('end', () => socket.end());
      res.on('error', () => socket.destroy());
    });
    outgoing.end();
  }

  /** Cuts every handshake in flight and every open tunnel (shutdown, past the grace period). */
  close(): void {
    for (const outgoing of this.#pending) outgoing.destroy();
    for (const tunnel of this.#tunnels) tunnel.destroy();
  }

  #tunnel(caller: Duplex, upstream: Duplex): void {
    this.#tunnels.add(upstream);
    upstream.once('close', () => {
      this.#tunnels.delete(upstream);
      caller.destroy();
    });
    caller.once('close', () => upstream.destroy());
    upstream.on('error', () => upstream.destroy());
    caller.pipe(upstream);
    upstream.pipe(caller);
  }
}

function statusLine(res: IncomingMessage): string {
  const status = res.statusCode ?? 502;
  return `HTTP/1.1 ${status} ${res.statusMessage || STATUS_CODES[status] || ''}\r\n`;
}

/** The upstream's 101 headers as it sent them (Upgrade and Connection are the handshake's). */
function rawHeaderLines(raw: readonly string[], requestId: string): string {
  let text = '';
  let hasId = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'x-request-id') hasId = true;
    text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return hasId ? text : `${text}x-request-id: ${requestId}\r\n`;
}

function objectHeaderLines(headers: Record<string, string | string[]>): string {
  let text = '';
  for (const name in headers) {
    const value = headers[name]!;
    for (const v of Array.isArray(value) ? value : [value]) text += `${name}: ${v}\r\n`;
  }
  return text;
}
