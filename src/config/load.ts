import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { ClientIpConfig, TrustSetting } from '../client-ip/types.ts';
import { formatCidr, hostCidr, parseCidr, type Cidr } from '../ip/cidr.ts';
import { parseIp } from '../ip/address.ts';
import { resolveAdminToken } from './admin-token.ts';
import { DEFAULT_AUDIT_ACCOUNT_CAP } from '../audit/audit-log.ts';
import { readStrategies } from './identity.ts';
import { readIntrospection, readKeys } from './keys.ts';
import { readRedisSpec } from './redis.ts';
import { readCredentials, readValidation } from './management.ts';
import { isValidAccountId } from '../identity/account-id.ts';
import { dirname, join } from 'node:path';
import { DEFAULT_CACHE_LIMITS } from '../policy/cache.ts';
import { DEFAULT_ACCOUNT_INDEX_LIMIT } from '../policy/account-names.ts';
import { DEFAULT_BODY_LIMITS } from '../admin/body.ts';
import { DEFAULT_WRITE_LIMITS } from '../admin/write-gate.ts';
import { ConfigError, Reader } from './reader.ts';
import { DEFAULT_DIGEST } from '../observability/refusal-digest.ts';
import type { Config, HostPort, StoreSpec } from './types.ts';

export const DEFAULT_CONFIG_PATH = 'config/allowgate.yaml';
export const DEFAULT_STORE = 'file:data/allowgate.json';

/** Environment variables and the config keys they override. */
const ENV_KEYS: Readonly<Record<string, string>> = {
  ALLOWGATE_LISTEN: 'listen',
  ALLOWGATE_AUTHZ_LISTEN: 'authz.listen',
  ALLOWGATE_AUTHZ_GRPC_LISTEN: 'authz.grpcListen',
  ALLOWGATE_ADMIN_LISTEN: 'admin.listen',
  ALLOWGATE_ADMIN_TOKEN: 'admin.token',
  ALLOWGATE_ADMIN_ALLOWED_HOSTS: 'admin.allowedHosts',
  ALLOWGATE_UPSTREAM_URL: 'upstream.url',
  ALLOWGATE_TRUSTED_PROXIES: 'clientIp.trustedProxies',
  ALLOWGATE_TRUSTED_HOPS: 'clientIp.trustedHops',
  ALLOWGATE_ACKNOWLEDGE_TRUST_ALL: 'clientIp.acknowledgeTrustAll',
  ALLOWGATE_FORWARDED_HEADER: 'clientIp.header',
  ALLOWGATE_HEADER_UNDERSCORES: 'headers.underscores',
  ALLOWGATE_STORE: 'store',
  ALLOWGATE_REDIS_PASSWORD: 'redis.password',
  ALLOWGATE_REDIS_KEY_PREFIX: 'redis.keyPrefix',
  ALLOWGATE_REDIS_SWEEP_INTERVAL_MS: 'redis.sweepIntervalMs',
  ALLOWGATE_REDIS_NOTICE_LIST_MAX_BYTES: 'redis.noticeListMaxBytes',
  ALLOWGATE_ON_STORE_UNAVAILABLE: 'onStoreUnavailable',
  ALLOWGATE_CACHE_SNAPSHOT: 'cache.snapshotPath',
  ALLOWGATE_MAX_ENTRIES: 'validation.maxEntries',
  ALLOWGATE_RESERVED_RANGES: 'validation.reservedRanges',
  ALLOWGATE_REFUSE_PRIVATE: 'validation.refusePrivate',
  ALLOWGATE_IPV4_ONLY: 'validation.ipv4Only',
  ALLOWGATE_AUDIT_PATH: 'audit.path',
  ALLOWGATE_ANONYMOUS: 'identity.anonymous',
  ALLOWGATE_UNREADABLE_AUTHORIZATION: 'identity.unreadableAuthorization',
  ALLOWGATE_ACCOUNT_ID_CASE: 'identity.accountIdCase',
  ALLOWGATE_ACCOUNT_ID_NUMERIC: 'identity.accountIdNumeric',
  ALLOWGATE_INTROSPECTION_URL: 'identity.introspection.url',
  ALLOWGATE_INTROSPECTION_CLIENT_SECRET: 'identity.introspection.clientSecret',
  ALLOWGATE_KEY_SECRET: 'keys.secret',
  ALLOWGATE_DEFAULT_POLICY: 'policy.default',
  ALLOWGATE_MODE: 'policy.mode',
  ALLOWGATE_LOG_LEVEL: 'log.level',
  ALLOWGATE_LOG_ALLOW_SAMPLE: 'log.allowSampleRate',
  ALLOWGATE_METRICS_LISTEN: 'metrics.listen',
  ALLOWGATE_METRICS_TOKEN: 'metrics.token',
  ALLOWGATE_METRICS_ACCOUNTS: 'metrics.accounts',
  ALLOWGATE_MAX_CONNECTIONS: 'limits.maxConnections',
  ALLOWGATE_BODY_IDLE_TIMEOUT_MS: 'limits.bodyIdleTimeoutMs',
  ALLOWGATE_UPSTREAM_CONNECTIONS: 'upstream.connections',
  ALLOWGATE_UPSTREAM_QUEUE_TIMEOUT_MS: 'upstream.queueTimeoutMs',
  ALLOWGATE_UPSTREAM_CLIENT_SHARE: 'upstream.clientShare',
  ALLOWGATE_UPSTREAM_ACCOUNT_SHARE: 'upstream.accountShare',
  ALLOWGATE_WORKERS: 'workers',
  ALLOWGATE_READINESS_UPSTREAM: 'readiness.upstream',
};

