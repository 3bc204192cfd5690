/**
 * Memory footprint: resident set size (RSS) of allowgate, as `npm start` runs it (the project's
 * runtime flags), next to the bare undici forwarder and to allowgate on Node's defaults. Each
 * process is measured idle, at its peak under 20 s of keep-alive load at full speed (wrk, 50
 * connections: one account with a 50-entry list for the first half, then requests spread over 20,000
 * accounts, the others without a list), and
 * after the load. Peak is the kernel's high-water mark (VmHWM), so no sample can miss it.
 *
 *   npm run bench:footprint [-- --quick] [--seconds N] [--connections N] [--variants]
 *
 * --variants adds one allowgate per runtime setting alone (young generation size, malloc arenas),
 * to show where the RSS goes.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { RUNTIME_ENV, RUNTIME_FLAGS } from '../src/cli/runtime.ts';
import { metric, startAllowgate, writeFileStore } from './lib/allowgate.ts';
import { startServer, UPSTREAM_BODY } from './lib/forwarders.ts';
import { stopAll, workDir } from './lib/processes.ts';
import { report, verdict, type Table } from './lib/report.ts';
import { loadSettings, preflight, Wrk } from './lib/wrk.ts';

const argv = process.argv.slice(2);
const { settings, quick } = loadSettings(argv);
const phaseSeconds = quick ? 3 : (settings.seconds >= 10 ? settings.seconds : 10);
const ACCOUNTS = 20_000;
const PATH = '/v1/resource';
/** Targets for allowgate as shipped, in MiB. */
const IDLE_TARGET_MiB = 100;
const PEAK_TARGET_MiB = 160;

interface Measured {
  readonly label: string;
  readonly idle: number;
  readonly peak: number;
  readonly after: number;
  readonly rps: number;
}

interface Candidate {
  readonly label: string;
  readonly pid: number;
  readonly url: string;
  /** allowgate's /metrics (null for the forwarder), to say where the memory is. */
  readonly metrics: (() => Promise<string>) | null;
  /** Spreads the second half over accounts (allowgate only: the forwarder checks none). */
  readonly accounts: boolean;
}

