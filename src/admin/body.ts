import type { IncomingMessage } from 'node:http';
import { refusal, type Refusal } from '../http/refusal.ts';
import type { BodyLimits } from './context.ts';

/** A JSON change; a list replace or import (a full list of the biggest allowed size fits easily). */
export const DEFAULT_BODY_LIMITS: BodyLimits = { json: 64 * 1024, bulk: 1024 * 1024 };

export type BodyResult<T = unknown> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly refusal: Refusal };

/** Reads a request body as UTF-8 text, bounded; never buffers more than the limit. */
export function readBody(req: IncomingMessage, limit: number): Promise<BodyResult<string>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  const tooLarge = refusal(413, 'body_too_large', `the request body exceeds ${limit} bytes`);
  if (declared > limit) {
    req.resume();
    return Promise.resolve({ ok: false, refusal: tooLarge });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        resolve({ ok: false, refusal: tooLarge });
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {
      if (!done) resolve({ ok: false, refusal: refusal(400, 'invalid_body', 'the request body could not be read') });
      done = true;
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve({ ok: true, value: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

/** Reads a JSON request body (Content-Type application/json), bounded. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    req.resume();
    return { ok: false, refusal: refusal(415, 'unsupported_media_type', 'send the body as JSON with Content-Type: application/json') };
  }
  const text = await readBody(req, limit);
  if (!text.ok) return text;
  try {
    return { ok: true, value: JSON.parse(text.value) as unknown };
  } catch (error) {
    return { ok: false, refusal: refusal(400, 'invalid_json', `the request body is not valid JSON: ${(error as Error).message}`) };
  }
}
