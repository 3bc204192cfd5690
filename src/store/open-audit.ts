import type { EventLog } from '../observability/logger.ts';
import type { RedisClient } from './redis/connection.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { FileAuditLog } from '../audit/file-audit.ts';
import { MemoryAuditLog } from '../audit/memory-audit.ts';
import { RedisAuditLog } from './redis/redis-audit.ts';

/**
 * Which audit log, and how many events it keeps, in all and per account (default: 10,000 in
 * memory, 100,000 in a file or Redis; per account as many). The Redis kind takes a client that is already built, normally the store's, and leaves
 * it open on close.
 */
export type AuditSpec = (
  | { readonly kind: 'memory' }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'redis'; readonly client: RedisClient; readonly keyPrefix: string }
) & { readonly cap?: number; readonly accountCap?: number };

export interface AuditLogOptions {
  /** Told about stored lines or entries that are skipped because they are not events. */
  readonly logger?: EventLog;
}

/**
 * The audit log the spec names, ready to use. Async because the file kind reads its file first:
 * a file that cannot be opened fails start-up instead of every later change's audit event.
 */
export async function createAuditLog(spec: AuditSpec, options: AuditLogOptions = {}): Promise<AuditLog> {
  const cap = { ...(spec.cap === undefined ? {} : { cap: spec.cap }), ...(spec.accountCap === undefined ? {} : { accountCap: spec.accountCap }) };
  const logger = options.logger === undefined ? {} : { logger: options.logger };
  switch (spec.kind) {
    case 'memory':
      return new MemoryAuditLog(cap);
    case 'file':
      return FileAuditLog.open(spec.path, { ...cap, ...logger });
    case 'redis':
      return new RedisAuditLog(spec.client, spec.keyPrefix, { ...cap, ...logger });
  }
}
