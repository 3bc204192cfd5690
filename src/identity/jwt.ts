import { createPublicKey, verify as verifySignature, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { quoteUntrusted } from './account-id.ts';

/** The signature algorithms the gateway can check. */
export const SUPPORTED_ALGORITHMS = ['RS256', 'ES256'] as const;
export type JwsAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

export const DEFAULT_MAX_TOKEN_LENGTH = 8192;
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

/** Below this an RSA key is no longer considered a safe signing key. */
const MIN_RSA_BITS = 2048;
const ES256_SIGNATURE_BYTES = 64;

export type JsonObject = { readonly [key: string]: unknown };

export interface Jws {
  readonly header: JsonObject;
  readonly payload: JsonObject;
  /** The exact bytes the signature covers: `base64url(header) '.' base64url(payload)`. */
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

export type JwsParse = { readonly ok: true; readonly jws: Jws } | { readonly ok: false; readonly problem: string };

export type JwtCheck = { readonly ok: true; readonly payload: JsonObject } | { readonly ok: false; readonly problem: string };

/** A compiled, ready-to-use signature and claims check; built once, at config time. */
export interface JwtVerifier {
  readonly algorithms: readonly JwsAlgorithm[];
  readonly maxTokenLength: number;
  verify(token: string): JwtCheck;
}

export interface PemKeyOption {
  readonly file: string;
  readonly kid?: string | undefined;
}

export interface JwtVerifierOptions {
  /** PEM public keys (or certificates), each optionally named by the `kid` tokens carry. */
  readonly keys?: readonly PemKeyOption[] | undefined;
  /** A JWKS document (`{"keys": [...]}`). */
  readonly jwksFile?: string | undefined;
  /** Accepted `alg` values; default: every supported algorithm. */
  readonly algorithms?: readonly string[] | undefined;
  readonly requireExp?: boolean | undefined;
  /** Refuse tokens whose `exp` lies more than this past their `iat`. */
  readonly maxLifetimeSeconds?: number | undefined;
  readonly clockToleranceSeconds?: number | undefined;
  readonly maxTokenLength?: number | undefined;
  /** Milliseconds since the epoch; replaceable so expiry rules can be tested at their edges. */
  readonly clock?: (() => number) | undefined;
}

export interface VerificationKey {
  readonly key: KeyObject;
  readonly alg: JwsAlgorithm;
  readonly kid: string | undefined;
  /** Where the key came from, for messages. */
  readonly origin: string;
}

export type ClaimsPolicy = Omit<JwtVerifierOptions, 'keys' | 'jwksFile'>;

const BASE64URL = /^[A-Za-z0-9_-]+$/;
// Fatal so that invalid UTF-8 is an error rather than silently replaced; BOM kept so that
// JSON.parse rejects it instead of the decoder hiding it.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Strict base64url (RFC 4648 §5, no padding): only the alphabet, no impossible lengths, and no
 * stray bits in the last character. Node's decoder skips what it does not understand, which
 * would let two different spellings of one token exist.
 */
export function decodeBase64UrlStrict(s: string): Buffer | null {
  if (s.length % 4 === 1 || !BASE64URL.test(s)) return null;
  const bytes = Buffer.from(s, 'base64url');
  return bytes.toString('base64url') === s ? bytes : null;
}

/**
 * A compact JWS, structurally checked but not verified. Refused here, whoever reads the result:
 * anything but three segments (a JWE has five), non-canonical base64url, non-JSON or non-object
 * header and payload, duplicate top-level members (different parsers keep different copies, so
 * the gateway and the upstream could read different accounts), a `crit` header (no extension is
 * understood, RFC 7515 §4.1.11), and `alg: none`.
 */
export function parseJws(token: string, maxLength: number = DEFAULT_MAX_TOKEN_LENGTH): JwsParse {
  if (token.length > maxLength) return fail(`it is longer than ${maxLength} characters`);
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0 || token.indexOf('.', second + 1) >= 0) return fail('it is not a JWT (expected three dot-separated parts)');
  const headerBytes = decodeBase64UrlStrict(token.slice(0, first));
  const payloadBytes = decodeBase64UrlStrict(token.slice(first + 1, second));
  const signature = decodeBase64UrlStrict(token.slice(second + 1));
  if (headerBytes === null || payloadBytes === null) return fail('it is not a JWT (a part is not base64url)');
  const header = parseJsonObject(headerBytes);
  if (header === null) return fail('its header is not a JSON object without duplicate members');
  const payload = parseJsonObject(payloadBytes);
  if (payload === null) return fail('its payload is not a JSON object without duplicate members');
  const alg = header['alg'];
  if (typeof alg !== 'string') return fail('its header has no alg');
  if (alg.toLowerCase() === 'none') return fail('alg none is not accepted');
  if (Object.hasOwn(header, 'crit')) return fail('its header has crit extensions, which are not supported');
  if (signature === null) return fail('its signature part is missing or not base64url');
  return { ok: true, jws: { header, payload, signingInput: Buffer.from(token.slice(0, second), 'latin1'), signature } };
}

/** The verifier for a `bearer-jwt` strategy, with its keys read now so mistakes stop the start. */
export function loadJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const algorithms = readAlgorithms(options.algorithms);
  const keys: VerificationKey[] = [];
  for (const option of options.keys ?? []) keys.push(loadPemKey(option, algorithms));
  if (options.jwksFile !== undefined) keys.push(...loadJwks(options.jwksFile, algorithms));
  return createJwtVerifier(keys, { ...options, algorithms });
}

