import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { STORE_KINDS, UNLIMITED_WRITES, useFleet } from '../support/store-fleet.ts';

/*
 * The audit trail keeps every tenant's history: an account credential editing its own entries
 * hundreds of times past the trail's cap does not push another account's events out, on the
 * memory, file and Redis stores, through the real gateway; the global list's events are
 * filterable; each event carries the gateway's own request id beside the caller's; and a
 * credential's writes are paced.
 */

const CAP = 300;
const FLOOD = 452; // four lanes of 113 edits
const FLOODER_TOKEN = 'audit-flooder-token-0123456789';
const PACED_TOKEN = 'audit-paced-token-0123456789';
const PACED_BURST = 20;

const sha = (token: string): string => createHash('sha256').update(token).digest('hex');

interface Event {
  id: string;
  account: string;
  action: string;
  version: number;
  requestId?: string;
  gatewayRequestId?: string;
}

describe.each(STORE_KINDS)('the audit trail on the %s store', (kind) => {
  const running = useFleet(kind, {
    config: [
      `audit: {cap: ${CAP}}`,
      'admin:',
      `  ${UNLIMITED_WRITES}`,
      '  credentials:',
      `    - {name: flooder, role: account, account: FLOOD, tokenSha256: ${sha(FLOODER_TOKEN)}}`,
      '',
    ].join('\n'),
  });

  const as = (token: string, method: string, path: string, body?: unknown): Promise<Response> => fetch(`${running().at(0).adminUrl}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

  /** Every event of a query, following `next`. */
  const trail = async (query: string): Promise<Event[]> => {
    const out: Event[] = [];
    let cursor = '';
    for (let page = 0; page < 100; page++) {
      const body = (await (await running().at(1).admin('GET', `/v1/audit?limit=100${query}${cursor}`)).json()) as { events: Event[]; next: string | null };
      out.push(...body.events);
      if (body.next === null) return out;
      cursor = `&cursor=${encodeURIComponent(body.next)}`;
    }
    throw new Error('paging did not end');
  };

  it('keeps a quiet account\'s events while another account floods the trail past its cap', async () => {
    for (let i = 0; i < 5; i++) expect((await running().at(0).admin('POST', '/v1/accounts/QUIET/ip-acl', { ip_address: `10.5.${i}.0/24` })).status).toBe(201);
    const created = (await (await as(FLOODER_TOKEN, 'POST', '/v1/accounts/FLOOD/ip-acl', { ip_address: '10.9.0.0/24' })).json()) as { id: string };
    for (let lane = 0; lane < 4; lane++) {
      await Promise.all(Array.from({ length: FLOOD / 4 }, async (_, i) => {
        const res = await as(FLOODER_TOKEN, 'PATCH', `/v1/accounts/FLOOD/ip-acl/${created.id}`, { description: `edit ${lane}-${i}` });
        expect(res.status).toBe(200);
      }));
    }
    const quiet = await trail('&account=QUIET');
    expect(quiet.map((e) => [e.action, e.version])).toEqual([5, 4, 3, 2, 1].map((v) => ['entry.create', v]));
    const flood = await trail('&account=FLOOD');
    expect(flood.length).toBeGreaterThanOrEqual(CAP - 5);
    expect(flood[0]!.version).toBe(FLOOD + 1);
    if (kind !== 'redis') {
      // Memory and file: the cap holds in all, the flooder lost its own oldest, and the quiet
      // account's events are in the unfiltered trail too.
      const all = await trail('');
      expect(all).toHaveLength(CAP);
      expect(all.filter((e) => e.account === 'QUIET')).toHaveLength(5);
      expect(flood).toHaveLength(CAP - 5);
    }
  }, 60_000);

  it('lists the global list\'s events with account=_global, to gateway-wide credentials only', async () => {
    expect((await running().at(0).admin('POST', '/v1/global/ip-acl', { ip_address: '10.77.0.0/16', action: 'deny' })).status).toBe(201);
    const global = await trail('&account=_global');
    expect(global.length).toBeGreaterThanOrEqual(1);
    expect(global.every((e) => e.account === '_global')).toBe(true);
    expect(global[0]).toMatchObject({ action: 'entry.create', account: '_global' });
    expect((await as(FLOODER_TOKEN, 'GET', '/v1/audit?account=_global')).status).toBe(403);
    expect(await (await running().at(0).admin('GET', '/v1/audit?account=_other')).json()).toMatchObject({ code: 400, reason: 'invalid_account' });
  });

  it('records the gateway\'s own request id beside the caller\'s', async () => {
    const traced = await running().at(0).admin('POST', '/v1/accounts/IDS/ip-acl', { ip_address: '10.6.0.0/24' }, { 'x-request-id': 'caller-trace-42' });
    const own = traced.headers.get('x-gateway-request-id');
    expect(own).toMatch(/^[0-9a-f-]{36}$/);
    const untraced = await running().at(0).admin('POST', '/v1/accounts/IDS/ip-acl', { ip_address: '10.6.1.0/24' });
    const second = untraced.headers.get('x-gateway-request-id');
    const [latest, first] = await trail('&account=IDS');
    expect(first).toMatchObject({ requestId: 'caller-trace-42', gatewayRequestId: own });
    expect(latest).toMatchObject({ requestId: second, gatewayRequestId: second });
  });

});

describe.each(STORE_KINDS)('write pacing on the %s store', (kind) => {
  const running = useFleet(kind, {
    config: ['admin:', `  writes: {perSecond: 1, burst: ${PACED_BURST}}`, '  credentials:', `    - {name: paced, role: account, account: PACED, tokenSha256: ${sha(PACED_TOKEN)}}`, ''].join('\n'),
  });

  it('answers a credential past its burst 429 with Retry-After, writes nothing for it, and does not slow another credential', async () => {
    const paced = (method: string, path: string, body?: unknown): Promise<Response> => fetch(`${running().at(0).adminUrl}${path}`, {
      method, headers: { authorization: `Bearer ${PACED_TOKEN}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const statuses: number[] = [];
    for (let i = 0; i < PACED_BURST + 5; i++) statuses.push((await paced('POST', '/v1/accounts/PACED/ip-acl', { ip_address: `10.8.${i}.0/24` })).status);
    expect(statuses.slice(0, PACED_BURST).every((s) => s === 201)).toBe(true);
    expect(statuses.slice(PACED_BURST + 1)).toEqual([429, 429, 429, 429]);
    const refused = await paced('POST', '/v1/accounts/PACED/ip-acl', { ip_address: '10.8.200.0/24' });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ reason: 'write_rate_exceeded', error: expect.stringContaining('credential paced') });
    // Reads are not paced; the list holds only what was acknowledged.
    const list = (await (await paced('GET', '/v1/accounts/PACED/ip-acl')).json()) as { total: number };
    expect(list.total).toBe(statuses.filter((s) => s === 201).length);
    // The owner credential has a bucket of its own.
    expect((await running().at(0).admin('POST', '/v1/accounts/OTHER/ip-acl', { ip_address: '10.9.0.0/24' })).status).toBe(201);
  });
});
