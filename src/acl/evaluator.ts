import type { IpAddress } from '../ip/address.ts';
import { compileList, type CompiledList } from '../policy/compile.ts';
import { decideForAccount, type PolicyDefaults } from '../policy/decide.ts';
import type { AccountDraft } from '../policy/types.ts';
import type { Evaluate } from './lockout.ts';

/**
 * The lockout guard's view of a record: what the proxy would decide for an IP if the account's
 * record were this one, with today's global list and defaults. Subaccounts are judged by their
 * parent's list, which an edit of the subaccount cannot change: they never warn.
 */
export function createEvaluator(global: CompiledList | null, defaults: PolicyDefaults, nowMs: number): Evaluate {
  const compiled = new WeakMap<AccountDraft, CompiledList>();
  return (record, ip: IpAddress) => {
    if (record !== null && record.settings.parent !== undefined) return 'allow';
    let list: CompiledList | null = null;
    if (record !== null) {
      list = compiled.get(record) ?? compileList({ ...record, version: 0 }, nowMs);
      compiled.set(record, list);
    }
    return decideForAccount(ip.family, ip.words, global, {
      own: list,
      list,
      listKind: 'account',
      mode: record?.settings.mode ?? defaults.mode,
      default: record?.settings.default ?? defaults.default,
    }).outcome;
  };
}
