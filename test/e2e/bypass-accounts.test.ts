import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';
import { unsignedJwt } from '../unit/identity/support.ts';

/*
 * Account-id spelling (identity.accountIdCase) against the real gateway process. AC1 has a list
 * admitting OFFICE only; Acme has settings but no list. An upstream whose account lookup ignores
 * case would serve AC1 to a caller naming `ac1`, so by default such an id is refused; a
 * deployment that says how its upstream compares ids gets that comparison instead.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const basic = (user: string): string => `Basic ${Buffer.from(`${user}:secret`, 'utf8').toString('base64')}`;
const bearer = (iss: string): string => `Bearer ${unsignedJwt({ iss })}`;

type Headers = readonly (readonly [string, string])[];

interface Case {
  readonly name: string;
  readonly headers: Headers;
  readonly path?: string;
  readonly from?: string;
  readonly status: number;
  readonly reason?: string;
}

const CASES: readonly Case[] = [
  { name: 'the exact id (control)', headers: [['X-Auth-ID', 'AC1']], status: 403, reason: 'ip_not_allowed' },
  { name: 'the exact id from the office (control)', headers: [['X-Auth-ID', 'AC1']], from: OFFICE, status: 200 },
  ...['ac1', 'Ac1', 'aC1'].map((id): Case => ({ name: `X-Auth-ID: ${id}`, headers: [['X-Auth-ID', id]], status: 400, reason: 'ambiguous_account' })),
  { name: 'Basic user ac1', headers: [['Authorization', basic('ac1')]], status: 400, reason: 'ambiguous_account' },
  { name: 'Bearer iss ac1', headers: [['Authorization', bearer('ac1')]], status: 400, reason: 'ambiguous_account' },
  { name: 'query ac1', headers: [], path: '/v1/x?account_id=ac1', status: 400, reason: 'ambiguous_account' },
  { name: 'path ac1', headers: [], path: '/v1/Account/ac1/Calls', status: 400, reason: 'ambiguous_account' },
  { name: 'ac1 even from the office', headers: [['X-Auth-ID', 'ac1']], from: OFFICE, status: 400, reason: 'ambiguous_account' },
  { name: 'an account with settings only, in another case', headers: [['X-Auth-ID', 'ACME']], status: 400, reason: 'ambiguous_account' },
  { name: 'the settings-only account itself is open', headers: [['X-Auth-ID', 'Acme']], status: 200 },
  { name: 'an id like no stored account is open', headers: [['X-Auth-ID', 'AC3']], status: 200 },
  // Characters with no single reading: refused whatever the list says.
  { name: 'a NUL in a Basic user', headers: [['Authorization', basic('AC1\u0000')]], status: 400, reason: 'invalid_account' },
  { name: 'a zero-width space in a token claim', headers: [['Authorization', bearer('AC\u200b1')]], status: 400, reason: 'invalid_account' },
  { name: 'fullwidth letters (NFKC: AC1) in a token claim', headers: [['Authorization', bearer('\uff21\uff23\uff11')]], status: 400, reason: 'invalid_account' },
  { name: 'a Kelvin sign in a Basic user', headers: [['Authorization', basic('\u212aC1')]], status: 400, reason: 'invalid_account' },
  { name: 'a dotless i in a token claim', headers: [['Authorization', bearer('\u0131AC1')]], status: 400, reason: 'invalid_account' },
  { name: 'a combining accent in a token claim', headers: [['Authorization', bearer('AC1\u0301')]], status: 400, reason: 'invalid_account' },
  { name: 'a right-to-left mark in a query id', headers: [], path: '/v1/x?account_id=AC1%E2%80%8F', status: 400, reason: 'invalid_account' },
  { name: 'a control character in a query id', headers: [], path: '/v1/x?account_id=AC1%01', status: 400, reason: 'invalid_account' },
  { name: 'Latin-1 in the header value', headers: [['X-Auth-ID', 'AC\u00c51']], status: 400, reason: 'invalid_account' },
];

/*
 * Numbers and format suffixes. Account 123 and AC1 admit OFFICE only. An upstream that compares
 * ids as numbers (PHP's '0123' == '123', Ruby's to_i, ActiveRecord's find("123-x"), SQL casts)
 * serves 123 to `0123`, and Rails' `.:format` routes /v1/Account/AC1.json to AC1: the gateway
 * would check another, open account. Such ids are refused; other ids pass as their own accounts.
 */
