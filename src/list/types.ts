/**
 * The policy model: what an account's IP access list is, as stored and as served by the admin API.
 * Stores persist these records; the request path only ever sees them compiled (compile.ts).
 */

import type { Action } from '../ip/trie.ts';

export type { Action };
export type Mode = 'enforce' | 'report-only' | 'off';
export type DefaultPolicy = 'open' | 'closed';

export interface AclEntry {
  /** Stable id, unique within the account (e.g. `ipacl_...`). */
  readonly id: string;
  /** The rule exactly as entered (`192.168.10.10-20`), shown back to the user. */
  readonly ipAddress: string;
  /** What the rule became: the minimal exact list of CIDRs, canonical text. */
  readonly cidrs: readonly string[];
  readonly action: Action;
  readonly description: string;
  readonly enabled: boolean;
  /** ISO 8601 UTC timestamps. */
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly expiresAt?: string;
}

/**
 * Per-account settings. `mode` and `default` are optional: unset means "inherit" (from the parent
 * for a subaccount, then from the gateway's configuration), so changing a global default reaches
 * every account that never chose for itself.
 */
export interface AccountSettings {
  /** A subaccount is checked against its parent's list and has none of its own. */
  readonly parent?: string;
  readonly mode?: Mode;
  /** What an account with no enabled allow entry does: `open` forwards, `closed` refuses. */
  readonly default?: DefaultPolicy;
  /** Most entries this account may hold; unset: the gateway's `validation.maxEntries`. */
  readonly maxEntries?: number;
  /** Refuse IPv6 entries for this account even where the gateway accepts them. */
  readonly ipv4Only?: boolean;
  /** `strict` refuses changes that would lock out a recently seen caller; `warn` only reports them. */
  readonly guard?: GuardMode;
  /**
   * The account has had an allow list in force: written by the change that first gives it an
   * enabled allow entry, in the same atomic change, and kept until a settings change opens the
   * account (`false`). With no allow entry left in force (expired, disabled, deleted) a restricted
   * account refuses every caller (`list_empty`): a list never opens by itself. See list-state.ts.
   */
  readonly restricted?: boolean;
}

export type GuardMode = 'warn' | 'strict';

export interface AccountRecord {
  readonly account: string;
  /** Grows by one with every committed change; the admin API's ETag. */
  readonly version: number;
  readonly settings: AccountSettings;
  readonly entries: readonly AclEntry[];
  /**
   * The account's registered API keys (absent: none). Each key's own list is a record of its own,
   * under keyListId(account, key.id) (src/list/key-list-id.ts).
   */
  readonly keys?: readonly ApiKeyRecord[];
}

/**
 * How a key's digest was made: `hmac-sha256` keyed by the deployment's key secret (the key was
 * registered as clients send it), or a bare `sha256` (registered by hash, `key_sha256`).
 */
export type KeyHash = 'hmac-sha256' | 'sha256';

/** A registered API key: never the key itself, only its digest. */
export interface ApiKeyRecord {
  /** Stable id, unique in the deployment (`key_...`). */
  readonly id: string;
  readonly name: string;
  readonly hash: KeyHash;
  /** The digest, 64 lower-case hex digits. */
  readonly digest: string;
  /**
   * HMAC-SHA-256 of the key's SHA-256 under the key secret (64 hex digits): the same whether the
   * key was registered as sent or by hash, so the store's key index refuses a second
   * registration of one key whichever way either came. Absent for a key registered by hash on a
   * gateway without a key secret (or before claims were kept).
   */
  readonly claim?: string;
  /** A disabled key is refused (401 key_disabled), never passed as anonymous. */
  readonly enabled: boolean;
  /** ISO 8601 UTC timestamps. */
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** The content of a change: everything but the version, which the store assigns. */
export type AccountDraft = Omit<AccountRecord, 'version'>;

/**
 * The list every request is checked against before its account's list, stored under an id no
 * account can have (account ids start with a letter or digit).
 */
export const GLOBAL_ACCOUNT = '_global';
