import type { IpAddress } from '../ip/address.ts';
import { compileList, type CompiledList } from '../list/compile.ts';
import { isRestricted } from '../list/list-state.ts';
import { decideForAccount, decideForKey, type Outcome, type PolicyDefaults } from '../list/decide.ts';
import { parseKeyListId } from '../list/key-list-id.ts';
import { inheritedSettings, MAX_PARENT_DEPTH } from '../list/inherit.ts';
import type { AccountDraft, DefaultPolicy, Mode } from '../list/types.ts';
import type { StoreView } from '../store/store.ts';

/** What applies to an account, its parent chain followed: the lockout guard's view of a record. */
export interface Effective {
  readonly mode: Mode;
  readonly default: DefaultPolicy;
  /** The record whose list is enforced: the chain's root (null when it has no record). */
  readonly root: AccountDraft | null;
  readonly inherited: boolean;
  /** A chain too deep or with a cycle: the request path refuses every caller. */
  readonly broken: boolean;
  /**
   * `root` is an API key's own list (its mode the account's): judged as the request path judges a
   * key's list once the account's has let the caller through.
   */
  readonly key: boolean;
}

export interface Evaluator {
  /** What would apply to the account if its record were `record`, the others as `view` has them. */
  effective(record: AccountDraft | null, view: StoreView): Effective;
  /** What the gateway would decide for a caller at `ip` (the global list first, as on the request path). */
  decide(effective: Effective, ip: IpAddress): Outcome;
  /** Whether anyone at all is refused (an enforced list that restricts, or a closed default). */
  restricts(effective: Effective): boolean;
  /**
   * When the account's own list, enforced, would start refusing every caller because its last
   * allow entries in force are all temporary: the latest of their expiries (epoch ms), else null.
   */
  emptiesAt(effective: Effective): number | null;
}

/**
 * The lockout guard's judge, built from today's global list and defaults: the same chain rules
 * (inheritedSettings, MAX_PARENT_DEPTH) and decision function as the request path.
 */
export function createEvaluator(global: CompiledList | null, defaults: PolicyDefaults, nowMs: number): Evaluator {
  const compiled = new WeakMap<AccountDraft, CompiledList>();
  const compile = (record: AccountDraft): CompiledList => {
    let list = compiled.get(record);
    if (list === undefined) {
      list = compileList({ ...record, version: 0 }, nowMs);
      compiled.set(record, list);
    }
    return list;
  };
  const accountEffective = (record: AccountDraft | null, view: StoreView): Effective => {
    const chain: (AccountDraft | null)[] = [record];
    for (let parent = record?.settings.parent; parent !== undefined;) {
      if (chain.length > MAX_PARENT_DEPTH) return { ...inheritedSettings(chain, defaults), root: null, inherited: true, broken: true, key: false };
      const next = view.read(parent);
      chain.push(next);
      parent = next?.settings.parent;
    }
    return { ...inheritedSettings(chain, defaults), root: chain[chain.length - 1] ?? null, inherited: chain.length > 1, broken: false, key: false };
  };
  return {
    effective(record, view) {
      const key = record === null ? null : parseKeyListId(record.account);
      if (key === null) return accountEffective(record, view);
      // A key's list under its account's mode; a key list without allow entries restricts nothing by itself.
      const owner = accountEffective(view.read(key.account), view);
      return { mode: owner.mode, default: 'open', root: record, inherited: false, broken: owner.broken, key: true };
    },
    decide(effective, ip) {
      if (effective.broken) return 'deny';
      const list = effective.root === null ? null : compile(effective.root);
      if (effective.key) {
        const decision = decideForKey(ip.family, ip.words, global, { own: null, list: null, listKind: 'account', mode: effective.mode, default: 'open' }, list);
        return decision.outcome;
      }
      return decideForAccount(ip.family, ip.words, global, { own: list, list, listKind: effective.inherited ? 'parent' : 'account', mode: effective.mode, default: effective.default }).outcome;
    },
    restricts(effective) {
      if (effective.broken) return true;
      if (effective.mode !== 'enforce') return false;
      return effective.default === 'closed' || (effective.root !== null && isRestricted(effective.root.settings, effective.root.entries));
    },
    emptiesAt(effective) {
      if (effective.broken || effective.inherited || effective.mode !== 'enforce' || effective.root === null) return null;
      let last = 0;
      for (const e of effective.root.entries) {
        if (!e.enabled || e.action !== 'allow') continue;
        if (e.expiresAt === undefined) return null;
        const at = Date.parse(e.expiresAt);
        if (at > nowMs && at > last) last = at;
      }
      return last > 0 ? last : null;
    },
  };
}
