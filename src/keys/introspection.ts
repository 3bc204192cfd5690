import { readFileSync } from 'node:fs';
import { sourceOf } from '../ip/source.ts';
import { Pool } from 'undici';
import { refusal, type Refusal } from '../http/refusal.ts';
import { isValidAccountId } from '../identity/account-id.ts';
import type { IntrospectionObserver } from '../observability/key-stats.ts';

/**
 * `identity.introspection`: where tokens the registry does not know are looked up. `rfc7662`
 * POSTs `token=<token>` (form-encoded, RFC 7662 §2.1) with the gateway's client credentials;
 * `lookup` GETs the URL with the token in a header (a simple "whose key is this" endpoint).
 */
export interface IntrospectionConfig {
  readonly url: URL;
  readonly style: 'rfc7662' | 'lookup';
  /** lookup: the header carrying the token (`authorization` sends `Bearer <token>`). */
  readonly tokenHeader: string;
  /** rfc7662: client authentication, as HTTP Basic (both set) or none. */
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** rfc7662: `token_type_hint`, when set. */
  readonly tokenTypeHint?: string;
  /** The member naming the account; `a.b` reads member b of object a. */
  readonly accountField: string;
  readonly timeoutMs: number;
  /** How long an active answer is kept (never past the token's `exp`), and an inactive one. */
  readonly cacheSeconds: number;
  readonly negativeCacheSeconds: number;
  /** Answers kept, each of the two kinds. */
  readonly cacheEntries: number;
  /** Lookups in flight at once; more are refused as if the endpoint were down. */
  readonly maxConcurrent: number;
  /**
   * Of those, lookups one client (an IPv4 address or IPv6 /64) may have in flight: a client
   * sending made-up tokens to a slow endpoint cannot take every slot from the others.
   */
  readonly maxConcurrentPerClient: number;
  /** The endpoint down or failing: refuse (503 introspection_unavailable) or pass the request as anonymous. */
  readonly onUnavailable: 'closed' | 'anonymous';
  /** A PEM bundle of CAs for an https endpoint with a private CA. */
  readonly caFile?: string;
}

export type IntrospectionAnswer =
  | { readonly kind: 'active'; readonly account: string }
  | { readonly kind: 'inactive' }
  /** The token is active, but its answer names no usable account: refused. */
  | { readonly kind: 'refused'; readonly refusal: Refusal }
  | { readonly kind: 'unavailable'; readonly refusal: Refusal; readonly passAnonymous: boolean };

/** Largest answer read from the endpoint. */
const MAX_ANSWER_BYTES = 64 * 1024;
const INACTIVE: IntrospectionAnswer = { kind: 'inactive' };

/**
 * Asks the configured endpoint whose a token is. Answers are cached by the token's digest (the
 * same keyed HMAC the registry uses: the token itself is never a key, never kept, never logged),
 * active ones for `cacheSeconds` (not past the token's `exp`), inactive ones for
 * `negativeCacheSeconds`, each kind bounded by `cacheEntries` (oldest first). Concurrent lookups
 * of one token share one call; at most `maxConcurrent` calls run at once. A failure (connection,
 * timeout, a status other than 200, or for lookup 401/403/404, an unreadable answer) fails
 * closed unless `onUnavailable: anonymous`, and is never cached.
 */
export class Introspector {
  readonly #config: IntrospectionConfig;
  readonly #pool: Pool;
  readonly #now: () => number;
  readonly #observer: IntrospectionObserver | undefined;
  readonly #active = new Map<string, { readonly account: string; readonly until: number }>();
  readonly #inactive = new Map<string, number>();
  readonly #pending = new Map<string, Promise<IntrospectionAnswer>>();
  /** Calls in flight by client: only clients with one in flight, so at most maxConcurrent entries. */
  readonly #perClient = new Map<string, number>();
  readonly #authorization: string | undefined;
  readonly #path: string;