const NUMERIC: readonly Case[] = [
  { name: 'the exact number (control)', headers: [['X-Auth-ID', '123']], status: 403, reason: 'ip_not_allowed' },
  ...['0123', '00123', '123.0', '123.', '1.23e2', '12.3E1', '1_23', '0x7B', '0x7b', '123abc', '123-acme', '123.json', '1230e-1']
    .map((id): Case => ({ name: `X-Auth-ID: ${id}`, headers: [['X-Auth-ID', id]], status: 400, reason: 'ambiguous_account' })),
  { name: 'Basic user 0123', headers: [['Authorization', basic('0123')]], status: 400, reason: 'ambiguous_account' },
  { name: 'Bearer iss 123.0', headers: [['Authorization', bearer('123.0')]], status: 400, reason: 'ambiguous_account' },
  { name: 'query 0123', headers: [], path: '/v1/x?account_id=0123', status: 400, reason: 'ambiguous_account' },
  { name: 'path 0123', headers: [], path: '/v1/Account/0123/Calls', status: 400, reason: 'ambiguous_account' },
  ...['1234', '124', '12', '0124', '12.4e1', 'x123'].map((id): Case => ({ name: `X-Auth-ID: ${id} (another number, no account)`, headers: [['X-Auth-ID', id]], status: 200 })),
];

const SUFFIXES: readonly Case[] = [
  { name: 'path AC1 (control)', headers: [], path: '/v1/Account/AC1', status: 403, reason: 'ip_not_allowed' },
  ...['AC1.json', 'AC1.xml', 'AC1.@', 'AC1.json/', 'AC1.tar.gz', 'ac1.json', 'AC1%2Ejson', '123.json']
    .map((id): Case => ({ name: `path /v1/Account/${id}`, headers: [], path: `/v1/Account/${id}`, status: 400, reason: 'ambiguous_account' })),
  { name: 'a suffixed id that is an account of its own is refused all the same', headers: [], path: '/v1/Account/AC1.csv', status: 400, reason: 'ambiguous_account' },
  { name: 'a dotted id before another segment is its own account (no router reads a format there)', headers: [], path: '/v1/Account/AC1.json/Calls', status: 200 },
  { name: 'a dotted id whose first part names no account', headers: [], path: '/v1/Account/b.example.json', status: 200 },
  { name: 'a dotted id in a header is the id as sent', headers: [['X-Auth-ID', 'AC1.json']], status: 200 },
];

const STRATEGIES = (extra: string): string => [
  'identity:',
  ...extra.split('\n').filter((l) => l !== '').map((l) => `  ${l}`),
  '  strategies:',
  '    - {type: header, header: X-Auth-ID}',
  '    - {type: basic}',
  '    - {type: bearer-jwt, claim: iss}',
  '    - {type: query, param: account_id}',
  '    - {type: path, templates: ["/v1/Account/{account}/"]}',
  '',
].join('\n');

async function gatewayWith(upstream: EchoUpstream, yaml: string, env: Record<string, string> = {}): Promise<{ gw: GatewayProcess; remove: () => void }> {
  const dir = scratchDir();
  const config = join(dir.path, 'allowgate.yaml');
  writeFileSync(config, yaml);
  const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config, ...env } });
  return { gw, remove: dir.remove };
}

async function expectCase(gw: GatewayProcess, upstream: EchoUpstream, c: Case, marker: string): Promise<void> {
  const path = c.path ?? '/v1/x';
  const target = `${path}${path.includes('?') ? '&' : '?'}case=${marker}`;
  const reply = await send(gw.url, { target, headers: [['Host', 'api.example'], ...c.headers], localAddress: c.from ?? STRANGER });
  const body = reply.status === 200 ? {} : reply.json();
  expect({ status: reply.status, reason: body['reason'] }, c.name).toEqual({ status: c.status, reason: c.reason });
  expect(upstream.seen.some((r) => r.url === target), `${c.name}: reached the upstream`).toBe(c.status === 200);
}