/** A verifier over keys already in memory (loadJwtVerifier reads them from files). */
export function createJwtVerifier(keys: readonly VerificationKey[], policy: ClaimsPolicy = {}): JwtVerifier {
  const algorithms = readAlgorithms(policy.algorithms);
  if (keys.length === 0) throw new Error('JWT verification needs at least one public key (keys or jwksFile)');
  const byKid = new Map<string, VerificationKey>();
  for (const key of keys) {
    if (!algorithms.includes(key.alg)) {
      throw new Error(`${key.origin} is an ${key.alg} key, but only ${algorithms.join(', ')} tokens are accepted`);
    }
    if (key.kid === undefined) continue;
    const other = byKid.get(key.kid);
    if (other !== undefined) throw new Error(`kid ${quoteUntrusted(key.kid)} names two keys (${other.origin} and ${key.origin})`);
    byKid.set(key.kid, key);
  }
  const byAlg = new Map<string, readonly VerificationKey[]>(algorithms.map((alg) => [alg, keys.filter((k) => k.alg === alg)]));
  const maxTokenLength = positiveInteger(policy.maxTokenLength, DEFAULT_MAX_TOKEN_LENGTH, 'maxTokenLength');
  const tolerance = nonNegativeInteger(policy.clockToleranceSeconds, DEFAULT_CLOCK_TOLERANCE_SECONDS, 'clockToleranceSeconds');
  const maxLifetime = policy.maxLifetimeSeconds === undefined ? undefined : positiveInteger(policy.maxLifetimeSeconds, 0, 'maxLifetimeSeconds');
  const rules: TimeRules = { tolerance, maxLifetime, requireExp: policy.requireExp === true || maxLifetime !== undefined };
  const clock = policy.clock ?? Date.now;

  return {
    algorithms,
    maxTokenLength,
    verify(token: string): JwtCheck {
      const parsed = parseJws(token, maxTokenLength);
      if (!parsed.ok) return parsed;
      const { header, payload, signingInput, signature } = parsed.jws;
      const alg = header['alg'] as string;
      const candidates = byAlg.get(alg);
      if (candidates === undefined) return fail(`alg ${quoteUntrusted(alg, 16)} is not accepted (accepted: ${algorithms.join(', ')})`);
      const kid = header['kid'];
      let tried: readonly VerificationKey[];
      if (kid === undefined) {
        if (candidates.length === 0) return fail(`no ${alg} key is configured`);
        tried = candidates;
      } else {
        if (typeof kid !== 'string') return fail('its kid is not a string');
        const key = byKid.get(kid);
        if (key === undefined) return fail(`its key id ${quoteUntrusted(kid, 32)} is unknown`);
        if (key.alg !== alg) return fail(`its key id ${quoteUntrusted(kid, 32)} names an ${key.alg} key, not ${alg}`);
        tried = [key];
      }
      if (!tried.some((key) => signatureMatches(key, signingInput, signature))) return fail('its signature does not verify');
      const problem = timeProblem(payload, clock() / 1000, rules);
      return problem === null ? { ok: true, payload } : fail(problem);
    },
  };
}

