import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { startManagement } from './admin/management.ts';
import { createProxy, type Proxy } from './app/proxy.ts';
import { drain, Lifecycle, listen } from './app/lifecycle.ts';
import { startAuthzListeners } from './authz/listeners.ts';
import { BUILD } from './build.ts';
import { planReload, type ReloadPlan } from './config/reload.ts';
import type { Config } from './config/types.ts';
import { CallerRecorder } from './gateway/caller-recorder.ts';
import { explain } from './gateway/explain.ts';
import { gatekeeperFromConfig, gatekeeperParts } from './gateway/from-config.ts';
import { secretQueryParams } from './identity/resolve.ts';
import { KeyDigester } from './list/key-digest.ts';
import { Introspector } from './keys/introspection.ts';
import { KeyResolver } from './keys/resolver.ts';
import { addSecretParams } from './observability/redact-url.ts';
import type { AclStore } from './store/store.ts';
import { accessLog } from './observability/access-log.ts';
import { LogLimiter } from './observability/log-limiter.ts';
import type { Logger } from './observability/logger.ts';
import { createMetricsServer } from './observability/metrics-endpoint.ts';
import { Metrics } from './observability/metrics.ts';
import { combineObservers, type RequestObserver, type Surface } from './observability/observer.ts';
import { RefusalDigest } from './observability/refusal-digest.ts';
import { followAccountNames } from './policy/account-names.ts';
import { CacheKeeper } from './policy/cache-keeper.ts';
import { PolicyCache } from './policy/cache.ts';
import { PolicyResolver } from './policy/resolve.ts';
import { UpstreamProbe } from './proxy/upstream-probe.ts';
import { instrumentStore } from './store/instrumented-store.ts';
import { createStore, describeStore } from './store/open-store.ts';
import { answerMetricsRequests } from './workers/metrics-channel.ts';
import type { WorkerPool } from './workers/pool.ts';

export interface Allowgate {
  /** Null when the proxy listener is off (ALLOWGATE_LISTEN=off). */
  readonly proxyAddress: AddressInfo | null;
  /** The external-authorization listeners (HTTP protocols, gRPC); null where off, and in a worker. */
  readonly authzAddress: AddressInfo | null;
  readonly authzGrpcPort: number | null;
  /** Null in a worker: with `workers` above 1 the primary serves the admin listener. */
  readonly adminAddress: AddressInfo | null;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), flushes the store. */
  close(): Promise<void>;
  /**
   * Takes over what can change in place from a reloaded configuration (already validated): trust
   * and identity, log level, admin credentials, limits. Says what it applied and what needs a
   * restart (those keep their running values).
   */
  reload(next: Config): ReloadPlan;
}

/**
 * What this process serves: everything (`single`); with `workers` above 1, the admin listener
 * while its workers serve the proxy port (`primary`), or the proxy port alone (`worker`).
 */
export type Role =
  | { readonly kind: 'single' }
  | { readonly kind: 'primary'; readonly pool: WorkerPool }
  | { readonly kind: 'worker' };

