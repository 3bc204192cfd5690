import { refusal, type Refusal } from '../http/refusal.ts';
import type { KeyLookupCounts } from '../observability/key-stats.ts';

import type { CompiledList } from '../list/compile.ts';
import type { AclStore, KeyPointer } from '../store/store.ts';
import { indexKey, sha256Hex, type KeyDigester } from '../list/key-digest.ts';
import type { IntrospectionAnswer, Introspector } from './introspection.ts';

/** What a presented API key turns out to be. */
export type KeyLookup =
  | { readonly kind: 'registered'; readonly account: string; readonly keyId: string }
  | { readonly kind: 'introspected'; readonly account: string }
  | { readonly kind: 'unknown' }
  /** Introspection could not be asked, and is configured to pass such requests as anonymous. */
  | { readonly kind: 'unchecked'; readonly refusal: Refusal }
  | { readonly kind: 'refused'; readonly refusal: Refusal };

/** The compiled lists the resolver checks a pointer against: the policy cache. */
export interface ListSource {
  peek(account: string): CompiledList | null | undefined;
  get(account: string): CompiledList | null | Promise<CompiledList | null>;
  /** A fresh read, for a list that may predate the key. */
  load(account: string): Promise<CompiledList | null>;
}

export interface KeyCacheLimits {
  /** Keys whose account is remembered (registered, by digest). */
  readonly maxEntries: number;
  /** Digests remembered as registered nowhere: made-up keys churn these, never the others. */
  readonly maxNegativeEntries: number;
}

export const DEFAULT_KEY_CACHE_LIMITS: KeyCacheLimits = { maxEntries: 100_000, maxNegativeEntries: 10_000 };

const UNKNOWN: KeyLookup = { kind: 'unknown' };
const DISABLED: KeyLookup = { kind: 'refused', refusal: refusal(401, 'key_disabled', 'this API key is disabled; ask the account\'s administrator to enable it, or use another key') };
const CONFLICTING: KeyLookup = { kind: 'refused', refusal: refusal(400, 'ambiguous_credentials', 'this API key is registered to two accounts (once as the key, once by its SHA-256), so the gateway cannot tell whose it is; an administrator must delete one registration') };

interface Pointer {
  readonly account: string;
  readonly keyId: string;
  readonly indexKey: string;
}

/**
 * Which account (and key) a presented API key belongs to. One HMAC per request is the whole
 * cost when the key's account is known here: the digest names a pointer, and the pointer is
 * trusted only while the account's compiled list (kept fresh by the policy cache: change notices,
 * sweeps, last-known-good) still holds the key; a disabled key is refused whatever the pointer.
 *
 * The raw key is held nowhere: not as a cache key (a map from presented key to digest would keep
 * every key a caller ever sent, valid or made up, in memory), only for the length of the request
 * or of one store lookup. Both maps are bounded and keyed by the HMAC, which without the secret
 * says nothing of the key.
 *
 * A digest not known here is looked up in the store's key index (concurrent lookups of one digest
 * share one read), by its HMAC and by its bare SHA-256 (keys registered by hash); a digest the
 * index does not hold is remembered as such (bounded, forgotten on any change notice, since a
 * registration is one) and then goes to introspection, when configured.
 */
export class KeyResolver {
  readonly #digester: KeyDigester;
  readonly #store: Pick<AclStore, 'findKeys' | 'subscribe' | 'onStateChange'>;
  readonly #lists: ListSource;
  readonly #introspector: Introspector | null;
  readonly #limits: KeyCacheLimits;
  readonly #pointers = new Map<string, Pointer>();
  readonly #negatives = new Set<string>();
  readonly #locating = new Map<string, Promise<KeyLookup>>();
  readonly #unsubscribe: () => void;
  readonly counts: KeyLookupCounts = { cached: 0, located: 0, unknown: 0, disabled: 0, introspected: 0, conflicting: 0 };

