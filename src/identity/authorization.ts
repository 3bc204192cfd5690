import type { AuthorizationParts } from './types.ts';

/** Strips optional whitespace (space and tab only, RFC 9110 §5.6.3), nothing a server might keep. */
export function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start++;
  while (end > start && isOws(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * `Authorization: <scheme> <credentials>`. The scheme is case-insensitive (RFC 9110 §11.1), so it
 * comes back lower-cased. Tabs are accepted between the two because lenient upstreams accept
 * them, and a scheme the gateway failed to recognize would let the request pass as anonymous.
 */
export function parseAuthorization(value: string): AuthorizationParts {
  const text = trimOws(value);
  let gap = 0;
  while (gap < text.length && !isOws(text.charCodeAt(gap))) gap++;
  return { scheme: text.slice(0, gap).toLowerCase(), credentials: trimOws(text.slice(gap)) };
}
