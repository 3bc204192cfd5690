import { randomUUID } from 'node:crypto';
import { compileRanges, DEFAULT_RESERVED } from '../../src/acl/reserved.ts';
import type { ValidationPolicy } from '../../src/acl/validation.ts';
import type { CompatDeps } from '../../src/admin/compat/shared.ts';
import type { Surface } from '../../src/admin/context.ts';
import type { Credential } from '../../src/admin/credentials.ts';
import { credential, startAdminApi, type AdminApi } from './admin-api.ts';

/** A credential for tests: the token in clear goes in requests, its digest to the API. */
export const testCredential = credential;

export const TEST_POLICY: ValidationPolicy = { maxEntries: 50, ipv4Only: false, refused: compileRanges(DEFAULT_RESERVED, 'reserved') };

export type CompatServer = AdminApi;

/**
 * The management API as the gateway assembles it, with one compatible surface mounted beside the
 * native one, over a memory store with the default reserved ranges. `check` decides like the
 * proxy for an account without parent or global list.
 */
export function startCompatServer(surfaceOf: (deps: CompatDeps) => Surface, options: { readonly credentials: readonly Credential[]; readonly now?: () => Date }): Promise<CompatServer> {
  return startAdminApi({
    policy: TEST_POLICY,
    credentials: options.credentials,
    ...(options.now === undefined ? {} : { now: options.now }),
    extraSurfaces: (service, check) => [surfaceOf({ service, check, newId: () => randomUUID() })],
  });
}
