import { refusal, type Refusal } from '../http/refusal.ts';
import type { AccountDraft, AccountRecord, AccountSettings, AclEntry, Action } from '../policy/types.ts';
import type { AccountChange, ChangeResult } from '../store/store.ts';
import { checkParent } from './parents.ts';
import { checkEntry, entryLimit, inheritedList, type ValidationPolicy } from './validation.ts';

/**
 * Pure change functions for the store: each validates against the record it replaces, so two
 * concurrent writes cannot both pass a check that only one of them may pass. Every API surface
 * (native, compatible, CLI through the native API) goes through these.
 */

/** The fields a client may set; `undefined` means "not given", `null` expiry means "clear it". */
export interface EntryFields {
  readonly ipAddress?: { readonly input: string; readonly cidrs: readonly string[] };
  readonly description?: string;
  readonly action?: Action;
  readonly enabled?: boolean;
  readonly expiresAt?: string | null;
}

export type NewEntryFields = EntryFields & Required<Pick<EntryFields, 'ipAddress'>>;

export interface ChangeContext {
  readonly policy: ValidationPolicy;
  /** ISO time stamped on created and updated entries. */
  readonly now: string;
  /** Remove allow entries a new one covers instead of refusing with superset_conflict. */
  readonly replace?: boolean;
}

function draftOf(account: string, current: AccountRecord | null): AccountDraft {
  return { account, settings: current?.settings ?? {}, entries: current?.entries ?? [] };
}

function withFields(entry: AclEntry, fields: EntryFields, now: string): AclEntry {
  const { expiresAt: _old, ...rest } = entry;
  const expiresAt = fields.expiresAt === undefined ? entry.expiresAt : fields.expiresAt ?? undefined;
  return {
    ...rest,
    ...(fields.ipAddress ? { ipAddress: fields.ipAddress.input, cidrs: fields.ipAddress.cidrs } : {}),
    ...(fields.description !== undefined ? { description: fields.description } : {}),
    ...(fields.action !== undefined ? { action: fields.action } : {}),
    ...(fields.enabled !== undefined ? { enabled: fields.enabled } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    updatedAt: now,
  };
}

function newEntry(id: string, fields: NewEntryFields, now: string): AclEntry {
  return withFields({ id, ipAddress: '', cidrs: [], action: 'allow', description: '', enabled: true, createdAt: now, updatedAt: now }, fields, now);
}

/** Adds `entry` to `entries` after every rule, removing what it supersedes when asked to. */
function place(account: string, entry: AclEntry, entries: readonly AclEntry[], settings: AccountSettings, ctx: ChangeContext): { ok: true; entries: AclEntry[] } | { ok: false; refusal: Refusal } {
  const verdict = checkEntry(entry, entries, settings, ctx.policy, ctx.replace === true);
  if (!verdict.ok) return verdict;
  const gone = new Set(verdict.superseded.map((e) => e.id));
  const index = entries.findIndex((e) => e.id === entry.id);
  const next = entries.filter((e) => !gone.has(e.id) || e.id === entry.id);
  if (index < 0) next.push(entry);
  else next[next.findIndex((e) => e.id === entry.id)] = entry;
  const overLimit = index < 0 ? entryLimit(account, next.length, settings, ctx.policy) : null;
  return overLimit === null ? { ok: true, entries: next } : { ok: false, refusal: overLimit };
}

function withEntries(draft: AccountDraft, placed: ReturnType<typeof place>): ChangeResult {
  return placed.ok ? { ok: true, draft: { ...draft, entries: placed.entries } } : placed;
}

export function addEntry(account: string, id: string, fields: NewEntryFields, ctx: ChangeContext): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const inherited = inheritedList(account, draft.settings);
    if (inherited) return { ok: false, refusal: inherited };
    return withEntries(draft, place(account, newEntry(id, fields, ctx.now), draft.entries, draft.settings, ctx));
  };
}

