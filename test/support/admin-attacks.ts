import { request } from 'node:http';
import { Readable } from 'node:stream';

/**
 * List bodies built to make the management side stall or exhaust the gateway, as an account
 * credential may send them (its account holds at most 50 entries, the default): the worst cases
 * the admin API must refuse cheaply. Used by the end-to-end bounds test and bench/admin-bounds.ts.
 */

/** The widest IPv6 range that still expands into 254 networks, one per row, distinct rows. */
export function wideRange(i: number): string {
  return `2001:db8:${(i & 0xffff).toString(16)}::1 - 2001:db8:${(i & 0xffff).toString(16)}:ffff:ffff:ffff:ffff:fffe`;
}

/** Rows of wide ranges up to `bytes` of CSV. */
export function wideCsv(bytes = 1_040_000): string {
  const rows = ['ip_address,description'];
  let size = rows[0]!.length;
  for (let i = 0; size < bytes - 200; i++) {
    const row = `${wideRange(i)},row ${i}`;
    rows.push(row);
    size += row.length + 1;
  }
  return `${rows.join('\n')}\n`;
}

/** The same as JSON `{entries}`, up to `bytes`. */
export function wideJson(bytes = 1_040_000): string {
  const items: string[] = [];
  let size = 20;
  for (let i = 0; size < bytes - 200; i++) {
    const item = JSON.stringify({ ip_address: wideRange(i), description: `row ${i}` });
    items.push(item);
    size += item.length + 1;
  }
  return `{"entries":[${items.join(',')}]}`;
}

/** Exactly `rows` wide-range rows: within the row limit, each row over the network limit. */
export function fewWideRows(rows = 50): string {
  return JSON.stringify({ entries: Array.from({ length: rows }, (_, i) => ({ ip_address: wideRange(i) })) });
}

/** One item with tens of thousands of keys. */
export function manyKeys(keys = 60_000): string {
  const item: Record<string, string> = { ip_address: '203.0.113.0/24' };
  for (let i = 0; i < keys; i++) item[`k${i}`] = 'v';
  return JSON.stringify({ entries: [item] });
}

/** Arrays nested as deep as 1 MiB allows. */
export function deepJson(depth = 500_000): string {
  return `{"entries":[${'['.repeat(depth)}${']'.repeat(depth)}]}`;
}

export interface Attack {
  readonly name: string;
  readonly path: string;
  readonly method: string;
  readonly type: string;
  readonly body: string | (() => Readable);
}

/** A body that never ends: chunks of rows until the server stops reading. */
export function endless(): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i === 0) this.push('ip_address\n');
      this.push(`${Array.from({ length: 100 }, () => `198.51.${(i >> 8) & 255}.${i++ & 255}`).join('\n')}\n`);
    },
  });
}

export function attacks(account: string): Attack[] {
  const base = `/v1/accounts/${account}/ip-acl`;
  return [
    { name: 'wide CSV import', path: `${base}/import`, method: 'POST', type: 'text/csv', body: wideCsv() },
    { name: 'wide JSON import', path: `${base}/import?mode=replace`, method: 'POST', type: 'application/json', body: wideJson() },
    { name: 'wide JSON replace', path: base, method: 'PUT', type: 'application/json', body: wideJson() },
    { name: '50 rows of 254 networks', path: `${base}/import`, method: 'POST', type: 'application/json', body: fewWideRows() },
    { name: '60,000 keys in one item', path: `${base}/import`, method: 'POST', type: 'application/json', body: manyKeys() },
    { name: 'nesting 500,000 deep', path: `${base}/import`, method: 'POST', type: 'application/json', body: deepJson() },
    { name: 'endless CSV body', path: `${base}/import`, method: 'POST', type: 'text/csv', body: endless },
  ];
}

/** Sends one attack with `token`; resolves with the status (0 when the connection was cut first). */
export function sendAttack(adminUrl: string, token: string, attack: Attack): Promise<{ status: number; body: string }> {
  const url = new URL(attack.path, adminUrl);
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: attack.method, agent: false, timeout: 30_000,
      headers: { authorization: `Bearer ${token}`, 'content-type': attack.type, ...(typeof attack.body === 'string' ? { 'content-length': String(Buffer.byteLength(attack.body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
    if (typeof attack.body === 'string') req.end(attack.body);
    else attack.body().on('error', () => undefined).pipe(req);
  });
}

/**
 * As a process of its own (so the caller measuring latency does not share its loop with the
 * attack): `node admin-attacks.ts ADMIN_URL TOKEN ACCOUNT PARALLEL MS` sends every attack over
 * and over from PARALLEL loops for MS milliseconds and prints `{"statuses": {status: count}}`.
 */
if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  const [adminUrl, token, account, parallel, ms] = process.argv.slice(2);
  const list = attacks(account!);
  const statuses: Record<number, number> = {};
  const deadline = Date.now() + Number(ms);
  await Promise.all(Array.from({ length: Number(parallel) }, async (_, a) => {
    for (let i = a; Date.now() < deadline; i++) {
      const reply = await sendAttack(adminUrl!, token!, list[i % list.length]!);
      statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
    }
  }));
  process.stdout.write(`${JSON.stringify({ statuses })}\n`);
}