export interface LoadOptions {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Reads the YAML file, applies environment overrides and validates everything, so the gateway
 * either starts fully configured or not at all (a ConfigError names the key, value and fix).
 */
export function loadConfig({ argv, env }: LoadOptions): Config {
  const explicitPath = configPathFromArgs(argv) ?? env['ALLOWGATE_CONFIG'];
  const path = explicitPath ?? DEFAULT_CONFIG_PATH;
  let raw: Record<string, unknown> = {};
  if (existsSync(path)) {
    raw = readYaml(path);
  } else if (explicitPath !== undefined) {
    throw new ConfigError(`config file ${path} does not exist (from ${argv.includes('--config') ? '--config' : 'ALLOWGATE_CONFIG'})`);
  }

  refuseUnknownVariables(env);
  const envOrigins = new Map<string, string>();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, key, value);
    envOrigins.set(key, name);
  }
  const origin = (key: string): string => {
    const item = /^(.*)\[(\d+)\]$/.exec(key);
    const fromEnv = envOrigins.get(key) ?? (item ? envOrigins.get(item[1]!) : undefined);
    if (fromEnv === undefined) return `config key ${key} (${path})`;
    // A list from the environment is comma-separated: name the item by its position.
    return item && !envOrigins.has(key) ? `${fromEnv} item ${Number(item[2]) + 1}` : fromEnv;
  };
  return readConfig(new Reader(raw, '', origin));
}

/** Variables read elsewhere: the config file's path, the image's revision, the admin CLI's address. */
const OTHER_VARIABLES = ['ALLOWGATE_CONFIG', 'ALLOWGATE_REVISION', 'ALLOWGATE_ADMIN_URL'];

/**
 * A misspelled variable would otherwise be ignored without a word, and the setting it meant left
 * at its default (an unset trusted-proxy list, a store in memory): refused like an unknown key.
 */
function refuseUnknownVariables(env: Readonly<Record<string, string | undefined>>): void {
  const known = [...Object.keys(ENV_KEYS), ...OTHER_VARIABLES];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('ALLOWGATE_') || known.includes(name)) continue;
    const nearest = known.reduce((best, candidate) => (editDistance(name, candidate) < editDistance(name, best) ? candidate : best));
    throw new ConfigError(`unknown environment variable ${name}: did you mean ${nearest}? (config/allowgate.yaml names the variable of every setting)`);
  }
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function configPathFromArgs(argv: readonly string[]): string | undefined {
  const i = argv.indexOf('--config');
  if (i < 0) return undefined;
  const value = argv[i + 1];
  if (value === undefined || value.startsWith('--')) throw new ConfigError('--config needs a file path, e.g. --config config/allowgate.yaml');
  return value;
}

