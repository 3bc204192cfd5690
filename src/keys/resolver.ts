import { refusal, type Refusal } from '../http/refusal.ts';
import type { KeyLookupCounts } from '../observability/key-stats.ts';

import type { CompiledList } from '../list/compile.ts';
import type { AclStore } from '../store/store.ts';
import { indexKey, sha256Hex, type KeyDigester } from '../list/key-digest.ts';
import { keyListId } from '../list/key-list-id.ts';
import { keyTextRefused } from '../identity/api-key.ts';
import type { IntrospectionAnswer, Introspector } from './introspection.ts';

/** What a presented API key turns out to be. */
export type KeyLookup =
  /** `listId` names the key's own list (see keyListId), made once per remembered key. */
  | { readonly kind: 'registered'; readonly account: string; readonly keyId: string; readonly listId: string }
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
  /** Registered keys whose account is remembered (by the key as presented). */
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
  /** The answer while the list holds the key enabled, made once. */
  readonly found: KeyLookup;
  /**
   * The compilation of the account's list the pointer was last checked against (0: none), and the
   * answer it gave: compiled lists are never changed in place, so while the cache holds the same
   * compilation the answer stands without reading the key's entry again. A number, not the list:
   * a pointer must not keep alive a list the cache has let go (its byte bound would not hold).
   */
  checked: number;
  answer: KeyLookup;
}

/**
 * Characters of remembered keys per remembered key allowed on average: keys are at most
 * KEY_MAX_LENGTH long, so the count alone would not bound the memory they take.
 */
const AVERAGE_KEY_CHARS = 128;

/**
 * Which account (and key) a presented API key belongs to. A key seen before costs one map lookup
 * and a check that the account's compiled list (kept fresh by the policy cache: change notices,
 * sweeps, last-known-good) still holds it; a disabled key is refused whatever the pointer says.
 *
 * Registered keys that have been used are remembered by the key itself, as presented: hashing it
 * first (an HMAC-SHA-256, about 2 µs) would cost more than the rest of the decision. Only keys the
 * store's index vouched for are held (bounded in count and in characters); a made-up key is
 * remembered by its HMAC alone, so a caller sending random keys fills nothing with its text. The
 * process holds those keys in memory as it holds every request's headers; the store keeps only
 * their digests.
 *
 * A key not known here is looked up in the store's key index (concurrent lookups of one digest
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
  /** Registered keys, by the key as presented, in the order they were found (the oldest goes first). */
  readonly #pointers = new Map<string, Pointer>();
  #pointerChars = 0;
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

  /**
   * Synchronous when the key's account and list are cached (or the key is known to be unregistered
   * without introspection). `client`: the caller's address, for introspection's per-client share
   * (only read on a miss); `source`: where the request carried the key, for a refusal.
   */
  resolve(key: string, client?: string, source = 'the request'): KeyLookup | Promise<KeyLookup> {
    const pointer = this.#pointers.get(key);
    if (pointer !== undefined) {
      const list = this.#lists.peek(pointer.account);
      if (list !== undefined) {
        if (list !== null) {
          if (list.compilation === pointer.checked) {
            this.counts.cached++;
            return this.#counted(pointer.answer);
          }
          const found = this.#check(pointer, list);
          if (found !== null) {
            pointer.checked = list.compilation;
            pointer.answer = found;
            this.counts.cached++;
            return this.#counted(found);
          }
        }
        // The key left the account's list (deleted, or moved by deletion and registration): ask again.
        this.#forget(key);
      }
    }
    // Only remembered keys skip this: each was judged before it was remembered.
    const unreadable = keyTextRefused(key, source);
    if (unreadable !== null) return unreadable;
    const digest = this.#digester.hmac(key);
    if (this.#negatives.has(digest)) return this.#unregistered(key, digest, client);
    return this.#locate(key, digest, client);
  }

  /** Entries held, for the metrics. */
  get size(): { readonly keys: number; readonly unknown: number } {
    return { keys: this.#pointers.size, unknown: this.#negatives.size };
  }

  close(): void {
    this.#unsubscribe();
    this.#pointers.clear();
    this.#pointerChars = 0;
    this.#negatives.clear();
  }

  /** The lookup a pointer gives against the account's list; null when the list no longer holds the key. */
  #check(pointer: Pointer, list: CompiledList | null): KeyLookup | null {
    const key = list?.keys?.get(pointer.keyId);
    if (key === undefined || key.indexKey !== pointer.indexKey) return null;
    return key.enabled ? pointer.found : DISABLED;
  }

  #counted(found: KeyLookup): KeyLookup {
    if (found === DISABLED) this.counts.disabled++;
    return found;
  }

  #locate(key: string, digest: string, client: string | undefined): Promise<KeyLookup> {
    const pending = this.#locating.get(digest);
    if (pending !== undefined) return pending;
    const lookup = this.#find(key, digest, client).finally(() => this.#locating.delete(digest));
    this.#locating.set(digest, lookup);
    return lookup;
  }

  async #find(key: string, digest: string, client: string | undefined): Promise<KeyLookup> {
    this.counts.located++;
    const pointers = await this.#store.findKeys([indexKey('hmac-sha256', digest), indexKey('sha256', sha256Hex(key))]);
    const held: { pointer: Pointer; found: KeyLookup }[] = [];
    for (const stored of pointers) {
      const registered: KeyLookup = { kind: 'registered', account: stored.account, keyId: stored.keyId, listId: keyListId(stored.account, stored.keyId) };
      const pointer: Pointer = { account: stored.account, keyId: stored.keyId, indexKey: stored.indexKey, found: registered, checked: 0, answer: registered };
      const found = await this.#verify(pointer);
      if (found !== null) held.push({ pointer, found });
    }
    if (held.length > 1) {
      this.counts.conflicting++;
      return CONFLICTING;
    }
    const [first] = held;
    if (first === undefined) {
      this.#negatives.delete(digest);
      this.#negatives.add(digest);
      while (this.#negatives.size > this.#limits.maxNegativeEntries) this.#negatives.delete(this.#negatives.values().next().value!);
      return this.#unregistered(key, digest, client);
    }
    this.#negatives.delete(digest);
    this.#remember(key, first.pointer);
    return this.#counted(first.found);
  }

  /**
   * A pointer from the index, checked against the account's list: the cached one, else (it may
   * predate the key's registration) one read now.
   */
  async #verify(pointer: Pointer): Promise<KeyLookup | null> {
    const cached = this.#lists.peek(pointer.account);
    const first = cached === undefined ? null : this.#check(pointer, cached);
    if (first !== null) return first;
    return this.#check(pointer, await this.#lists.load(pointer.account));
  }

  #unregistered(key: string, digest: string, client: string | undefined): KeyLookup | Promise<KeyLookup> {
    if (this.#introspector === null) {
      this.counts.unknown++;
      return UNKNOWN;
    }
    const answer = this.#introspector.lookup(key, digest, client);
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

  /** A key the index vouched for, newest last; the oldest go while over the count or the characters allowed. */
  #remember(key: string, pointer: Pointer): void {
    this.#forget(key);
    this.#pointers.set(key, pointer);
    this.#pointerChars += key.length;
    const maxChars = this.#limits.maxEntries * AVERAGE_KEY_CHARS;
    while (this.#pointers.size > this.#limits.maxEntries || this.#pointerChars > maxChars) this.#forget(this.#pointers.keys().next().value!);
  }

  #forget(key: string): void {
    if (this.#pointers.delete(key)) this.#pointerChars -= key.length;
  }
}
