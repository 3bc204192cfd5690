import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileRanges, DEFAULT_RESERVED } from '../../src/acl/reserved.ts';
import { AclService } from '../../src/acl/service.ts';
import type { ValidationPolicy } from '../../src/acl/validation.ts';
import type { CompatDeps } from '../../src/admin/compat/shared.ts';
import type { Handler, Surface } from '../../src/admin/context.ts';
import { compileCredentials, sha256, type Credential } from '../../src/admin/credentials.ts';
import { compileRoutes } from '../../src/admin/router.ts';
import type { CheckResult } from '../../src/admin/types.ts';
import { requestIdFrom } from '../../src/gateway/request-id.ts';
import { refusal } from '../../src/http/refusal.ts';
import type { IpAddress } from '../../src/ip/address.ts';
import { formatCidr } from '../../src/ip/cidr.ts';
import { compileList } from '../../src/policy/compile.ts';
import { decideForAccount } from '../../src/policy/decide.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';

/** A credential for tests: the token in clear goes in requests, its digest to the API. */
export function testCredential(name: string, role: Credential['role'], token: string, account?: string): Credential {
  return role === 'account' ? { name, role, account: account!, tokenSha256: sha256(token) } : { name, role, tokenSha256: sha256(token) } as Credential;
}

export const TEST_POLICY: ValidationPolicy = { maxEntries: 50, ipv4Only: false, refused: compileRanges(DEFAULT_RESERVED, 'reserved') };

export interface CompatServer {
  readonly base: string;
  readonly store: MemoryStore;
  readonly service: AclService;
  close(): Promise<void>;
}

/**
 * One compatible surface over a real core (memory store, no audit trail, a guard that never
 * warns) on a loopback HTTP server, behind a minimal dispatcher doing what the management
 * listener does for a surface: prefix, token, credential, route, and errors in the surface's shape.
 * `check` decides like the proxy for an account without parent or global list.
 */
export async function startCompatServer(surfaceOf: (deps: CompatDeps) => Surface, options: { readonly credentials: readonly Credential[]; readonly now?: () => Date }): Promise<CompatServer> {
  const store = new MemoryStore();
  const service = new AclService({
    store,
    policy: TEST_POLICY,
    audit: null,
    evaluator: async () => () => 'allow',
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const check = async (account: string, ip: IpAddress): Promise<CheckResult> => {
    const record = await store.read(account);
    const list = record === null ? null : compileList(record, Date.now());
    const decision = decideForAccount(ip.family, ip.words, null, { own: list, list, listKind: 'account', mode: 'enforce', default: 'open' });
    const source = decision.source;
    const matched = source !== null && decision.slot >= 0 && decision.list !== null
      ? { id: source.trie.idOf(decision.slot), cidr: formatCidr(source.trie.cidrOf(decision.slot)), action: source.trie.actionOf(decision.slot), list: decision.list }
      : null;
    return { decision: decision.outcome, reason: decision.reason, matched };
  };
  const surface = surfaceOf({ service, check, newId: () => randomUUID() });
  const route = compileRoutes<Handler>(surface.routes);
  const authenticate = compileCredentials(options.credentials);

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    const fail = (refused: ReturnType<typeof refusal>, headers: Record<string, string> = {}): void => {
      req.resume();
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      surface.sendError(res, refused);
    };
    if (!path.startsWith(surface.prefix)) return fail(refusal(404, 'not_found', `no route ${path}`));
    const token = surface.tokenOf(req);
    if (typeof token !== 'string') return fail(token);
    const actor = authenticate(token);
    if (actor === null) return fail(refusal(401, 'invalid_token', 'the credentials are not valid'));
    const match = route(method, path);
    if (!match.ok) return fail(match.refusal, match.allow ? { allow: match.allow } : {});
    const ctx = { req, res, params: match.params, query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)), actor, requestId: requestIdFrom(req.rawHeaders) };
    match.handler(ctx).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      surface.sendError(res, refusal(500, 'internal_error', `handler failed: ${(error as Error).message}`));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    store,
    service,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
