import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { Refusal } from '../http/refusal.ts';
import type { EventLog } from '../observability/logger.ts';
import type { AccountRecord, GuardMode } from '../policy/types.ts';
import { RECENT_CALLERS_PER_ACCOUNT } from '../store/recent-callers.ts';
import type { AccountChange, AclStore } from '../store/store.ts';
import type { ChangeContext } from './changes.ts';
import type { Evaluator } from './evaluator.ts';
import { guarded, type LockoutWarning } from './lockout.ts';
import type { ValidationPolicy } from './validation.ts';

export interface ApplyOptions {
  readonly expectedVersion?: number;
  /** `strict` refuses a change that would lock out a recent caller, whatever the account says. */
  readonly guard?: GuardMode;
  readonly replace?: boolean;
  /** The API surface, for the audit trail: 'native', 'vobiz', 'voximplant'. */
  readonly via: string;
  readonly requestId?: string;
}

export type Applied =
  | { readonly ok: true; readonly record: AccountRecord; readonly previous: AccountRecord | null; readonly warnings: readonly LockoutWarning[] }
  | { readonly ok: false; readonly refusal: Refusal };

export interface Operation {
  /** Audit action name, e.g. `entry.create`. */
  readonly action: string;
  readonly change: (ctx: ChangeContext) => AccountChange;
  /** What the audit trail keeps of a record before and after (an entry, the list, the settings). */
  readonly snapshot: (record: AccountRecord | null) => unknown;
}

export interface AclServiceDeps {
  readonly store: AclStore;
  readonly policy: ValidationPolicy;
  readonly audit: AuditLog | null;
  /** The decision function for the lockout guard, built from the current global list. */
  readonly evaluator: () => Promise<Evaluator>;
  readonly now?: () => Date;
  readonly logger?: EventLog;
  /** Counts outcomes for the metrics. */
  readonly observe?: {
    validationRefused(reason: string): void;
    lockoutWarnings(count: number): void;
  };
}

/**
 * The one core behind every management surface: validation (in the change functions), the
 * lockout guard, the commit, and the audit trail. Adapters only translate shapes.
 */
export class AclService {
  readonly #deps: AclServiceDeps;

  constructor(deps: AclServiceDeps) {
    this.#deps = deps;
  }

  get store(): AclStore {
    return this.#deps.store;
  }

  get policy(): ValidationPolicy {
    return this.#deps.policy;
  }

  now(): Date {
    return this.#deps.now?.() ?? new Date();
  }

  async apply(actor: AuditActor, account: string, operation: Operation, options: ApplyOptions): Promise<Applied> {
    const { store, audit, logger } = this.#deps;
    const at = this.now();
    const ctx: ChangeContext = { policy: this.#deps.policy, now: at.toISOString(), replace: options.replace === true };
    const [recent, evaluate] = await Promise.all([store.recentCallers(account, RECENT_CALLERS_PER_ACCOUNT), this.#deps.evaluator()]);
    const guard = guarded(operation.change(ctx), recent, evaluate, options.guard === 'strict');
    const outcome = await store.update(account, guard.change, options.expectedVersion);
    if (!outcome.ok) {
      this.#deps.observe?.validationRefused(outcome.refusal.reason);
      return outcome;
    }
    const warnings = guard.warnings();
    this.#deps.observe?.lockoutWarnings(warnings.length);
    logger?.info({ account, version: outcome.record.version, action: operation.action, actor: actor.name, via: options.via, warnings: warnings.length }, 'access list changed');
    if (audit !== null) {
      await audit.append({
        at: at.toISOString(),
        actor,
        account,
        action: operation.action,
        version: outcome.record.version,
        before: operation.snapshot(outcome.previous),
        after: operation.snapshot(outcome.record),
        via: options.via,
        ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
      }).catch((error: unknown) => logger?.error({ err: error, account, version: outcome.record.version, action: operation.action }, 'audit event not recorded: the change itself was committed'));
    }
    return { ok: true, record: outcome.record, previous: outcome.previous, warnings };
  }
}