describe('account ids: the default refuses ids that differ from an account only in case, or read as another\'s number or with a format suffix', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let remove: () => void;
  let n = 0;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    ({ gw, remove } = await gatewayWith(upstream, STRATEGIES('')));
    expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
    expect((await gw.admin('PUT', '/v1/accounts/Acme', { mode: 'enforce' })).status).toBe(200);
    expect((await gw.admin('POST', '/v1/accounts/123/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
    expect((await gw.admin('PUT', '/v1/accounts/AC1.csv', { mode: 'enforce' })).status).toBe(200);
  });
  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    remove?.();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => expectCase(gw, upstream, c, `d${n++}`));
  it.each(NUMERIC.map((c) => [c.name, c] as const))('numbers: %s', async (_name, c) => expectCase(gw, upstream, c, `n${n++}`));
  it.each(SUFFIXES.map((c) => [c.name, c] as const))('format suffixes: %s', async (_name, c) => expectCase(gw, upstream, c, `s${n++}`));

  it('an account created later in another case is refused at once, and an explicit account of that spelling is its own', async () => {
    await expectCase(gw, upstream, { name: 'AC7 before', headers: [['X-Auth-ID', 'ac7']], status: 200 }, 'late1');
    expect((await gw.admin('POST', '/v1/accounts/AC7/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
    await expectCase(gw, upstream, { name: 'ac7 after AC7 has a list', headers: [['X-Auth-ID', 'ac7']], status: 400, reason: 'ambiguous_account' }, 'late2');
    expect((await gw.admin('PUT', '/v1/accounts/ac7', { mode: 'enforce' })).status).toBe(200);
    await expectCase(gw, upstream, { name: 'ac7 once it is an account of its own', headers: [['X-Auth-ID', 'ac7']], status: 200 }, 'late3');
  });
});

describe('account ids: the deployment says how its upstream compares them', () => {
  let upstream: EchoUpstream;
  beforeAll(async () => {
    upstream = await startEchoUpstream();
  });
  afterAll(async () => upstream?.close());

  it('fold: ac1 is checked against AC1\'s list', async () => {
    const { gw, remove } = await gatewayWith(upstream, STRATEGIES('accountIdCase: fold'));
    try {
      expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
      await expectCase(gw, upstream, { name: 'fold: ac1 from a stranger', headers: [['X-Auth-ID', 'ac1']], status: 403, reason: 'ip_not_allowed' }, 'f1');
      await expectCase(gw, upstream, { name: 'fold: Ac1 from the office', headers: [['X-Auth-ID', 'Ac1']], from: OFFICE, status: 200 }, 'f2');
      await expectCase(gw, upstream, { name: 'fold: header ac1 and Basic AC1 are one account', headers: [['X-Auth-ID', 'ac1'], ['Authorization', basic('AC1')]], status: 403, reason: 'ip_not_allowed' }, 'f3');
      // The admin API acts on the stored spelling too.
      const entries = await (await gw.admin('GET', '/v1/accounts/ac1/ip-acl')).json() as { account: string; total: number };
      expect([entries.account, entries.total]).toEqual(['AC1', 1]);
    } finally {
      await gw.stop();
      remove();
    }
  });

  it('lower: lists are stored and looked up in lower case', async () => {
    const { gw, remove } = await gatewayWith(upstream, STRATEGIES('accountIdCase: lower'));
    try {
      expect((await gw.admin('POST', '/v1/accounts/AC5/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
      expect(((await (await gw.admin('GET', '/v1/accounts')).json()) as { accounts: string[] }).accounts).toEqual(['ac5']);
      await expectCase(gw, upstream, { name: 'lower: AC5 from a stranger', headers: [['X-Auth-ID', 'AC5']], status: 403, reason: 'ip_not_allowed' }, 'l1');
      await expectCase(gw, upstream, { name: 'lower: ac5 from a stranger', headers: [['X-Auth-ID', 'ac5']], status: 403, reason: 'ip_not_allowed' }, 'l2');
      await expectCase(gw, upstream, { name: 'lower: Ac5 in a path', headers: [], path: '/v1/Account/Ac5/Calls', status: 403, reason: 'ip_not_allowed' }, 'l3');
    } finally {
      await gw.stop();
      remove();
    }
  });

  it('accountIdNumeric: exact takes 0123 for an account of its own', async () => {
    const { gw, remove } = await gatewayWith(upstream, STRATEGIES('accountIdNumeric: exact'));
    try {
      expect((await gw.admin('POST', '/v1/accounts/123/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
      await expectCase(gw, upstream, { name: 'exact: 0123', headers: [['X-Auth-ID', '0123']], status: 200 }, 'x1');
      await expectCase(gw, upstream, { name: 'exact: 123', headers: [['X-Auth-ID', '123']], status: 403, reason: 'ip_not_allowed' }, 'x2');
    } finally {
      await gw.stop();
      remove();
    }
  });

  it('exact: ac1 is another account', async () => {
    const { gw, remove } = await gatewayWith(upstream, STRATEGIES('accountIdCase: exact'));
    try {
      expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
      await expectCase(gw, upstream, { name: 'exact: ac1', headers: [['X-Auth-ID', 'ac1']], status: 200 }, 'e1');
      await expectCase(gw, upstream, { name: 'exact: AC1', headers: [['X-Auth-ID', 'AC1']], status: 403, reason: 'ip_not_allowed' }, 'e2');
    } finally {
      await gw.stop();
      remove();
    }
  });
});

describe('account ids over Redis: an account created through one replica is known to the other at once', () => {
  let redis: RedisServer;
  let upstream: EchoUpstream;
  beforeAll(async () => {
    [redis, upstream] = await Promise.all([startRedis(), startEchoUpstream()]);
  });
  afterAll(async () => {
    await upstream?.close();
    await redis?.stop();
  });

  it('refuses the other spelling on the replica that did not make the change', async () => {
    const env = { ALLOWGATE_STORE: redis.url, ALLOWGATE_REDIS_KEY_PREFIX: `case${Date.now()}:` };
    const a = await gatewayWith(upstream, STRATEGIES(''), env);
    const b = await gatewayWith(upstream, STRATEGIES(''), env);
    try {
      await expectCase(b.gw, upstream, { name: 'before', headers: [['X-Auth-ID', 'ac9']], status: 200 }, 'r1');
      expect((await a.gw.admin('POST', '/v1/accounts/AC9/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
      await waitUntil('the other replica knows AC9', async () => (await send(b.gw.url, { target: '/v1/x', headers: [['Host', 'h'], ['X-Auth-ID', 'ac9']], localAddress: STRANGER })).status === 400, 5_000);
      await expectCase(b.gw, upstream, { name: 'after, on the other replica', headers: [['X-Auth-ID', 'ac9']], status: 400, reason: 'ambiguous_account' }, 'r2');
      // A replica started later lists the store at start.
      const c = await gatewayWith(upstream, STRATEGIES(''), env);
      try {
        await expectCase(c.gw, upstream, { name: 'on a replica started afterwards', headers: [['X-Auth-ID', 'Ac9']], status: 400, reason: 'ambiguous_account' }, 'r3');
      } finally {
        await c.gw.stop();
        c.remove();
      }
    } finally {
      await Promise.all([a.gw.stop(), b.gw.stop()]);
      a.remove();
      b.remove();
    }
  });
});

describe('anonymous callers and the global list (identity.anonymous: pass)', () => {
  it('a globally denied address is refused without credentials too; a global allow entry inside the range admits', async () => {
    const upstream = await startEchoUpstream();
    const { gw, remove } = await gatewayWith(upstream, STRATEGIES(''));
    try {
      expect((await gw.admin('POST', '/v1/global/ip-acl', { ip_address: '127.0.0.0/29', action: 'deny' })).status).toBe(201);
      expect((await gw.admin('POST', '/v1/global/ip-acl', { ip_address: `${OFFICE}/32`, action: 'allow' })).status).toBe(201);
      await expectCase(gw, upstream, { name: 'anonymous from a denied address', headers: [], status: 403, reason: 'ip_denied' }, 'g1');
      await expectCase(gw, upstream, { name: 'with credentials from a denied address', headers: [['X-Auth-ID', 'AC2']], status: 403, reason: 'ip_denied' }, 'g2');
      await expectCase(gw, upstream, { name: 'anonymous from the allowed address inside the range', headers: [], from: OFFICE, status: 200 }, 'g3');
      await expectCase(gw, upstream, { name: 'anonymous from outside the range', headers: [], from: '127.0.0.9', status: 200 }, 'g4');
    } finally {
      await gw.stop();
      remove();
      await upstream.close();
    }
  });
});
