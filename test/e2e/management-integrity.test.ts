import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { STORE_KINDS, UNLIMITED_WRITES, useFleet } from '../support/store-fleet.ts';
import { waitUntil } from '../support/wait.ts';

/*
 * Acknowledged changes are never undone: two writers at once, on every kind of write, against
 * the real gateway on each store (two replicas sharing one real redis-server for Redis, each
 * writer on its own replica). Each pair runs ROUNDS times, on a fresh account per round; every
 * round's outcome must be what one of the two orders of the writes gives in a model, and every
 * acknowledged write must be in the final state. At ROUNDS = 40 a race that strikes one round in
 * ten goes unseen with probability 0.9^40 < 1.5%, per pair and store.
 */

const ROUNDS = 40;
/** Rounds run side by side (on different accounts), so the whole matrix stays quick. */
const PARALLEL = 8;
const OUTSIDE = '127.0.0.9';

interface ModelEntry {
  readonly ip: string;
  readonly description: string;
  readonly action: 'allow' | 'deny';
  readonly enabled: boolean;
}

interface Model {
  readonly settings: Readonly<Record<string, unknown>>;
  /** Sorted by ip. */
  readonly entries: readonly ModelEntry[];
}

/** Entry ids of the base record, by name. */
type Ids = Readonly<Record<'e1' | 'e2', string>>;

interface Op {
  readonly name: string;
  send(gw: GatewayProcess, account: string, ids: Ids): Promise<Response>;
  /** The model after this write, or null when the write is refused from this state. */
  apply(model: Model): Model | null;
}

const BASE: Model = {
  settings: { mode: 'off' },
  entries: [
    { ip: '10.1.0.0/24', description: 'e1', action: 'allow', enabled: true },
    { ip: '10.2.0.0/24', description: 'e2', action: 'allow', enabled: true },
  ],
};

const sorted = (entries: readonly ModelEntry[]): ModelEntry[] => [...entries].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
const allow = (ip: string, description: string): ModelEntry => ({ ip, description, action: 'allow', enabled: true });

function settingsOp(name: string, body: Record<string, unknown>, field: string, value: unknown): Op {
  return {
    name,
    send: (gw, account) => gw.admin('PUT', `/v1/accounts/${account}`, body),
    apply: (m) => ({ ...m, settings: { ...m.settings, [field]: value } }),
  };
}

function addOp(name: string, ip: string, description: string, action: 'allow' | 'deny' = 'allow'): Op {
  return {
    name,
    send: (gw, account) => gw.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: ip, description, action }),
    apply: (m) => (m.entries.some((e) => e.ip === ip) ? null : { ...m, entries: sorted([...m.entries, { ip, description, action, enabled: true }]) }),
  };
}

function patchOp(name: string, target: keyof Ids, body: Record<string, unknown>, change: (e: ModelEntry) => ModelEntry): Op {
  const ip = BASE.entries.find((e) => e.description === target)!.ip;
  return {
    name,
    send: (gw, account, ids) => gw.admin('PATCH', `/v1/accounts/${account}/ip-acl/${ids[target]}`, body),
    apply: (m) => (m.entries.some((e) => e.ip === ip) ? { ...m, entries: m.entries.map((e) => (e.ip === ip ? change(e) : e)) } : null),
  };
}

function removeOp(name: string, target: keyof Ids, send: Op['send']): Op {
  const ip = BASE.entries.find((e) => e.description === target)!.ip;
  return { name, send, apply: (m) => (m.entries.some((e) => e.ip === ip) ? { ...m, entries: m.entries.filter((e) => e.ip !== ip) } : null) };
}

