import type { Entry, Settings } from './api.ts';

/** An account as the page showed it: its settings, its entries, and the version they are at. */
export interface AccountState {
  readonly version: number;
  readonly settings: Settings;
  readonly entries: readonly Entry[];
}

const SETTINGS: readonly [keyof Settings, string][] = [
  ['mode', 'mode'], ['default', 'default'], ['parent', 'parent'], ['max_entries', 'entry limit'], ['ipv4_only', 'IPv4 only'], ['guard', 'lockout guard'], ['list_state', 'list'],
];
const ENTRY_FIELDS: readonly [keyof Entry, string][] = [
  ['ip_address', 'address'], ['action', 'action'], ['description', 'name'], ['enabled', 'enabled'], ['expires_at', 'expires'],
];

function shown(value: unknown): string {
  return value === null || value === undefined || value === '' ? 'none' : String(value);
}

function named(entry: Entry): string {
  return entry.description === '' ? entry.ip_address : `${entry.ip_address} (${entry.description})`;
}

/**
 * What changed between two states of an account, one sentence each: the console tells the user
 * what another admin did when a change of theirs was refused because the page was out of date.
 */
export function describeChanges(before: AccountState, after: AccountState): string[] {
  const out: string[] = [];
  for (const [key, label] of SETTINGS) {
    if (before.settings[key] !== after.settings[key]) out.push(`${label}: ${shown(before.settings[key])} → ${shown(after.settings[key])}`);
  }
  const old = new Map(before.entries.map((e) => [e.id, e]));
  const now = new Map(after.entries.map((e) => [e.id, e]));
  for (const [id, entry] of now) {
    const was = old.get(id);
    if (was === undefined) {
      out.push(`entry ${named(entry)} added (${entry.action})`);
      continue;
    }
    const fields = ENTRY_FIELDS.filter(([key]) => was[key] !== entry[key]).map(([key, label]) => `${label} ${shown(was[key])} → ${shown(entry[key])}`);
    if (fields.length > 0) out.push(`entry ${named(was)}: ${fields.join(', ')}`);
  }
  for (const [id, entry] of old) if (!now.has(id)) out.push(`entry ${named(entry)} removed`);
  return out;
}
