import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createEvaluator } from '../acl/evaluator.ts';
import { ExpirySweeper } from '../acl/expiry-sweeper.ts';
import { AclService } from '../acl/service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { ValidationPolicy } from '../acl/validation.ts';
import type { HostPort } from '../ip/host-port.ts';
import type { PolicyDefaults } from '../list/decide.ts';
import type { IpAddress } from '../ip/address.ts';
import type { KeyDigester } from '../list/key-digest.ts';
import type { Logger } from '../observability/logger.ts';
import type { AdminAccountNaming } from '../policy/account-names.ts';
import type { PolicyResolver } from '../policy/resolve.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { AclStore } from '../store/store.ts';
import { AuthLimiter } from './auth-limiter.ts';
import { BulkParser } from './bulk-parser.ts';
import { compileHostCheck } from './host-check.ts';
import { WriteGate, type WriteLimits } from './write-gate.ts';
import { compileCredentials, sha256, type Actor, type Credential } from './credentials.ts';
import { createConsole } from './console.ts';
import { createAdminHandler } from './handler.ts';
import { vobizSurface } from './compat/vobiz.ts';
import { voximplantSurface } from './compat/voximplant.ts';
import { nativeSurface } from './native.ts';
import { openApiDocument } from './openapi.ts';
import type { CheckResult } from './types.ts';

/** The admin listener and who may use it. */
export interface AdminSettings {
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
}

/** The audit trail's bounds, and its file for the embedded stores. */
export interface AuditSettings {
  /** Events kept in all: with Redis, how far back the change log the global view is derived from reaches; memory and file: see RetentionIndex. */
  readonly cap: number;
  /** Events kept per account (with Redis, in the account's own stream). */
  readonly accountCap: number;
  /** The JSONL file for the embedded stores; absent with Redis (the stream lives there). */
  readonly path?: string;
}

/** The configuration sections the management side is started from. */
export interface ManagementSettings {
  readonly admin: AdminSettings;
  readonly audit: AuditSettings;
  readonly validation: ValidationPolicy;
  readonly policy: PolicyDefaults;
  readonly metrics: { readonly listen?: HostPort; readonly token?: string };
  readonly expirySweepMs: number;
  /** The key registry's bound per account (keys.maxPerAccount). */
  readonly keys: { readonly maxPerAccount: number };
}

export interface ManagementParts {
  readonly store: AclStore;
  /** The account an id in a request acts on (identity.accountIdCase), or why it cannot be told. */
  readonly accountName: AdminAccountNaming;
  readonly metrics: Metrics;
  readonly policy: PolicyResolver;
  readonly logger: Logger;
  /** Hashes API keys registered by value; null without a key secret. */
  readonly digester: KeyDigester | null;
  check(account: string, ip: IpAddress, keyId?: string): Promise<CheckResult>;
  health(): { readonly live: boolean; readonly ready: boolean; readonly detail?: Record<string, unknown> };
}

export interface Management {
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The admin token and credentials of a reloaded configuration, in force from the next request. */
  setCredentials(admin: AdminSettings): void;
  readonly service: AclService;
  close(): Promise<void>;
}

/** The management side: credentials, the core service with its audit trail, the API surfaces, the expiry sweep. */
export async function startManagement(config: ManagementSettings, parts: ManagementParts): Promise<Management> {
  const { store, policy, logger } = parts;
  const audit: AuditLog = await store.openAuditLog({ ...config.audit, logger });
  const service = new AclService({
    store,
    policy: config.validation,
    audit,
    evaluator: async () => createEvaluator(await policy.global(), config.policy, Date.now()),
    logger,
    observe: parts.metrics,
  });
  const compile = (admin: AdminSettings): ((token: string) => Actor | null) => compileCredentials([
    { name: 'owner', role: 'owner', tokenSha256: sha256(admin.token) },
    ...admin.credentials,
  ]);
  // Swapped whole by setCredentials (a configuration reload).
  let current = compile(config.admin);
  const authenticate = (token: string): Actor | null => current(token);
  // The worker's heap: room for the largest body parsed into rows, capped where the manifests' memory is.
  const bulk = new BulkParser(Math.min(160, 32 + Math.ceil(config.admin.maxImportBytes / 1_048_576) * 16));
  const handler = createAdminHandler({
    store,
    surfaces: [
      nativeSurface({ service, audit, check: parts.check, parseBulk: (format, body, nowMs, limits) => bulk.parse(format, body, nowMs, limits), accountName: parts.accountName, digester: parts.digester, maxKeys: config.keys.maxPerAccount }),
      // Entries created through the compatible endpoints get UUIDs, the id style those APIs show.
      vobizSurface({ service, check: parts.check, newId: randomUUID, accountName: parts.accountName }),
      voximplantSurface({ service, check: parts.check, newId: randomUUID, accountName: parts.accountName }),
    ],
    authenticate,
    limiter: new AuthLimiter(),
    health: parts.health,
    openapi: openApiDocument,
    metrics: config.metrics.listen === undefined ? { registry: parts.metrics, ...(config.metrics.token === undefined ? {} : { token: config.metrics.token }) } : null,
    observeRequest: (route, method, status) => parts.metrics.adminRequest(route, method, status),
    observeInputRefusal: (reason) => parts.metrics.validationRefused(reason),
    logger,
    bodyLimits: { json: config.admin.maxBodyBytes, bulk: config.admin.maxImportBytes },
    console: createConsole(),
    writes: new WriteGate(config.admin.writes),
    checkHost: compileHostCheck(config.admin.allowedHosts),
  });
  const sweeper = new ExpirySweeper(service, logger);
  sweeper.start(config.expirySweepMs);
  return {
    handler,
    service,
    setCredentials: (admin) => {
      current = compile(admin);
    },
    close: async () => {
      await sweeper.stop();
      await bulk.close();
      await audit.close();
    },
  };
}
