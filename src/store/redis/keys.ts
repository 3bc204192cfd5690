import { parseKeyListId } from '../../list/key-list-id.ts';

/**
 * Key layout (see docs/redis.md). Every key of one account carries the hash tag `{account}`, so the
 * account lives in one Cluster slot and a Lua script may touch all of its keys atomically. The
 * lists of the account's API keys share the tag (`{account}:key:<id>:...`) and the account's
 * audit stream.
 */
export interface KeySet {
  readonly version: string;
  readonly record: string;
  readonly compiled: string;
  readonly callers: string;
  /** The account's audit stream (see src/store/redis/redis-audit.ts). */
  readonly audit: string;
  /** Hash: the account's keys' last use, key id → `<epoch ms> <client ip>`. */
  readonly keyUse: string;
}

export class Keys {
  readonly prefix: string;
  /** Set of account ids with a record (outside any account's slot). */
  readonly accounts: string;
  /** Pub/sub channel carrying `<version> <origin replica> <published-at ms> <account> <flags>[\n<compiled list>]` after every committed change. */
  readonly changes: string;
  /** Audit stream of every account's changes. */
  readonly audit: string;
  /**
   * The parent graph: a hash of subaccount → parent (every record with a parent has its field),
   * and its version, bumped by every commit that changes a parent. Both carry the hash tag
   * `{_graph}` (no account id starts with `_`), so one script can check and change them together.
   */
  readonly graph: { readonly parents: string; readonly version: string; readonly lease: string };
  /**
   * Stream of every write about to be committed (`a` account, `v` version it would get): what a
   * replica that missed notices reads, from its cursor on, to learn which accounts to re-check.
   */
  readonly changeLog: string;
  /** Sorted set: accounts with a temporary entry, scored by the earliest expiry (epoch ms). */
  readonly expiries: string;
  /** Set once every account's expiries are in `expiries` (an older build kept no such index). */
  readonly expiriesIndexed: string;
  /**
   * Registered API keys: a hash of digest (`hmac:<hex>`, `sha256:<hex>`) → `<account> <key id>
   * <claimed at, epoch ms>`, claimed before the commit that registers the key (so no two accounts
   * can hold one key), and the set of accounts that ever held a key. Tag `{_keys}`.
   */
  readonly keyIndex: string;
  readonly keyAccounts: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.accounts = `${prefix}accounts`;
    this.changes = `${prefix}changes`;
    this.audit = `${prefix}audit`;
    this.graph = { parents: `${prefix}{_graph}:parents`, version: `${prefix}{_graph}:version`, lease: `${prefix}{_graph}:lease` };
    this.changeLog = `${prefix}changelog`;
    this.expiries = `${prefix}expiries`;
    this.expiriesIndexed = `${prefix}expiries-indexed`;
    this.keyIndex = `${prefix}{_keys}:index`;
    this.keyAccounts = `${prefix}{_keys}:accounts`;
  }

  /** The keys of an account, or of a key's list (src/list/key-list-id.ts), in the account's slot. */
  of(id: string): KeySet {
    const key = parseKeyListId(id);
    const account = `${this.prefix}{${key === null ? id : key.account}}`;
    const base = key === null ? account : `${account}:key:${key.keyId}`;
    return { version: `${base}:version`, record: `${base}:record`, compiled: `${base}:compiled`, callers: `${base}:callers`, audit: `${account}:audit`, keyUse: `${account}:keyuse` };
  }
}
