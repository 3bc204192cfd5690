import type { IncomingMessage } from 'node:http';
import { refusal, type Refusal, type Result } from '../http/refusal.ts';
import type { BodyLimits } from './context.ts';

/** A JSON change; a list replace or import (a full list of the biggest allowed size fits easily). */
export const DEFAULT_BODY_LIMITS: BodyLimits = { json: 64 * 1024, bulk: 1024 * 1024 };

/** Longest a request body may take to arrive: a trickled upload cannot hold a write slot for long. */
export const BODY_TIMEOUT_MS = 30_000;

/**
 * Reads a request body, bounded: never buffers more than the limit, and gives up after
 * BODY_TIMEOUT_MS. `inspect` sees each chunk as it arrives and may refuse the body there (a
 * list body with more rows than the account may hold is refused without reading the rest).
 */
export function readBodyBytes(req: IncomingMessage, limit: number, inspect?: (chunk: Buffer) => Refusal | null): Promise<Result<Buffer>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  const tooLarge = refusal(413, 'body_too_large', `the request body exceeds ${limit} bytes`);
  // A refused body is not read further: the sender is held back by TCP, and the admin handler
  // closes the connection shortly after the answer (so it costs nothing to send a gigabyte).
  if (declared > limit) return Promise.resolve({ ok: false, refusal: tooLarge });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: Result<Buffer>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!result.ok) req.pause();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, refusal: refusal(408, 'body_timeout', `the request body did not arrive within ${BODY_TIMEOUT_MS / 1000} s`) }), BODY_TIMEOUT_MS);
    timer.unref();
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) return finish({ ok: false, refusal: tooLarge });
      const refused = inspect?.(chunk) ?? null;
      if (refused !== null) return finish({ ok: false, refusal: refused });
      chunks.push(chunk);
    });
    req.on('error', () => finish({ ok: false, refusal: refusal(400, 'invalid_body', 'the request body could not be read') }));
    req.on('end', () => finish({ ok: true, value: Buffer.concat(chunks) }));
  });
}

/** Reads a request body as UTF-8 text, bounded (see readBodyBytes). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Result<string>> {
  const bytes = await readBodyBytes(req, limit);
  return bytes.ok ? { ok: true, value: bytes.value.toString('utf8') } : bytes;
}

export function isJson(req: IncomingMessage): boolean {
  return /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '');
}

/** The refusal of a body that is not JSON (`also` names other accepted types); drains the body. */
export function unsupportedJson(req: IncomingMessage, also = ''): Refusal {
  req.resume();
  return refusal(415, 'unsupported_media_type', `send the body as JSON with Content-Type: application/json${also}`);
}

/** Reads a JSON request body (Content-Type application/json), bounded. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<Result<unknown>> {
  if (!isJson(req)) return { ok: false, refusal: unsupportedJson(req) };
  const text = await readBody(req, limit);
  if (!text.ok) return text;
  try {
    return { ok: true, value: JSON.parse(text.value) as unknown };
  } catch (error) {
    return { ok: false, refusal: refusal(400, 'invalid_json', `the request body is not valid JSON: ${(error as Error).message}`) };
  }
}