const OPS = {
  mode: settingsOp('settings mode', { mode: 'enforce' }, 'mode', 'enforce'),
  guard: settingsOp('settings guard', { guard: 'strict' }, 'guard', 'strict'),
  fallback: settingsOp('settings default', { default: 'closed' }, 'default', 'closed'),
  limit: settingsOp('settings max_entries', { max_entries: 10 }, 'max_entries', 10),
  ipv4: settingsOp('settings ipv4_only', { ipv4_only: true }, 'ipv4_only', true),
  add3: addOp('add entry', '10.3.0.0/24', 'e3'),
  add4: addOp('add deny entry', '10.4.0.0/24', 'e4', 'deny'),
  rename1: patchOp('rename entry', 'e1', { description: 'renamed' }, (e) => ({ ...e, description: 'renamed' })),
  disable1: patchOp('disable entry', 'e1', { enabled: false }, (e) => ({ ...e, enabled: false })),
  deny2: patchOp('turn entry into deny', 'e2', { action: 'deny' }, (e) => ({ ...e, action: 'deny' })),
  delete2: removeOp('delete entry', 'e2', (gw, account, ids) => gw.admin('DELETE', `/v1/accounts/${account}/ip-acl/${ids.e2}`)),
  replace: {
    name: 'replace list',
    send: (gw, account) => gw.admin('PUT', `/v1/accounts/${account}/ip-acl`, { entries: [{ ip_address: '10.5.0.0/24', description: 'e5' }] }),
    apply: (m) => ({ ...m, entries: [allow('10.5.0.0/24', 'e5')] }),
  } satisfies Op,
  importCsv: {
    name: 'import CSV (merge)',
    send: (gw, account) => fetch(`${gw.adminUrl}/v1/accounts/${account}/ip-acl/import?mode=merge`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'text/csv' }, body: 'ip_address,description\n10.6.0.0/24,e6\n10.1.0.0/24,again\n',
    }),
    apply: (m) => (m.entries.some((e) => e.ip === '10.6.0.0/24') ? m : { ...m, entries: sorted([...m.entries, allow('10.6.0.0/24', 'e6'), ...(m.entries.some((e) => e.ip === '10.1.0.0/24') ? [] : [allow('10.1.0.0/24', 'again')])]) }),
  } satisfies Op,
  importJson: {
    name: 'import JSON (replace)',
    send: (gw, account) => gw.admin('POST', `/v1/accounts/${account}/ip-acl/import?mode=replace`, { entries: [{ ip_address: '10.7.0.0/24', description: 'e7' }] }),
    apply: (m) => ({ ...m, entries: [allow('10.7.0.0/24', 'e7')] }),
  } satisfies Op,
  vobiz: {
    name: 'Vobiz-compatible create',
    send: (gw, account) => fetch(`${gw.adminUrl}/api/v1/Account/${account}/ip-acl`, {
      method: 'POST', headers: { 'x-auth-id': account, 'x-auth-token': ADMIN_TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'e8', ip_address: '10.8.0.0/24' }),
    }),
    apply: (m) => ({ ...m, entries: sorted([...m.entries, allow('10.8.0.0/24', 'e8')]) }),
  } satisfies Op,
  vobizUpdate: {
    name: 'Vobiz-compatible update',
    // The Vobiz surface shows allow entries only: a deny entry is not found there.
    apply: (m) => (m.entries.some((e) => e.ip === '10.2.0.0/24' && e.action === 'allow') ? { ...m, entries: m.entries.map((e) => (e.ip === '10.2.0.0/24' ? { ...e, description: 'vobiz' } : e)) } : null),
    send: (gw, account, ids) => fetch(`${gw.adminUrl}/api/v1/Account/${account}/ip-acl/${ids.e2}`, {
      method: 'POST', headers: { 'x-auth-id': account, 'x-auth-token': ADMIN_TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vobiz' }),
    }),
  } satisfies Op,
  vobizDelete: removeOp('Vobiz-compatible delete', 'e1', (gw, account, ids) => fetch(`${gw.adminUrl}/api/v1/Account/${account}/ip-acl/${ids.e1}`, {
    method: 'DELETE', headers: { 'x-auth-id': account, 'x-auth-token': ADMIN_TOKEN },
  })),
  voximplantAdd: {
    name: 'Voximplant-compatible add (deny)',
    send: (gw, account) => voximplant(gw, 'AddAuthorizedAccountIP', `account_id=${account}&authorized_ip=10.9.0.0%2F24&allowed=false`),
    apply: (m) => ({ ...m, entries: sorted([...m.entries, { ip: '10.9.0.0/24', description: '', action: 'deny', enabled: true }]) }),
  } satisfies Op,
  voximplantDelete: removeOp('Voximplant-compatible delete', 'e1', (gw, account) => voximplant(gw, 'DelAuthorizedAccountIP', `account_id=${account}&authorized_ip=10.1.0.0%2F24`)),
  voximplantDeleteAllowed: {
    name: 'Voximplant-compatible delete of the whole white list',
    send: (gw, account) => voximplant(gw, 'DelAuthorizedAccountIP', `account_id=${account}&authorized_ip=all&allowed=true`),
    // Every round starts with allow entries, so this always writes.
    apply: (m) => ({ ...m, entries: m.entries.filter((e) => e.action !== 'allow') }),
  } satisfies Op,
} satisfies Record<string, Op>;