function readYaml(path: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(error as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path} must hold a mapping of settings`);
  return doc as Record<string, unknown>;
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const child = node[part];
    if (typeof child !== 'object' || child === null || Array.isArray(child)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function readConfig(root: Reader): Config {
  const top = root.object([
    'listen', 'authz', 'upstream', 'clientIp', 'headers', 'identity', 'keys', 'policy', 'store', 'redis', 'onStoreUnavailable', 'cache', 'admin', 'validation', 'audit',
    'expirySweepMs', 'metrics', 'limits', 'log', 'shutdownTimeoutMs', 'workers', 'readiness',
  ]);
  const metrics = top.get('metrics').object(['listen', 'token', 'accounts']);
  const metricsToken = metrics.get('token').optionalString();
  const store = readStore(top.get('store'), top.get('redis'));
  const workersReader = top.get('workers');
  const workers = workersReader.integer(1, 64, 1);
  // Workers share lists only through Redis; a memory or file store would be one copy per process.
  if (workers > 1 && store.kind !== 'redis') {
    workersReader.fail(`1 with the ${store.kind} store (each worker would enforce and change its own copy of the lists); use the redis store (ALLOWGATE_STORE=redis://...) to run ${workers} workers`);
  }
  const audit = top.get('audit').object(['cap', 'accountCap', 'path']);
  const auditPath = audit.get('path').optionalString() ?? (store.kind === 'file' ? join(dirname(store.path), 'audit.jsonl') : undefined);
  const cache = top.get('cache').object(['maxEntries', 'maxBytes', 'maxNegativeEntries', 'snapshotPath']);
  const snapshotPath = cache.get('snapshotPath').optionalString();
  const upstream = top.get('upstream').object(['url', 'connections', 'queueTimeoutMs', 'clientShare', 'accountShare', 'connectTimeoutMs', 'headersTimeoutMs', 'bodyTimeoutMs', 'preserveHost']);
  const identity = top.get('identity').object(['strategies', 'anonymous', 'exemptPaths', 'unreadableAuthorization', 'accountIdCase', 'accountIdNumeric', 'accountIndexLimit', 'formBodies', 'jsonBodies', 'introspection']);
  const strategies = readStrategies(identity.get('strategies'));
  const apiKeysListed = strategies.some((s) => s.type === 'api-key');
  const introspection = readIntrospection(identity.get('introspection'));
  if (introspection !== null && !apiKeysListed) {
    throw new ConfigError('identity.introspection is set but no api-key strategy is listed: introspection looks up the keys that strategy reads; add {type: api-key} to identity.strategies');
  }
  const policy = top.get('policy').object(['mode', 'default']);
  const admin = top.get('admin').object(['listen', 'token', 'tokenFile', 'credentials', 'maxBodyBytes', 'maxImportBytes', 'writes', 'allowedHosts']);
  const writes = admin.get('writes').object(['perSecond', 'burst', 'concurrent', 'concurrentPerCredential']);
  const limits = top.get('limits').object(['maxHeaderBytes', 'headersTimeoutMs', 'requestTimeoutMs', 'bodyIdleTimeoutMs', 'keepAliveTimeoutMs', 'maxConnections']);
  const maxConnections = limits.get('maxConnections').integer(1, 1_000_000, 10_000);
  const log = top.get('log').object(['level', 'allowSampleRate', 'refusalIntervalMs', 'refusalMaxKeys']);
  const listen = readListen(top.get('listen'), '0.0.0.0:8080');
  const { acknowledgeTrustAll, ...clientIp } = readClientIp(top.get('clientIp'));
  const authz = readAuthz(top.get('authz'), clientIp);
  const trustAll = trustsEveryone(clientIp.trust, [listen, authz.listen, authz.grpcListen]);
  if (trustAll !== null && !acknowledgeTrustAll) {
    throw new ConfigError(`${trustAll}: any client could then claim any address in X-Forwarded-For and pass every list. List your proxies' addresses instead (ALLOWGATE_TRUSTED_PROXIES), or, if every connection really comes through your proxies, say so with ALLOWGATE_ACKNOWLEDGE_TRUST_ALL=true (clientIp.acknowledgeTrustAll)`);
  }
  if (listen === null && authz.listen === null && authz.grpcListen === null) {
    throw new ConfigError('ALLOWGATE_LISTEN (listen) is off and no authz listener is set: there is nothing to serve; set ALLOWGATE_AUTHZ_LISTEN (authz.listen) or ALLOWGATE_AUTHZ_GRPC_LISTEN (authz.grpcListen), or a proxy listen address');
  }
  if (listen === null && workers > 1) workersReader.fail('1 when the proxy listener is off (ALLOWGATE_LISTEN=off): workers serve the proxy port, and the authz listeners run in the main process');
  return {
    listen,
    authz,
    trustAll,
    upstream: {
      url: readUpstreamUrl(upstream.get('url')),
      // Each caller connection has at most one request in flight: a pool as large as the
      // connection limit is never the tighter bound (connections are opened only as needed).
      connections: upstream.get('connections').integer(1, 1_000_000, maxConnections),
      queueTimeoutMs: upstream.get('queueTimeoutMs').integer(1, 600_000, 5_000),
      clientShare: readShare(upstream.get('clientShare'), 0.25),
      accountShare: readShare(upstream.get('accountShare'), 0.5),
      connectTimeoutMs: upstream.get('connectTimeoutMs').integer(1, 600_000, 5_000),
      headersTimeoutMs: upstream.get('headersTimeoutMs').integer(1, 3_600_000, 30_000),
      bodyTimeoutMs: upstream.get('bodyTimeoutMs').integer(1, 3_600_000, 60_000),
      preserveHost: upstream.get('preserveHost').boolean(true),
    },
    clientIp,
    headers: {
      underscores: top.get('headers').object(['underscores']).get('underscores').oneOf(['pass', 'drop', 'refuse'] as const, 'pass'),
    },
    identity: {
      strategies,
      anonymous: identity.get('anonymous').oneOf(['pass', 'deny', 'global'] as const, 'pass'),
      exemptPaths: identity.get('exemptPaths').list().map(readExemptPath),
      unreadableAuthorization: identity.get('unreadableAuthorization').oneOf(['refuse', 'anonymous'] as const, 'refuse'),
      accountIdCase: identity.get('accountIdCase').oneOf(['refuse', 'exact', 'fold', 'lower', 'upper'] as const, 'refuse'),
      accountIndexLimit: identity.get('accountIndexLimit').integer(1_000, 100_000_000, DEFAULT_ACCOUNT_INDEX_LIMIT),
      accountIdNumeric: identity.get('accountIdNumeric').oneOf(['refuse', 'exact'] as const, 'refuse'),
      formBodies: identity.get('formBodies').oneOf(['refuse', 'pass'] as const, 'refuse'),
      jsonBodies: identity.get('jsonBodies').oneOf(['refuse', 'pass'] as const, 'refuse'),
      introspection,
    },
    keys: readKeys(top.get('keys'), store, apiKeysListed),
    policy: {
      mode: policy.get('mode').oneOf(['enforce', 'report-only', 'off'] as const, 'enforce'),
      default: policy.get('default').oneOf(['open', 'closed'] as const, 'open'),
    },
    store,
    onStoreUnavailable: top.get('onStoreUnavailable').oneOf(['closed', 'open'] as const, 'closed'),
    cache: {
      maxEntries: cache.get('maxEntries').integer(1, 10_000_000, DEFAULT_CACHE_LIMITS.maxEntries),
      maxBytes: cache.get('maxBytes').integer(1_048_576, Number.MAX_SAFE_INTEGER, DEFAULT_CACHE_LIMITS.maxBytes),
      maxNegativeEntries: cache.get('maxNegativeEntries').integer(1, 10_000_000, DEFAULT_CACHE_LIMITS.maxNegativeEntries),
      ...(snapshotPath === undefined ? {} : { snapshotPath }),
    },
    admin: {
      listen: readHostPort(admin.get('listen'), '127.0.0.1:9090'),
      ...resolveAdminToken(admin.get('token'), admin.get('tokenFile'), store),
      credentials: readCredentials(admin.get('credentials')),
      maxBodyBytes: admin.get('maxBodyBytes').integer(1024, 16_777_216, DEFAULT_BODY_LIMITS.json),
      maxImportBytes: admin.get('maxImportBytes').integer(1024, 268_435_456, DEFAULT_BODY_LIMITS.bulk),
      allowedHosts: admin.get('allowedHosts').list().map((item) => {
        const name = item.string();
        if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(name)) item.fail('a host name such as admin.example.com, or *.example.com for every name under it (no port, no address: the machine\'s own addresses and loopback are always accepted)');
        return name;
      }),
      writes: {
        perSecond: writes.get('perSecond').integer(1, 100_000, DEFAULT_WRITE_LIMITS.perSecond),
        burst: writes.get('burst').integer(1, 1_000_000, DEFAULT_WRITE_LIMITS.burst),
        concurrent: writes.get('concurrent').integer(1, 1024, DEFAULT_WRITE_LIMITS.concurrent),
        concurrentPerCredential: writes.get('concurrentPerCredential').integer(1, 1024, DEFAULT_WRITE_LIMITS.concurrentPerCredential),
      },
    },
    validation: readValidation(top.get('validation')),
    audit: {
      cap: audit.get('cap').integer(100, 10_000_000, 100_000),
      accountCap: audit.get('accountCap').integer(10, 1_000_000, DEFAULT_AUDIT_ACCOUNT_CAP),
      ...(auditPath === undefined || store.kind === 'redis' ? {} : { path: auditPath }),
    },
    expirySweepMs: top.get('expirySweepMs').integer(1_000, 86_400_000, 60_000),
    limits: {
      maxHeaderBytes: limits.get('maxHeaderBytes').integer(1024, 1_048_576, 16_384),
      headersTimeoutMs: limits.get('headersTimeoutMs').integer(1_000, 600_000, 10_000),
      requestTimeoutMs: limits.get('requestTimeoutMs').integer(0, 3_600_000, 300_000),
      bodyIdleTimeoutMs: limits.get('bodyIdleTimeoutMs').integer(0, 600_000, 10_000),
      keepAliveTimeoutMs: limits.get('keepAliveTimeoutMs').integer(1_000, 600_000, 65_000),
      maxConnections,
    },
    log: {
      level: log.get('level').oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
      allowSampleRate: readRate(log.get('allowSampleRate'), 0.01),
      refusalDigest: {
        intervalMs: log.get('refusalIntervalMs').integer(100, 3_600_000, DEFAULT_DIGEST.intervalMs),
        maxKeys: log.get('refusalMaxKeys').integer(1, 1_000_000, DEFAULT_DIGEST.maxKeys),
      },
    },
    metrics: {
      ...(metrics.has('listen') ? { listen: readHostPort(metrics.get('listen'), '127.0.0.1:9091') } : {}),
      ...(metricsToken === undefined ? {} : { token: metricsToken }),
      accounts: metrics.get('accounts').list().map((item) => {
        const account = item.string();
        if (!isValidAccountId(account)) item.fail('an account id');
        return account;
      }),
    },
    shutdownTimeoutMs: top.get('shutdownTimeoutMs').integer(0, 600_000, 10_000),
    workers,
    readiness: { upstream: top.get('readiness').object(['upstream']).get('upstream').boolean(false) },
  };
}

