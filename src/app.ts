import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Refusal } from './http/refusal.ts';
import { RefusalDigest } from './observability/refusal-digest.ts';
import type { AddressInfo } from 'node:net';
import { startManagement } from './admin/management.ts';
import { checkResultOf, type CheckResult } from './admin/types.ts';
import { startAuthzListeners } from './authz/listeners.ts';
import type { Config, HostPort, StoreSpec } from './config/types.ts';
import { CallerRecorder } from './gateway/caller-recorder.ts';
import { gatekeeperFromConfig, gatekeeperParts } from './gateway/from-config.ts';
import { planReload, type ReloadPlan } from './config/reload.ts';
import type { Gatekeeper } from './gateway/gatekeeper.ts';
import { createGatewayServer, sendRefusal, type GatewayServer } from './gateway/server.ts';
import { BUILD } from './build.ts';
import type { IpAddress } from './ip/address.ts';
import type { Logger } from './observability/logger.ts';
import { redactUrl } from './observability/redact-url.ts';
import { AccountIndex, compileAccountNaming, compileAdminAccountNaming, type AccountNaming, type AdminAccountNaming } from './policy/account-names.ts';
import { PolicyCache } from './policy/cache.ts';
import type { AclStore } from './store/store.ts';
import { CacheKeeper } from './policy/cache-keeper.ts';
import { decideForAccount } from './list/decide.ts';
import { PolicyResolver } from './policy/resolve.ts';
import { HttpForwarder, type UpstreamFailure } from './proxy/http-forwarder.ts';
import { checkedHeaderNames } from './proxy/headers.ts';
import { WsForwarder } from './proxy/ws-forwarder.ts';
import { UpstreamProbe } from './proxy/upstream-probe.ts';
import { createStore, redisConnectionOf } from './store/open-store.ts';
import { instrumentStore } from './store/instrumented-store.ts';
import { Metrics } from './observability/metrics.ts';
import { serveMetrics } from './observability/metrics-endpoint.ts';
import { accessLog } from './observability/access-log.ts';
import { LogLimiter } from './observability/log-limiter.ts';
import { combineObservers, type RequestObserver, type Surface } from './observability/observer.ts';
import { describeRedis } from './store/redis/spec.ts';
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
  const names = await followAccountNames(config, store, cache, logger);
  const gatekeeper = gatekeeperFromConfig(config, policy, names.gateway);
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
          if (checked.refusal === null && checked.account !== null && checked.client !== null) callers.note(checked.account, checked.client, checked.reason === 'ip_allowed');
        },
        finished: (_req, checked, _status, duration) => counted.finished(checked.verdict, duration),
      },
      accessLog(logger, config.log.allowSampleRate, refusals, surface),
    ]);
  };
  // No proxy listener: no upstream either (a decision service only).
  proxy = config.listen === null ? null : createProxy(config, config.listen, { gatekeeper, observer: observe('proxy'), metrics, refusals, logger });

  let ready = false;
  const check = async (account: string, ip: IpAddress): Promise<CheckResult> => {
    const [global, lookup] = await Promise.all([policy.global(), policy.resolve(account)]);
    if (!lookup.ok) return { decision: 'error', reason: lookup.refusal.reason, matched: null, listState: null };
    return checkResultOf(decideForAccount(ip.family, ip.words, global, lookup), lookup.list);
  };
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
    if (applied.has('clientIp') || applied.has('identity') || applied.has('trustAll')) gatekeeper.reconfigure(gatekeeperParts(merged, policy, names.gateway));
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
  // Stopped, in every role, once the listeners have drained: forwarding first, the store last.
  const stopForwarding = async (): Promise<void> => {
    await proxy?.close();
    await callers.close();
    refusals.close();
  };
  const stopStore = async (): Promise<void> => {
    names.stop();
    await keeper.close();
    cache.close();
    await store.close();
  };

  if (role.kind === 'worker') {
    // Workers exist only with a proxy listener (the config refuses workers without one).
    const worker = proxy!;
    answerMetricsRequests(metrics);
    const proxyAddress = await listen(worker.gateway.server, worker.at);
    logger.info({ listen: `${proxyAddress.address}:${proxyAddress.port}`, port: proxyAddress.port }, 'worker listening');
    return {
      proxyAddress,
      adminAddress: null,
      authzAddress: null,
      authzGrpcPort: null,
      reload,
      close: once(async () => {
        await drain(worker.gateway.server, config.shutdownTimeoutMs, worker.gateway.destroyUpgraded);
        await stopForwarding();
        await stopStore();
      }),
    };
  }
  const pool = role.kind === 'primary' ? role.pool : null;
  if (pool !== null) metrics.gatherFrom(() => pool.metrics());

  // With the upstream in the readiness check: probed from now on, the first answer awaited.
  const probe = config.readiness.upstream && proxy !== null ? new UpstreamProbe(config.upstream.url) : null;
  await probe?.start();
  const management = await startManagement(config, {
    accountName: names.admin,
    store,
    policy,
    logger,
    check,
    metrics,
    redis: redisConnectionOf(raw),
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
  const adminServer = createServer(management.handler);
  credentialsOf = (admin) => management.setCredentials(admin);

  const adminAddress = await listen(adminServer, config.admin.listen);
  // The workers listen on the proxy port (the primary holds it for them), never this process.
  const proxyAddress = proxy === null ? null : pool === null ? await listen(proxy.gateway.server, proxy.at) : await pool.listening;
  // The decision listeners run here, in the primary too: one process, whatever `workers` says.
  const authz = await startAuthzListeners(config, { gatekeeper, observe, logger, listen, drain: (server, timeoutMs) => drain(server, timeoutMs, () => undefined) });
  const metricsServer = config.metrics.listen === undefined ? null : createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) return serveMetrics(req, res, { registry: metrics, ...(config.metrics.token === undefined ? {} : { token: config.metrics.token }) });
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('only /metrics is served here\n');
  });
  const metricsAddress = metricsServer === null || config.metrics.listen === undefined ? null : await listen(metricsServer, config.metrics.listen);
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
    close: once(async () => {
      ready = false;
      // Workers drain their own connections; the admin listener stays up until they are done.
      const workersClean = pool === null ? true : await pool.stop(config.shutdownTimeoutMs);
      await Promise.all([
        ...(pool === null && proxy !== null ? [drain(proxy.gateway.server, config.shutdownTimeoutMs, proxy.gateway.destroyUpgraded)] : []),
        authz.close(config.shutdownTimeoutMs),
        drain(adminServer, config.shutdownTimeoutMs, () => undefined),
        ...(metricsServer === null ? [] : [drain(metricsServer, config.shutdownTimeoutMs, () => undefined)]),
      ]);
      probe?.stop();
      await stopForwarding();
      await management.close();
      await stopStore();
      if (!workersClean) throw new Error('a worker did not stop cleanly (killed past the shutdown timeout, or exited with an error)');
    }),
  };
}