  constructor(config: IntrospectionConfig, options: { readonly now?: () => number; readonly observer?: IntrospectionObserver } = {}) {
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#observer = options.observer;
    const ca = config.caFile === undefined ? undefined : readFileSync(config.caFile);
    this.#pool = new Pool(config.url.origin, {
      connections: config.maxConcurrent,
      connectTimeout: config.timeoutMs,
      ...(ca === undefined ? {} : { connect: { ca } }),
    });
    this.#path = `${config.url.pathname}${config.url.search}`;
    if (config.clientId !== undefined && config.clientSecret !== undefined) {
      this.#authorization = `Basic ${Buffer.from(`${encodeURIComponent(config.clientId)}:${encodeURIComponent(config.clientSecret)}`).toString('base64')}`;
    }
  }

  /**
   * The account of an active token, from the cache when it can be (synchronously). `client`: the
   * address of the caller presenting it, whose share of the calls in flight is bounded.
   */
  lookup(token: string, digest: string, client?: string): IntrospectionAnswer | Promise<IntrospectionAnswer> {
    const now = this.#now();
    const active = this.#active.get(digest);
    if (active !== undefined) {
      if (active.until > now) return { kind: 'active', account: active.account };
      this.#active.delete(digest);
    }
    const inactive = this.#inactive.get(digest);
    if (inactive !== undefined) {
      if (inactive > now) return INACTIVE;
      this.#inactive.delete(digest);
    }
    const pending = this.#pending.get(digest);
    if (pending !== undefined) return pending;
    if (this.#pending.size >= this.#config.maxConcurrent) {
      this.#observer?.called('busy', 0);
      return this.#unavailable(`${this.#config.maxConcurrent} introspection calls are already in flight (identity.introspection.maxConcurrent)`);
    }
    const source = client === undefined ? undefined : sourceOf(client);
    const held = source === undefined ? 0 : this.#perClient.get(source) ?? 0;
    if (held >= this.#config.maxConcurrentPerClient) {
      this.#observer?.called('busy', 0);
      return this.#unavailable(`${source} already has ${held} introspection calls in flight (identity.introspection.maxConcurrentPerClient)`);
    }
    if (source !== undefined) this.#perClient.set(source, held + 1);
    const call = this.#call(token, digest).finally(() => {
      this.#pending.delete(digest);
      if (source === undefined) return;
      const left = (this.#perClient.get(source) ?? 1) - 1;
      if (left > 0) this.#perClient.set(source, left);
      else this.#perClient.delete(source);
    });
    this.#pending.set(digest, call);
    return call;
  }

  /** Answers held, for the metrics. */
  get size(): { readonly active: number; readonly inactive: number } {
    return { active: this.#active.size, inactive: this.#inactive.size };
  }

  async close(): Promise<void> {
    this.#active.clear();
    this.#inactive.clear();
    await this.#pool.close();
  }

  async #call(token: string, digest: string): Promise<IntrospectionAnswer> {
    const start = performance.now();
    const seconds = (): number => (performance.now() - start) / 1000;
    let status: number;
    let text: string;
    try {
      ({ status, text } = await this.#exchange(token));
    } catch (error) {
      const timedOut = error instanceof Error && /timeout/i.test(`${error.name} ${(error as NodeJS.ErrnoException).code ?? ''}`);
      this.#observer?.called(timedOut ? 'timeout' : 'error', seconds());
      return this.#unavailable(timedOut ? `no answer within ${this.#config.timeoutMs} ms` : 'the endpoint could not be reached', error instanceof Error ? error.message : String(error));
    }
    if (this.#config.style === 'lookup' && (status === 401 || status === 403 || status === 404)) {
      this.#observer?.called('inactive', seconds());
      return this.#remember(digest, null, null);
    }
    if (status !== 200) {
      this.#observer?.called('status', seconds());
      return this.#unavailable(`the endpoint answered ${status}`);
    }
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      this.#observer?.called('error', seconds());
      return this.#unavailable('the endpoint\'s answer is not JSON');
    }
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
      this.#observer?.called('error', seconds());
      return this.#unavailable('the endpoint\'s answer is not a JSON object');
    }
    const body = answer as Record<string, unknown>;
    // RFC 7662 §2.2: `active` is required and decides; a lookup endpoint's 200 is an answer for the token.
    const activeField = body['active'];
    if (this.#config.style === 'rfc7662' ? activeField !== true : activeField === false) {
      this.#observer?.called('inactive', seconds());
      return this.#remember(digest, null, null);
    }
    const exp = typeof body['exp'] === 'number' ? body['exp'] * 1000 : null;
    if (exp !== null && exp <= this.#now()) {
      this.#observer?.called('inactive', seconds());
      return this.#remember(digest, null, null);
    }
    const account = readField(body, this.#config.accountField);
    if (typeof account !== 'string' || !isValidAccountId(account)) {
      this.#observer?.called('no_account', seconds());
      return { kind: 'refused', refusal: refusal(401, 'invalid_token', `the token is active, but its introspection names no valid account in ${this.#config.accountField}; the gateway cannot tell whose list applies`) };
    }
    this.#observer?.called('active', seconds());
    return this.#remember(digest, account, exp);
  }

  async #exchange(token: string): Promise<{ status: number; text: string }> {
    const { style, tokenHeader, tokenTypeHint, timeoutMs } = this.#config;
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | undefined;
    if (style === 'rfc7662') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
      body = new URLSearchParams({ token, ...(tokenTypeHint === undefined ? {} : { token_type_hint: tokenTypeHint }) }).toString();
    } else {
      headers[tokenHeader] = tokenHeader === 'authorization' ? `Bearer ${token}` : token;
    }
    const response = await this.#pool.request({
      origin: this.#config.url.origin,
      path: this.#path,
      method: style === 'rfc7662' ? 'POST' : 'GET',
      headers,
      ...(body === undefined ? {} : { body }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_ANSWER_BYTES) {
        response.body.destroy();
        throw new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return { status: response.statusCode, text: Buffer.concat(chunks).toString('utf8') };
  }

  #remember(digest: string, account: string | null, exp: number | null): IntrospectionAnswer {
    const now = this.#now();
    const max = this.#config.cacheEntries;
    if (account === null) {
      this.#inactive.delete(digest);
      this.#inactive.set(digest, now + this.#config.negativeCacheSeconds * 1000);
      while (this.#inactive.size > max) this.#inactive.delete(this.#inactive.keys().next().value!);
      return INACTIVE;
    }
    const until = Math.min(now + this.#config.cacheSeconds * 1000, exp ?? Number.POSITIVE_INFINITY);
    this.#active.delete(digest);
    this.#active.set(digest, { account, until });
    while (this.#active.size > max) this.#active.delete(this.#active.keys().next().value!);
    return { kind: 'active', account };
  }

  #unavailable(why: string, cause?: string): IntrospectionAnswer {
    return {
      kind: 'unavailable',
      passAnonymous: this.#config.onUnavailable === 'anonymous',
      refusal: refusal(503, 'introspection_unavailable', `the token could not be checked: ${why}; retry shortly`, cause),
    };
  }
}

/** `a.b` reads member b of object a; own members only. */
function readField(body: Record<string, unknown>, path: string): unknown {
  let value: unknown = body;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
