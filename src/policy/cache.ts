import type { AclStore } from '../store/store.ts';
import { compileList, type CompiledList } from './compile.ts';

/**
 * Compiled lists by account, kept fresh by the store's change notifications. A cached `null`
 * means "this account has no record" (negative caching), invalidated like any other entry.
 *
 * `peek` is synchronous so the request path only waits on I/O for an account it has not seen
 * since its last change; concurrent misses for one account share a single store read.
 */
export class PolicyCache {
  readonly #store: AclStore;
  readonly #now: () => number;
  readonly #lists = new Map<string, CompiledList | null>();
  readonly #loading = new Map<string, Promise<CompiledList | null>>();
  /** Bumped on every invalidation, so a read that started before a change is never cached after it. */
  readonly #generation = new Map<string, number>();
  readonly #unsubscribe: () => void;

  constructor(store: AclStore, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
    this.#unsubscribe = store.subscribe((account) => this.invalidate(account));
  }

  /** The compiled list, `null` when the account has none, `undefined` when not cached (or stale). */
  peek(account: string): CompiledList | null | undefined {
    const list = this.#lists.get(account);
    if (list && list.validUntil <= this.#now()) {
      // An entry expired since compilation: recompile rather than enforce it past its time.
      this.invalidate(account);
      return undefined;
    }
    return list;
  }

  get(account: string): CompiledList | null | Promise<CompiledList | null> {
    const cached = this.peek(account);
    return cached === undefined ? this.load(account) : cached;
  }

  load(account: string): Promise<CompiledList | null> {
    const pending = this.#loading.get(account);
    if (pending) return pending;
    const generation = this.#generation.get(account) ?? 0;
    const promise = this.#store.read(account).then(
      (record) => {
        const list = record ? compileList(record, this.#now()) : null;
        if ((this.#generation.get(account) ?? 0) === generation) {
          this.#lists.set(account, list);
          this.#loading.delete(account);
        }
        return list;
      },
      (error: unknown) => {
        if ((this.#generation.get(account) ?? 0) === generation) this.#loading.delete(account);
        throw error;
      },
    );
    this.#loading.set(account, promise);
    return promise;
  }

  invalidate(account: string): void {
    this.#generation.set(account, (this.#generation.get(account) ?? 0) + 1);
    this.#lists.delete(account);
    this.#loading.delete(account);
  }

  get size(): number {
    return this.#lists.size;
  }

  close(): void {
    this.#unsubscribe();
    this.#lists.clear();
    this.#loading.clear();
  }
}
