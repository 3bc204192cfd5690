import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { ApiKeyRecord, KeyHash } from './types.ts';

/** Hex digits of the digest a fingerprint shows (48 bits: tells keys apart, reveals nothing). */
const FINGERPRINT_DIGITS = 12;

/**
 * The digests keys are stored and looked up by. A key registered as clients send it is kept as
 * HMAC-SHA-256 under the deployment's key secret: whoever reads the store (a dump, a backup)
 * learns nothing that lets them test guesses offline without the secret too. A key registered by
 * hash (`key_sha256`) is kept as the bare SHA-256 the team computed without sending the key;
 * it is looked up by the SHA-256 of the presented key. Neither is reversible; both are compared
 * as whole 256-bit values by map lookup (no per-character comparison to time).
 *
 * The secret is imported once as a KeyObject: `createHmac` given a Buffer imports it on every
 * call (about 17 µs); given the KeyObject an HMAC of a short key costs about 2 µs.
 */
export class KeyDigester {
  readonly #secret: KeyObject;

  constructor(secret: Buffer) {
    if (secret.length < 16) throw new RangeError('the key secret must be at least 16 bytes');
    this.#secret = createSecretKey(secret);
  }

  /** HMAC-SHA-256 of the key under the deployment's secret, hex. */
  hmac(key: string): string {
    return createHmac('sha256', this.#secret).update(key, 'latin1').digest('hex');
  }

  /**
   * The claim a key's registration makes in the key index, from its SHA-256 (hex), which both
   * ways of registering know: a key registered as sent and again by hash (or the other way round)
   * makes the same claim, and the second is refused. Keyed like the digest, so the index reveals
   * no more than the digests do; the NUL keeps it apart from any key's HMAC (keys are visible ASCII).
   */
  claim(sha256: string): string {
    return createHmac('sha256', this.#secret).update('\0claim\0').update(sha256, 'latin1').digest('hex');
  }

  /** Where a presented key may be registered: its HMAC, then its bare SHA-256 (see indexKey). */
  indexKeys(key: string): readonly [string, string] {
    return [indexKey('hmac-sha256', this.hmac(key)), indexKey('sha256', sha256Hex(key))];
  }
}

export function sha256Hex(key: string): string {
  return createHash('sha256').update(key, 'latin1').digest('hex');
}

/** The name a digest is indexed under: its kind and value (`hmac:…`, `sha256:…`). */
export function indexKey(hash: KeyHash, digest: string): string {
  return `${hash === 'sha256' ? 'sha256' : 'hmac'}:${digest}`;
}

export function indexKeyOf(key: Pick<ApiKeyRecord, 'hash' | 'digest'>): string {
  return indexKey(key.hash, key.digest);
}

/** Every name a registered key holds in the key index: its digest's, and its claim's when it has one. */
export function indexKeysOf(key: Pick<ApiKeyRecord, 'hash' | 'digest' | 'claim'>): readonly string[] {
  return key.claim === undefined ? [indexKeyOf(key)] : [indexKeyOf(key), `claim:${key.claim}`];
}

/** A short, non-reversible prefix of the stored digest, shown instead of the key. */
export function fingerprintOf(key: Pick<ApiKeyRecord, 'digest'>): string {
  return key.digest.slice(0, FINGERPRINT_DIGITS);
}
