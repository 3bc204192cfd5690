import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEvaluator } from '../../src/acl/evaluator.ts';
import { AclService } from '../../src/acl/service.ts';
import type { ValidationPolicy } from '../../src/acl/validation.ts';
import { AuthLimiter } from '../../src/admin/auth-limiter.ts';
import type { Surface } from '../../src/admin/context.ts';
import { compileCredentials, sha256, type Credential } from '../../src/admin/credentials.ts';
import { createAdminHandler } from '../../src/admin/handler.ts';
import { nativeSurface } from '../../src/admin/native.ts';
import type { CheckResult } from '../../src/admin/types.ts';
import { createAuditLog } from '../../src/store/open-audit.ts';
import type { AuditLog } from '../../src/audit/audit-log.ts';
import type { IpAddress } from '../../src/ip/address.ts';
import { compileList } from '../../src/list/compile.ts';
import { decideForAccount, decideForKey } from '../../src/list/decide.ts';
import { explainDecision } from '../../src/gateway/explain.ts';
import { KeyDigester } from '../../src/list/key-digest.ts';
import { keyListId } from '../../src/list/key-list-id.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';

export const OWNER_TOKEN = 'unit-test-admin-token-1234';
/** The key secret of the management API tests start (keys registered by value are hashed under it). */
export const KEY_SECRET = Buffer.from('unit-test-key-secret-0123456789abcdef');

/** A credential for tests: the token in clear (for requests) and its hashed form (for the API). */
export function credential(name: string, role: Credential['role'], token: string, account?: string): Credential {
  return role === 'account' ? { name, role, account: account!, tokenSha256: sha256(token) } : { name, role, tokenSha256: sha256(token) } as Credential;
}

export interface AdminApiOptions {
  readonly policy?: ValidationPolicy;
  readonly credentials?: readonly Credential[];
  readonly check?: (account: string, ip: IpAddress, keyId?: string) => Promise<CheckResult>;
  /** Keys one account may hold (keys.maxPerAccount). */
  readonly maxKeys?: number;
  /** null: no key secret (registration by hash only). */
  readonly keySecret?: Buffer | null;
  readonly extraSurfaces?: (service: AclService, check: (account: string, ip: IpAddress) => Promise<CheckResult>) => readonly Surface[];
  readonly now?: () => Date;
  readonly ready?: () => boolean;
  readonly limiter?: AuthLimiter;
}

export interface AdminApi {
  readonly base: string;
  readonly store: MemoryStore;
  readonly audit: AuditLog;
  readonly service: AclService;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>, token?: string): Promise<Response>;
  close(): Promise<void>;
}

/**
 * The management API as the gateway assembles it (real core service, memory store and audit
 * trail, real HTTP server on loopback), without the proxy side.
 */
export async function startAdminApi(options: AdminApiOptions = {}): Promise<AdminApi> {
  const store = new MemoryStore();
  const audit = await createAuditLog({ kind: 'memory' });
  const now = options.now ?? (() => new Date());
  const service = new AclService({
    store,
    policy: options.policy ?? { maxEntries: 50, ipv4Only: false, refused: [] },
    audit,
    evaluator: async () => createEvaluator(null, { mode: 'enforce', default: 'open' }, now().getTime()),
    now,
  });
  const check = options.check ?? decideFromStore(store);
  const handler = createAdminHandler({
    store,
    surfaces: [nativeSurface({ service, audit, check, digester: options.keySecret === null ? null : new KeyDigester(options.keySecret ?? KEY_SECRET), ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }) }), ...(options.extraSurfaces?.(service, check) ?? [])],
    authenticate: compileCredentials([credential('owner', 'owner', OWNER_TOKEN), ...(options.credentials ?? [])]),
    limiter: options.limiter ?? new AuthLimiter(),
    health: () => ({ live: true, ready: options.ready?.() ?? true }),
  });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    store,
    audit,
    service,
    call: (method, path, body, headers = {}, token = OWNER_TOKEN) => fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await audit.close();
    },
  };
}

/** What the proxy would decide for an account with no parent and no global list, from the store. */
function decideFromStore(store: MemoryStore): (account: string, ip: IpAddress, keyId?: string) => Promise<CheckResult> {
  return async (account, ip, keyId) => {
    const compiled = async (id: string) => {
      const record = await store.read(id);
      return record === null ? null : compileList(record, Date.now());
    };
    const list = await compiled(account);
    const policy = { ok: true, own: list, list, listKind: 'account', mode: 'enforce', default: 'open' } as const;
    if (keyId === undefined) return explainDecision(decideForAccount(ip.family, ip.words, null, policy), list);
    const keyList = await compiled(keyListId(account, keyId));
    return explainDecision(decideForKey(ip.family, ip.words, null, policy, keyList), keyList);
  };
}