function signatureMatches(key: VerificationKey, input: Buffer, signature: Buffer): boolean {
  try {
    if (key.alg === 'ES256') {
      return signature.length === ES256_SIGNATURE_BYTES
        && verifySignature('sha256', input, { key: key.key, dsaEncoding: 'ieee-p1363' }, signature);
    }
    return verifySignature('sha256', input, key.key, signature);
  } catch {
    // OpenSSL rejects some malformed signatures by throwing rather than returning false.
    return false;
  }
}

interface TimeRules {
  readonly tolerance: number;
  readonly maxLifetime: number | undefined;
  readonly requireExp: boolean;
}

function timeProblem(payload: JsonObject, now: number, rules: TimeRules): string | null {
  const exp = payload['exp'];
  const nbf = payload['nbf'];
  const iat = payload['iat'];
  if (exp !== undefined && !isNumericDate(exp)) return 'its exp is not a number';
  if (nbf !== undefined && !isNumericDate(nbf)) return 'its nbf is not a number';
  if (iat !== undefined && !isNumericDate(iat)) return 'its iat is not a number';
  if (exp === undefined) {
    if (rules.requireExp) return rules.maxLifetime === undefined ? 'it has no exp' : 'it has no exp (tokens must be short-lived)';
  } else if (now >= exp + rules.tolerance) {
    return 'it has expired';
  }
  if (nbf !== undefined && now < nbf - rules.tolerance) return 'it is not valid yet (nbf)';
  // A token dated in the future would otherwise stretch its real lifetime past the limit.
  if (iat !== undefined && iat > now + rules.tolerance) return 'it was issued in the future (iat)';
  if (rules.maxLifetime !== undefined && exp !== undefined) {
    // Without iat the lifetime still left is what can be bounded.
    const start = iat ?? nbf ?? now;
    if (exp > start + rules.maxLifetime) return `its lifetime exceeds ${rules.maxLifetime} seconds`;
  }
  return null;
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function fail(problem: string): { readonly ok: false; readonly problem: string } {
  return { ok: false, problem };
}

function parseJsonObject(bytes: Buffer): JsonObject | null {
  let text: string;
  let value: unknown;
  try {
    text = UTF8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return hasDuplicateMembers(text) ? null : (value as JsonObject);
}

/**
 * Whether the top-level object in already-validated JSON text names a member twice. Only the
 * top level matters: the claims and header parameters read are all there.
 */
function hasDuplicateMembers(text: string): boolean {
  const seen = new Set<string>();
  let depth = 0;
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      if (depth === 1 && expectName) {
        const name = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(name)) return true;
        seen.add(name);
        expectName = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectName = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectName = true;
    }
  }
  return false;
}

function readAlgorithms(list: readonly string[] | undefined): JwsAlgorithm[] {
  if (list === undefined) return [...SUPPORTED_ALGORITHMS];
  if (list.length === 0) throw new Error(`JWT algorithms must list at least one of ${SUPPORTED_ALGORITHMS.join(', ')}`);
  const out: JwsAlgorithm[] = [];
  for (const alg of list) {
    if (!isSupported(alg)) {
      throw new Error(`JWT algorithm ${quoteUntrusted(alg)} is not supported: expected ${SUPPORTED_ALGORITHMS.join(' or ')}${alg.toLowerCase() === 'none' ? ' (unsigned tokens are never accepted)' : ''}`);
    }
    if (!out.includes(alg)) out.push(alg);
  }
  return out;
}