export function readHostPort(reader: Reader, fallback: string): HostPort {
  const text = reader.present ? reader.string() : fallback;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!match || host === undefined || port > 65535 || (match[1] !== undefined && parseIp(match[1]) === null)) {
    reader.fail('host:port, e.g. 0.0.0.0:8080 or [::1]:8080 (port 0 picks a free port)');
  }
  return { host, port };
}

/** A listen address, or `off` for none. */
function readListen(reader: Reader, fallback: string | null): HostPort | null {
  if (reader.value === 'off' || (!reader.present && fallback === null)) return null;
  return readHostPort(reader, fallback ?? '');
}

/** Names the upstream already reads for something else, which the authz answer must not set. */
const RESERVED_UPSTREAM_HEADERS = new Set([
  'host', 'authorization', 'cookie', 'connection', 'content-length', 'transfer-encoding', 'te', 'upgrade',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'x-real-ip', 'x-request-id',
]);

function readAuthz(reader: Reader, clientIp: ClientIpConfig): Config['authz'] {
  const section = reader.object(['listen', 'grpcListen', 'accountHeader', 'clientIpHeader']);
  const listen = readListen(section.get('listen'), null);
  const grpcListen = readListen(section.get('grpcListen'), null);
  const header = (key: string, fallback: string): string | null => {
    const item = section.get(key);
    const name = item.string(fallback);
    if (name === 'off') return null;
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) item.fail('an HTTP header name such as X-Allowgate-Account, or off');
    if (RESERVED_UPSTREAM_HEADERS.has(name.toLowerCase())) item.fail(`a header of allowgate's own, such as ${fallback}: ${name} already means something to proxies and upstreams`);
    return name;
  };
  const account = header('accountHeader', 'X-Allowgate-Account');
  const clientIpHeader = header('clientIpHeader', 'X-Allowgate-Client-IP');
  if (account !== null && account.toLowerCase() === clientIpHeader?.toLowerCase()) {
    throw new ConfigError(`authz.accountHeader and authz.clientIpHeader must differ, both are ${account}`);
  }
  // The caller of a check is a proxy reporting someone else's request: unless it is trusted, the
  // only address the gateway could decide on would be the proxy's own.
  const trusts = clientIp.trust.mode === 'list' ? clientIp.trust.proxies.length > 0 : clientIp.trust.mode === 'hops' && clientIp.trust.hops > 0;
  if ((listen !== null || grpcListen !== null) && !trusts) {
    const which = listen !== null ? 'ALLOWGATE_AUTHZ_LISTEN (authz.listen)' : 'ALLOWGATE_AUTHZ_GRPC_LISTEN (authz.grpcListen)';
    throw new ConfigError(`${which} needs the calling proxy to be trusted: set ALLOWGATE_TRUSTED_PROXIES (clientIp.trustedProxies) to the addresses of the proxies that ask for checks (see docs/external-authorization.md)`);
  }
  return { listen, grpcListen, upstreamHeaders: { account, clientIp: clientIpHeader } };
}

