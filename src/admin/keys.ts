import { randomBytes } from 'node:crypto';
import { changeSettings } from '../acl/changes.ts';
import type { AclService, Applied, Operation } from '../acl/service.ts';
import { ok, refusal, type Result } from '../http/refusal.ts';
import { sha256Hex, type KeyDigester } from '../list/key-digest.ts';
import { keyListId } from '../list/key-list-id.ts';
import { addKey, deleteKey, updateKey } from '../acl/key-changes.ts';
import { findKey, keyNotFound, keysOf } from '../list/keys.ts';
import { clip } from '../ip/cidr.ts';
import { recordListState, type ListState } from '../list/list-state.ts';
import type { AccountRecord, ApiKeyRecord } from '../list/types.ts';
import type { StoreView } from '../store/store.ts';
import { readJsonBody } from './body.ts';
import type { Context, Handler } from './context.ts';
import { allows } from './credentials.ts';
import { keySnapshot, parseKeyPatch, parseNewKey, toApiKey } from './key-input.ts';
import type { Static, TSchema } from 'typebox';
import { Key, KeyDeleted, KeyList, KeyReport, type KeyReportBody } from './api-schemas.ts';
import { etag, sendBody, sendError } from './respond.ts';
import type { KeyAction } from './native-routes.ts';
import { decodeParam } from './router.ts';

export interface KeyRouteParts {
  readonly service: AclService;
  /** Hashes keys registered by value; null: no key secret, registration by hash only. */
  readonly digester: KeyDigester | null;
  readonly maxKeys: number;
  /** The account a route names, checked against the credential (native.ts). */
  readonly accountOf: (ctx: Context, write: boolean) => Result<string>;
  /** Applies an operation and answers with what `render` makes of it (native.ts). */
  readonly write: <S extends TSchema>(ctx: Context, account: string, operation: Operation, status: number, schema: S, render: (applied: Extract<Applied, { ok: true }>) => Static<S>, headers?: Record<string, string>) => Promise<void>;
  readonly pageSize: (query: URLSearchParams) => Result<number>;
  readonly offsetOf: (query: URLSearchParams) => Result<number>;
  readonly cursorFor: (offset: number) => string;
}

/** Reads of records per round of the unrestricted-keys report. */
const REPORT_CHUNK = 200;

function newKeyId(): string {
  return `key_${randomBytes(10).toString('hex')}`;
}

/**
 * The handlers of the key registry under /v1/accounts/{account}/keys, and of the report of every
 * key under /v1/keys, by their action in the route table (native-routes.ts). Keys are changes of the account's record, through the same core as its entries (AclService:
 * the atomic change, the audit trail); a key's own list is served by the entry routes (native.ts).
 */