  constructor(digester: KeyDigester, store: Pick<AclStore, 'findKeys' | 'subscribe' | 'onStateChange'>, lists: ListSource, introspector: Introspector | null = null, limits: KeyCacheLimits = DEFAULT_KEY_CACHE_LIMITS) {
    this.#digester = digester;
    this.#store = store;
    this.#lists = lists;
    this.#introspector = introspector;
    this.#limits = limits;
    const forgetUnknown = (): void => this.#negatives.clear();
    const unsubscribe = store.subscribe(forgetUnknown);
    const unwatch = store.onStateChange((state) => {
      if (state === 'up') forgetUnknown();
    });
    this.#unsubscribe = () => {
      unsubscribe();
      unwatch();
    };
  }

  /** Synchronous when the key's account and list are cached (or the key is known to be unregistered without introspection). */
  resolve(key: string): KeyLookup | Promise<KeyLookup> {
    const digest = this.#digester.hmac(key);
    const pointer = this.#pointers.get(digest);
    if (pointer !== undefined) {
      const list = this.#lists.peek(pointer.account);
      if (list !== undefined) {
        const found = this.#check(pointer, list);
        if (found !== null) {
          this.counts.cached++;
          return this.#counted(found);
        }
        // The key left the account's list (deleted, or moved by deletion and registration): ask again.
        this.#pointers.delete(digest);
      }
    } else if (this.#negatives.has(digest)) {
      return this.#unregistered(key, digest);
    }
    return this.#locate(key, digest);
  }

  /** Entries held, for the metrics. */
  get size(): { readonly keys: number; readonly unknown: number } {
    return { keys: this.#pointers.size, unknown: this.#negatives.size };
  }

  close(): void {
    this.#unsubscribe();
    this.#pointers.clear();
    this.#negatives.clear();
  }

  /** The lookup a pointer gives against the account's list; null when the list no longer holds the key. */
  #check(pointer: Pointer, list: CompiledList | null): KeyLookup | null {
    const key = list?.keys?.get(pointer.keyId);
    if (key === undefined || key.indexKey !== pointer.indexKey) return null;
    return key.enabled ? { kind: 'registered', account: pointer.account, keyId: pointer.keyId } : DISABLED;
  }

  #counted(found: KeyLookup): KeyLookup {
    if (found === DISABLED) this.counts.disabled++;
    return found;
  }

  #locate(key: string, digest: string): Promise<KeyLookup> {
    const pending = this.#locating.get(digest);
    if (pending !== undefined) return pending;
    const lookup = this.#find(key, digest).finally(() => this.#locating.delete(digest));
    this.#locating.set(digest, lookup);
    return lookup;
  }

  async #find(key: string, digest: string): Promise<KeyLookup> {
    this.counts.located++;
    const pointers = await this.#store.findKeys([indexKey('hmac-sha256', digest), indexKey('sha256', sha256Hex(key))]);
    const held: { pointer: Pointer; found: KeyLookup }[] = [];
    for (const pointer of pointers) {
      const found = await this.#verify(pointer);
      if (found !== null) held.push({ pointer, found });
    }
    if (held.length > 1) {
      this.counts.conflicting++;
      return CONFLICTING;
    }
    const [first] = held;
    if (first === undefined) {
      this.#remember(this.#negatives, digest, this.#limits.maxNegativeEntries);
      return this.#unregistered(key, digest);
    }
    this.#negatives.delete(digest);
    this.#pointers.delete(digest);
    this.#pointers.set(digest, first.pointer);
    while (this.#pointers.size > this.#limits.maxEntries) this.#pointers.delete(this.#pointers.keys().next().value!);
    return this.#counted(first.found);
  }

  /**
   * A pointer from the index, checked against the account's list: the cached one, else (it may
   * predate the key's registration) one read now.
   */
  async #verify(stored: KeyPointer): Promise<KeyLookup | null> {
    const pointer: Pointer = { account: stored.account, keyId: stored.keyId, indexKey: stored.indexKey };
    const cached = this.#lists.peek(pointer.account);
    const first = cached === undefined ? null : this.#check(pointer, cached);
    if (first !== null) return first;
    return this.#check(pointer, await this.#lists.load(pointer.account));
  }

  #unregistered(key: string, digest: string): KeyLookup | Promise<KeyLookup> {
    if (this.#introspector === null) {
      this.counts.unknown++;
      return UNKNOWN;
    }
    const answer = this.#introspector.lookup(key, digest);
    const settle = (answer: IntrospectionAnswer): KeyLookup => {
      switch (answer.kind) {
        case 'active':
          this.counts.introspected++;
          return { kind: 'introspected', account: answer.account };
        case 'inactive':
          this.counts.unknown++;
          return UNKNOWN;
        case 'refused':
          return answer;
        case 'unavailable':
          return answer.passAnonymous ? { kind: 'unchecked', refusal: answer.refusal } : { kind: 'refused', refusal: answer.refusal };
      }
    };
    return answer instanceof Promise ? answer.then(settle) : settle(answer);
  }

  #remember(set: Set<string>, digest: string, max: number): void {
    set.delete(digest);
    set.add(digest);
    while (set.size > max) set.delete(set.values().next().value!);
  }
}