function readUpstreamUrl(reader: Reader): URL {
  const text = reader.string('http://127.0.0.1:3000');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return reader.fail('an absolute http:// or https:// URL, e.g. http://127.0.0.1:3000');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') reader.fail('an http:// or https:// URL');
  if (url.username || url.password) reader.fail('a URL without credentials');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    reader.fail('an origin only (scheme, host, port): request paths are forwarded as they are');
  }
  return url;
}

/** A share of the upstream connections, above 0 and at most 1 (1: no cap of its own). */
function readShare(reader: Reader, fallback: number): number {
  if (!reader.present) return fallback;
  const value = typeof reader.value === 'string' && reader.value.trim() !== '' ? Number(reader.value) : reader.value;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 1) reader.fail('a number above 0 and at most 1 (0.25: a quarter of upstream.connections)');
  return value as number;
}

/** A share from 0 to 1, e.g. 0.01 for one in a hundred. */
function readRate(reader: Reader, fallback: number): number {
  if (!reader.present) return fallback;
  const value = typeof reader.value === 'string' && reader.value.trim() !== '' ? Number(reader.value) : reader.value;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) reader.fail('a number from 0 to 1 (0.01 logs one in a hundred)');
  return value as number;
}

function readStore(reader: Reader, redisSection: Reader): StoreSpec {
  const text = reader.string(DEFAULT_STORE);
  if (text === 'redis') return readRedisSpec(null, redisSection);
  if (text.startsWith('redis://') || text.startsWith('rediss://')) return readRedisSpec(reader, redisSection);
  if (redisSection.present) {
    throw new ConfigError(`the redis section is set but the store is '${text}': set store to redis (or a redis:// URL) to use it, or remove the section`);
  }
  if (text === 'memory') return { kind: 'memory' };
  if (text.startsWith('file:') && text.length > 5) return { kind: 'file', path: text.slice(5) };
  return reader.fail(`'memory', 'file:PATH' (e.g. ${DEFAULT_STORE}), a redis:// or rediss:// URL, or 'redis' with a redis section`);
}

