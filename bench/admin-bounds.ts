/**
 * An allowed caller of one account through the proxy, alone and while an account credential of
 * another account sends the worst list bodies it can (test/support/admin-attacks.ts: 1 MiB of
 * wide IPv6 ranges as CSV and JSON, rows over the network limit, a key flood, deep nesting, a
 * body that never ends) from 4 parallel loops in a process of its own; and, for scale, the
 * largest legitimate import an admin-raised account can take (5,000 rows, 10,000 rows).
 *
 *   npm run bench:admin-bounds [-- --quick]
 *
 * Ratios are of one run on this machine (shared with other work): p99 under attack over p99
 * alone, and the event loop's longest pause, read from the gateway's own metrics.
 */
import { spawn } from 'node:child_process';
import { request, Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, startAllowgate, type Allowgate } from './lib/allowgate.ts';
import { startServer } from './lib/forwarders.ts';
import { stopAll, workDir } from './lib/processes.ts';
import { percentile, report, verdict, type Table } from './lib/report.ts';

const quick = process.argv.includes('--quick');
const SAMPLES = quick ? 1_000 : 4_000;
const ATTACK_MS = quick ? 4_000 : 15_000;
const ATTACKERS = 4;
const ATTACK_RUNNER = fileURLToPath(new URL('../test/support/admin-attacks.ts', import.meta.url));
const CALLER = '127.0.0.1';
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

try {
  await main();
} finally {
  agent.destroy();
  await stopAll();
}

async function main(): Promise<void> {
  const dir = workDir('admin-bounds');
  const upstream = await startServer('upstream');
  const attackerToken = 'bench-attacker-token-0123456789';
  const digest = (await import('node:crypto')).createHash('sha256').update(attackerToken).digest('hex');
  const gw = await startAllowgate({
    upstreamUrl: upstream.url, store: 'memory', dir, env: { ALLOWGATE_LOG_LEVEL: 'warn' },
    config: `admin:\n  writes: {perSecond: 100000, burst: 100000, concurrent: 64, concurrentPerCredential: 64}\n  credentials:\n    - {name: attacker, role: account, account: ATT, tokenSha256: ${digest}}\n`,
  });
  await gw.admin('POST', '/v1/accounts/VIC/ip-acl', { ip_address: `${CALLER}/32` });
  for (let i = 0; i < 500; i++) await timed(gw); // connections and JIT warm

  const alone = await sample(gw, SAMPLES);
  const attacker = spawn(process.execPath, [ATTACK_RUNNER, gw.adminUrl, attackerToken, 'ATT', String(ATTACKERS), String(ATTACK_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  attacker.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  const done = new Promise<void>((resolve) => attacker.once('exit', () => resolve()));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const underAttack: number[] = [];
  const deadline = performance.now() + ATTACK_MS - 500;
  while (performance.now() < deadline) underAttack.push(await timed(gw));
  await done;
  const statuses = (JSON.parse(output) as { statuses: Record<string, number> }).statuses;
  const bodies = Object.values(statuses).reduce((a, b) => a + b, 0);

  // Legitimate large imports by an admin into an account allowed that many entries.
  const imports: (string | number)[][] = [];
  for (const rows of [5_000, 10_000]) {
    const account = `BIG${rows}`;
    await gw.admin('PUT', `/v1/accounts/${account}`, { max_entries: rows });
    const csv = `ip_address\n${Array.from({ length: rows }, (_, i) => `${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`).join('\n')}\n`;
    const during: number[] = [];
    let importing = true;
    const start = performance.now();
    const imported = adminCsv(gw, `/v1/accounts/${account}/ip-acl/import?mode=replace`, csv).finally(() => { importing = false; });
    while (importing) during.push(await timed(gw));
    const status = await imported;
    if (status !== 200) throw new Error(`import of ${rows} rows answered ${status}`);
    imports.push([`${rows} rows imported by an admin (${(performance.now() - start).toFixed(0)} ms)`, percentile(during, 50), percentile(during, 99), Math.max(...during), during.length]);
  }

  const p99Alone = percentile(alone, 99);
  const p99Attack = percentile(underAttack, 99);
  const table: Table = {
    title: 'Allowed caller of another account through the proxy, ms (one run; machine shared)',
    columns: ['while', 'p50', 'p99', 'max', 'samples'],
    rows: [
      ['nothing else', percentile(alone, 50), p99Alone, Math.max(...alone), alone.length],
      [`${ATTACKERS} loops of worst-case bodies (${bodies} sent: ${JSON.stringify(statuses)})`, percentile(underAttack, 50), p99Attack, Math.max(...underAttack), underAttack.length],
      ...imports,
    ],
    notes: [
      verdict('p99 under attack within 5 ms of p99 alone', p99Attack - p99Alone < 5, `${p99Attack.toFixed(2)} vs ${p99Alone.toFixed(2)} ms (ratio ${(p99Attack / p99Alone).toFixed(2)})`),
      'the attack runs in its own process with 4 parallel loops; each body is refused (409 limit_reached, 400, 413) or, past the credential\'s limits, 429',
    ],
  };
  report('admin-bounds', [table], { alone, underAttack, statuses });
}


async function sample(gw: Allowgate, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await timed(gw));
  return out;
}

function timed(gw: Allowgate): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}/v1/resource`, { agent, localAddress: CALLER, headers: { 'x-auth-id': 'VIC' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - start) : reject(new Error(`the allowed caller got ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

function adminCsv(gw: Allowgate, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.adminUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'text/csv' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}
