import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import { refusal, type Refusal } from '../http/refusal.ts';
import type { EventLog } from '../observability/logger.ts';
import type { AccountRecord, GuardMode } from '../list/types.ts';
import { RECENT_CALLERS_PER_ACCOUNT } from '../store/recent-callers.ts';
import { isStoreFailure, type AccountChange, type AclStore, type AuditDescriber, type ChangeResult, type UpdateOutcome } from '../store/store.ts';
import type { Evaluator } from './evaluator.ts';
import { guarded, type LockoutWarning } from './lockout.ts';
import { settleListState, type ChangeContext } from './changes.ts';
import type { ValidationPolicy } from './validation.ts';
import { parseKeyListId } from '../list/key-list-id.ts';
import { forKeyList } from './key-changes.ts';

/** How a preview's change is dropped after it ran: a refusal no client ever sees. */
const DRY_RUN = refusal(409, 'dry_run', 'a dry run changes nothing');
/** A prepared change meeting a record that moved since it was prepared: prepared again. */
const MOVED = refusal(409, 'moved', 'the account changed while the change was prepared');
/** Preparations before a change is computed inside the atomic change after all. */
const PREPARE_ATTEMPTS = 4;

export interface ApplyOptions {
  readonly expectedVersion?: number;
  /** `strict` refuses a change that would lock out a recent caller, whatever the account says. */
  readonly guard?: GuardMode;
  readonly replace?: boolean;
  /** The API surface, for the audit trail: 'native', 'vobiz', 'voximplant'. */
  readonly via: string;
  readonly requestId?: string;
  readonly gatewayRequestId?: string;
}

export type Applied =
  | { readonly ok: true; readonly record: AccountRecord; readonly previous: AccountRecord | null; readonly warnings: readonly LockoutWarning[] }
  | { readonly ok: false; readonly refusal: Refusal };

export interface Operation {
  /** Audit action name, e.g. `entry.create`. */
  readonly action: string;
  readonly change: (ctx: ChangeContext) => AccountChange;
  /**
   * The same change computed ahead, in slices that let the event loop run (large lists), from
   * the record as read before the commit; the store takes it only if the record is still at
   * that version (a compare-and-set), else it is prepared again, and after a few tries `change`
   * runs inside the atomic change.
   */
  readonly prepare?: (ctx: ChangeContext, current: AccountRecord | null) => Promise<ChangeResult>;
  /** What the audit trail keeps of a record before and after (an entry, the list, the settings). */
  readonly snapshot: (record: AccountRecord | null) => unknown;
  /** The API key a change of the account's key registry is about, for the audit trail. */
  readonly key?: string;
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

  /** The lockout guard's judge as it is now (today's global list and defaults). */
  evaluator(): Promise<Evaluator> {
    return this.#deps.evaluator();
  }

