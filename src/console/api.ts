/** The admin API as the console uses it: one token, JSON in and out, refusals as ApiError. */

import type { AuditEventBody, CheckBody, EntryBody, KeyBody, ListStateBody, RecentIpBody, SettingsBody, WarningBody, WhoamiBody } from '../admin/api-schemas.ts';

// The answers' shapes are the API's own schemas (src/admin/api-schemas.ts), not copies.
export type Entry = EntryBody;
export type Settings = SettingsBody;
export type Whoami = WhoamiBody;
export type CheckResult = CheckBody;
export type RecentCaller = RecentIpBody;
export type AuditEvent = AuditEventBody;
/** `empty`: the account has had an allow list and none is in force: every caller is refused. */
export type ListState = ListStateBody;
/** A warning of a change that went through (the guard's `will_empty`, for one). */
export type ChangeWarning = WarningBody;
/** A registered API key as the API shows it (never the key itself), with the state of its own list. */
export type ApiKey = KeyBody;

/** A refusal from the API: its status, reason code and the sentence that explains it. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }

  /** The change was sent but the gateway could not tell whether the store applied it. */
  get outcomeUnknown(): boolean {
    return this.reason === 'outcome_unknown';
  }
}

/** What the console says of a change whose outcome is unknown (the list is reloaded beside it). */
function unknownOutcome(version: unknown): string {
  const where = typeof version === 'number' ? ` The account is now at version ${version}.` : '';
  return `The gateway sent this change but got no answer from the store: it may or may not have been applied.${where} The list has been reloaded: check it before trying again.`;
}

/**
 * A refusal of the lockout guard in strict mode (a change that would block recent callers, or
 * open the account to every address): the console asks, then sends the change again without
 * `guard=strict`. The sentence without its advice to the API client, for showing.
 */
export function guardWarning(error: unknown): string | null {
  if (!(error instanceof ApiError) || (error.reason !== 'would_lock_out' && error.reason !== 'would_open')) return null;
  return error.message.replace(/; (allow them first|apply it without guard=strict).*$/, '.');
}

/** The API's `{error, reason}` refusal as an ApiError; a body that is not one, by its status alone. */
function refusalOf(status: number, text: string): ApiError {
  let refusal: { error?: unknown; reason?: unknown; current_version?: unknown } = {};
  try {
    refusal = (JSON.parse(text) ?? {}) as typeof refusal;
  } catch {
    // Not JSON: the status says it.
  }
  if (refusal.reason === 'outcome_unknown') return new ApiError(status, refusal.reason, unknownOutcome(refusal.current_version));
  return new ApiError(status, typeof refusal.reason === 'string' ? refusal.reason : 'error',
    typeof refusal.error === 'string' ? refusal.error : `the admin API answered ${status}`);
}

export class Api {
  readonly #token: string;

  constructor(token: string) {
    this.#token = token;
  }

  /** `version`: the account version the change is based on, sent as If-Match (412 when it moved). */
  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json', version?: number): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    if (version !== undefined) headers['if-match'] = `"${version}"`;
    let payload: string | undefined;
    if (body !== undefined) {
      headers['content-type'] = contentType;
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const res = await fetch(path, payload === undefined ? { method, headers } : { method, headers, body: payload });
    const text = await res.text();
    if (!res.ok) throw refusalOf(res.status, text);
    try {
      return (text === '' ? null : JSON.parse(text)) as T;
    } catch {
      throw new ApiError(res.status, 'invalid_response', `the admin API answered ${res.status} with something that is not JSON`);
    }
  }

  /** The list as the export endpoint writes it (CSV or JSON), as text: refusals still come back as ApiError. */
  async exportList(account: string, format: 'csv' | 'json'): Promise<string> {
    const res = await fetch(`${accountPath(account)}/ip-acl/export?format=${format}`, { headers: { authorization: `Bearer ${this.#token}` } });
    const text = await res.text();
    if (!res.ok) throw refusalOf(res.status, text);
    return text;
  }

  whoami(): Promise<Whoami> {
    return this.request('GET', '/v1/whoami');
  }

