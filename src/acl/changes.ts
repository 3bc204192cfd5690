import { refusal, type Refusal } from '../http/refusal.ts';
import type { AccountDraft, AccountRecord, AccountSettings, AclEntry, Action } from '../list/types.ts';
import type { AccountChange, ChangeResult } from '../store/store.ts';
import { hasEnabledAllow, isRestricted } from '../list/list-state.ts';
import { checkParent } from './parents.ts';
import { ListIndex } from './list-index.ts';
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

/** The record a change starts from, whatever it holds besides its entries and settings (its keys) kept. */
export function draftOf(account: string, current: AccountRecord | null): AccountDraft {
  if (current === null) return { account, settings: {}, entries: [] };
  const { version: _version, ...draft } = current;
  return { ...draft, account };
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

/**
 * A list being changed: the entries in order, and their validation index, kept in step. Placing
 * an entry costs about log(n), so a change of many entries stays n log n.
 */
class WorkingList {
  readonly #entries: Map<string, AclEntry>;
  readonly #index: ListIndex;
  readonly #account: string;
  readonly #settings: AccountSettings;
  readonly #ctx: ChangeContext;

  constructor(account: string, entries: readonly AclEntry[], settings: AccountSettings, ctx: ChangeContext) {
    this.#account = account;
    this.#entries = new Map(entries.map((e) => [e.id, e]));
    this.#index = new ListIndex(entries);
    this.#settings = settings;
    this.#ctx = ctx;
  }

  has(cidrs: readonly string[]): boolean {
    return this.#index.holds(cidrs);
  }

  /** Takes an entry of the list as it stands, unchecked (building the list a change starts from). */
  keep(entry: AclEntry): void {
    this.#entries.set(entry.id, entry);
    this.#index.add(entry);
  }

  /** Adds `entry` after every rule (or edits it in place), removing what it supersedes when asked to. */
  place(entry: AclEntry): Refusal | null {
    const verdict = checkEntry(entry, this.#index, this.#settings, this.#ctx.policy, this.#ctx.replace === true);
    if (!verdict.ok) return verdict.refusal;
    const isNew = !this.#entries.has(entry.id);
    if (isNew) {
      const overLimit = entryLimit(this.#account, this.#entries.size - verdict.superseded.length + 1, this.#settings, this.#ctx.policy);
      if (overLimit !== null) return overLimit;
    }
    for (const gone of verdict.superseded) {
      this.#entries.delete(gone.id);
      this.#index.remove(gone.id);
    }
    this.#entries.set(entry.id, entry);
    this.#index.add(entry);
    return null;
  }

  entries(): AclEntry[] {
    return [...this.#entries.values()];
  }
}

function placed(draft: AccountDraft, entry: AclEntry, ctx: ChangeContext): ChangeResult {
  const list = new WorkingList(draft.account, draft.entries, draft.settings, ctx);
  const refused = list.place(entry);
  return refused === null ? { ok: true, draft: { ...draft, entries: list.entries() } } : { ok: false, refusal: refused };
}

export function addEntry(account: string, id: string, fields: NewEntryFields, ctx: ChangeContext): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const inherited = inheritedList(account, draft.settings);
    if (inherited) return { ok: false, refusal: inherited };
    return placed(draft, newEntry(id, fields, ctx.now), ctx);
  };
}

export function updateEntry(account: string, id: string, fields: EntryFields, ctx: ChangeContext): AccountChange {
  return (current) => {
    const draft = draftOf(account, current);
    const inherited = inheritedList(account, draft.settings);
    if (inherited) return { ok: false, refusal: inherited };
    const existing = draft.entries.find((e) => e.id === id);
    if (existing === undefined) return { ok: false, refusal: entryNotFound(account, id) };
    return placed(draft, withFields(existing, fields, ctx.now), ctx);
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

/** What one item of a list replace or import does: is added, is skipped (merge: already listed), or is refused. */
export type ItemOutcome =
  | { readonly item: number; readonly outcome: 'add' | 'skip'; readonly entry: AclEntry }
  | { readonly item: number; readonly outcome: 'refused'; readonly entry: AclEntry; readonly refusal: Refusal };

/**
 * Replaces the whole list (bulk PUT, import with mode=replace) or merges into it (import with
 * mode=merge: an item whose network is already listed is skipped, so importing twice is
 * harmless). Items are checked in order, as if added one by one; the first refusal names the
 * item and nothing is written. With `report` (a dry run), every item's outcome is recorded there
 * and the items after a refused one are still checked (as if it were left out).
 */
export function replaceEntries(account: string, items: readonly ListItem[], ctx: ChangeContext, mode: 'replace' | 'merge', report?: ItemOutcome[]): AccountChange {
  return (current) => {
    const steps = listReplacement(account, items, ctx, mode, current, report);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
    }
  };
}

/**
 * The same change computed in slices of a few milliseconds, yielding to the event loop between
 * them, from `current` as read before the atomic change: a list of thousands of entries is
 * checked without holding up the proxy. The store then commits it only if the account is still
 * at that version (see AclService.apply).
 */
export async function prepareEntries(account: string, items: readonly ListItem[], ctx: ChangeContext, mode: 'replace' | 'merge', current: AccountRecord | null, report?: ItemOutcome[]): Promise<ChangeResult> {
  const steps = listReplacement(account, items, ctx, mode, current, report);
  let slice = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    if (performance.now() - slice > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      slice = performance.now();
    }
  }
}

/** How long a prepared change computes before it lets the event loop run. */
const SLICE_MS = 4;
/** Items (or entries) between looks at the clock. */
const STEP = 64;

function* listReplacement(account: string, items: readonly ListItem[], ctx: ChangeContext, mode: 'replace' | 'merge', current: AccountRecord | null, report?: ItemOutcome[]): Generator<void, ChangeResult> {
  report?.splice(0);
  const draft = draftOf(account, current);
  const inherited = inheritedList(account, draft.settings);
  if (inherited) return { ok: false, refusal: inherited };
  const list = new WorkingList(account, [], draft.settings, ctx);
  if (mode === 'merge') {
    for (const [i, entry] of draft.entries.entries()) {
      list.keep(entry);
      if (i % STEP === STEP - 1) yield;
    }
  }
  let first: Refusal | null = null;
  for (const [i, item] of items.entries()) {
    if (i % STEP === STEP - 1) yield;
    const entry = newEntry(item.id, item.fields, ctx.now);
    if (mode === 'merge' && list.has(entry.cidrs)) {
      report?.push({ item: i, outcome: 'skip', entry });
      continue;
    }
    const refused = list.place(entry);
    if (refused === null) {
      report?.push({ item: i, outcome: 'add', entry });
      continue;
    }
    first ??= { ...refused, message: `item ${i + 1} (${entry.ipAddress}): ${refused.message}` };
    if (report === undefined) break;
    report.push({ item: i, outcome: 'refused', entry, refusal: refused });
  }
  return first === null ? { ok: true, draft: { ...draft, entries: list.entries() } } : { ok: false, refusal: first };
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

/**
 * Wraps a change so the record it writes says whether the account is restricted, inside the same
 * atomic change as its entries: set when the result, or the record it replaces, has an enabled
 * allow entry or is restricted already; cleared only by a settings change that asks for it
 * (`restricted: false`), which is refused while an enabled allow entry remains (the list would
 * go on restricting, or start again at once).
 */
export function settleListState(change: AccountChange): AccountChange {
  return (current, view) => {
    const result = change(current, view);
    if (!result.ok) return result;
    const draft = result.draft;
    const { restricted, ...rest } = draft.settings;
    if (restricted === false) {
      if (hasEnabledAllow(draft.entries)) {
        return { ok: false, refusal: refusal(409, 'list_in_force', `account ${draft.account} still has enabled allow entries (expired ones included): delete or disable them before opening the account to every address`) };
      }
      return { ok: true, draft: withSettings(draft, rest) };
    }
    const was = current !== null && isRestricted(current.settings, current.entries);
    const stays = restricted === true || was || hasEnabledAllow(draft.entries);
    return { ok: true, draft: withSettings(draft, stays ? { ...rest, restricted: true } : rest) };
  };
}

function withSettings(draft: AccountDraft, settings: AccountSettings): AccountDraft {
  return { ...draft, settings };
}
