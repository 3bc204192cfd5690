/*
 * What an API key can be, as clients send it: shared by the api-key strategy and the admin API's
 * schema (which the browser console reads, so nothing here needs Node).
 */
/** Longest key accepted, as clients send it. */
export const KEY_MAX_LENGTH = 4096;

/**
 * Whether `key` can be an API key: visible ASCII only (0x21-0x7e), of a length the gateway reads.
 * Anything else (a space, a control or non-ASCII character) could be read differently by the
 * upstream, and no real key holds it.
 */
export function isKeyText(key: string): boolean {
  if (key.length < 1 || key.length > KEY_MAX_LENGTH) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