/** Builds the request path from the configuration and starts the listeners of this process's role. */
export async function startAllowgate(config: Config, logger: Logger, role: Role = { kind: 'single' }): Promise<Allowgate> {
  // Metrics read the cache and keeper lazily, at scrape time: both exist before the first scrape.
  let cache: PolicyCache | null = null;
  let keeper: CacheKeeper | null = null;
  let proxy: Proxy | null = null;
  const raw = await createStore(config.store, { onCompile: (seconds) => metrics.compiled(seconds), auditAccountCap: config.audit.accountCap, changeLogCap: config.audit.cap });
  const metrics = new Metrics({
    cache: () => cache!.stats(),
    storeState: () => raw.state(),
    storeKind: raw.kind,
    lastSync: () => keeper?.lastSync() ?? null,
    upstream: () => ({ running: proxy?.forwarder.admission.running ?? 0, queued: proxy?.forwarder.admission.queued ?? 0 }),
    connections: () => ({ open: proxy?.gateway.openConnections() ?? 0, limit: config.limits.maxConnections }),
    build: BUILD,
  }, { accounts: config.metrics.accounts });
  const writeFailureLines = new LogLimiter();
  const store = instrumentStore(raw, (operation, seconds, failure) => {
    metrics.storeOperation(operation, seconds, failure !== null);
    if (failure === null || operation !== 'update') return;
    metrics.storeWriteFailed(failure.reason);
    // A change that could not be saved is an operator's problem (disk full, store down) as much as
    // the caller's: said at error level, one line per cause now and then (an outage fails every
    // write alike). Failed reads are not: they follow an outage per request.
    const line = writeFailureLines.take(failure.reason);
    if (line === null) return;
    const fields = { store: raw.kind, account: failure.account, reason: failure.reason, cause: failure.cause ?? failure.message, ...(failure.currentVersion === undefined ? {} : { current_version: failure.currentVersion }), ...line };
    if (failure.reason === 'outcome_unknown') logger.error(fields, 'store write outcome unknown: the change may or may not have been applied');
    else logger.error(fields, 'store write failed: the change was not saved');
  });
  await store.open();
  // Propagation is measured to enforcement: when the changed list is in force here, not when
  // the notice arrived (a notice that could not be acted on would otherwise look prompt).
  cache = new PolicyCache(store, Date.now, config.cache, { compiled: (seconds) => metrics.compiled(seconds), enforced: (seconds) => metrics.propagated(seconds) });
  keeper = new CacheKeeper(store, cache, {
    sweepIntervalMs: config.store.kind === 'redis' ? config.store.sweepIntervalMs : 60_000,
    ...(config.cache.snapshotPath === undefined ? {} : { snapshotPath: config.cache.snapshotPath }),
    logger,
    onStoreUnavailable: config.onStoreUnavailable,
  });
  try {
    keeper.start();
  } catch (error) {
    await store.close();
    throw error;
  }
  const callers = new CallerRecorder(store, {
    flushIntervalMs: 1_000,
    maxPending: 100_000,
    onFlushError: (error) => logger.warn({ err: error }, 'recent callers not saved'),
  });
  callers.start();
  const policy = new PolicyResolver(cache, config.policy);
  const names = await followAccountNames({
    case: config.identity.accountIdCase,
    numeric: config.identity.accountIdNumeric,
    limit: config.identity.accountIndexLimit,
    pathStrategy: config.identity.strategies.some((s) => s.type === 'path'),
  }, store, cache, logger);
  const keys = keyParts(config, store, cache, metrics);
  addSecretParams(secretQueryParams(config.identity.strategies));
  const gatekeeper = gatekeeperFromConfig(config, policy, names.gateway, keys.resolver);
  const refusals = new RefusalDigest(logger, config.log.refusalDigest);
  /** Metrics, recent callers and the access log, for the decisions of one surface. */
  const observe = (surface: Surface): RequestObserver => {
    const counted = metrics.surface(surface);
    return combineObservers([
      {
        decided: (_req, checked, overhead) => {
          counted.decided(checked.verdict, checked.reason, checked.account, overhead);
          // Recent callers are the ones the account actually serves: let through, with an account.
          // Listed: an entry of the account's own (or parent's) list allowed it.
          if (checked.refusal === null && checked.account !== null && checked.client !== null) {
            callers.note(checked.account, checked.client, checked.reason === 'ip_allowed');
            if (checked.keyId !== null) callers.noteKey(checked.account, checked.keyId, checked.client);
          }
        },
        finished: (_req, checked, _status, duration) => counted.finished(checked.verdict, duration),
      },
      accessLog(logger, config.log.allowSampleRate, refusals, surface),
    ]);
  };
  // No proxy listener: no upstream either (a decision service only).
  proxy = config.listen === null ? null : createProxy(config, config.listen, { gatekeeper, observer: observe('proxy'), metrics, refusals, logger });

  let ready = false;
  let running = config;
  let credentialsOf: ((admin: Config['admin']) => void) | null = null;
  const reload = (next: Config): ReloadPlan => {
    const plan = planReload(running, next);
    const applied = new Set(plan.applied.map((path) => path.split('.')[0]));
    // Only the settings that change in place are taken over; the rest keep their running values.
    const merged: Config = {
      ...running,
      clientIp: next.clientIp,
      trustAll: next.trustAll,
      identity: next.identity,
      log: { ...running.log, level: next.log.level },
      admin: { ...running.admin, token: next.admin.token, tokenSource: next.admin.tokenSource, credentials: next.admin.credentials },
      limits: { ...next.limits, maxHeaderBytes: running.limits.maxHeaderBytes },
    };
    addSecretParams(secretQueryParams(merged.identity.strategies));
    if (applied.has('clientIp') || applied.has('identity') || applied.has('trustAll')) gatekeeper.reconfigure(gatekeeperParts(merged, policy, names.gateway, keys.resolver));
    if (applied.has('log')) logger.level = merged.log.level;
    if (applied.has('admin')) credentialsOf?.(merged.admin);
    if (applied.has('limits') && proxy !== null) {
      proxy.gateway.setLimits(merged.limits);
      proxy.forwarder.bodyIdleTimeoutMs = merged.limits.bodyIdleTimeoutMs;
    }
    if (merged.trustAll !== null && merged.trustAll !== running.trustAll) logger.warn({ trust_all: merged.trustAll }, 'trusting every caller\'s forwarding header (acknowledged by clientIp.acknowledgeTrustAll)');
    running = merged;
    return plan;
  };
  if (config.trustAll !== null) logger.warn({ trust_all: config.trustAll }, 'trusting every caller\'s forwarding header (acknowledged by clientIp.acknowledgeTrustAll)');

  // Every listener drains on shutdown; then forwarding stops, then (added later) management, and the store last.
  const lifecycle = new Lifecycle(config.shutdownTimeoutMs);
  const stopStore = async (): Promise<void> => {
    names.stop();
    await keys.close();
    await keeper.close();
    cache.close();
    await store.close();
  };

  if (role.kind === 'worker') {
    // Workers exist only with a proxy listener (the config refuses workers without one).
    const worker = proxy!;
    answerMetricsRequests(metrics);
    const proxyAddress = await lifecycle.listen(worker.gateway.server, worker.at, worker.gateway.destroyUpgraded);
    logger.info({ listen: `${proxyAddress.address}:${proxyAddress.port}`, port: proxyAddress.port }, 'worker listening');
    lifecycle.after(() => stopForwarding(worker, callers, refusals));
    lifecycle.after(stopStore);
    return { proxyAddress, adminAddress: null, authzAddress: null, authzGrpcPort: null, reload, close: () => lifecycle.shutdown() };
  }
  const pool = role.kind === 'primary' ? role.pool : null;
  if (pool !== null) metrics.gatherFrom(() => pool.metrics());

  // With the upstream in the readiness check: probed from now on, the first answer awaited.
  const probe = config.readiness.upstream && proxy !== null ? new UpstreamProbe(config.upstream.url) : null;
  await probe?.start();
  const management = await startManagement(config, {
    accountName: names.admin,
    digester: keys.digester,
    store,
    policy,
    logger,
    check: (account, ip, keyId) => explain(gatekeeper, account, ip, keyId),
    metrics,
    health: () => {
      const storeHealth = keeper.health();
      const workersReady = pool === null || pool.ready();
      const upstreamReady = probe === null || probe.reachable;
      return {
        live: true,
        ready: ready && storeHealth.canEnforce && workersReady && upstreamReady,
        detail: {
          store: storeHealth,
          ...(pool === null ? {} : { workers: { ready: workersReady, count: config.workers, listening: pool.listeningCount() } }),
          ...(probe === null ? {} : { upstream: { url: config.upstream.url.origin, reachable: probe.reachable, ...(probe.error === null ? {} : { error: probe.error }) } }),
        },
      };
    },
  });
  credentialsOf = (admin) => management.setCredentials(admin);

  // Workers drain their own connections first; the admin listener stays up until they are done.
  let workersClean = true;
  lifecycle.before(async () => {
    ready = false;
    if (pool !== null) workersClean = await pool.stop(config.shutdownTimeoutMs);
  });
  const adminAddress = await lifecycle.listen(createServer(management.handler), config.admin.listen);
  // The workers listen on the proxy port (the primary holds it for them), never this process.
  const proxyAddress = proxy === null ? null : pool === null ? await lifecycle.listen(proxy.gateway.server, proxy.at, proxy.gateway.destroyUpgraded) : await pool.listening;
  // The decision listeners run here, in the primary too: one process, whatever `workers` says.
  const authz = await startAuthzListeners(config, { gatekeeper, observe, logger, listen, drain: (server, timeoutMs) => drain(server, timeoutMs) });
  lifecycle.drains((timeoutMs) => authz.close(timeoutMs));
  const metricsAddress = config.metrics.listen === undefined
    ? null
    : await lifecycle.listen(createMetricsServer({ registry: metrics, ...(config.metrics.token === undefined ? {} : { token: config.metrics.token }) }), config.metrics.listen);
  lifecycle.after(() => probe?.stop());
  lifecycle.after(() => stopForwarding(proxy, callers, refusals));
  lifecycle.after(() => management.close());
  lifecycle.after(stopStore);
  lifecycle.after(() => {
    if (!workersClean) throw new Error('a worker did not stop cleanly (killed past the shutdown timeout, or exited with an error)');
  });
  ready = true;
  logger.info({
    ...(proxyAddress === null ? { listen: 'off' } : { listen: `${proxyAddress.address}:${proxyAddress.port}`, port: proxyAddress.port, upstream: config.upstream.url.origin }),
    admin_listen: `${adminAddress.address}:${adminAddress.port}`,
    admin_port: adminAddress.port,
    ...(metricsAddress === null ? {} : { metrics_listen: `${metricsAddress.address}:${metricsAddress.port}`, metrics_port: metricsAddress.port }),
    ...(authz.http === null ? {} : { authz_listen: `${authz.http.address}:${authz.http.port}`, authz_port: authz.http.port }),
    ...(authz.grpc === null ? {} : { authz_grpc_listen: `${authz.grpc.address}:${authz.grpc.port}`, authz_grpc_port: authz.grpc.port }),
    store: describeStore(config.store),
    store_state: store.state(),
    trust: config.clientIp.trust.mode,
    admin_token_source: config.admin.tokenSource,
    workers: config.workers,
  }, 'allowgate listening');

  return {
    proxyAddress,
    adminAddress,
    authzAddress: authz.http,
    authzGrpcPort: authz.grpc?.port ?? null,
    reload,
    close: () => lifecycle.shutdown(),
  };
}

