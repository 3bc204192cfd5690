import { refusal, refused, type Refused } from '../http/refusal.ts';
import type { PolicyCache } from './cache.ts';
import type { CompiledList } from '../list/compile.ts';
import type { AccountPolicy, PolicyDefaults } from '../list/decide.ts';
import { inheritedSettings, MAX_PARENT_DEPTH } from '../list/inherit.ts';
import { GLOBAL_ACCOUNT } from '../list/types.ts';

/** The policy of an account (carrying `ok` itself: the request path allocates no wrapper), or why there is none. */
export type PolicyLookup = ({ readonly ok: true } & AccountPolicy) | Refused;

/**
 * Follows an account's parent chain through the cache. Synchronous when every list on the chain
 * is cached (the common case), so a warm request never waits on a promise.
 */
export class PolicyResolver {
  readonly #cache: PolicyCache;
  readonly #defaults: PolicyDefaults;

  constructor(cache: PolicyCache, defaults: PolicyDefaults) {
    this.#cache = cache;
    this.#defaults = defaults;
  }

  global(): CompiledList | null | Promise<CompiledList | null> {
    return this.#cache.get(GLOBAL_ACCOUNT);
  }

  /** An account's own list (null: it has no record), cached; its parent chain is not followed. */
  list(account: string): CompiledList | null | Promise<CompiledList | null> {
    return this.#cache.get(account);
  }

  /** The own list of an account's API key (null: none), cached like an account's; `listId` is keyListId(account, key id). */
  keyList(listId: string): CompiledList | null | Promise<CompiledList | null> {
    return this.#cache.get(listId);
  }

  resolve(account: string): PolicyLookup | Promise<PolicyLookup> {
    const chain: (CompiledList | null)[] = [];
    let next: string | undefined = account;
    while (next !== undefined) {
      const cached = this.#cache.peek(next);
      if (cached === undefined) return this.#resolveAsync(account, chain, next);
      chain.push(cached);
      if (chain.length > MAX_PARENT_DEPTH + 1) return tooDeep(account);
      next = cached?.settings.parent;
    }
    return this.#combine(chain);
  }

  /** Goes on from the first list that was not cached (already counted as a miss: loaded, not peeked again). */
  async #resolveAsync(account: string, chain: (CompiledList | null)[], missing: string): Promise<PolicyLookup> {
    let next: string | undefined = missing;
    let load = true;
    while (next !== undefined) {
      const list: CompiledList | null = await (load ? this.#cache.load(next) : this.#cache.get(next));
      load = false;
      chain.push(list);
      if (chain.length > MAX_PARENT_DEPTH + 1) return tooDeep(account);
      next = list?.settings.parent;
    }
    return this.#combine(chain);
  }

  /** chain[0] is the account, the last element the root whose list is enforced. */
  #combine(chain: readonly (CompiledList | null)[]): PolicyLookup {
    return {
      ok: true,
      own: chain[0] ?? null,
      list: chain[chain.length - 1] ?? null,
      listKind: chain.length > 1 ? 'parent' : 'account',
      ...inheritedSettings(chain, this.#defaults),
    };
  }
}

function tooDeep(account: string): Refused {
  return refused(refusal(500, 'policy_error', `account ${account} has more than ${MAX_PARENT_DEPTH} ancestors (or a parent cycle); fix its parent setting`));
}