interface Proxy {
  readonly at: HostPort;
  readonly gateway: GatewayServer;
  readonly forwarder: HttpForwarder;
  /** Closes the upstream connections (after the listener has drained). */
  close(): Promise<void>;
}

interface ProxyParts {
  readonly gatekeeper: Gatekeeper;
  readonly observer: RequestObserver;
  readonly metrics: Metrics;
  readonly refusals: RefusalDigest;
  readonly logger: Logger;
}

/** The proxy listener and its forwarding to the upstream. */
function createProxy(config: Config, at: HostPort, { gatekeeper, observer, metrics, refusals, logger }: ProxyParts): Proxy {
  const upstreamFailed = (req: IncomingMessage, failure: UpstreamFailure, refused: Refusal | null): void => {
    metrics.upstreamError(failure.kind);
    const { facts } = failure;
    const entry = {
      request_id: facts.requestId, url: redactUrl(req.url ?? ''), client_ip: facts.client, account: facts.account,
      kind: failure.kind, cause: describeCause(failure.cause), ...(refused === null ? {} : { reason: refused.reason, status: refused.status }),
    };
    refusals.note(facts.account, facts.client ?? facts.peer, refused?.reason ?? `upstream_${failure.kind}_mid_response`, entry, refused === null ? 'upstream failed mid-response' : 'upstream failed');
  };
  const dropUnderscores = config.headers.underscores === 'drop';
  // The upstream behind allowgate's own proxy reads the same account and address headers an
  // external proxy gets from a check.
  const checkedHeaders = checkedHeaderNames(config.authz.upstreamHeaders);
  const forwarder = new HttpForwarder(config.upstream, {
    responded: (status) => metrics.upstreamResponse(status),
    refuse: (req, res, refused, failure) => {
      upstreamFailed(req, failure, refused);
      sendRefusal(res, refused, failure.facts.requestId);
    },
    aborted: (req, failure) => upstreamFailed(req, failure, null),
    shed: (req, res, refused, facts) => {
      metrics.shed(refused.reason);
      refusals.note(facts.account, facts.client ?? facts.peer, refused.reason, {
        request_id: facts.requestId, url: redactUrl(req.url ?? ''), client_ip: facts.client, account: facts.account, reason: refused.reason, status: refused.status,
      }, 'request shed: upstream capacity');
      sendRefusal(res, refused, facts.requestId);
    },
  }, { bodyIdleTimeoutMs: config.limits.bodyIdleTimeoutMs, dropUnderscores, checkedHeaders });
  const wsForwarder = new WsForwarder(config.upstream, { dropUnderscores, checkedHeaders }, (req, kind, requestId) => {
    metrics.upstreamError(kind);
    logger.warn({ request_id: requestId, url: redactUrl(req.url ?? ''), kind }, 'websocket upstream failed');
  });
  const gateway = createGatewayServer({ gatekeeper, http: forwarder, ws: wsForwarder, logger, limits: config.limits, observer });
  return {
    at,
    gateway,
    forwarder,
    close: async () => {
      wsForwarder.close();
      await forwarder.close();
    },
  };
}

