import type { ClientIpConfig } from '../client-ip/types.ts';
import type { IdentityOptions, StrategyConfig } from '../identity/types.ts';
import type { PolicyDefaults } from '../policy/decide.ts';
import type { UpstreamSettings } from '../proxy/http-forwarder.ts';
import type { RedisStoreSpec } from '../store/redis/spec.ts';
import type { ValidationPolicy } from '../acl/validation.ts';
import type { Credential } from '../admin/credentials.ts';
import type { WriteLimits } from '../admin/write-gate.ts';
import type { DigestOptions } from '../observability/refusal-digest.ts';
import type { UnderscorePolicy } from '../gateway/request-screen.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type StoreSpec = { readonly kind: 'memory' } | { readonly kind: 'file'; readonly path: string } | RedisStoreSpec;

/** What a request gets when its account's list is not cached and the store cannot be read. */
export type StoreUnavailablePolicy = 'closed' | 'open';

/** What a request with no recognizable credentials gets. */
export type AnonymousPolicy = 'pass' | 'deny' | 'global';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The validated configuration: every field present, every value checked (see load.ts). */
/** Headers set for the upstream when an external-authorization check allows; null: not set. */
export interface AuthzUpstreamHeaders {
  readonly account: string | null;
  readonly clientIp: string | null;
}

export interface Config {
  /** The proxy listener; null (`ALLOWGATE_LISTEN=off`): a decision service only, no upstream. */
  readonly listen: HostPort | null;
  /** External authorization: the same decisions answered to other proxies (docs/external-authorization.md). */
  readonly authz: {
    /** forward-auth, auth_request and Envoy HTTP checks; null: off. */
    readonly listen: HostPort | null;
    /** Envoy ext_authz gRPC; null: off. */
    readonly grpcListen: HostPort | null;
    readonly upstreamHeaders: AuthzUpstreamHeaders;
  };
  readonly upstream: UpstreamSettings;
  readonly clientIp: ClientIpConfig;
  /** Why the trust setting believes every caller (acknowledged by clientIp.acknowledgeTrustAll), or null. */
  readonly trustAll: string | null;
  readonly headers: {
    /** Header names with `_` other than the ones the gateway reads or writes (those are always refused). */
    readonly underscores: UnderscorePolicy;
  };
  readonly identity: IdentityOptions & {
    readonly strategies: readonly StrategyConfig[];
    readonly anonymous: AnonymousPolicy;
    readonly exemptPaths: readonly string[];
    /** Most accounts the case index holds (accountIdCase refuse or fold). */
    readonly accountIndexLimit: number;
  };
  readonly policy: PolicyDefaults;
  readonly store: StoreSpec;
  readonly onStoreUnavailable: StoreUnavailablePolicy;
  readonly cache: {
    readonly maxEntries: number;
    readonly maxBytes: number;
    /** "No record" answers kept, so made-up account ids cannot evict the lists. */
    readonly maxNegativeEntries: number;
    /** Where last-known-good compiled lists are kept across restarts; absent: not kept. */
    readonly snapshotPath?: string;
  };
  readonly admin: {
    readonly listen: HostPort;
    /** Where the admin token came from, for the start-up log line (never the token itself). */
    readonly tokenSource: 'configured' | 'file' | 'generated';
    readonly token: string;
    /** Further credentials with roles; the admin token above is the owner's. */
    readonly credentials: readonly Credential[];
    /** Largest JSON change body, and largest list replace or import body (JSON or CSV). */
    readonly maxBodyBytes: number;
    readonly maxImportBytes: number;
    /** Host names the admin listener answers to besides loopback and the machine's own addresses (exact, or `*.suffix`). */
    readonly allowedHosts: readonly string[];
    /** Admission of writes: per credential a rate and a number in progress, and a number in progress in all. */
    readonly writes: WriteLimits;
  };
  readonly validation: ValidationPolicy;
  readonly audit: {
    /** Events kept in all: with Redis, how far back the change log the global view is derived from reaches; memory and file: see RetentionIndex. */
    readonly cap: number;
    /** Events kept per account (with Redis, in the account's own stream). */
    readonly accountCap: number;
    /** The JSONL file for the embedded stores; absent with Redis (the stream lives there). */
    readonly path?: string;
  };
  /** How often expired temporary entries are removed from the lists (they stop matching at expiry regardless). */
  readonly expirySweepMs: number;
  readonly limits: {
    readonly maxHeaderBytes: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    /** Longest silence of a request body being forwarded (408 past it); 0: none. */
    readonly bodyIdleTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    /** Open connections on the proxy listener; a request on a further one is answered 503, past a margin they are closed at accept. */
    readonly maxConnections: number;
  };
  readonly log: {
    readonly level: LogLevel;
    /** Share of plain forwarded requests written to the access log (refusals always are). */
    readonly allowSampleRate: number;
    /** Identical refusals (account, client, reason) are logged once per interval with a count. */
    readonly refusalDigest: DigestOptions;
  };
  readonly metrics: {
    /** A listener of its own for /metrics; absent: served on the admin listener. */
    readonly listen?: HostPort;
    /** When set, /metrics requires `Authorization: Bearer <token>`. */
    readonly token?: string;
    /** Accounts that get their own `account` label (every other account would be unbounded cardinality). */
    readonly accounts: readonly string[];
  };
  readonly shutdownTimeoutMs: number;
  /** Processes serving the proxy port (node:cluster); above 1 the primary serves only the admin listener. Redis store only. */
  readonly workers: number;
  readonly readiness: {
    /** /readyz also needs the upstream to accept connections (a pod is not Ready before its API listens). */
    readonly upstream: boolean;
  };
}
