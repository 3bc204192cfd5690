import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/types.ts';
import { createClient, createSubscriber, reconnectDelay } from '../../../src/store/redis/connection.ts';
import { describeRedis, type RedisStoreSpec } from '../../../src/store/redis/spec.ts';
import { configFailure } from '../../support/config-error.ts';
import { scratchPerTest } from '../../support/scratch.ts';

const scratch = scratchPerTest();

function load(env: Record<string, string>, yaml = ''): Config {
  const path = join(scratch(), 'allowgate.yaml');
  writeFileSync(path, yaml);
  return loadConfig({ argv: ['--config', path], env: { ALLOWGATE_ADMIN_TOKEN: 'a-long-enough-admin-token', ...env } });
}

function failure(env: Record<string, string>, yaml = ''): string {
  return configFailure(() => load(env, yaml));
}

function redisSpec(config: Config): RedisStoreSpec {
  if (config.store.kind !== 'redis') throw new Error(`expected a redis store, got ${config.store.kind}`);
  return config.store;
}

describe('Redis store configuration', () => {
  it('takes a standalone URL from ALLOWGATE_STORE with sensible defaults', () => {
    const spec = redisSpec(load({ ALLOWGATE_STORE: 'redis://:s3cret@127.0.0.1:6380/2' }));
    expect(spec).toEqual({
      kind: 'redis',
      topology: { mode: 'standalone', url: 'redis://:s3cret@127.0.0.1:6380/2' },
      keyPrefix: 'allowgate:',
      connectTimeoutMs: 2000,
      commandTimeoutMs: 500,
      sweepIntervalMs: 5000,
      noticeListMaxBytes: 65536,
    });
    // Logged without the password.
    expect(describeRedis(spec)).toBe('redis://127.0.0.1:6380/2');
  });

  it('reads TLS, ACL user, password, prefix and timeouts from the redis section and the environment', () => {
    const spec = redisSpec(load(
      { ALLOWGATE_STORE: 'rediss://cache.internal:6379', ALLOWGATE_REDIS_PASSWORD: 'from-env', ALLOWGATE_REDIS_KEY_PREFIX: 'gw:prod:' },
      'redis:\n  username: gateway\n  tls: {rejectUnauthorized: false}\n  commandTimeoutMs: 250\n  sweepIntervalMs: 1000\n',
    ));
    expect(spec).toMatchObject({ username: 'gateway', password: 'from-env', keyPrefix: 'gw:prod:', tls: { rejectUnauthorized: false }, commandTimeoutMs: 250, sweepIntervalMs: 1000 });
  });

  it('reads Sentinel and Cluster topologies', () => {
    const sentinel = redisSpec(load({ ALLOWGATE_STORE: 'redis' }, 'redis:\n  sentinel:\n    masterName: mymaster\n    nodes: [10.0.0.1:26379, "sentinel-2", "[fd00::3]:26380"]\n    password: sp\n    db: 3\n'));
    expect(sentinel.topology).toEqual({
      mode: 'sentinel', masterName: 'mymaster', db: 3, sentinelPassword: 'sp',
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-2', port: 26379 }, { host: 'fd00::3', port: 26380 }],
    });
    expect(describeRedis(sentinel)).toBe('redis-sentinel:mymaster@10.0.0.1:26379,sentinel-2:26379,fd00::3:26380/3');
    const cluster = redisSpec(load({}, 'store: redis\nredis:\n  cluster:\n    nodes: [redis-0:7000, redis-1]\n'));
    expect(cluster.topology).toEqual({ mode: 'cluster', nodes: [{ host: 'redis-0', port: 7000 }, { host: 'redis-1', port: 6379 }] });
  });

  it('reads the cache limits, snapshot path and fail mode', () => {
    const config = load({ ALLOWGATE_STORE: 'redis://127.0.0.1:6379', ALLOWGATE_ON_STORE_UNAVAILABLE: 'open', ALLOWGATE_CACHE_SNAPSHOT: 'data/lkg.json' }, 'cache:\n  maxEntries: 500\n  maxBytes: 2097152\n  maxNegativeEntries: 40\n');
    expect(config.onStoreUnavailable).toBe('open');
    expect(config.cache).toEqual({ maxEntries: 500, maxBytes: 2_097_152, maxNegativeEntries: 40, snapshotPath: 'data/lkg.json' });
    expect(load({ ALLOWGATE_STORE: 'memory' }).onStoreUnavailable).toBe('closed');
  });

  it('names what is wrong', () => {
    expect(failure({ ALLOWGATE_STORE: 'redis://' })).toContain('ALLOWGATE_STORE must be a redis:// or rediss:// URL');
    expect(failure({ ALLOWGATE_STORE: 'redis://h:6379/x' })).toContain('the path is the database number');
    expect(failure({ ALLOWGATE_STORE: 'redis' })).toContain('no server is named');
    expect(failure({ ALLOWGATE_STORE: 'redis://h' }, 'redis:\n  cluster:\n    nodes: [a:1]\n')).toContain('name Redis one way only');
    expect(failure({ ALLOWGATE_STORE: 'memory' }, 'redis:\n  url: redis://h\n')).toContain("the redis section is set but the store is 'memory'");
    expect(failure({ ALLOWGATE_STORE: 'redis' }, 'redis:\n  sentinel:\n    nodes: [a:1]\n')).toContain('redis.sentinel.masterName');
    expect(failure({ ALLOWGATE_STORE: 'redis' }, 'redis:\n  cluster:\n    nodes: []\n')).toContain('a list of host:port seed nodes');
    expect(failure({ ALLOWGATE_STORE: 'redis' }, 'redis:\n  cluster:\n    nodes: ["a:99999"]\n')).toContain('redis.cluster.nodes[0]');
    expect(failure({ ALLOWGATE_STORE: 'redis://h', ALLOWGATE_REDIS_KEY_PREFIX: 'has space' })).toContain('ALLOWGATE_REDIS_KEY_PREFIX must be up to 64 characters');
    expect(failure({ ALLOWGATE_STORE: 'redis://h' }, 'redis:\n  comandTimeoutMs: 5\n')).toContain("unknown config key 'redis.comandTimeoutMs'");
    expect(failure({ ALLOWGATE_STORE: 'memory', ALLOWGATE_ON_STORE_UNAVAILABLE: 'maybe' })).toBe("ALLOWGATE_ON_STORE_UNAVAILABLE must be one of closed, open, got 'maybe'");
  });
});

