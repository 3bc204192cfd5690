import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { IntrospectionConfig } from '../keys/introspection.ts';
import { DEFAULT_KEY_CACHE_LIMITS } from '../keys/resolver.ts';
import { DEFAULT_MAX_KEYS_PER_ACCOUNT } from '../list/keys.ts';
import { keepGeneratedSecret } from './admin-token.ts';
import { ConfigError, type Reader } from './reader.ts';
import type { Config, StoreSpec } from './types.ts';

const MIN_SECRET_LENGTH = 32;

/**
 * The `keys` section: the registry's secret, bounds and cache. The secret keys the HMAC every key
 * registered by value is stored under (src/list/key-digest.ts): from ALLOWGATE_KEY_SECRET / keys.secret,
 * keys.secretFile, or generated once and kept beside the file store (`key-secret`, mode 0600; with
 * the memory store, for the life of the process). Replicas sharing Redis must hash alike, so
 * with Redis a secret must be given whenever an api-key strategy is listed; without one there,
 * keys can still be registered by hash (`key_sha256`), not by value.
 */
export function readKeys(reader: Reader, store: StoreSpec, apiKeysListed: boolean): Config['keys'] {
  const section = reader.object(['secret', 'secretFile', 'maxPerAccount', 'cacheEntries', 'cacheNegativeEntries']);
  return {
    ...readSecret(section.get('secret'), section.get('secretFile'), store, apiKeysListed),
    maxPerAccount: section.get('maxPerAccount').integer(1, 10_000, DEFAULT_MAX_KEYS_PER_ACCOUNT),
    cache: {
      maxEntries: section.get('cacheEntries').integer(1, 10_000_000, DEFAULT_KEY_CACHE_LIMITS.maxEntries),
      maxNegativeEntries: section.get('cacheNegativeEntries').integer(1, 10_000_000, DEFAULT_KEY_CACHE_LIMITS.maxNegativeEntries),
    },
  };
}

function readSecret(secretReader: Reader, fileReader: Reader, store: StoreSpec, apiKeysListed: boolean): Pick<Config['keys'], 'secret' | 'secretSource'> {
  const check = (value: string, reader: Reader, what: string): Buffer => {
    if (value.length < MIN_SECRET_LENGTH || /\s/.test(value)) reader.fail(`${what} of at least ${MIN_SECRET_LENGTH} characters without spaces (openssl rand -base64 32)`);
    return Buffer.from(value, 'utf8');
  };
  if (secretReader.present) return { secret: check(secretReader.string(), secretReader, 'a secret'), secretSource: 'configured' };
  if (fileReader.present) {
    const path = fileReader.string();
    let value: string;
    try {
      value = readFileSync(path, 'utf8').trim();
    } catch (error) {
      return fileReader.fail(`a readable file holding the key secret (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
    return { secret: check(value, fileReader, 'a file holding a secret'), secretSource: 'file' };
  }
  switch (store.kind) {
    case 'memory':
      return { secret: Buffer.from(generateSecret()), secretSource: 'generated' };
    case 'file': {
      const path = join(dirname(store.path), 'key-secret');
      const existed = existsSync(path);
      const kept = keepGeneratedSecret(path, generateSecret, MIN_SECRET_LENGTH);
      return { secret: Buffer.from(kept.value), secretSource: existed ? 'file' : 'generated' };
    }
    case 'redis':
      if (apiKeysListed) {
        throw new ConfigError('the api-key strategy with the redis store needs ALLOWGATE_KEY_SECRET (keys.secret or keys.secretFile): every replica must hash keys with the same secret, and it must not live in Redis beside the digests it protects (openssl rand -base64 32)');
      }
      return { secret: null, secretSource: 'none' };
  }
}

function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** `identity.introspection`: absent (null) unless a url is set. */
export function readIntrospection(reader: Reader): IntrospectionConfig | null {
  if (!reader.present) return null;
  const section = reader.object(['url', 'style', 'tokenHeader', 'clientId', 'clientSecret', 'tokenTypeHint', 'accountField', 'timeoutMs', 'cacheSeconds', 'negativeCacheSeconds', 'cacheEntries', 'maxConcurrent', 'maxConcurrentPerClient', 'onUnavailable', 'caFile']);
  const urlReader = section.get('url');
  let url: URL;
  try {
    url = new URL(urlReader.string());
  } catch {
    return urlReader.fail('an absolute http:// or https:// URL of the introspection endpoint');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') urlReader.fail('an http:// or https:// URL');
  if (url.username || url.password) urlReader.fail('a URL without credentials (set clientId and clientSecret)');
  const style = section.get('style').oneOf(['rfc7662', 'lookup'] as const, 'rfc7662');
  const tokenHeader = section.get('tokenHeader').string('authorization').toLowerCase();
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(tokenHeader)) section.get('tokenHeader').fail('an HTTP header name, e.g. Authorization');
  const clientId = section.get('clientId').optionalString();
  const clientSecret = section.get('clientSecret').optionalString();
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    const [missing, given] = clientId === undefined ? ['clientId', 'clientSecret'] : ['clientSecret', 'clientId'];
    section.get(missing).fail(`set since ${given} is (the client's HTTP Basic credentials for the endpoint)`);
  }
  const accountField = section.get('accountField').string('sub');
  if (accountField.split('.').some((part) => part === '')) section.get('accountField').fail('a member name, or a dotted path such as ext.account_id');
  const tokenTypeHint = section.get('tokenTypeHint').optionalString();
  const maxConcurrent = section.get('maxConcurrent').integer(1, 10_000, 64);
  // A quarter of the slots by default: one client flooding a slow endpoint leaves the rest to others.
  const maxConcurrentPerClient = section.get('maxConcurrentPerClient').integer(1, maxConcurrent, Math.max(1, Math.ceil(maxConcurrent / 4)));
  const caFile = section.get('caFile').optionalString();
  if (caFile !== undefined && !existsSync(caFile)) section.get('caFile').fail('a readable PEM file of CA certificates');
  return {
    url,
    style,
    tokenHeader,
    ...(clientId === undefined ? {} : { clientId }),
    ...(clientSecret === undefined ? {} : { clientSecret }),
    ...(tokenTypeHint === undefined ? {} : { tokenTypeHint }),
    accountField,
    timeoutMs: section.get('timeoutMs').integer(10, 60_000, 2_000),
    cacheSeconds: section.get('cacheSeconds').integer(0, 86_400, 60),
    negativeCacheSeconds: section.get('negativeCacheSeconds').integer(0, 3_600, 10),
    cacheEntries: section.get('cacheEntries').integer(1, 10_000_000, 10_000),
    maxConcurrent,
    maxConcurrentPerClient,
    onUnavailable: section.get('onUnavailable').oneOf(['closed', 'anonymous'] as const, 'closed'),
    ...(caFile === undefined ? {} : { caFile }),
  };
}