  /**
   * What `apply` would do, without doing it: the change and the lockout guard run inside the
   * store's atomic change against the record as it is now, then the change is dropped. The
   * record returned is what would be stored (its version the one it would get); `version` is the
   * one the preview was computed from (null when the change did not run), for If-Match.
   */
  async preview(account: string, operation: Operation, options: ApplyOptions): Promise<{ readonly applied: Applied; readonly version: number | null }> {
    let seen: { result: ChangeResult; current: AccountRecord | null } | null = null;
    const { outcome, guard } = await this.#commit(account, operation, options, this.now(), (change) => (current, view) => {
      const result = change(current, view);
      if (!result.ok && result.refusal === MOVED) return result;
      seen = { result, current };
      return { ok: false, refusal: DRY_RUN };
    });
    const ran = seen as { result: ChangeResult; current: AccountRecord | null } | null;
    if (ran === null || (!outcome.ok && outcome.refusal !== DRY_RUN)) return { applied: outcome.ok ? { ok: false, refusal: DRY_RUN } : outcome, version: null };
    const version = ran.current?.version ?? 0;
    if (!ran.result.ok) return { applied: ran.result, version };
    return { applied: { ok: true, record: { ...ran.result.draft, version: version + 1 }, previous: ran.current, warnings: guard.warnings() }, version };
  }

  /**
   * The change, guarded, committed (or, through `wrap`, only run) in the store's atomic change;
   * a prepared operation is prepared from the record as read, and retried if that moves.
   */
  async #commit(account: string, operation: Operation, options: ApplyOptions, at: Date, wrap: (change: AccountChange) => AccountChange = (c) => c, describe?: AuditDescriber): Promise<{ outcome: UpdateOutcome; guard: ReturnType<typeof guarded> }> {
    const { store } = this.#deps;
    const ctx: ChangeContext = { policy: this.#deps.policy, now: at.toISOString(), replace: options.replace === true };
    // A key's list changes only while the key is registered: checked inside the same atomic change
    // (the expiry sweep may still tidy the list of a key deleted since).
    const key = parseKeyListId(account);
    const scoped = (change: AccountChange): AccountChange => (key === null || options.via === 'expiry' ? change : forKeyList(key.account, key.keyId, change));
    const [recent, evaluator] = await Promise.all([store.recentCallers(account, RECENT_CALLERS_PER_ACCOUNT), this.#deps.evaluator()]);
    const strict = options.guard === 'strict';
    for (let attempt = 0; operation.prepare !== undefined && attempt < PREPARE_ATTEMPTS; attempt++) {
      const base = await store.read(account);
      const prepared = await operation.prepare(ctx, base);
      const version = base?.version ?? 0;
      const guard = guarded(scoped(settleListState((current) => ((current?.version ?? 0) === version ? prepared : { ok: false, refusal: MOVED }))), recent, evaluator, strict);
      const outcome = await store.update(account, wrap(guard.change), options.expectedVersion, describe);
      if (outcome.ok || outcome.refusal !== MOVED) return { outcome, guard };
    }
    // The list state is settled inside the change, so it is written atomically with the entries.
    const guard = guarded(scoped(settleListState(operation.change(ctx))), recent, evaluator, strict);
    return { outcome: await store.update(account, wrap(guard.change), options.expectedVersion, describe), guard };
  }

  async apply(actor: AuditActor, account: string, operation: Operation, options: ApplyOptions): Promise<Applied> {
    const { audit, logger } = this.#deps;
    const at = this.now();
    const key = parseKeyListId(account);
    const describe: AuditDescriber = (previous, record) => ({
      at: at.toISOString(),
      actor,
      // A key's list belongs to the account's trail, naming the key.
      account: key?.account ?? account,
      ...(key !== null ? { key: key.keyId } : operation.key === undefined ? {} : { key: operation.key }),
      action: operation.action,
      version: record.version,
      before: operation.snapshot(previous),
      after: operation.snapshot(record),
      via: options.via,
      ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
      ...(options.gatewayRequestId === undefined ? {} : { gatewayRequestId: options.gatewayRequestId }),
    });
    // A store that keeps the audit trail (Redis) records the event in the change's own atomic
    // step: no acknowledged change without its event, whatever fails after the commit.
    const { outcome, guard } = await this.#commit(account, operation, options, at, undefined, audit === null ? undefined : describe);
    if (!outcome.ok) {
      // Counted when the change was at fault, not when the store was.
      if (!isStoreFailure(outcome.refusal.reason)) this.#deps.observe?.validationRefused(outcome.refusal.reason);
      return outcome;
    }
    const warnings = guard.warnings();
    this.#deps.observe?.lockoutWarnings(warnings.length);
    const keyId = key?.keyId ?? operation.key;
    logger?.info({ account: key?.account ?? account, ...(keyId === undefined ? {} : { key: keyId }), version: outcome.record.version, action: operation.action, actor: actor.name, via: options.via, warnings: warnings.length, request_id: options.requestId, gateway_request_id: options.gatewayRequestId }, 'access list changed');
    if (audit !== null && outcome.audited !== true) {
      await audit.append(describe(outcome.previous, outcome.record))
        .catch((error: unknown) => logger?.error({ err: error, account, version: outcome.record.version, action: operation.action }, 'audit event not recorded: the change itself was committed'));
    }
    return { ok: true, record: outcome.record, previous: outcome.previous, warnings };
  }
}
