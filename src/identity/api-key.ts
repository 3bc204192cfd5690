import { refusal, type Refusal } from '../http/refusal.ts';
import { trimOws } from './authorization.ts';
import { isKeyText, KEY_MAX_LENGTH } from './key-text.ts';
import { readBasicCredentials } from './basic.ts';
import { NOTHING, refused } from './extraction.ts';
import { readSecretParam, secretValue, type ParamsFound } from './query.ts';
import type { AuthorizationParts, Extraction } from './types.ts';

export const DEFAULT_KEY_HEADER = 'x-api-key';


/** What the `api-key` strategy reads, compiled (names lower-cased). */
export interface ApiKeyPlaces {
  /** The key header's slot among the watched headers, or -1. */
  readonly slot: number;
  readonly header: string | null;
  /** Opaque Bearer tokens; `jwtAware`: bearer-jwt is listed too and takes the tokens shaped like JWTs. */
  readonly bearer: boolean;
  readonly jwtAware: boolean;
  readonly basic: 'off' | 'password' | 'username';
  /** The basic strategy is listed too: it reads the Basic user name as the account. */
  readonly basicAccount: boolean;
  readonly query: string | null;
  /** With `bearer`: the query parameters a bearer token may travel in (RFC 6750 §2.3), read as keys. */
  readonly params: readonly string[];
  /** Each of `params`' place among the bearer token parameters the request's query is scanned for. */
  readonly paramSlots: readonly number[];
  /** The bearer-jwt strategy's token parameters: a token there shaped like a JWT is that strategy's. */
  readonly jwtParams: readonly string[];
}

/** The places, with the words that name each in a refusal made once: the request path builds no text. */
export interface ApiKeySources extends ApiKeyPlaces {
  readonly headerSource: string;
  readonly querySource: string;
  readonly paramSources: readonly string[];
  readonly basicSource: string;
}

export function apiKeySources(places: ApiKeyPlaces): ApiKeySources {
  return {
    ...places,
    headerSource: `the ${places.header} header`,
    querySource: `the ${places.query} query parameter`,
    paramSources: places.params.map((param) => `the ${param} query parameter`),
    basicSource: `the Basic ${places.basic === 'password' ? 'password' : 'user name'}`,
  };
}

type FoundKey = Extract<Extraction, { kind: 'key' }>;
type KeyRefusal = Extract<Extraction, { kind: 'refused' }>;

/**
 * Why `key`, sent in `source`, cannot be an API key (isKeyText), or null when it can be: judged
 * here for every place that looks a key up (see take).
 */
export function keyTextRefused(key: string, source: string): { readonly kind: 'refused'; readonly refusal: Refusal } | null {
  if (isKeyText(key)) return null;
  return { kind: 'refused', refusal: refusal(401, 'invalid_key', `the API key in ${source} is not one the gateway can read: expected 1-${KEY_MAX_LENGTH} visible ASCII characters, without spaces`) };
}

/**
 * `key` found in `source`: the key so far, or why the request is refused (a second key). A lone
 * key's text is judged where it is looked up (KeyResolver.resolve), and only when it is not one
 * seen before: a key the gateway remembers was judged when it was first seen, and reading a
 * 40-character key once more costs about as much as the rest of its extraction. With two keys
 * both are judged first, so a key that cannot be one is refused as such, as before the ambiguity.
 */
function take(found: FoundKey | null, key: string, source: string): FoundKey | KeyRefusal {
  if (found === null) return { kind: 'key', key, source };
  const unreadable = keyTextRefused(found.key, found.source) ?? keyTextRefused(key, source);
  if (unreadable !== null) return unreadable;
  return refused(400, 'ambiguous_credentials', `an API key is sent in ${found.source} and in ${source}; send it in one place`) as KeyRefusal;
}

/**
 * A token with exactly two dots is a JWT (a JWS compact serialization); anything else is opaque.
 * With both bearer strategies listed, this alone decides which one reads a Bearer token.
 */
