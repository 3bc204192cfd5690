import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Metrics } from './metrics.ts';

export interface MetricsEndpoint {
  readonly registry: Metrics;
  /** When set, scrapes must send `Authorization: Bearer <token>`. */
  readonly token?: string;
}

/** Answers a scrape of /metrics: the exposition text, or 401 when a token is required and wrong. */
export function serveMetrics(req: IncomingMessage, res: ServerResponse, endpoint: MetricsEndpoint): void {
  if (endpoint.token !== undefined) {
    const given = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
    if (!timingSafeEqual(digest(given), digest(endpoint.token))) {
      const body = JSON.stringify({ error: 'scraping /metrics needs Authorization: Bearer <metrics token>', code: 401, reason: 'invalid_token' });
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
      return;
    }
  }
  endpoint.registry.render().then(({ contentType, body }) => {
    res.writeHead(200, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }, () => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('metrics collection failed\n');
  });
}

/** A listener of its own for /metrics (metrics.listen): nothing else is served there. */
export function createMetricsServer(endpoint: MetricsEndpoint): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) return serveMetrics(req, res, endpoint);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('only /metrics is served here\n');
  });
}
