import type { AccountRecord } from '../../src/list/types.ts';
import { childrenByParent, type StoreView } from '../../src/store/store.ts';

/** A view of other accounts for change functions run outside a store: these records, nothing else. */
export function viewOf(...records: readonly AccountRecord[]): StoreView {
  const byAccount = new Map(records.map((r) => [r.account, r]));
  const children = childrenByParent(records.flatMap((r) => (r.settings.parent === undefined ? [] : [[r.account, r.settings.parent] as const])));
  return { read: (account) => byAccount.get(account) ?? null, children: (account) => children.get(account) ?? [] };
}

export const NO_OTHERS: StoreView = viewOf();
