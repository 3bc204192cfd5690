import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Surface } from './observer.ts';
import { HotCounter, HotHistogram } from './hot-metrics.ts';
import type { IntrospectionObserver, IntrospectionOutcome, KeyLookupCounts } from './key-stats.ts';

/** What the key resolver reports at scrape time. */
export interface KeyStats {
  readonly counts: Readonly<KeyLookupCounts>;
  readonly size: { readonly keys: number; readonly unknown: number };
  readonly introspection: { readonly active: number; readonly inactive: number } | null;
}

/** Introspection calls take milliseconds: 1 ms to 10 s. */
const INTROSPECTION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Whole-request buckets (seconds): from half a millisecond to ten seconds. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** The gateway's own work is microseconds when warm: buckets resolve 10 µs to 100 ms. */
const OVERHEAD_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** News of a change normally arrives in milliseconds; the tail matters up to a sweep interval. */
const PROPAGATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];
const COMPILE_BUCKETS = [0.00001, 0.0001, 0.001, 0.01, 0.1, 0.5, 1, 2.5, 5];

/** One process's metrics as `Registry.getMetricsAsJSON()` gives them (passed between workers). */
export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[];

/** What the metrics read of the policy cache at scrape time (the cache's own stats are one). */
export interface CacheFigures {
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  /** Loads answered from the last-known-good list because the store failed. */
  readonly staleServed: number;
  /** Rules in the compiled lists held. */
  readonly rules: number;
  /** Accounts refused because their list changed and the new one could not be loaded yet. */
  readonly refusing: number;
}

export interface MetricsSources {
  cache(): CacheFigures;
  storeState(): 'up' | 'down';
  readonly storeKind: string;
  lastSync(): number | null;
  /** Requests holding an upstream connection, and waiting for one. */
  upstream?(): { readonly running: number; readonly queued: number };
  /** Open connections on the proxy listener, and their limit (limits.maxConnections). */
  connections?(): { readonly open: number; readonly limit: number };
  /** The version and revision this process runs. */
  readonly build?: { readonly version: string; readonly revision: string };
}

/** The request-path metrics of one surface, label cells resolved once. */
export interface SurfaceMetrics {
  /** One checked request: counted by decision and reason (and account, when opted in). */
  decided(decision: string, reason: string, account: string | null, overheadSeconds: number): void;
  finished(decision: string, seconds: number): void;
}

