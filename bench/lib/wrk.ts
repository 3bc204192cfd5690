/**
 * The load generator for the proxy benchmarks: wrk (Debian package `wrk`) with the same settings
 * for every target, percentiles printed by a Lua `done` hook, and interleaved rounds (round 1 runs
 * every target once, then round 2, ...) so that drift on a shared machine spreads over all targets.
 */
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { median } from './report.ts';
import { ensureTool, run } from './processes.ts';

export interface LoadSettings {
  readonly threads: number;
  readonly connections: number;
  readonly seconds: number;
}

export interface LoadResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly errors: number;
}

/** What each request carries: fixed headers, and optionally X-Auth-ID cycling over AC1..ACn, or a header cycling over values. */
export interface RequestSpec {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Spread requests over accounts AC1..ACn (X-Auth-ID), in turn. */
  readonly accounts?: number;
  /** Spread requests over these values of one header (API keys), in turn. */
  readonly spread?: { readonly header: string; readonly values: readonly string[] };
}

/**
 * Every target gets the same script, so wrk does the same work per request whatever the target:
 * the requests are formatted once in `init` (one per account or header value when spreading) and `request` hands
 * them out in turn.
 */
const SCRIPT = `
local reqs = {}
local n = 0
local i = 0
function init(args)
  local headers = {}
  for k, v in string.gmatch(os.getenv("BENCH_HEADERS") or "", "([^:\\n]+):%s*([^\\n]*)") do headers[k] = v end
  local path = os.getenv("BENCH_PATH") or "/"
  local accounts = tonumber(os.getenv("BENCH_ACCOUNTS") or "0")
  if accounts > 0 then
    for a = 1, accounts do
      headers["X-Auth-ID"] = "AC" .. a
      reqs[a] = wrk.format("GET", path, headers)
    end
    n = accounts
  elseif (os.getenv("BENCH_SPREAD_FILE") or "") ~= "" then
    local header = os.getenv("BENCH_SPREAD_HEADER")
    for value in io.lines(os.getenv("BENCH_SPREAD_FILE")) do
      n = n + 1
      headers[header] = value
      reqs[n] = wrk.format("GET", path, headers)
    end
  else
    reqs[1] = wrk.format("GET", path, headers)
    n = 1
  end
  i = math.random(n) - 1
end
function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %.3f %.3f %.3f %.3f %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
`;

export class Wrk {
  readonly #script: string;
  readonly #dir: string;

  private constructor(script: string, dir: string) {
    this.#script = script;
    this.#dir = dir;
  }

  /** wrk, installed first as root when missing; a sentence saying why not otherwise. */
  static create(dir: string): Wrk | string {
    const ok = ensureTool('wrk', 'wrk');
    if (ok !== true) return ok;
    const script = join(dir, 'bench.lua');
    writeFileSync(script, SCRIPT);
    return new Wrk(script, dir);
  }