export function isJwtShaped(token: string): boolean {
  const first = token.indexOf('.');
  if (first < 0) return false;
  const second = token.indexOf('.', first + 1);
  return second >= 0 && token.indexOf('.', second + 1) < 0;
}

/**
 * The API key of a request, from every place the strategy reads (with Bearer, the query parameters
 * RFC 6750 lets a bearer token travel in too: token libraries read them). A key in two places is refused
 * even when both copies agree, as a credential header sent twice is: which one an upstream reads
 * depends on its framework. A place that holds something no key can be (empty, a space, a
 * control or non-ASCII character, longer than 4096) is taken for a key, never for no key (the
 * upstream may still read it), and refused where the key is looked up (see take). Keys are never
 * echoed in a refusal.
 */
export function extractApiKey(sources: ApiKeySources, values: readonly (string | undefined)[], authorization: AuthorizationParts | undefined, query: string | null, tokens: ParamsFound | null): Extraction {
  let found: FoundKey | null = null;
  if (sources.slot >= 0) {
    const value = values[sources.slot];
    if (value !== undefined) {
      // Two key headers arrive joined by a comma; an upstream that splits the value reads the first.
      if (value.indexOf(',') >= 0) return refused(400, 'ambiguous_credentials', `the ${sources.header} header holds more than one value (a comma); send one key, once`);
      const next = take(found, trimOws(value), sources.headerSource);
      if (next.kind === 'refused') return next;
      found = next;
    }
  }
  if (authorization !== undefined) {
    if (sources.bearer && authorization.scheme === 'bearer' && !(sources.jwtAware && isJwtShaped(authorization.credentials))) {
      const next = take(found, authorization.credentials, 'the Bearer token');
      if (next.kind === 'refused') return next;
      found = next;
    } else if (sources.basic !== 'off' && authorization.scheme === 'basic') {
      const pair = readBasicCredentials(authorization);
      if (pair.kind === 'refused') return pair;
      if (pair.kind === 'pair') {
        const key = sources.basic === 'password' ? pair.password : pair.user;
        if (key.length > 0) {
          const next = take(found, key, sources.basicSource);
          if (next.kind === 'refused') return next;
          // A user name beside the key that no strategy reads: the gateway checks it against the
          // key's account (an upstream may read it as the account), see forKey.
          found = sources.basic === 'password' && !sources.basicAccount && pair.user.length > 0 ? { ...next, basicUser: pair.user } : next;
        } else if (!sources.basicAccount) {
          // No strategy reads the other part, and an upstream may take it for the key (Stripe reads
          // the user name, others the password): an unchecked credential, refused.
          return refused(401, 'invalid_key', `${sources.basicSource}, where the gateway reads the API key, is empty, and nothing checks the other part; send ${sources.basic === 'password' ? 'Basic base64(<user>:<key>)' : 'Basic base64(<key>:)'}`);
        }
      }
    }
  }
  // The bearer token parameters, as the one scan of the raw target found them: most requests carry none.
  if (tokens !== null) {
    for (let i = 0; i < sources.params.length; i++) {
      const param = sources.params[i]!;
      const read = secretValue(tokens[sources.paramSlots[i]!], param);
      if (read.kind === 'refused') return read;
      if (read.kind === 'value' && !(isJwtShaped(read.value) && sources.jwtParams.includes(param))) {
        const next = take(found, read.value, sources.paramSources[i]!);
        if (next.kind === 'refused') return next;
        found = next;
      }
    }
  }
  if (sources.query !== null) {
    const read = readSecretParam(query, sources.query);
    if (read.kind === 'refused') return read;
    if (read.kind === 'value') {
      const next = take(found, read.value, sources.querySource);
      if (next.kind === 'refused') return next;
      found = next;
    }
  }
  return found ?? NOTHING;
}
