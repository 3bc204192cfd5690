import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { refusal, type Refusal } from '../http/refusal.ts';

/**
 * A check of `Authorization: Bearer <token>` against the admin token. Both sides are hashed first
 * so the comparison takes the same time whatever the length or content of the guess.
 */
export function compileTokenCheck(token: string): (req: IncomingMessage) => Refusal | null {
  const expected = createHash('sha256').update(token).digest();
  return (req) => {
    const header = req.headers.authorization;
    if (header === undefined) return refusal(401, 'missing_token', 'the admin API needs Authorization: Bearer <admin token>');
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    const given = createHash('sha256').update(match?.[1] ?? '').digest();
    if (match === null || !timingSafeEqual(given, expected)) return refusal(401, 'invalid_token', 'the admin token is not valid');
    return null;
  };
}
