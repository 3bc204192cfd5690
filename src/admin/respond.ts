import type { ServerResponse } from 'node:http';
import type { Static, TSchema } from 'typebox';
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

/**
 * A native answer built as its schema's type (api-schemas.ts): the compiler holds the body to the
 * definition the document publishes, so a handler cannot drift from it unnoticed.
 */
export function sendBody<S extends TSchema>(res: ServerResponse, status: number, _schema: S, body: Static<S>, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, headers);
}

const REFUSED = Symbol('allowgate.refused');
type MarkedResponse = ServerResponse & { [REFUSED]?: string };

/**
 * `{error, code, reason}`, and `current_version` for a write whose outcome is unknown when the
 * account's version could be read after it: the caller compares it with the version the change
 * would have made before deciding to retry.
 */
export function sendError(res: ServerResponse, refused: Refusal, headers: Record<string, string> = {}): void {
  markRefused(res, refused.reason);
  sendJson(res, refused.status, {
    error: refused.message, code: refused.status, reason: refused.reason,
    ...(refused.currentVersion === undefined ? {} : { current_version: refused.currentVersion }),
  }, headers);
}

/** Notes the reason a response refuses with, for the one place that counts refusals by reason. */
export function markRefused(res: ServerResponse, reason: string): void {
  (res as MarkedResponse)[REFUSED] = reason;
}

export function refusedReason(res: ServerResponse): string | undefined {
  return (res as MarkedResponse)[REFUSED];
}

export function etag(version: number): string {
  return `"${version}"`;
}