/** An upstream error's message with its causes (undici wraps the socket's error). */
function describeCause(error: Error): string {
  const parts: string[] = [];
  for (let current: unknown = error; current instanceof Error && parts.length < 4; current = current.cause) {
    const code = (current as NodeJS.ErrnoException).code;
    parts.push(code === undefined ? current.message : `${current.message} (${code})`);
  }
  return parts.join(': ');
}

/**
 * How request and admin ids map to stored accounts (identity.accountIdCase). `refuse` and `fold`
 * need the index of every account with a record: seeded from the last-known-good lists, listed
 * from the store once it answers, then kept up by its change notices.
 */
async function followAccountNames(config: Config, store: AclStore, cache: PolicyCache, logger: Logger): Promise<{ gateway: AccountNaming; admin: AdminAccountNaming; stop: () => void }> {
  const mode = config.identity.accountIdCase;
  const index = new AccountIndex(config.identity.accountIndexLimit);
  let stop = (): void => undefined;
  if (mode === 'refuse' || mode === 'fold') {
    for (const [account, list] of cache.lastKnownGood()) if (list !== null) index.add(account);
    if (store.state() === 'up') await index.load(store).catch((error: unknown) => logger.warn({ err: error }, 'account index not loaded at start'));
    stop = index.follow(store, logger);
  }
  return { gateway: compileAccountNaming(mode, index, () => store.state()), admin: compileAdminAccountNaming(mode, index), stop };
}

/** `run` on the first call; every later call gets the same promise. */
function once(run: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  return () => (running ??= run());
}

function describeStore(spec: StoreSpec): string {
  switch (spec.kind) {
    case 'memory':
      return 'memory';
    case 'file':
      return `file:${spec.path}`;
    case 'redis':
      return describeRedis(spec);
  }
}

function listen(server: Server, at: HostPort): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(new Error(`cannot listen on ${at.host}:${at.port}: ${error.message}`));
    server.once('error', onError);
    server.listen(at.port, at.host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** How often a draining server closes the keep-alive connections that went idle since. */
const DRAIN_IDLE_SWEEP_MS = 50;

/**
 * Stops accepting and waits for in-flight requests; past the timeout, cuts what is left.
 *
 * Node's `server.close()` leaves keep-alive connections open once their response is done, and
 * keeps serving requests that arrive on them: a busy keep-alive caller would hold the process until
 * the timeout and then have a request cut. So while draining, every response that starts goes out
 * with `Connection: close`, and connections left idle are closed as they become idle.
 */
function drain(server: Server, timeoutMs: number, cutDetached: () => void): Promise<void> {
  return new Promise((resolve) => {
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
      res.shouldKeepAlive = false;
    });
    const sweep = setInterval(() => server.closeIdleConnections(), DRAIN_IDLE_SWEEP_MS);
    sweep.unref();
    const timer = setTimeout(() => {
      server.closeAllConnections();
      cutDetached();
    }, timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}