/** A Voximplant-compatible method, its parameters in the query string. */
function voximplant(gw: GatewayProcess, method: string, query: string): Promise<Response> {
  return fetch(`${gw.adminUrl}/platform_api/${method}?${query}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
}

/** Every kind of write meets itself (or another of its family) and several others. */
const PAIRS: readonly (readonly [Op, Op])[] = [
  [OPS.mode, OPS.guard], [OPS.mode, OPS.fallback], [OPS.limit, OPS.ipv4],
  [OPS.add3, OPS.add4], [OPS.rename1, OPS.disable1], [OPS.importCsv, OPS.importJson],
  [OPS.mode, OPS.add3], [OPS.guard, OPS.rename1], [OPS.fallback, OPS.replace], [OPS.deny2, OPS.delete2],
  [OPS.delete2, OPS.add3], [OPS.replace, OPS.add4], [OPS.replace, OPS.rename1], [OPS.importCsv, OPS.add4],
  [OPS.vobiz, OPS.add3], [OPS.voximplantDelete, OPS.rename1], [OPS.ipv4, OPS.vobiz], [OPS.limit, OPS.importJson],
  [OPS.disable1, OPS.voximplantDelete], [OPS.mode, OPS.importCsv],
  [OPS.vobizUpdate, OPS.deny2], [OPS.vobizDelete, OPS.rename1], [OPS.voximplantAdd, OPS.add3], [OPS.voximplantDeleteAllowed, OPS.add4],
];

let accounts = 0;

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

/** Asserts a write's status, naming the answer when it is another one. */
async function answered(pending: Promise<Response>, status: number): Promise<void> {
  const res = await pending;
  const body = await res.text();
  expect(res.status, `${res.url}: ${body}`).toBe(status);
}

/** A fresh account holding BASE; returns its entry ids and version. */
async function seed(gw: GatewayProcess, account: string): Promise<{ ids: Ids; version: number }> {
  await answered(gw.admin('PUT', `/v1/accounts/${account}`, BASE.settings), 200);
  const res = await gw.admin('PUT', `/v1/accounts/${account}/ip-acl`, { entries: BASE.entries.map((e) => ({ ip_address: e.ip, description: e.description })) });
  const body = await json(res);
  expect(res.status, JSON.stringify(body)).toBe(200);
  const entries = body['entries'] as { id: string; description: string }[];
  return { ids: { e1: entries.find((e) => e.description === 'e1')!.id, e2: entries.find((e) => e.description === 'e2')!.id }, version: body['version'] as number };
}

/** The account as stored, in the model's shape. */
async function stored(gw: GatewayProcess, account: string): Promise<{ model: Model; version: number }> {
  const settings = await json(await gw.admin('GET', `/v1/accounts/${account}`));
  const list = await json(await gw.admin('GET', `/v1/accounts/${account}/ip-acl`));
  const picked: Record<string, unknown> = {};
  for (const key of ['parent', 'mode', 'default', 'max_entries', 'ipv4_only', 'guard']) if (settings[key] !== null) picked[key] = settings[key];
  const entries = (list['entries'] as { ip_address: string; description: string; action: 'allow' | 'deny'; enabled: boolean }[])
    .map((e) => ({ ip: e.ip_address, description: e.description, action: e.action, enabled: e.enabled }));
  return { model: { settings: picked, entries: sorted(entries) }, version: settings['version'] as number };
}

/** Runs `round` for 0..count-1, PARALLEL at a time. */
async function inBatches(count: number, round: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < count; i += PARALLEL) {
    await Promise.all(Array.from({ length: Math.min(PARALLEL, count - i) }, (_, j) => round(i + j)));
  }
}

describe.each(STORE_KINDS)('management integrity on the %s store', (kind) => {
  const running = useFleet(kind);

  it.each(PAIRS.map(([a, b]) => [`${a.name} + ${b.name}`, a, b] as const))('two writers at once: %s, every acknowledged write kept', async (_name, a, b) => {
    // A writer must be able to succeed or fail only as one of the two orders allows.
    const orders = [[a, b], [b, a]].map(([first, second]) => {
      const afterFirst = first!.apply(BASE);
      const afterSecond = second!.apply(afterFirst ?? BASE);
      const ok = new Map([[first!, afterFirst !== null], [second!, afterSecond !== null]]);
      return { ok, model: afterSecond ?? afterFirst ?? BASE };
    });
    await inBatches(ROUNDS, async (round) => {
      const account = `INT${kind}${++accounts}`;
      const { ids, version } = await seed(running().at(0), account);
      const [ra, rb] = await Promise.all([a.send(running().at(0), account, ids), b.send(running().at(1), account, ids)]);
      const okA = ra.status < 300;
      const okB = rb.status < 300;
      const bodies = `${a.name}: ${ra.status} ${await ra.text()}; ${b.name}: ${rb.status} ${await rb.text()}`;
      const after = await stored(running().at(round), account);
      const order = orders.find((o) => o.ok.get(a) === okA && o.ok.get(b) === okB && JSON.stringify(o.model) === JSON.stringify(after.model));
      expect(order, `round ${round} on ${account}: ${bodies}; stored ${JSON.stringify(after.model)}; expected one of ${JSON.stringify(orders.map((o) => o.model))}`).toBeDefined();
      // One version per acknowledged write: none was written twice, none lost.
      expect(after.version).toBe(version + Number(okA) + Number(okB));
    });
  }, 120_000);

  it('enforces the mode an owner set while another admin changed the guard, on every replica', async () => {
    await inBatches(ROUNDS, async (round) => {
      const account = `ENF${kind}${++accounts}`;
      await seed(running().at(0), account);
      const [mode, guard] = await Promise.all([
        running().at(round).admin('PUT', `/v1/accounts/${account}`, { mode: 'enforce' }),
        running().at(round + 1).admin('PUT', `/v1/accounts/${account}`, { guard: 'strict' }),
      ]);
      expect([mode.status, guard.status]).toEqual([200, 200]);
      for (const gw of running().gateways) {
        await waitUntil(`an outside caller of ${account} refused`, async () => (await send(`${gw.url}/x`, { headers: { 'x-auth-id': account }, localAddress: OUTSIDE })).status === 403, 5_000);
      }
    });
  }, 120_000);
});

describe.each(STORE_KINDS)('the parent graph on the %s store', (kind) => {
  const running = useFleet(kind);
  const OFFICE = '127.0.0.2';

  const put = (i: number, account: string, body: Record<string, unknown>, query = ''): Promise<Response> => running().at(i).admin('PUT', `/v1/accounts/${account}${query}`, body);
  /** An enforced account whose list allows `ip` only. */
  const listed = async (account: string, ip = '10.9.0.0/24'): Promise<void> => {
    await answered(put(0, account, { mode: 'enforce' }), 200);
    await answered(running().at(0).admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: ip }), 201);
  };
  /** What every replica's proxy answers a caller of `account` from `from`, once they agree. */
  const proxied = async (account: string, from = OUTSIDE): Promise<number[]> => Promise.all(running().gateways.map(async (gw) => (await send(`${gw.url}/x`, { headers: { 'x-auth-id': account }, localAddress: from })).status));

  it('lets exactly one of two writers that would close a cycle win, and both accounts keep answering', async () => {
    await inBatches(ROUNDS, async (round) => {
      const [x, y] = [`CYX${kind}${round}`, `CYY${kind}${round}`];
      await Promise.all([listed(x), listed(y)]);
      const answers = await Promise.all([put(round, x, { parent: y }), put(round + 1, y, { parent: x })]);
      const bodies = await Promise.all(answers.map(async (r) => `${r.status} ${await r.text()}`));
      expect(answers.map((r) => r.status).sort(), `round ${round}: ${bodies.join('; ')}`).toEqual([200, 400]);
      const refused = JSON.parse(bodies.find((b) => b.startsWith('400 '))!.slice(4)) as Record<string, unknown>;
      expect(refused).toMatchObject({ reason: 'invalid_parent', error: expect.stringContaining('cycle') });
      for (const account of [x, y]) expect(await proxied(account)).toEqual(running().gateways.map(() => 403));
    });
  }, 120_000);

  it('refuses the second of two parent changes that only together make a chain too deep', async () => {
    await inBatches(ROUNDS, async (round) => {
      const name = (n: string): string => `DP${n}${kind}${round}`;
      // W ← X and P0 ← P1 ← P2, Q0 ← Q1: P0 under X (P2 gets 4 ancestors) and Q0 under P2 (Q1 gets 4)
      // are each fine, together Q1 would have 6.
      for (const account of ['W', 'P0', 'Q0'].map(name)) await listed(account);
      for (const [child, parent] of [['X', 'W'], ['P1', 'P0'], ['P2', 'P1'], ['Q1', 'Q0']]) await answered(put(0, name(child!), { parent: name(parent!) }), 200);
      const answers = await Promise.all([put(round, name('P0'), { parent: name('X') }), put(round + 1, name('Q0'), { parent: name('P2') })]);
      const bodies = await Promise.all(answers.map(async (r) => `${r.status} ${await r.text()}`));
      expect(answers.map((r) => r.status).sort(), `round ${round}: ${bodies.join('; ')}`).toEqual([200, 400]);
      expect(JSON.parse(bodies.find((b) => b.startsWith('400 '))!.slice(4))).toMatchObject({ reason: 'invalid_parent', error: expect.stringContaining('ancestors') });
      for (const account of ['Q1', 'P2'].map(name)) expect(await proxied(account)).toEqual(running().gateways.map(() => 403));
    });
  }, 120_000);

  it('checks the depth of the whole subtree: a subaccount chain cannot be hung under another account', async () => {
    const chain = ['C1', 'C2', 'C3', 'C4', 'C5'].map((c) => `${c}${kind}`);
    await listed(chain[0]!);
    for (let i = 1; i < chain.length; i++) await answered(put(0, chain[i]!, { parent: chain[i - 1] }), 200);
    const d = `D${kind}`;
    await listed(d);
    const refused = await put(0, chain[0]!, { parent: d });
    expect(await json(refused)).toMatchObject({ code: 400, reason: 'invalid_parent', error: expect.stringMatching(/C5\S* 5 ancestors/) });
    expect(await proxied(chain[4]!)).toEqual(running().gateways.map(() => 403));
    // Cutting the chain makes room: C3 becomes a root, and C1 may then go under D.
    await answered(put(0, chain[2]!, { parent: null }), 200);
    await answered(put(0, chain[0]!, { parent: d }), 200);
  });

  it('refuses a parent without a record, and the child keeps its own list', async () => {
    const child = `ORPHAN${kind}`;
    await listed(child);
    await put(0, child, { guard: 'strict' });
    expect(await json(await put(0, child, { parent: `NOBODY${kind}` }))).toMatchObject({ code: 409, reason: 'parent_not_found', error: expect.stringContaining(`create NOBODY${kind} first`) });
    expect(await proxied(child)).toEqual(running().gateways.map(() => 403));
    expect((await json(await running().at(0).admin('GET', `/v1/accounts/${child}`)))['parent']).toBeNull();
  });

  it('judges a parent change by the list the child will get: opening it warns, and strict refuses', async () => {
    const child = `OPEN${kind}`;
    const parent = `EMPTY${kind}`;
    await listed(child);
    await answered(put(0, parent, { default: 'open' }), 200);
    const strict = await put(0, child, { parent }, '?guard=strict');
    expect(await json(strict)).toMatchObject({ code: 409, reason: 'would_open', error: expect.stringContaining(`inherit the list of ${parent}`) });
    expect(await proxied(child)).toEqual(running().gateways.map(() => 403));
    // The account's own guard setting refuses it just the same.
    await answered(put(0, child, { guard: 'strict' }), 200);
    expect(await json(await put(0, child, { parent }))).toMatchObject({ code: 409, reason: 'would_open' });
    expect(await proxied(child)).toEqual(running().gateways.map(() => 403));
    await answered(put(0, child, { guard: null }), 200);
    const warned = await json(await put(0, child, { parent }));
    expect(warned['warnings']).toEqual([{ reason: 'would_open', message: expect.stringContaining(`account ${child} would be open to every address`) }]);
    await waitUntil('the child open on every replica', async () => (await proxied(child)).every((s) => s === 200), 5_000);
  });

  it('warns about, or refuses, a parent change that would lock out the child\'s recent callers', async () => {
    const child = `KIDLOCK${kind}`;
    const parent = `PARLOCK${kind}`;
    await listed(child, `${OFFICE}/32`);
    await listed(parent, '10.9.0.0/24');
    expect(await proxied(child, OFFICE)).toEqual(running().gateways.map(() => 200));
    await waitUntil('the office seen as a recent caller', async () => {
      const body = await json(await running().at(0).admin('GET', `/v1/accounts/${child}/recent-ips`));
      return (body['ips'] as { ip: string }[]).some((c) => c.ip === OFFICE);
    }, 5_000);
    expect(await json(await put(0, child, { parent }, '?guard=strict'))).toMatchObject({ code: 409, reason: 'would_lock_out', error: expect.stringContaining(OFFICE) });
    expect(await proxied(child, OFFICE)).toEqual(running().gateways.map(() => 200));
    const warned = await json(await put(0, child, { parent }));
    expect(warned['warnings']).toEqual([expect.objectContaining({ reason: 'would_lock_out', ip: OFFICE, decision: 'deny' })]);
  });
});

describe.each(STORE_KINDS)('expiry sweeps racing writers on the %s store', (kind) => {
  // The whole trail of the account is read back to count the sweeps.
  const running = useFleet(kind, { config: `admin:\n  ${UNLIMITED_WRITES}\nexpirySweepMs: 1000\naudit: {accountCap: 100000}\n` });

  it('removes expired entries while two writers edit the others, losing none of their edits', async () => {
    const account = `SWEEP${kind}`;
    const gw = running().at(0);
    const keep: string[] = [];
    for (let i = 0; i < 6; i++) keep.push(((await json(await gw.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: `10.1.${i}.0/24`, description: 'k' }))) as { id: string }).id);
    const expiresAt = new Date(Date.now() + 1_500).toISOString();
    for (let i = 0; i < 4; i++) await answered(gw.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: `10.2.${i}.0/24`, expires_at: expiresAt }), 201);
    const start = ((await json(await gw.admin('GET', `/v1/accounts/${account}`))) as { version: number }).version;

    // Writer w edits entries w, w+2, w+4 in turn until the sweeps have run a few times.
    const last = new Map<string, string>();
    let acknowledged = 0;
    const deadline = Date.now() + 4_000;
    await Promise.all([0, 1].map(async (w) => {
      for (let n = 0; Date.now() < deadline; n++) {
        const id = keep[w + 2 * (n % 3)]!;
        const description = `w${w} n${n}`;
        const res = await running().at(w).admin('PATCH', `/v1/accounts/${account}/ip-acl/${id}`, { description });
        expect(res.status).toBe(200);
        last.set(id, description);
        acknowledged++;
      }
    }));
    await waitUntil('the expired entries swept', async () => ((await json(await gw.admin('GET', `/v1/accounts/${account}/ip-acl`))) as { total: number }).total === 6, 5_000);
    const list = (await json(await running().at(1).admin('GET', `/v1/accounts/${account}/ip-acl`))) as { version: number; entries: { id: string; description: string }[] };
    expect(list.entries.map((e) => [e.id, e.description])).toEqual(keep.map((id) => [id, last.get(id) ?? 'k']));
    let sweeps = 0;
    for (let cursor = ''; ;) {
      const page = (await json(await gw.admin('GET', `/v1/audit?account=${account}&limit=1000${cursor}`))) as { events: { action: string }[]; next: string | null };
      sweeps += page.events.filter((e) => e.action === 'entry.expire').length;
      if (page.next === null) break;
      cursor = `&cursor=${encodeURIComponent(page.next)}`;
    }
    expect(sweeps).toBeGreaterThanOrEqual(1);
    // One version per acknowledged write and per sweep that removed something: nothing lost, nothing doubled.
    expect(list.version).toBe(start + acknowledged + sweeps);
  }, 30_000);
});
