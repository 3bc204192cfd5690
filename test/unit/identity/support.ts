import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { RequestView } from '../../../src/identity/types.ts';

export function request(url: string, ...headers: string[]): RequestView {
  return { url, rawHeaders: headers };
}

export function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

export function basic(userPass: string): string {
  return `Basic ${Buffer.from(userPass, 'utf8').toString('base64')}`;
}

/** A JWT with an arbitrary (unchecked) signature, as the unverified strategy sees tokens. */
export function unsignedJwt(payload: object, header: object = { alg: 'RS256', typ: 'JWT' }, signature = 'c2lnbmF0dXJl'): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${signature}`;
}

export function signedJwt(payload: object, key: KeyObject, header: { alg: string; kid?: string }): string {
  const input = `${b64url(JSON.stringify({ typ: 'JWT', ...header }))}.${b64url(JSON.stringify(payload))}`;
  const signature = header.alg === 'ES256'
    ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : sign('sha256', Buffer.from(input), key);
  return `${input}.${b64url(signature)}`;
}

export interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export function rsaKeyPair(bits = 2048): KeyPair {
  return generateKeyPairSync('rsa', { modulusLength: bits });
}

export function ecKeyPair(curve = 'P-256'): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: curve });
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
