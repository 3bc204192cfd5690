import type { AccountDraft, AccountSettings, AclEntry, DefaultPolicy } from './types.ts';

/**
 * What an account's own list does, defined here once and read by the request path, the lockout
 * guard, the check endpoint, the CLI, the console and the compatible surfaces:
 *
 * - `none`: no allow entry in force, and the account never had one (or was opened since): its
 *   default decides (open unless `closed`).
 * - `active`: at least one enabled, unexpired allow entry: callers outside the list are refused.
 * - `empty`: the account has had an allow list and none of its allow entries is in force any
 *   more (expired, disabled or deleted): every caller is refused (`list_empty`) until an allow
 *   entry applies again or the owner opens the account (`restricted: false`).
 */
export type ListState = 'none' | 'active' | 'empty';

/** Any enabled allow entry, expired or not: an expired one was in force until its time. */
export function hasEnabledAllow(entries: readonly AclEntry[]): boolean {
  return entries.some((e) => e.enabled && e.action === 'allow');
}

/**
 * Whether the account's list restricts by itself: the `restricted` setting, or an enabled allow
 * entry (records written before the setting existed carry only the entries).
 */
export function isRestricted(settings: AccountSettings, entries: readonly AclEntry[]): boolean {
  return settings.restricted === true || hasEnabledAllow(entries);
}

/** Whether any enabled allow entry is in force at `nowMs`: the `hasAllow` of the compiled list. */
export function hasAllowInForce(entries: readonly AclEntry[], nowMs: number): boolean {
  return entries.some((e) => e.enabled && e.action === 'allow' && (e.expiresAt === undefined || Date.parse(e.expiresAt) > nowMs));
}

export function listStateOf(allowInForce: boolean, restricted: boolean): ListState {
  return allowInForce ? 'active' : restricted ? 'empty' : 'none';
}

/** The state of an account's own list, from its record (null: no record). */
export function recordListState(record: Pick<AccountDraft, 'settings' | 'entries'> | null, nowMs: number): ListState {
  if (record === null) return 'none';
  return listStateOf(hasAllowInForce(record.entries, nowMs), isRestricted(record.settings, record.entries));
}

/**
 * Whether a caller that matches no entry of the list is let through: only when no allow entry is
 * in force, the list has never restricted (or was opened), and the default is open.
 */
export function missAdmits(list: { readonly hasAllow: boolean; readonly restricted: boolean } | null, fallback: DefaultPolicy): boolean {
  return !(list?.hasAllow ?? false) && !(list?.restricted ?? false) && fallback === 'open';
}
