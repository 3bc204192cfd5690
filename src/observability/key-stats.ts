/*
 * What the API key resolver and token introspection (src/keys/) report to the metrics, defined
 * here, below both, so the metrics read them without knowing the key modules.
 */

/** Lookups by how they were answered, counted for the metrics (read at scrape time). */
export interface KeyLookupCounts {
  /** The key's account was known here: no store read. */
  cached: number;
  /** The store's key index was read. */
  located: number;
  unknown: number;
  disabled: number;
  introspected: number;
  /** Registered to two accounts (once by value, once by hash): refused. */
  conflicting: number;
}

/** What an introspection call did, for the metrics. */
export type IntrospectionOutcome = 'active' | 'inactive' | 'no_account' | 'error' | 'timeout' | 'busy' | 'status';

export interface IntrospectionObserver {
  called(outcome: IntrospectionOutcome, seconds: number): void;
}