export function keyHandlers(parts: KeyRouteParts): Readonly<Record<KeyAction, Handler>> {
  const { service, accountOf, write } = parts;
  const store = service.store;

  const keyParam = (ctx: Context): string => decodeParam(ctx.params['key']!);
  const withAccount = (write: boolean, handler: (ctx: Context, account: string) => Promise<void>): Handler => async (ctx) => {
    const account = accountOf(ctx, write);
    if (!account.ok) return sendError(ctx.res, account.refusal);
    return handler(ctx, account.value);
  };
  const usesOf = async (account: string, keys: readonly ApiKeyRecord[]) => store.keyUse(account, keys.map((k) => k.id));
  /** The state of each key's own list, read from the store (a page of keys at a time). */
  const listStatesOf = async (account: string, keys: readonly ApiKeyRecord[]): Promise<Map<string, ListState>> => {
    const lists = await Promise.all(keys.map((k) => store.read(keyListId(account, k.id))));
    const nowMs = service.now().getTime();
    return new Map(keys.map((k, i) => [k.id, recordListState(lists[i]!, nowMs)]));
  };
  /** The page a listing asks for (limit and cursor), or why it cannot be served. */
  const pageOf = (query: URLSearchParams): Result<{ readonly limit: number; readonly offset: number }> => {
    const limit = parts.pageSize(query);
    if (!limit.ok) return limit;
    const offset = parts.offsetOf(query);
    if (!offset.ok) return offset;
    return ok({ limit: limit.value, offset: offset.value });
  };
  const keySnapshotOf = (id: string) => (record: AccountRecord | null): unknown => keySnapshot(findKey(record, id));

  const listKeys = withAccount(false, async (ctx, account) => {
    const asked = pageOf(ctx.query);
    if (!asked.ok) return sendError(ctx.res, asked.refusal);
    const { limit, offset } = asked.value;
    const record = await store.read(account);
    const keys = keysOf(record);
    const page = keys.slice(offset, offset + limit);
    const [uses, states] = await Promise.all([usesOf(account, page), listStatesOf(account, page)]);
    const version = record?.version ?? 0;
    sendBody(ctx.res, 200, KeyList, {
      account, version, total: keys.length, keys: page.map((k) => toApiKey(account, k, uses.get(k.id), states.get(k.id)!)),
      next: offset + limit < keys.length ? parts.cursorFor(offset + limit) : null,
    }, { etag: etag(version) });
  });

  const createKey = withAccount(true, async (ctx, account) => {
    const body = await readJsonBody(ctx.req, ctx.bodyLimits.json);
    if (!body.ok) return sendError(ctx.res, body.refusal);
    const input = parseNewKey(body.value);
    if (!input.ok) return sendError(ctx.res, input.refusal);
    const given = input.value;
    // The claim (from the key's SHA-256, which both ways know) makes a key registered as sent and
    // again by hash, in any account, the same key to the store's index: the second is refused.
    let digest: Pick<ApiKeyRecord, 'hash' | 'digest' | 'claim'>;
    if ('key' in given) {
      if (parts.digester === null) {
        return sendError(ctx.res, refusal(409, 'no_key_secret', 'this gateway has no key secret (keys.secret, ALLOWGATE_KEY_SECRET), so it can only register keys by their SHA-256: send key_sha256, or configure the secret'));
      }
      digest = { hash: 'hmac-sha256', digest: parts.digester.hmac(given.key), claim: parts.digester.claim(sha256Hex(given.key)) };
    } else {
      digest = { hash: 'sha256', digest: given.sha256, ...(parts.digester === null ? {} : { claim: parts.digester.claim(given.sha256) }) };
    }
    const now = service.now().toISOString();
    const key: ApiKeyRecord = { id: newKeyId(), name: given.name, ...digest, enabled: given.enabled, createdAt: now, updatedAt: now };
    await write(ctx, account, { action: 'key.create', key: key.id, change: () => addKey(account, key, parts.maxKeys), snapshot: keySnapshotOf(key.id) }, 201, Key,
      () => toApiKey(account, key, undefined, 'none'), { location: `/v1/accounts/${encodeURIComponent(account)}/keys/${key.id}` });
  });

  const getKey = withAccount(false, async (ctx, account) => {
    const id = keyParam(ctx);
    const record = await store.read(account);
    const key = findKey(record, id);
    if (record === null || key === undefined) return sendError(ctx.res, keyNotFound(account, id));
    const [uses, states] = await Promise.all([usesOf(account, [key]), listStatesOf(account, [key])]);
    sendBody(ctx.res, 200, Key, toApiKey(account, key, uses.get(key.id), states.get(key.id)!), { etag: etag(record.version) });
  });

  const patchKey = withAccount(true, async (ctx, account) => {
    const body = await readJsonBody(ctx.req, ctx.bodyLimits.json);
    if (!body.ok) return sendError(ctx.res, body.refusal);
    const patch = parseKeyPatch(body.value);
    if (!patch.ok) return sendError(ctx.res, patch.refusal);
    const id = keyParam(ctx);
    if (patch.value.kind === 'list') return restrictKeyList(ctx, account, id, patch.value.restricted);
    const fields = patch.value.fields;
    const [uses, states] = await Promise.all([store.keyUse(account, [id]), store.read(keyListId(account, id))]);
    await write(ctx, account, { action: 'key.update', key: id, change: () => updateKey(account, id, fields, service.now().toISOString()), snapshot: keySnapshotOf(id) }, 200, Key,
      (applied) => toApiKey(account, findKey(applied.record, id)!, uses.get(id), recordListState(states, service.now().getTime())));
  });

  /**
   * Opens a key's emptied list (`restricted: false`: the account's list alone applies again) or
   * closes one without allow entries (`true`): a settings change of the key's list, with its list
   * state settled, guarded and audited like an account's. As opening an account, not for account
   * credentials. If-Match and the ETag are the key list's version.
   */
  const restrictKeyList = async (ctx: Context, account: string, id: string, restricted: boolean): Promise<void> => {
    if (ctx.actor.role === 'account') return sendError(ctx.res, refusal(403, 'forbidden', `credential ${ctx.actor.name} (account) may manage the entries of a key's list, but not open or close it`));
    const record = await store.read(account);
    const key = findKey(record, id);
    if (key === undefined) return sendError(ctx.res, keyNotFound(account, id));
    const listId = keyListId(account, id);
    const uses = await store.keyUse(account, [id]);
    await write(ctx, listId, { action: 'settings.update', change: () => changeSettings(listId, { restricted }), snapshot: (r) => r?.settings ?? null }, 200, Key, (applied) => {
      const shown = toApiKey(account, key, uses.get(id), recordListState(applied.record, service.now().getTime()));
      return applied.warnings.length === 0 ? shown : { ...shown, warnings: [...applied.warnings] };
    });
  };

  const removeKey = withAccount(true, async (ctx, account) => {
    const id = keyParam(ctx);
    await write(ctx, account, { action: 'key.delete', key: id, change: () => deleteKey(account, id), snapshot: keySnapshotOf(id) }, 200, KeyDeleted, () => ({ deleted: id }));
    if (ctx.res.statusCode !== 200) return;
    // The key's own list goes with it (best effort: a list left behind belongs to no key and is
    // never read again), and so do its recent callers.
    const listId = keyListId(account, id);
    await store.update(listId, (current) => (current === null || current.entries.length === 0 ? { ok: false, refusal: NOTHING_TO_CLEAR } : { ok: true, draft: { account: listId, settings: {}, entries: [] } })).catch(() => undefined);
    await store.forgetCallers([listId]).catch(() => undefined);
  });

  /**
   * Every registered key the credential may read, with whether its effective list restricts it:
   * the account's (its parent's for a subaccount, under its mode and default) and the key's own.
   * `unrestricted=true` keeps only enabled keys that neither restricts: the keys any address may use.
   */
  const report: Handler = async (ctx) => {
    const filter = ctx.query.get('unrestricted');
    if (filter !== null && filter !== 'true' && filter !== 'false') return sendError(ctx.res, refusal(400, 'invalid_field', `unrestricted must be true or false, got '${clip(filter)}'`));
    const asked = pageOf(ctx.query);
    if (!asked.ok) return sendError(ctx.res, asked.refusal);
    const { limit, offset } = asked.value;
    const accounts = (await store.keyAccounts()).filter((a) => allows(ctx.actor, a, false));
    const evaluator = await service.evaluator();
    const records = new Map<string, AccountRecord | null>();
    const read = async (ids: readonly string[]): Promise<void> => {
      const missing = [...new Set(ids)].filter((id) => !records.has(id));
      for (let i = 0; i < missing.length; i += REPORT_CHUNK) {
        const chunk = missing.slice(i, i + REPORT_CHUNK);
        const got = await Promise.all(chunk.map((id) => store.read(id)));
        chunk.forEach((id, j) => records.set(id, got[j]!));
      }
    };
    const view: StoreView = { read: (id) => records.get(id) ?? null, children: () => [] };
    const rows: KeyReportBody['keys'] = [];
    for (let i = 0; i < accounts.length; i += REPORT_CHUNK) {
      const chunk = accounts.slice(i, i + REPORT_CHUNK);
      await read(chunk);
      // The parent chains (at most MAX_PARENT_DEPTH deep), then every key's own list.
      for (let depth = 0; depth < 5; depth++) await read(chunk.flatMap((a) => chainOf(records, a)));
      await read(chunk.flatMap((a) => keysOf(records.get(a) ?? null).map((k) => keyListId(a, k.id))));
      for (const account of chunk) {
        const record = records.get(account) ?? null;
        const keys = keysOf(record);
        if (keys.length === 0) continue;
        const accountRestricts = evaluator.restricts(evaluator.effective(record, view));
        const uses = await usesOf(account, keys);
        const nowMs = service.now().getTime();
        for (const key of keys) {
          const own = records.get(keyListId(account, key.id)) ?? null;
          const keyRestricts = own !== null && evaluator.restricts(evaluator.effective(own, view));
          const unrestricted = key.enabled && !accountRestricts && !keyRestricts;
          if (filter !== null && unrestricted !== (filter === 'true')) continue;
          rows.push({ ...toApiKey(account, key, uses.get(key.id), recordListState(own, nowMs)), unrestricted, account_restricts: accountRestricts, key_restricts: keyRestricts });
        }
      }
    }
    sendBody(ctx.res, 200, KeyReport, { keys: rows.slice(offset, offset + limit), total: rows.length, next: offset + limit < rows.length ? parts.cursorFor(offset + limit) : null });
  };

  return { listAllKeys: report, listKeys, createKey, getKey, updateKey: patchKey, deleteKey: removeKey };
}

const NOTHING_TO_CLEAR = refusal(409, 'nothing_to_clear', 'the key\'s list is empty already');

/** The parent of each account already read whose parent is not read yet. */
function chainOf(records: ReadonlyMap<string, AccountRecord | null>, account: string): string[] {
  const out: string[] = [];
  for (let id: string | undefined = account; id !== undefined && records.has(id);) {
    id = records.get(id)?.settings.parent;
    if (id !== undefined && !records.has(id)) out.push(id);
  }
  return out;
}