function status(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** MiB, as the manifests' Mi. */
const mb = (bytes: number): number => Math.round(bytes / 1_048_576);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

try {
  const dir = workDir('footprint');
  const wrk = Wrk.create(dir);
  if (typeof wrk === 'string') {
    console.log(`footprint benchmark skipped: ${wrk}`);
  } else {
    await main(wrk, dir);
  }
} finally {
  await stopAll();
}

async function main(wrk: Wrk, dir: string): Promise<void> {
  const started = Date.now();
  const upstream = await startServer('upstream');
  const bare = await startServer('undici-dispatch', upstream.port);
  const store = join(dir, 'accounts.json');
  // As `npm start` runs out of the box: a file store, here with one account's 50-entry list; the
  // other 19,999 accounts of the second half have none (the default policy lets them through),
  // as on a gateway in front of an API whose accounts are not all restricted.
  await writeFileStore(store, 1, []);
  const gateway = async (label: string, nodeFlags: readonly string[], env: Record<string, string>): Promise<Candidate> => {
    const g = await startAllowgate({ upstreamUrl: upstream.url, store: `file:${store}`, dir, nodeFlags, env, runtime: false, startTimeoutMs: 120_000 });
    return { label, pid: g.pid, url: g.url, accounts: true, metrics: g.metrics };
  };
  const candidates: Candidate[] = [
    await gateway('allowgate, as `npm start` runs it', RUNTIME_FLAGS, RUNTIME_ENV),
    { label: 'bare forwarder (undici dispatch), Node defaults', pid: bare.pid, url: bare.url, accounts: false, metrics: null },
    await gateway('allowgate, Node defaults', [], {}),
  ];
  if (argv.includes('--variants')) {
    // Each runtime setting alone, then the young generation's size with the rest as shipped.
    for (const flag of RUNTIME_FLAGS) candidates.push(await gateway(`allowgate, ${flag} alone`, [flag], {}));
    for (const [name, value] of Object.entries(RUNTIME_ENV)) candidates.push(await gateway(`allowgate, ${name}=${value} alone`, [], { [name]: value }));
    const others = RUNTIME_FLAGS.filter((f) => !f.startsWith('--max-semi-space-size='));
    for (const semi of [2, 4, 8, 16]) candidates.push(await gateway(`allowgate as shipped, but --max-semi-space-size=${semi}`, [...others, `--max-semi-space-size=${semi}`], RUNTIME_ENV));
  }
  for (const c of candidates) await preflight({ key: c.label, label: c.label, url: c.url, spec: { path: PATH, headers: { 'X-Auth-ID': 'AC1' } } }, UPSTREAM_BODY);

  const notes: string[] = [];
  const load = loadavg()[0]!;
  if (load > 0.5) notes.push(`load average was ${load.toFixed(2)} before the runs: something else is using the CPU; compare rows of this run with each other, not with other runs`);
  await sleep(2_000);
  const measured: Measured[] = [];
  // One process at a time under load, so each gets the machine the same way.
  for (const c of candidates) {
    const idle = status(c.pid).rss;
    const one = await wrk.load(c.url, { ...settings, seconds: phaseSeconds }, { path: PATH, headers: { 'X-Auth-ID': 'AC1' } });
    const many = await wrk.load(c.url, { ...settings, seconds: phaseSeconds }, c.accounts ? { path: PATH, headers: {}, accounts: ACCOUNTS } : { path: PATH, headers: { 'X-Auth-ID': 'AC1' } });
    const peak = status(c.pid).hwm;
    await sleep(5_000);
    const after = status(c.pid).rss;
    measured.push({ label: c.label, idle, peak, after, rps: (one.rps + many.rps) / 2 });
    if (c.metrics !== null) {
      const text = await c.metrics();
      const m = (name: string): number => mb(metric(text, name));
      notes.push(`${c.label}, after the load: heap ${m('nodejs_heap_size_used_bytes')} MiB used of ${m('nodejs_heap_size_total_bytes')}, external ${m('nodejs_external_memory_bytes')} MiB, compiled lists ${m('allowgate_cache_bytes')} MiB (${metric(text, 'allowgate_cache_entries')} cached)`);
    }
    console.log(`${c.label}: idle ${mb(idle)} MiB, peak ${mb(peak)} MiB, after ${mb(after)} MiB, ${Math.round(one.rps)} / ${Math.round(many.rps)} req/s`);
  }

  const shipped = measured[0]!;
  const defaults = measured[2]!;
  const table: Table = {
    title: `Footprint (RSS, MiB): idle, peak under ${phaseSeconds} s one account + ${phaseSeconds} s over ${ACCOUNTS.toLocaleString('en-US')} accounts (wrk, ${settings.connections} connections, keep-alive), ${5} s after`,
    columns: ['process', 'idle MiB', 'peak MiB', 'after MiB', 'req/s (mean of both halves)'],
    rows: measured.map((m) => [m.label, mb(m.idle), mb(m.peak), mb(m.after), Math.round(m.rps)]),
    notes: [
      verdict(`allowgate as shipped: idle <= ${IDLE_TARGET_MiB} MiB`, mb(shipped.idle) <= IDLE_TARGET_MiB, `${mb(shipped.idle)} MiB`),
      verdict(`allowgate as shipped: peak <= ${PEAK_TARGET_MiB} MiB`, mb(shipped.peak) <= PEAK_TARGET_MiB, `${mb(shipped.peak)} MiB`),
      `runtime flags as shipped: ${[...Object.entries(RUNTIME_ENV).map(([k, v]) => `${k}=${v}`), ...RUNTIME_FLAGS].join(' ')}`,
      `as shipped vs Node defaults, same run: peak ${(shipped.peak / defaults.peak).toFixed(2)}x, req/s ${(shipped.rps / defaults.rps).toFixed(2)}x`,
      ...notes,
      ...(quick ? ['--quick: short runs: a smoke test, not a measurement'] : []),
      `took ${((Date.now() - started) / 1000).toFixed(0)} s`,
    ],
  };
  report('footprint', [table], { settings, phaseSeconds, measured });
}