/**
 * Every metric the gateway exports, in one registry, named by Prometheus conventions
 * (`allowgate_` prefix, base units, `_total` counters). No account label unless an account is
 * listed in `accounts`: account ids are unbounded, and a label per account would be too.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #accounts: ReadonlySet<string>;
  // Request-path metrics: label cells resolved once, no label hashing per request.
  readonly #requests: HotCounter;
  readonly #accountRequests: HotCounter;
  readonly #requestDuration: HotHistogram;
  readonly #decisionDuration: HotHistogram;
  readonly #upstreamErrors: Counter<'kind'>;
  readonly #upstreamResponses: HotCounter;
  readonly #compileDuration: Histogram;
  readonly #storeDuration: Histogram<'operation'>;
  readonly #storeErrors: Counter<'operation'>;
  readonly #storeWriteFailures: Counter<'reason'>;
  readonly #propagationLag: Histogram;
  readonly #adminRequests: Counter<'route' | 'method' | 'status'>;
  readonly #lockoutWarnings: Counter;
  readonly #validationRefusals: Counter<'reason'>;
  readonly #shed: Counter<'reason'>;
  readonly #introspectionCalls: Counter<'outcome'>;
  readonly #introspectionDuration: Histogram;
  #keys: (() => KeyStats) | null = null;
  /** Other processes whose metrics each scrape adds (a primary's workers); null: this one alone. */
  #peers: (() => Promise<readonly MetricsSnapshot[]>) | null = null;

  constructor(sources: MetricsSources, options: { readonly accounts?: readonly string[] } = {}) {
    const registers = [this.registry];
    this.#accounts = new Set(options.accounts ?? []);
    collectDefaultMetrics({ register: this.registry });

    // `surface`: proxy, or the external-authorization protocol that asked (forward-auth, ...).
    this.#requests = new HotCounter({ name: 'allowgate_requests_total', help: 'Requests, upgrades and authorization checks decided, by surface, decision and reason.', labelNames: ['surface', 'decision', 'reason'], registers });
    this.#accountRequests = new HotCounter({ name: 'allowgate_account_requests_total', help: 'Requests of the accounts listed in metrics.accounts, by decision.', labelNames: ['account', 'decision'], registers });
    this.#requestDuration = new HotHistogram({ name: 'allowgate_request_duration_seconds', help: 'Time from a request\'s arrival to the end of its response (for a check: its answer), by surface and decision.', labelNames: ['surface', 'decision'], buckets: REQUEST_BUCKETS, registers });
    this.#decisionDuration = new HotHistogram({ name: 'allowgate_decision_duration_seconds', help: 'Gateway overhead: time from a request\'s arrival to its decision, before any upstream work, by surface.', labelNames: ['surface'], buckets: OVERHEAD_BUCKETS, registers });
    this.#upstreamErrors = new Counter({ name: 'allowgate_upstream_errors_total', help: 'Upstream exchanges that failed, by kind (refused, reset, timeout, other).', labelNames: ['kind'], registers });
    this.#upstreamResponses = new HotCounter({ name: 'allowgate_upstream_responses_total', help: 'Upstream responses by status class.', labelNames: ['status_class'], registers });
    this.#compileDuration = new Histogram({ name: 'allowgate_compile_duration_seconds', help: 'Time to compile one account\'s list into its trie.', buckets: COMPILE_BUCKETS, registers });
    this.#storeDuration = new Histogram({ name: 'allowgate_store_operation_duration_seconds', help: 'Store operations by kind.', labelNames: ['operation'], buckets: STORE_BUCKETS, registers });
    this.#storeErrors = new Counter({ name: 'allowgate_store_errors_total', help: 'Store operations that failed, by kind.', labelNames: ['operation'], registers });
    this.#storeWriteFailures = new Counter({ name: 'allowgate_store_write_failures_total', help: 'List changes the store failed to save (store_unavailable, store_contention, ...) or whose outcome is unknown (outcome_unknown: may or may not have been applied), by reason.', labelNames: ['reason'], registers });
    this.#propagationLag = new Histogram({ name: 'allowgate_propagation_lag_seconds', help: 'Time from a change\'s publication by another replica (or its entry in the change log) to its enforcement here: the new list in force.', buckets: PROPAGATION_BUCKETS, registers });
    this.#adminRequests = new Counter({ name: 'allowgate_admin_requests_total', help: 'Management API requests by route template, method and status.', labelNames: ['route', 'method', 'status'], registers });
    this.#lockoutWarnings = new Counter({ name: 'allowgate_lockout_warnings_total', help: 'Recently seen callers reported as newly blocked by a list change.', registers });
    this.#validationRefusals = new Counter({ name: 'allowgate_validation_refusals_total', help: 'List changes refused as invalid or conflicting, by reason (store failures are in allowgate_store_write_failures_total).', labelNames: ['reason'], registers });
    this.#shed = new Counter({ name: 'allowgate_shed_requests_total', help: 'Allowed requests the gateway answered itself to protect the upstream or other callers, by reason (client_concurrency_limit, account_concurrency_limit, upstream_busy, body_timeout).', labelNames: ['reason'], registers });
    this.#introspectionCalls = new Counter({ name: 'allowgate_introspection_requests_total', help: 'Calls to the introspection endpoint by outcome: active, inactive, no_account (active without a usable account), and the failures error, timeout, status (an unexpected status), busy (identity.introspection.maxConcurrent reached, not sent).', labelNames: ['outcome'], registers });
    this.#introspectionDuration = new Histogram({ name: 'allowgate_introspection_duration_seconds', help: 'Time an introspection call took, answered or failed.', buckets: INTROSPECTION_BUCKETS, registers });
    // Key lookups are counted by the resolver on the request path; each scrape adds what happened since the last.
    const lastKeys: Record<string, number> = {};
    const keyLookups = new Counter({
      name: 'allowgate_key_lookups_total',
      help: 'API keys looked up, by result: cached (account known here), located (read from the store\'s key index), unknown (registered nowhere, introspected as inactive), disabled, introspected (active at the endpoint), conflicting (registered to two accounts).',
      labelNames: ['result'],
      registers,
      collect: () => {
        const counts = this.#keys?.().counts;
        if (counts === undefined) return;
        for (const [result, value] of Object.entries(counts)) {
          const delta = value - (lastKeys[result] ?? 0);
          if (delta > 0) keyLookups.inc({ result }, delta);
          lastKeys[result] = value;
        }
      },
    });
    const keys = (): KeyStats | null => this.#keys?.() ?? null;
    new Gauge({
      name: 'allowgate_key_cache_entries', help: 'Digests of API keys held: kind keys (whose account is known here, keys.cacheEntries) and unknown (known to be registered nowhere, keys.cacheNegativeEntries).', labelNames: ['kind'], registers,
      collect() {
        const stats = keys();
        if (stats === null) return;
        this.set({ kind: 'keys' }, stats.size.keys);
        this.set({ kind: 'unknown' }, stats.size.unknown);
      },
    });
    new Gauge({
      name: 'allowgate_introspection_cache_entries', help: 'Introspection answers held, active and inactive (each bounded by identity.introspection.cacheEntries).', labelNames: ['kind'], registers,
      collect() {
        const held = keys()?.introspection;
        if (held == null) return;
        this.set({ kind: 'active' }, held.active);
        this.set({ kind: 'inactive' }, held.inactive);
      },
    });
    new Gauge({
      name: 'allowgate_upstream_in_flight', help: 'Requests holding an upstream connection (at most upstream.connections).', registers,
      collect() { this.set(sources.upstream?.().running ?? 0); },
    });
    new Gauge({
      name: 'allowgate_upstream_queued', help: 'Requests waiting for an upstream connection (at most upstream.queueTimeoutMs each).', registers,
      collect() { this.set(sources.upstream?.().queued ?? 0); },
    });
    new Gauge({
      name: 'allowgate_proxy_connections', help: 'Open connections on the proxy listener.', registers,
      collect() { this.set(sources.connections?.().open ?? 0); },
    });
    new Gauge({
      // Summed over workers like the connections themselves: each worker has its own limit.
      name: 'allowgate_proxy_connections_limit', help: 'limits.maxConnections: open proxy connections past which requests get 503 too_many_connections.', registers,
      collect() { this.set(sources.connections?.().limit ?? 0); },
    });
    const build = sources.build ?? { version: 'unknown', revision: 'unknown' };
    new Gauge({
      name: 'allowgate_build_info', help: 'Always 1; the labels say which version runs, on which Node.js.', labelNames: ['version', 'revision', 'nodejs'], registers, aggregator: 'max',
      collect() { this.set({ version: build.version, revision: build.revision, nodejs: process.version }, 1); },
    });

    // Cache counters live in the cache; each scrape adds what happened since the last one.
    let last = { hits: 0, misses: 0, evictions: 0, staleServed: 0 };
    const syncCache = (): void => {
      const stats = sources.cache();
      for (const key of ['hits', 'misses', 'evictions', 'staleServed'] as const) {
        const delta = stats[key] - last[key];
        if (delta > 0) cacheCounters[key].inc(delta);
      }
      last = { hits: stats.hits, misses: stats.misses, evictions: stats.evictions, staleServed: stats.staleServed };
    };
    const cacheCounter = (name: string, help: string): Counter => new Counter({ name, help, registers, collect: syncCache });
    const cacheCounters = {
      hits: cacheCounter('allowgate_cache_hits_total', 'Compiled-list lookups answered from the in-process cache.'),
      misses: cacheCounter('allowgate_cache_misses_total', 'Compiled-list lookups that had to load from the store.'),
      evictions: cacheCounter('allowgate_cache_evictions_total', 'Compiled lists evicted to stay within the cache limits.'),
      staleServed: cacheCounter('allowgate_cache_stale_served_total', 'Loads answered with the last-known-good list because the store failed.'),
    };
    new Gauge({ name: 'allowgate_cache_entries', help: 'Accounts held compiled (negative entries included).', registers, collect() { this.set(sources.cache().entries); } });
    new Gauge({ name: 'allowgate_cache_bytes', help: 'Heap the cached lists keep alive (estimated; current and kept-aside lists), bounded by cache.maxBytes.', registers, collect() { this.set(sources.cache().bytes); } });
    new Gauge({ name: 'allowgate_cache_refusing_accounts', help: 'Accounts whose list changed and could not be loaded again yet: their callers are refused meanwhile.', registers, collect() { this.set(sources.cache().refusing); } });
    new Gauge({ name: 'allowgate_rules_loaded', help: 'Rules in the compiled lists held.', registers, collect() { this.set(sources.cache().rules); } });
    new Gauge({
      // Across workers, up only if every process reaches the store.
      name: 'allowgate_store_up', help: 'Whether the store can be reached (1) or not (0).', labelNames: ['store'], registers, aggregator: 'min',
      collect() { this.set({ store: sources.storeKind }, sources.storeState() === 'up' ? 1 : 0); },
    });
    // Absent until there is a time to tell: an unset prom-client gauge would read 0 (1970).
    const lastSync = {
      name: 'allowgate_store_last_sync_timestamp_seconds',
      help: 'When this replica last confirmed its cache against the store (Unix time; the scrape time for a store in this process).',
      type: 'gauge',
      aggregator: 'min',
    } as const;
    this.registry.registerMetric({
      ...lastSync,
      get: () => {
        const at = sources.lastSync();
        return { ...lastSync, values: at === null ? [] : [{ value: at / 1000, labels: {} }] };
      },
    } as never);
  }

  /** The request-path metrics of one surface (keep the object: its cells are resolved once). */
  surface(surface: Surface): SurfaceMetrics {
    const requests = this.#requests;
    const accountRequests = this.#accountRequests;
    const accounts = this.#accounts;
    const durations = this.#requestDuration;
    const overhead = this.#decisionDuration;
    const overheadCell = overhead.cell(surface);
    return {
      decided(decision, reason, account, overheadSeconds) {
        requests.cell(surface, decision, reason).value++;
        overhead.observe(overheadCell, overheadSeconds);
        if (account !== null && accounts.has(account)) accountRequests.cell(account, decision).value++;
      },
      finished(decision, seconds) {
        durations.observe(durations.cell(surface, decision), seconds);
      },
    };
  }

  /** Where the key resolver's counts are read from at scrape time. */
  observeKeys(stats: () => KeyStats): void {
    this.#keys = stats;
  }

  /** The observer of introspection calls. */
  introspection(): IntrospectionObserver {
    return {
      called: (outcome: IntrospectionOutcome, seconds: number) => {
        this.#introspectionCalls.inc({ outcome });
        if (outcome !== 'busy') this.#introspectionDuration.observe(seconds);
      },
    };
  }

  upstreamError(kind: string): void {
    this.#upstreamErrors.inc({ kind });
  }

  upstreamResponse(status: number): void {
    this.#upstreamResponses.cell(STATUS_CLASSES[Math.floor(status / 100)] ?? 'other').value++;
  }

  compiled(seconds: number): void {
    this.#compileDuration.observe(seconds);
  }

  storeOperation(operation: string, seconds: number, failed: boolean): void {
    this.#storeDuration.observe({ operation }, seconds);
    if (failed) this.#storeErrors.inc({ operation });
  }

  propagated(lagSeconds: number): void {
    this.#propagationLag.observe(Math.max(0, lagSeconds));
  }

  adminRequest(route: string, method: string, status: number): void {
    this.#adminRequests.inc({ route, method, status: String(status) });
  }

  lockoutWarnings(count: number): void {
    if (count > 0) this.#lockoutWarnings.inc(count);
  }

  /** A change refused because it was at fault (the caller does not count the store's failures here). */
  validationRefused(reason: string): void {
    this.#validationRefusals.inc({ reason });
  }

  storeWriteFailed(reason: string): void {
    this.#storeWriteFailures.inc({ reason });
  }

  shed(reason: string): void {
    this.#shed.inc({ reason });
  }

  /**
   * Makes every scrape add the metrics of other processes (a primary's workers): counters and
   * histograms summed, gauges by their aggregator, so /metrics speaks for the whole pod.
   */
  gatherFrom(peers: () => Promise<readonly MetricsSnapshot[]>): void {
    this.#peers = peers;
  }

  snapshot(): Promise<MetricsSnapshot> {
    return this.registry.getMetricsAsJSON() as Promise<MetricsSnapshot>;
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ readonly contentType: string; readonly body: string }> {
    if (this.#peers === null) return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    const [own, others] = await Promise.all([this.snapshot(), this.#peers()]);
    return { contentType: this.registry.contentType, body: await AggregatorRegistry.aggregate([own, ...others]).metrics() };
  }
}
