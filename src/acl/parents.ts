import { refusal, type Refusal } from '../http/refusal.ts';
import { MAX_PARENT_DEPTH } from '../list/inherit.ts';
import type { StoreView } from '../store/store.ts';

/**
 * Whether `account` may become a subaccount of `parent`, judged on the whole graph as the store
 * holds it inside the change: the parent must exist (a parent without a record would leave the
 * account with no list at all), and the account's new ancestors plus the deepest chain of
 * subaccounts below it must stay within MAX_PARENT_DEPTH, without a cycle. Deeper chains and
 * cycles are what the request path refuses with 500, so they are never written.
 */
export function checkParent(account: string, parent: string, view: StoreView): Refusal | null {
  if (parent === account) return invalid('an account cannot be its own parent');
  const ancestors: string[] = [];
  for (let cursor: string | undefined = parent; cursor !== undefined;) {
    if (cursor === account) return invalid(`parent ${parent} would create a cycle: ${[account, ...ancestors, account].join(' → ')}`);
    const record = view.read(cursor);
    if (record === null) {
      return cursor === parent
        ? refusal(409, 'parent_not_found', `account ${parent} has no record, so ${account} would inherit no list at all and its own would stop applying: create ${parent} first (PUT /v1/accounts/${parent}), then set the parent`)
        : refusal(409, 'parent_not_found', `account ${cursor}, an ancestor of ${parent}, has no record, so ${account} would inherit no list at all: fix ${parent}'s chain first`);
    }
    ancestors.push(cursor);
    if (ancestors.length > MAX_PARENT_DEPTH) return invalid(`parent ${parent} would give ${account} more than ${MAX_PARENT_DEPTH} ancestors (${[...ancestors.slice(0, MAX_PARENT_DEPTH)].join(' → ')} → …)`);
    cursor = record.settings.parent;
  }
  const below = levelsBelow(account, view, MAX_PARENT_DEPTH - ancestors.length);
  if (below.cycle !== null) return invalid(`the subaccounts of ${account} already form a cycle through ${below.cycle}: fix that first`);
  if (ancestors.length + below.levels > MAX_PARENT_DEPTH) {
    return invalid(`parent ${parent} would give ${below.deepest} ${ancestors.length + below.levels} ancestors (${account} has subaccounts ${below.levels} level${below.levels === 1 ? '' : 's'} deep, under ${parent}'s ${ancestors.length - 1}); at most ${MAX_PARENT_DEPTH} are allowed`);
  }
  return null;
}

/**
 * How many levels of subaccounts hang below `account` (0: none), looking at most `limit` + 1
 * levels down; the deepest one found, and any account met twice (a cycle written before these
 * checks existed).
 */
function levelsBelow(account: string, view: StoreView, limit: number): { levels: number; deepest: string; cycle: string | null } {
  const seen = new Set([account]);
  let level = [account];
  let levels = 0;
  let deepest = account;
  while (level.length > 0 && levels <= limit) {
    const next: string[] = [];
    for (const node of level) {
      for (const child of view.children(node)) {
        if (seen.has(child)) return { levels, deepest, cycle: child };
        seen.add(child);
        next.push(child);
      }
    }
    if (next.length === 0) break;
    levels++;
    deepest = next[0]!;
    level = next;
  }
  return { levels, deepest, cycle: null };
}

function invalid(message: string): Refusal {
  return refusal(400, 'invalid_parent', message);
}