function readClientIp(reader: Reader): ClientIpConfig & { readonly acknowledgeTrustAll: boolean } {
  const section = reader.object(['trustedProxies', 'trustedHops', 'header', 'maxEntries', 'acknowledgeTrustAll']);
  const proxies = section.get('trustedProxies');
  const hops = section.get('trustedHops');
  let trust: TrustSetting = { mode: 'none' };
  if (section.has('trustedProxies') && section.has('trustedHops')) {
    throw new ConfigError('set either clientIp.trustedProxies (ALLOWGATE_TRUSTED_PROXIES) or clientIp.trustedHops (ALLOWGATE_TRUSTED_HOPS), not both');
  }
  if (section.has('trustedProxies')) {
    trust = { mode: 'list', proxies: proxies.list().map(readTrustedCidr) };
  } else if (section.has('trustedHops')) {
    trust = { mode: 'hops', hops: hops.integer(0, 16, 0) };
  }
  return {
    trust,
    source: section.get('header').oneOf(['x-forwarded-for', 'forwarded', 'x-real-ip'] as const, 'x-forwarded-for'),
    maxEntries: section.get('maxEntries').integer(1, 256, 32),
    acknowledgeTrustAll: section.get('acknowledgeTrustAll').boolean(false),
  };
}

/**
 * Why this trust setting believes every caller's forwarding header, or null: a trusted range
 * that covers every address, or a hop count (it trusts whatever connects) on a listener that is
 * not on loopback only.
 */
