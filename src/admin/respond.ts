import type { ServerResponse } from 'node:http';
import type { Refusal } from '../http/refusal.ts';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(text ? { 'content-type': 'application/json' } : {}),
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, refused: Refusal, headers: Record<string, string> = {}): void {
  sendJson(res, refused.status, { error: refused.message, code: refused.status, reason: refused.reason }, headers);
}

export function etag(version: number): string {
  return `"${version}"`;
}