export function updateEntry(account: string, id: string, fields: EntryFields, ctx: ChangeContext): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const inherited = inheritedList(account, draft.settings);
    if (inherited) return { ok: false, refusal: inherited };
    const existing = draft.entries.find((e) => e.id === id);
    if (existing === undefined) return { ok: false, refusal: entryNotFound(account, id) };
    return withEntries(draft, place(account, withFields(existing, fields, ctx.now), draft.entries, draft.settings, ctx));
  };
}

export function deleteEntry(account: string, id: string): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    if (!draft.entries.some((e) => e.id === id)) return { ok: false, refusal: entryNotFound(account, id) };
    return { ok: true, draft: { ...draft, entries: draft.entries.filter((e) => e.id !== id) } };
  };
}

export interface ListItem {
  readonly id: string;
  readonly fields: NewEntryFields;
}

/**
 * Replaces the whole list (bulk PUT, import with mode=replace) or merges into it (import with
 * mode=merge: an item whose network is already listed is skipped, so importing twice is
 * harmless). Items are checked in order, as if added one by one; the first refusal names the
 * item and nothing is written.
 */
export function replaceEntries(account: string, items: readonly ListItem[], ctx: ChangeContext, mode: 'replace' | 'merge'): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const inherited = inheritedList(account, draft.settings);
    if (inherited) return { ok: false, refusal: inherited };
    let entries: AclEntry[] = mode === 'merge' ? [...draft.entries] : [];
    for (const [i, item] of items.entries()) {
      const entry = newEntry(item.id, item.fields, ctx.now);
      if (mode === 'merge' && entries.some((e) => e.cidrs.length === entry.cidrs.length && e.cidrs.every((c) => entry.cidrs.includes(c)))) continue;
      const placed = place(account, entry, entries, draft.settings, ctx);
      if (!placed.ok) return { ok: false, refusal: { ...placed.refusal, message: `item ${i + 1} (${entry.ipAddress}): ${placed.refusal.message}` } };
      entries = placed.entries;
    }
    return { ok: true, draft: { ...draft, entries } };
  };
}

/** Removes entries whose expiry has passed: they already stopped matching, this tidies the list. */
export function removeExpired(account: string, nowMs: number): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const entries = draft.entries.filter((e) => e.expiresAt === undefined || Date.parse(e.expiresAt) > nowMs);
    if (entries.length === draft.entries.length) return { ok: false, refusal: refusal(409, 'nothing_expired', `account ${account} has no expired entry`) };
    return { ok: true, draft: { ...draft, entries } };
  };
}

/** A settings change: a value sets the field, null clears it (inherit), absent keeps it. */
export type SettingsPatch = { readonly [K in keyof AccountSettings]-?: AccountSettings[K] | null | undefined };

/**
 * Applies `patch` to the settings the record holds at the commit, so concurrent changes to
 * different fields both stand; a new parent is checked against the graph as it is then.
 */
export function changeSettings(account: string, patch: Partial<SettingsPatch>): AccountChange {
  return (current, view) => {
    const draft = draftOf(account, current);
    const settings: { -readonly [K in keyof AccountSettings]?: AccountSettings[K] } = { ...draft.settings };
    for (const [key, value] of Object.entries(patch) as [keyof AccountSettings, unknown][]) {
      if (value === undefined) continue;
      if (value === null) delete settings[key];
      else (settings as Record<string, unknown>)[key] = value;
    }
    if (settings.parent !== undefined && settings.parent !== draft.settings.parent) {
      const refused = checkParent(account, settings.parent, view);
      if (refused !== null) return { ok: false, refusal: refused };
    }
    return { ok: true, draft: { ...draft, settings } };
  };
}

export function entryNotFound(account: string, id: string): Refusal {
  return refusal(404, 'entry_not_found', `account ${account} has no entry ${id.slice(0, 64)}`);
}
