import { refusal } from '../http/refusal.ts';
import type { AccountDraft, AccountRecord, AccountSettings, AclEntry } from '../policy/types.ts';
import type { AccountChange } from '../store/store.ts';
import type { EntryFields } from './entry-input.ts';

/**
 * Pure change functions for the store: each validates against the record it replaces, so two
 * concurrent writes cannot both pass a check that only one of them may pass.
 */

function draftOf(account: string, current: AccountRecord | null): AccountDraft {
  return { account, settings: current?.settings ?? {}, entries: current?.entries ?? [] };
}

function sameNetworks(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

function duplicateOf(entries: readonly AclEntry[], candidate: AclEntry): AclEntry | undefined {
  return entries.find((e) => e.id !== candidate.id && e.action === candidate.action && sameNetworks(e.cidrs, candidate.cidrs));
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

export function addEntry(account: string, id: string, fields: EntryFields & Required<Pick<EntryFields, 'ipAddress'>>, now: string): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const base: AclEntry = { id, ipAddress: '', cidrs: [], action: 'allow', description: '', enabled: true, createdAt: now, updatedAt: now };
    const entry = withFields(base, fields, now);
    const dup = duplicateOf(draft.entries, entry);
    if (dup) return { ok: false, refusal: refusal(409, 'duplicate', `${entry.cidrs.join(', ')} is already in the list as entry ${dup.id}`) };
    return { ok: true, draft: { ...draft, entries: [...draft.entries, entry] } };
  };
}

export function updateEntry(account: string, id: string, fields: EntryFields, now: string): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const index = draft.entries.findIndex((e) => e.id === id);
    if (index < 0) return { ok: false, refusal: entryNotFound(account, id) };
    const entry = withFields(draft.entries[index]!, fields, now);
    const dup = duplicateOf(draft.entries, entry);
    if (dup) return { ok: false, refusal: refusal(409, 'duplicate', `${entry.cidrs.join(', ')} is already in the list as entry ${dup.id}`) };
    const entries = draft.entries.slice();
    entries[index] = entry;
    return { ok: true, draft: { ...draft, entries } };
  };
}

export function deleteEntry(account: string, id: string): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    if (!draft.entries.some((e) => e.id === id)) return { ok: false, refusal: entryNotFound(account, id) };
    return { ok: true, draft: { ...draft, entries: draft.entries.filter((e) => e.id !== id) } };
  };
}

export function replaceSettings(account: string, settings: AccountSettings): AccountChange {
  return (current) => ({ ok: true, draft: { ...draftOf(account, current), settings } });
}

export function entryNotFound(account: string, id: string) {
  return refusal(404, 'entry_not_found', `account ${account} has no entry ${id.slice(0, 64)}`);
}
