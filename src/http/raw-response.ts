import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { Refusal } from './refusal.ts';

export function refusalBody(refusal: Refusal, requestId: string): string {
  return JSON.stringify({ error: refusal.message, code: refusal.status, reason: refusal.reason, request_id: requestId });
}

/**
 * A complete HTTP/1.1 error response written to a bare socket, for the paths that have no
 * ServerResponse (upgrade requests, client errors), then the connection is closed.
 */
export function writeRawRefusal(socket: Duplex, refusal: Refusal, requestId: string): void {
  const body = refusalBody(refusal, requestId);
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n` +
      'content-type: application/json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      (requestId ? `x-request-id: ${requestId}\r\n` : '') +
      'connection: close\r\n\r\n' +
      body,
  );
}