  async load(url: string, settings: LoadSettings, spec: RequestSpec): Promise<LoadResult> {
    const headers = Object.entries(spec.headers).map(([k, v]) => `${k}: ${v}`).join('\n');
    // Thousands of values are past what one environment variable may hold: they go in a file.
    let spread: Record<string, string> = {};
    if (spec.spread !== undefined) {
      const file = join(this.#dir, `spread-${spec.spread.header.toLowerCase()}.txt`);
      writeFileSync(file, `${spec.spread.values.join('\n')}\n`);
      spread = { BENCH_SPREAD_FILE: file, BENCH_SPREAD_HEADER: spec.spread.header };
    }
    const out = await run('wrk', [`-t${settings.threads}`, `-c${settings.connections}`, `-d${settings.seconds}s`, '-s', this.#script, url], {
      env: { BENCH_HEADERS: headers, BENCH_PATH: spec.path, BENCH_ACCOUNTS: String(spec.accounts ?? 0), ...spread },
      timeoutMs: (settings.seconds + 30) * 1000,
    });
    const line = /BENCH (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)/.exec(out.stdout);
    if (line === null) throw new Error(`wrk printed no summary for ${url} (exit ${out.code}): ${out.stderr || out.stdout}`);
    const [requests, durationUs, p50, p90, p99, max, non2xx, errors] = line.slice(1).map(Number) as [number, number, number, number, number, number, number, number];
    return { rps: requests / (durationUs / 1e6), p50Ms: p50, p90Ms: p90, p99Ms: p99, maxMs: max, requests, non2xx, errors };
  }
}

export interface Target {
  /** Short key, e.g. "c". */
  readonly key: string;
  readonly label: string;
  readonly url: string;
  readonly spec: RequestSpec;
}

/**
 * One request as a caller would send it, before any load: a target that does not answer 200 with
 * the upstream's body is set up wrong, and the benchmark stops here saying so.
 */
export async function preflight(target: Target, expectBody: string): Promise<void> {
  const url = new URL(target.spec.path, target.url);
  const spread = target.spec.spread;
  const headers = { ...target.spec.headers, ...(target.spec.accounts ? { 'X-Auth-ID': 'AC1' } : {}), ...(spread === undefined ? {} : { [spread.header]: spread.values[0]! }) };
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, { headers, agent: false, localAddress: '127.0.0.1', timeout: 5_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
  if (status !== 200 || body !== expectBody) {
    throw new Error(`${target.label}: the first request answered ${status} ${body.slice(0, 300)}: the setup is wrong (expected 200 and the upstream's body)`);
  }
}

export interface RoundsOptions {
  readonly settings: LoadSettings;
  readonly rounds: number;
  readonly warmupSeconds: number;
  /** Pause between runs, so one target's closing connections do not overlap the next. */
  readonly pauseMs?: number;
}

/**
 * Warm-up run per target, then `rounds` interleaved rounds. Any non-2xx response or socket error
 * stops the benchmark: a refusing or failing target would be measured doing something else.
 */
export async function interleavedRounds(wrk: Wrk, targets: readonly Target[], options: RoundsOptions): Promise<Map<string, LoadResult[]>> {
  const check = (target: Target, r: LoadResult, what: string): void => {
    if (r.requests === 0 || r.non2xx > 0 || r.errors > 0) {
      throw new Error(`${target.label} (${what}): ${r.requests} requests, ${r.non2xx} non-2xx responses, ${r.errors} socket errors: the setup is wrong`);
    }
  };
  for (const target of targets) {
    const r = await wrk.load(target.url, { ...options.settings, seconds: options.warmupSeconds }, target.spec);
    check(target, r, 'warm-up');
    process.stderr.write(`warm-up: ${target.label}: ${Math.round(r.rps)} req/s\n`);
    await sleep(options.pauseMs ?? 500);
  }
  const results = new Map<string, LoadResult[]>(targets.map((t) => [t.key, []]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const target of targets) {
      const r = await wrk.load(target.url, options.settings, target.spec);
      check(target, r, `round ${round}`);
      results.get(target.key)!.push(r);
      process.stderr.write(`round ${round}/${options.rounds}: ${target.label}: ${Math.round(r.rps)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms\n`);
      await sleep(options.pauseMs ?? 500);
    }
  }
  return results;
}

export interface Summary {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Lowest and highest req/s over the rounds: how much the machine moved. */
  readonly rpsMin: number;
  readonly rpsMax: number;
}

/** Medians over the rounds. */
export function summarize(results: readonly LoadResult[]): Summary {
  const rps = results.map((r) => r.rps);
  return {
    rps: median(rps),
    p50Ms: median(results.map((r) => r.p50Ms)),
    p99Ms: median(results.map((r) => r.p99Ms)),
    rpsMin: Math.min(...rps),
    rpsMax: Math.max(...rps),
  };
}

export function loadTitle(what: string, s: LoadSettings, rounds: number): string {
  return `${what}: wrk ${s.threads} thread, ${s.connections} connections, ${s.seconds} s per run, median of ${rounds} interleaved round${rounds === 1 ? '' : 's'}`;
}

/** Settings every proxy benchmark shares; --quick shortens runs to a smoke test. */
export function loadSettings(argv: readonly string[]): { settings: LoadSettings; rounds: number; warmupSeconds: number; quick: boolean } {
  const quick = argv.includes('--quick');
  const flag = (name: string): number | undefined => {
    const i = argv.indexOf(name);
    const value = i >= 0 ? Number(argv[i + 1]) : undefined;
    if (value !== undefined && !(value > 0)) throw new Error(`${name} needs a positive number`);
    return value;
  };
  return {
    quick,
    settings: { threads: 1, connections: flag('--connections') ?? 50, seconds: flag('--seconds') ?? (quick ? 2 : 10) },
    rounds: flag('--rounds') ?? (quick ? 1 : 3),
    warmupSeconds: quick ? 1 : 3,
  };
}