/** After the listeners have drained: the upstream connections, the pending recent callers, the refusal digest. */
async function stopForwarding(proxy: Proxy | null, callers: CallerRecorder, refusals: RefusalDigest): Promise<void> {
  await proxy?.close();
  await callers.close();
  refusals.close();
}

/**
 * The key registry's request-path parts: the digester (wherever a secret is configured, for the
 * admin API to register keys by value), and with an api-key strategy listed the resolver, with
 * introspection when configured.
 */
function keyParts(config: Config, store: AclStore, cache: PolicyCache, metrics: Metrics): { digester: KeyDigester | null; resolver: KeyResolver | null; close(): Promise<void> } {
  const digester = config.keys.secret === null ? null : new KeyDigester(config.keys.secret);
  const listed = config.identity.strategies.some((s) => s.type === 'api-key');
  if (digester === null || !listed) return { digester, resolver: null, close: async () => undefined };
  const introspection = config.identity.introspection;
  const introspector = introspection === null ? null : new Introspector(introspection, { observer: metrics.introspection() });
  const resolver = new KeyResolver(digester, store, cache, introspector, config.keys.cache);
  metrics.observeKeys(() => ({ counts: resolver.counts, size: resolver.size, introspection: introspector?.size ?? null }));
  return {
    digester,
    resolver,
    close: async () => {
      resolver.close();
      await introspector?.close();
    },
  };
}

