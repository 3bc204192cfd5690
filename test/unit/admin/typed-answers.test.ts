import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Accounts, Check, Deleted, Settings } from '../../../src/admin/api-schemas.ts';
import { sendBody } from '../../../src/admin/respond.ts';

/*
 * The native handlers answer through sendBody, which takes the body as its schema's type: a body
 * that drifts from the definition the document publishes does not compile. `npm test` runs tsc
 * over this file, so each @ts-expect-error below fails the build if sendBody ever accepts the drift.
 */
export function driftIsACompileError(res: ServerResponse): void {
  // @ts-expect-error a misspelled field
  sendBody(res, 200, Accounts, { accounts: [], totl: 0, next: null });
  // @ts-expect-error a missing field
  sendBody(res, 200, Deleted, { deleted: 'ipacl_1' });
  // @ts-expect-error a decision the schema does not list
  sendBody(res, 200, Check, { account: 'a', ip: '192.0.2.1', decision: 'maybe', reason: 'ip_allowed', matched: null, list_state: 'active' });
  // @ts-expect-error a setting of the wrong type
  sendBody(res, 200, Settings, { account: 'a', version: 0, parent: null, mode: 'sometimes', default: null, max_entries: null, ipv4_only: null, guard: null, restricted: false, list_state: 'none', entry_count: 0 });
}

describe('a native answer typed by its schema', () => {
  let url = '';
  const server = createServer((_req, res) => sendBody(res, 200, Accounts, { accounts: ['acme'], total: 1, next: null }, { etag: '"4"' }));
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('is sent as it was built, as JSON, with the headers given', async () => {
    const answer = await fetch(url);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/json');
    expect(answer.headers.get('etag')).toBe('"4"');
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(await answer.json()).toEqual({ accounts: ['acme'], total: 1, next: null });
  });
});