function trustsEveryone(trust: TrustSetting, listens: readonly (HostPort | null)[]): string | null {
  if (trust.mode === 'list') {
    const all = trust.proxies.find((cidr) => cidr.prefix === 0);
    return all === undefined ? null : `ALLOWGATE_TRUSTED_PROXIES (clientIp.trustedProxies) holds ${formatCidr(all)}, which trusts every address`;
  }
  if (trust.mode === 'hops' && trust.hops > 0) {
    const exposed = listens.find((at) => at !== null && !isLoopbackHost(at.host));
    if (exposed !== undefined && exposed !== null) return `ALLOWGATE_TRUSTED_HOPS (clientIp.trustedHops) is ${trust.hops} while ${exposed.host}:${exposed.port} accepts connections from anywhere, so whatever connects is believed`;
  }
  return null;
}

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const ip = parseIp(host);
  return ip !== null && (ip.family === 4 ? ip.words[0]! >>> 24 === 127 : ip.words[0] === 0 && ip.words[1] === 0 && ip.words[2] === 0 && ip.words[3] === 1);
}

function readTrustedCidr(reader: Reader): Cidr {
  const text = reader.string().trim();
  const ip = parseIp(text);
  if (ip) return hostCidr(ip);
  const parsed = parseCidr(text);
  if (!parsed.ok) return reader.fail(`an IP address or CIDR (${parsed.error})`);
  return parsed.value;
}

function readExemptPath(reader: Reader): string {
  const text = reader.string();
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/.test(text) || text.includes('//') || /(^|\/)\.\.?(\/|$)/.test(text)) {
    reader.fail('a normalized absolute path such as /health (no //, . or .. segments, no percent-encoding)');
  }
  return text.length > 1 && text.endsWith('/') ? text.slice(0, -1) : text;
}

export { ConfigError };
