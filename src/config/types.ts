import type { ClientIpConfig } from '../client-ip/types.ts';
import type { HostPort } from '../ip/host-port.ts';
import type { StoreSpec } from '../store/open-store.ts';
import type { AnonymousPolicy, StoreUnavailablePolicy } from '../gateway/gatekeeper.ts';
import type { ListenerLimits } from '../gateway/server.ts';
import type { LogLevel } from '../observability/logger.ts';
import type { AuthzUpstreamHeaders } from '../proxy/headers.ts';
import type { GatekeeperSettings } from '../gateway/from-config.ts';
import type { IntrospectionConfig } from '../keys/introspection.ts';
import type { KeyCacheLimits } from '../keys/resolver.ts';
import type { PolicyDefaults } from '../list/decide.ts';
import type { UpstreamSettings } from '../proxy/http-forwarder.ts';
import type { ValidationPolicy } from '../acl/validation.ts';
import type { AdminSettings, AuditSettings } from '../admin/management.ts';
import type { DigestOptions } from '../observability/refusal-digest.ts';

// Each section's type belongs to the module that consumes it; this file only puts them together.
export type { HostPort, StoreSpec, StoreUnavailablePolicy, AnonymousPolicy, LogLevel, AuthzUpstreamHeaders };

/** The validated configuration: every field present, every value checked (see load.ts). */
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
  readonly headers: GatekeeperSettings['headers'];
  readonly identity: GatekeeperSettings['identity'] & {
    /** Most accounts the account-name index holds (for accountIdCase, accountIdNumeric and format suffixes). */
    readonly accountIndexLimit: number;
    /**
     * How the upstream compares numeric ids: `refuse` (not said: an id that reads as the number of
     * an account with a record, `0123`, `123.0`, `1.23e2`, `123abc`, is refused), or `exact`
     * (compared as strings).
     */
    readonly accountIdNumeric: 'refuse' | 'exact';
    /** Where tokens the key registry does not know are looked up; null: nowhere (they are unknown). */
    readonly introspection: IntrospectionConfig | null;
  };
  /** The API key registry (src/keys/). */
  readonly keys: {
    /** The HMAC secret keys registered by value are stored under; null: registration by hash only. */
    readonly secret: Buffer | null;
    /** Where the secret came from, for the start-up log line (never the secret itself). */
    readonly secretSource: 'configured' | 'file' | 'generated' | 'none';
    readonly maxPerAccount: number;
    readonly cache: KeyCacheLimits;
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
  readonly admin: AdminSettings;
  readonly validation: ValidationPolicy;
  readonly audit: AuditSettings;
  /** How often expired temporary entries are removed from the lists (they stop matching at expiry regardless). */
  readonly expirySweepMs: number;
  readonly limits: ListenerLimits;
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