describe('Redis connections', () => {
  const base = { kind: 'redis', keyPrefix: 'p:', connectTimeoutMs: 1000, commandTimeoutMs: 300, sweepIntervalMs: 5000, password: 'pw', username: 'u' } as const;

  it('builds clients that fail fast instead of queueing, and do not connect until asked', () => {
    const client = createClient({ ...base, topology: { mode: 'standalone', url: 'redis://127.0.0.1:1/4' } }) as Redis;
    expect(client).toBeInstanceOf(Redis);
    expect(client.status).toBe('wait');
    expect(client.options).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 300, db: 4, username: 'u', password: 'pw' });
    const subscriber = createSubscriber(client) as Redis;
    // The subscriber queues its SUBSCRIBE until connected; the command connection never queues.
    expect(subscriber.options.enableOfflineQueue).toBe(true);
    expect(subscriber.options.db).toBe(4);
    client.disconnect();
    subscriber.disconnect();
  });

  it('builds Sentinel and Cluster clients from their settings', () => {
    const sentinel = createClient({ ...base, topology: { mode: 'sentinel', masterName: 'mymaster', sentinels: [{ host: '127.0.0.1', port: 26379 }], db: 2, sentinelPassword: 'sp' } }) as Redis;
    expect(sentinel.options).toMatchObject({ name: 'mymaster', sentinels: [{ host: '127.0.0.1', port: 26379 }], db: 2, sentinelPassword: 'sp', role: 'master' });
    sentinel.disconnect();
    const cluster = createClient({ ...base, topology: { mode: 'cluster', nodes: [{ host: '127.0.0.1', port: 7000 }] } }) as Cluster;
    expect(cluster).toBeInstanceOf(Cluster);
    expect(cluster.options).toMatchObject({ enableOfflineQueue: false, redisOptions: { password: 'pw', username: 'u', commandTimeout: 300 } });
    cluster.disconnect();
  });

  it('backs off quickly at first and never waits more than two seconds', () => {
    expect(reconnectDelay(0)).toBe(50);
    expect(reconnectDelay(1)).toBe(100);
    expect(reconnectDelay(5)).toBe(1600);
    expect(Array.from({ length: 50 }, (_, i) => reconnectDelay(i)).every((d) => d <= 2000)).toBe(true);
  });
});