  async accounts(): Promise<string[]> {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { accounts: string[]; next: string | null } = await this.request('GET', `/v1/accounts?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      all.push(...page.accounts);
      cursor = page.next;
    } while (cursor !== null && all.length < 10_000);
    return all;
  }

  settings(account: string): Promise<Settings> {
    return this.request('GET', accountPath(account));
  }

  saveSettings(account: string, settings: Record<string, unknown>, version: number): Promise<Settings> {
    return this.request('PUT', accountPath(account), settings, 'application/json', version);
  }

  /** Opens an emptied account to every address (`restricted: false`); `strict` refuses it with would_open. */
  openAccount(account: string, options: WriteOptions): Promise<Settings> {
    return this.request('PUT', `${accountPath(account)}${query(options)}`, { restricted: false }, 'application/json', options.version);
  }

  /** The whole list and the version it is at (read again if it moved between pages). */
  async entries(account: string): Promise<{ entries: Entry[]; version: number }> {
    for (let attempt = 0; ; attempt++) {
      const all: Entry[] = [];
      let version: number | null = null;
      let cursor: string | null = null;
      let moved = false;
      do {
        const page: { entries: Entry[]; next: string | null; version: number } = await this.request('GET', `${accountPath(account)}/ip-acl?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        if (version !== null && page.version !== version) moved = true;
        version = page.version;
        all.push(...page.entries);
        cursor = page.next;
      } while (cursor !== null && !moved);
      if (!moved || attempt >= 3) return { entries: all, version: version ?? 0 };
    }
  }

  /** `strict`: refuse (409 would_lock_out, would_open) a change that would block a recent caller or open the account. */
  addEntry(account: string, fields: Record<string, unknown>, options: WriteOptions & { replace?: boolean }): Promise<Entry & { readonly warnings?: readonly ChangeWarning[] }> {
    return this.request('POST', `${accountPath(account)}/ip-acl${query(options)}`, fields, 'application/json', options.version);
  }

  updateEntry(account: string, id: string, fields: Record<string, unknown>, options: WriteOptions): Promise<Entry & { readonly warnings?: readonly ChangeWarning[] }> {
    return this.request('PATCH', `${accountPath(account)}/ip-acl/${encodeURIComponent(id)}${query(options)}`, fields, 'application/json', options.version);
  }

  deleteEntry(account: string, id: string, options: WriteOptions): Promise<unknown> {
    return this.request('DELETE', `${accountPath(account)}/ip-acl/${encodeURIComponent(id)}${query(options)}`, undefined, 'application/json', options.version);
  }

  /** What an import would store, row by row, read by the server's own parser: nothing is changed. */
  previewImport(account: string, body: string, format: 'csv' | 'json', mode: 'merge' | 'replace'): Promise<ImportPreview> {
    return this.request('POST', `${accountPath(account)}/ip-acl/import?mode=${mode}&dry_run=true`, body, format === 'csv' ? 'text/csv' : 'application/json');
  }

  /** `version`: the one the preview was computed from, so what was previewed is what is stored. */
  importEntries(account: string, body: string, format: 'csv' | 'json', mode: 'merge' | 'replace', options: WriteOptions): Promise<{ received: number }> {
    return this.request('POST', `${accountPath(account)}/ip-acl/import?mode=${mode}${options.strict ? '&guard=strict' : ''}`, body, format === 'csv' ? 'text/csv' : 'application/json', options.version);
  }

  check(account: string, ip: string): Promise<CheckResult> {
    return this.request('GET', `${accountPath(account)}/check?ip=${encodeURIComponent(ip)}`);
  }

  async recent(account: string): Promise<RecentCaller[]> {
    return (await this.request<{ ips: RecentCaller[] }>('GET', `${accountPath(account)}/recent-ips?limit=100`)).ips;
  }

  async audit(account: string): Promise<AuditEvent[]> {
    return (await this.request<{ events: AuditEvent[] }>('GET', `/v1/audit?account=${encodeURIComponent(account)}&limit=50`)).events;
  }

  /** The account's API keys (at most 1,000: far past keys.maxPerAccount's default), with last use and list state. */
  async keys(account: string): Promise<{ keys: ApiKey[]; version: number }> {
    const page = await this.request<{ keys: ApiKey[]; version: number }>('GET', `${accountPath(account)}/keys?limit=1000`);
    return { keys: page.keys, version: page.version };
  }

  key(account: string, id: string): Promise<ApiKey> {
    return this.request('GET', `${accountPath(account)}/keys/${encodeURIComponent(id)}`);
  }

  /** Registers a key as clients send it, or by its SHA-256 (hex). */
  addKey(account: string, body: { key: string } | { key_sha256: string }, name: string): Promise<ApiKey> {
    return this.request('POST', `${accountPath(account)}/keys`, { ...body, name });
  }

  /** `version`: the account's, as the key list showed it. */
  updateKey(account: string, id: string, fields: { name?: string; enabled?: boolean }, version: number): Promise<ApiKey> {
    return this.request('PATCH', `${accountPath(account)}/keys/${encodeURIComponent(id)}`, fields, 'application/json', version);
  }

  deleteKey(account: string, id: string, version: number): Promise<unknown> {
    return this.request('DELETE', `${accountPath(account)}/keys/${encodeURIComponent(id)}`, undefined, 'application/json', version);
  }

  /** Opens an emptied key list (`restricted: false`): the account's list alone applies to the key again. `version`: the key list's. */
  openKeyList(account: string, id: string, options: WriteOptions): Promise<ApiKey> {
    return this.request('PATCH', `${accountPath(account)}/keys/${encodeURIComponent(id)}${query(options)}`, { restricted: false }, 'application/json', options.version);
  }
}

/** The list id of an API key's own list, as the server names it: `<account>/key:<key id>` (account ids hold no `/`). */
export function keyListId(account: string, keyId: string): string {
  return `${account}/key:${keyId}`;
}

/**
 * Where a list's owner lives in the API: an account, or (for a key's list id) an API key. Every
 * list method takes either, so the entry and import dialogs serve a key's list unchanged.
 */
function accountPath(id: string): string {
  const at = id.indexOf('/key:');
  if (at < 0) return `/v1/accounts/${encodeURIComponent(id)}`;
  return `/v1/accounts/${encodeURIComponent(id.slice(0, at))}/keys/${encodeURIComponent(id.slice(at + 5))}`;
}

/** Every write: whether to refuse what the lockout guard warns about, and the version it is based on. */
export interface WriteOptions {
  readonly strict: boolean;
  readonly version: number;
}

/** One row of an import preview, as the server reads it. */
export interface ImportRow {
  readonly line: number;
  readonly outcome: 'add' | 'skip' | 'refused';
  readonly entry: Omit<Entry, 'id' | 'created_at' | 'updated_at'> | null;
  readonly reason?: string;
  readonly error?: string;
}

export interface ImportPreview {
  readonly version: number;
  readonly would_store: boolean;
  readonly rows: readonly ImportRow[];
  readonly error?: string;
}

function query(options: { strict: boolean; replace?: boolean }): string {
  const parts = [options.strict ? 'guard=strict' : '', options.replace ? 'replace=true' : ''].filter((p) => p !== '');
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}
