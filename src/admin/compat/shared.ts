import { deleteEntry } from '../../acl/changes.ts';
import type { AclService } from '../../acl/service.ts';
import type { AdminAccountNaming } from '../../policy/account-names.ts';
import { ok, refusal, refused, type Refusal, type Result } from '../../http/refusal.ts';
import type { IpAddress } from '../../ip/address.ts';
import { clip, formatCidr } from '../../ip/cidr.ts';
import { parseRule } from '../../ip/rule.ts';
import type { AccountRecord, AclEntry } from '../../list/types.ts';
import type { AccountChange } from '../../store/store.ts';
import type { Actor } from '../credentials.ts';
import { toApiEntry } from '../entry-input.ts';
import type { CheckResult } from '../types.ts';

/**
 * What the provider-compatible surfaces need: the same core as the native API (so every
 * validation rule, the lockout guard and the audit trail apply unchanged), the proxy's decision
 * for an address, and fresh entry ids.
 */
export interface CompatDeps {
  readonly service: AclService;
  check(account: string, ip: IpAddress): Promise<CheckResult>;
  /** A new entry id, unique within the account. */
  newId(): string;
  /** The stored spelling an id acts on (identity.accountIdCase); ids as given when absent. */
  readonly accountName?: AdminAccountNaming;
}

/** The audit trail's view of a management caller. */
export function auditActor(actor: Actor): { name: string; role: Actor['role'] } {
  return { name: actor.name, role: actor.role };
}

/** A path parameter as the client meant it (the router hands them over still percent-encoded). */
export function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The refusal for an actor acting outside its scope. */
export function forbidden(actor: Actor, account: string, write: boolean): Refusal {
  const why = actor.role === 'read-only' ? 'a read-only credential changes nothing' : actor.role === 'account' ? `it may only act on account ${actor.account}` : 'it is out of scope';
  return refusal(403, 'forbidden', `credential ${actor.name} (${actor.role}) may not ${write ? 'change' : 'read'} account ${account}: ${why}`);
}

/** One network as the compatible APIs take it: an address or a CIDR, normalized. */
export interface Network {
  /** As entered, trimmed. */
  readonly input: string;
  /** Canonical CIDR text (one item, since ranges are not accepted here). */
  readonly cidrs: readonly string[];
}

/**
 * Parses a single address or a CIDR (`92.255.220.0/24`), the forms the providers document.
 * Ranges and netmasks, which the native API accepts, are refused: the providers have no such
 * form, and an entry must stay one network for these APIs to name it back. With `ipv4Only`
 * every IPv6 spelling, including IPv4-mapped ones, is refused as IPv6. The refusal's reason is
 * `invalid_format` or `ipv6_not_allowed`; its message the detail, for a surface to word its own.
 */
export function parseNetwork(text: string, ipv4Only: boolean): Result<Network> {
  const input = text.trim();
  const shown = clip(input);
  if (ipv4Only && input.includes(':')) return refused(refusal(400, 'ipv6_not_allowed', `'${shown}' is IPv6: only IPv4 addresses and IPv4 CIDR blocks are accepted`));
  const slash = input.indexOf('/');
  if (input.includes('-') || (slash >= 0 && !/^[0-9]{1,3}$/.test(input.slice(slash + 1)))) {
    return refused(refusal(400, 'invalid_format', `'${shown}' is not a single address or a CIDR block such as 92.255.220.0/24`));
  }
  const rule = parseRule(input);
  if (!rule.ok) return refused(refusal(400, 'invalid_format', rule.error));
  return ok({ input: rule.value.input, cidrs: rule.value.cidrs.map(formatCidr) });
}

/** Whether an entry denotes exactly these networks (however either was spelled). */
export function sameNetworks(entry: AclEntry, cidrs: readonly string[]): boolean {
  return entry.cidrs.length === cidrs.length && entry.cidrs.every((c) => cidrs.includes(c));
}

/** What the audit trail keeps of one entry before and after a change (as the native API does). */
export function entrySnapshot(id: string): (record: AccountRecord | null) => unknown {
  return (record) => {
    const entry = record?.entries.find((e) => e.id === id);
    return entry === undefined ? null : toApiEntry(entry);
  };
}

/** The same, for an entry named by what it holds rather than its id (it is gone after a delete). */
export function entrySnapshotWhere(pick: (entry: AclEntry) => boolean): (record: AccountRecord | null) => unknown {
  return (record) => {
    const entry = record?.entries.find(pick);
    return entry === undefined ? null : toApiEntry(entry);
  };
}

/** What the audit trail keeps of a change to several entries: the whole list. */
export function listSnapshot(record: AccountRecord | null): unknown {
  return record?.entries.map(toApiEntry) ?? [];
}

/**
 * Runs `change` only when entry `id` exists and satisfies `visible` in the record the change is
 * computed from (so the check and the change cannot be split by a concurrent write); else
 * refuses with `missing`. A surface that shows only some entries uses it to leave the rest alone.
 */
export function onEntry(id: string, visible: (entry: AclEntry) => boolean, missing: Refusal, change: AccountChange): AccountChange {
  return (current, view) => {
    const entry = current?.entries.find((e) => e.id === id);
    if (entry === undefined || !visible(entry)) return { ok: false, refusal: missing };
    return change(current, view);
  };
}

/**
 * Deletes every entry `pick` selects, in one change, by composing the core's `deleteEntry`.
 * The selection is made from the record the change is computed from; when it is empty the
 * change is refused with `missing`, so nothing is written.
 */
export function deleteMatching(account: string, pick: (entry: AclEntry) => boolean, missing: Refusal): AccountChange {
  return (current, view) => {
    if (current === null) return { ok: false, refusal: missing };
    const ids = current.entries.filter(pick).map((e) => e.id);
    if (ids.length === 0) return { ok: false, refusal: missing };
    let record: AccountRecord = current;
    for (const id of ids) {
      const result = deleteEntry(account, id)(record, view);
      if (!result.ok) return result;
      record = { ...result.draft, version: current.version };
    }
    const { version: _version, ...draft } = record;
    return { ok: true, draft };
  };
}

/** An ISO time stamp without fractional seconds: `2026-05-12T05:11:51Z`. */
export function isoSeconds(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A UTC time stamp as `2026-05-12 05:11:51`. */
export function sqlDateTime(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** A non-negative integer query or form parameter, or a refusal naming it. */
export function integerParam(name: string, raw: string | undefined, fallback: number, min: number, max: number): Result<number> {
  if (raw === undefined) return ok(fallback);
  const n = /^[0-9]{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
  return n >= min && n <= max ? ok(n) : refused(refusal(400, 'invalid_field', `${name} must be an integer ${min}-${max}, got '${clip(raw)}'`));
}