describe('management configuration', () => {
  it('reads validation rules and hashed credentials', () => {
    const digest = 'a'.repeat(64);
    const config = load({ ALLOWGATE_STORE: 'memory', ALLOWGATE_MAX_ENTRIES: '10', ALLOWGATE_RESERVED_RANGES: 'default,100.64.0.0/10', ALLOWGATE_IPV4_ONLY: 'true' },
      `admin:\n  credentials:\n    - {name: ops, role: admin, tokenSha256: ${digest}}\n    - {name: k, role: account, account: AC1, tokenSha256: ${digest}}\n`);
    expect(config.validation.maxEntries).toBe(10);
    expect(config.validation.ipv4Only).toBe(true);
    expect(config.validation.refused.map((r) => r.text)).toContain('100.64.0.0/10');
    expect(config.validation.refused.map((r) => r.text)).toContain('127.0.0.0/8');
    expect(config.admin.credentials).toMatchObject([{ name: 'ops', role: 'admin' }, { name: 'k', role: 'account', account: 'AC1' }]);
    expect(load({ ALLOWGATE_STORE: 'memory', ALLOWGATE_RESERVED_RANGES: 'none' }).validation.refused).toEqual([]);
    expect(load({ ALLOWGATE_STORE: 'memory', ALLOWGATE_REFUSE_PRIVATE: 'true' }).validation.refused.some((r) => r.kind === 'private')).toBe(true);
  });

  it('names what is wrong with them', () => {
    expect(failure({ ALLOWGATE_STORE: 'memory', ALLOWGATE_RESERVED_RANGES: 'default,10.0.0.1/8' })).toBe("ALLOWGATE_RESERVED_RANGES item 2 must be a CIDR, 'default' (the built-in reserved ranges) or 'none', got '10.0.0.1/8'");
    expect(failure({ ALLOWGATE_STORE: 'memory', ALLOWGATE_MAX_ENTRIES: '0' })).toBe("ALLOWGATE_MAX_ENTRIES must be an integer 1-100000, got '0'");
    expect(failure({ ALLOWGATE_STORE: 'memory' }, 'admin:\n  credentials:\n    - {name: a, role: admin, tokenSha256: xyz}\n')).toMatch(/admin\.credentials\[0\]\.tokenSha256 \(.*\) must be the SHA-256 of the token/);
    expect(failure({ ALLOWGATE_STORE: 'memory' }, `admin:\n  credentials:\n    - {name: a, role: admin, account: AC1, tokenSha256: ${'b'.repeat(64)}}\n`)).toContain('only for role account');
    expect(failure({ ALLOWGATE_STORE: 'memory' }, `admin:\n  credentials:\n    - {name: a, role: account, tokenSha256: ${'b'.repeat(64)}}\n`)).toMatch(/admin\.credentials\[0\]\.account \(.*\) must be set/);
    expect(failure({ ALLOWGATE_STORE: 'memory' }, `admin:\n  credentials:\n    - {name: a, role: root, tokenSha256: ${'b'.repeat(64)}}\n`)).toContain('one of admin, account, read-only');
    const twice = `admin:\n  credentials:\n    - {name: a, role: admin, tokenSha256: ${'b'.repeat(64)}}\n    - {name: a, role: admin, tokenSha256: ${'c'.repeat(64)}}\n`;
    expect(failure({ ALLOWGATE_STORE: 'memory' }, twice)).toContain('used twice');
  });
});