function isSupported(alg: string): alg is JwsAlgorithm {
  return (SUPPORTED_ALGORITHMS as readonly string[]).includes(alg);
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`JWT ${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function nonNegativeInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`JWT ${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}

/** The algorithm a public key can check, or why it cannot be used. */
function algorithmOf(key: KeyObject): JwsAlgorithm | string {
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits >= MIN_RSA_BITS ? 'RS256' : `an RSA key of ${bits} bits (at least ${MIN_RSA_BITS} are required)`;
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'prime256v1' ? 'ES256' : `an EC key on curve ${curve ?? 'unknown'} (ES256 needs P-256)`;
  }
  return `a key of type ${key.asymmetricKeyType ?? 'unknown'} (expected RSA or EC P-256)`;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new Error(`cannot read ${what} ${file}: ${code}`);
  }
}

function loadPemKey(option: PemKeyOption, algorithms: readonly JwsAlgorithm[]): VerificationKey {
  const file = option.file;
  const text = readText(file, 'JWT public key file');
  // createPublicKey would quietly derive the public half; a private key in the gateway's config
  // is a leak waiting to happen, so say so instead.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new Error(`JWT public key file ${file} holds a private key: give the public key only`);
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (error) {
    throw new Error(`JWT public key file ${file} is not a PEM public key or certificate (${(error as Error).message})`);
  }
  const alg = algorithmOf(key);
  if (!isSupported(alg)) throw new Error(`JWT public key file ${file} holds ${alg}`);
  if (!algorithms.includes(alg)) throw new Error(`JWT public key file ${file} holds an ${alg} key, but only ${algorithms.join(', ')} tokens are accepted`);
  if (option.kid !== undefined && option.kid.length === 0) throw new Error(`JWT public key file ${file}: kid must not be empty`);
  return { key, alg, kid: option.kid, origin: `JWT public key file ${file}` };
}

/**
 * Keys from a JWKS file. Entries the JWKS itself marks as for encryption, or for an algorithm not
 * accepted here, are left out (identity providers publish those alongside signing keys); any
 * other entry the gateway cannot use is an error, so a typo cannot silently drop a key.
 */
function loadJwks(file: string, algorithms: readonly JwsAlgorithm[]): VerificationKey[] {
  const where = `JWKS file ${file}`;
  const text = readText(file, 'JWKS file');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new Error(`${where} is not valid JSON (${(error as Error).message})`);
  }
  const entries = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['keys'] : undefined;
  if (!Array.isArray(entries)) throw new Error(`${where} must be a JSON object with a "keys" array`);
  const keys: VerificationKey[] = [];
  entries.forEach((entry: unknown, index) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new Error(`${where}: keys[${index}] is not a JSON object`);
    const jwk = entry as Record<string, unknown>;
    const kid = jwk['kid'];
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0)) throw new Error(`${where}: keys[${index}] has a kid that is not a non-empty string`);
    const label = `${where} keys[${index}]${kid === undefined ? '' : ` (kid ${quoteUntrusted(kid)})`}`;
    const use = jwk['use'];
    const ops = jwk['key_ops'];
    const declared = jwk['alg'];
    if (use !== undefined && use !== 'sig') return;
    if (Array.isArray(ops) && !ops.includes('verify')) return;
    if (declared !== undefined && (typeof declared !== 'string' || !(algorithms as readonly string[]).includes(declared))) return;
    if (jwk['d'] !== undefined || jwk['k'] !== undefined) throw new Error(`${label} holds private or secret key material: publish public keys only`);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch (error) {
      throw new Error(`${label} is not a usable public key (${(error as Error).message})`);
    }
    const alg = algorithmOf(key);
    if (!isSupported(alg)) throw new Error(`${label} is ${alg}`);
    if (declared !== undefined && declared !== alg) throw new Error(`${label} says alg ${String(declared)} but is an ${alg} key`);
    if (!algorithms.includes(alg)) return;
    keys.push({ key, alg, kid: kid as string | undefined, origin: label });
  });
  if (keys.length === 0) throw new Error(`${where} has no ${algorithms.join(' or ')} signing key`);
  return keys;
}