describe('admin write limits', () => {
  it('default to the documented figures and take each from the config, naming a bad one', () => {
    expect(load({ ALLOWGATE_STORE: 'memory' }).admin.writes).toEqual({ perSecond: 50, burst: 500, concurrent: 16, concurrentPerCredential: 4 });
    expect(load({ ALLOWGATE_STORE: 'memory' }, 'admin:\n  writes: {perSecond: 5, concurrent: 2}\n').admin.writes).toEqual({ perSecond: 5, burst: 500, concurrent: 2, concurrentPerCredential: 4 });
    expect(failure({ ALLOWGATE_STORE: 'memory' }, 'admin:\n  writes: {perSecond: 0}\n')).toMatch(/admin\.writes\.perSecond/);
    expect(failure({ ALLOWGATE_STORE: 'memory' }, 'admin:\n  writes: {often: 1}\n')).toMatch(/often/);
  });
});

describe('forwarding and identity safety settings', () => {
  it('defaults to refusing what the upstream could read otherwise', () => {
    const config = load({});
    expect(config.headers).toEqual({ underscores: 'pass' });
    expect(config.identity).toMatchObject({ unreadableAuthorization: 'refuse', accountIdCase: 'refuse', accountIdNumeric: 'refuse', formBodies: 'refuse', jsonBodies: 'refuse', accountIndexLimit: 1_000_000 });
  });

  it('reads them from the file and the environment', () => {
    const config = load({ ALLOWGATE_HEADER_UNDERSCORES: 'drop', ALLOWGATE_ACCOUNT_ID_CASE: 'lower', ALLOWGATE_UNREADABLE_AUTHORIZATION: 'anonymous', ALLOWGATE_ACCOUNT_ID_NUMERIC: 'exact' },
      'identity:\n  formBodies: pass\n  jsonBodies: pass\n  accountIndexLimit: 5000\n  strategies:\n    - {type: bearer-jwt, params: [token]}\n');
    expect(config.headers.underscores).toBe('drop');
    expect(config.identity).toMatchObject({ unreadableAuthorization: 'anonymous', accountIdCase: 'lower', accountIdNumeric: 'exact', formBodies: 'pass', jsonBodies: 'pass', accountIndexLimit: 5000 });
    expect(config.identity.strategies).toEqual([{ type: 'bearer-jwt', claim: 'iss', params: ['token'] }]);
  });

  it('names the setting and what it accepts', () => {
    expect(failure({ ALLOWGATE_HEADER_UNDERSCORES: 'strip' })).toBe("ALLOWGATE_HEADER_UNDERSCORES must be one of pass, drop, refuse, got 'strip'");
    expect(failure({ ALLOWGATE_ACCOUNT_ID_CASE: 'insensitive' })).toBe("ALLOWGATE_ACCOUNT_ID_CASE must be one of refuse, exact, fold, lower, upper, got 'insensitive'");
    expect(failure({ ALLOWGATE_UNREADABLE_AUTHORIZATION: 'pass' })).toBe("ALLOWGATE_UNREADABLE_AUTHORIZATION must be one of refuse, anonymous, got 'pass'");
    expect(failure({}, 'identity:\n  accountIndexLimit: 10\n')).toMatch(/^config key identity\.accountIndexLimit \(.*\) must be an integer 1000-100000000, got 10$/);
    expect(failure({}, 'headers:\n  underscore: drop\n')).toBe("unknown config key 'headers.underscore': expected one of underscores");
    expect(failure({ ALLOWGATE_ACCOUNT_ID_NUMERIC: 'loose' })).toBe("ALLOWGATE_ACCOUNT_ID_NUMERIC must be one of refuse, exact, got 'loose'");
    expect(failure({}, 'identity:\n  strategies:\n    - {type: bearer-jwt, params: ["access_token[]"]}\n')).toMatch(/params.*without & = # \? ; \[ \] or spaces/);
  });
});

describe('API keys and introspection configuration', () => {
  const keys = 'identity:\n  strategies:\n    - type: header\n    - type: api-key\n      header: X-Key\n      bearer: false\n      basic: password\n      query: api_key\n      unknown: anonymous\n';

  it('reads the api-key strategy, with X-API-Key and opaque Bearer tokens by default', () => {
    const config = load({ ALLOWGATE_STORE: 'memory' }, keys);
    expect(config.identity.strategies[1]).toEqual({ type: 'api-key', header: 'x-key', bearer: false, basic: 'password', query: 'api_key', unknown: 'anonymous' });
    const defaults = load({ ALLOWGATE_STORE: 'memory' }, 'identity:\n  strategies:\n    - type: api-key\n');
    expect(defaults.identity.strategies[0]).toEqual({ type: 'api-key', header: 'x-api-key', bearer: true, basic: 'off', query: null, unknown: 'refuse' });
    expect(defaults.keys).toMatchObject({ secretSource: 'generated', maxPerAccount: 100, cache: { maxEntries: 100_000, maxNegativeEntries: 10_000 } });
    expect(defaults.identity.introspection).toBeNull();
    // The query parameters an opaque bearer token may travel in, when not the RFC 6750 ones.
    const params = load({ ALLOWGATE_STORE: 'memory' }, 'identity:\n  strategies:\n    - type: api-key\n      params: [token]\n');
    expect(params.identity.strategies[0]).toMatchObject({ type: 'api-key', params: ['token'] });
    expect(failure({ ALLOWGATE_STORE: 'memory' }, 'identity:\n  strategies:\n    - type: api-key\n      params: ["a[b"]\n')).toMatch(/a query parameter name without/);
  });

  it('takes the key secret from the environment, and refuses one too short to protect anything', () => {
    const config = load({ ALLOWGATE_STORE: 'memory', ALLOWGATE_KEY_SECRET: 'k'.repeat(40) });
    expect(config.keys).toMatchObject({ secretSource: 'configured', secret: Buffer.from('k'.repeat(40)) });
    expect(failure({ ALLOWGATE_KEY_SECRET: 'short' })).toMatch(/ALLOWGATE_KEY_SECRET must be a secret of at least 32 characters/);
    // With Redis, replicas must share one: no api-key strategy without it, and none generated.
    expect(failure({ ALLOWGATE_STORE: 'redis://127.0.0.1:6379' }, keys)).toMatch(/needs ALLOWGATE_KEY_SECRET/);
    expect(load({ ALLOWGATE_STORE: 'redis://127.0.0.1:6379' }).keys).toMatchObject({ secret: null, secretSource: 'none' });
  });

  it('reads identity.introspection and refuses settings that cannot work', () => {
    const introspection = 'identity:\n  strategies:\n    - type: api-key\n  introspection:\n    url: https://idp.example/oauth2/introspect\n    clientId: gw\n    accountField: ext.account\n';
    const config = load({ ALLOWGATE_STORE: 'memory', ALLOWGATE_INTROSPECTION_CLIENT_SECRET: 'from-env' }, introspection);
    expect(config.identity.introspection).toMatchObject({ style: 'rfc7662', clientId: 'gw', clientSecret: 'from-env', accountField: 'ext.account', timeoutMs: 2000, cacheSeconds: 60, negativeCacheSeconds: 10, onUnavailable: 'closed' });
    expect(failure({ ALLOWGATE_STORE: 'memory' }, introspection)).toMatch(/identity\.introspection\.clientSecret .*must be set since clientId is/);
    expect(failure({ ALLOWGATE_STORE: 'memory', ALLOWGATE_INTROSPECTION_URL: 'https://idp.example/i' })).toMatch(/no api-key strategy is listed/);
    expect(failure({ ALLOWGATE_STORE: 'memory', ALLOWGATE_INTROSPECTION_URL: 'ftp://idp' }, 'identity:\n  strategies:\n    - type: api-key\n')).toMatch(/ALLOWGATE_INTROSPECTION_URL must be an http/);
    expect(failure({ ALLOWGATE_STORE: 'memory' }, 'identity:\n  strategies:\n    - type: basic\n    - type: api-key\n      basic: username\n')).toMatch(/list one of them/);
  });
});
