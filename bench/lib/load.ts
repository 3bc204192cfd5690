/**
 * Process handling and the load generator for the proxy benchmarks: wrk (Debian package `wrk`),
 * one thread, a fixed number of connections, percentiles read from a Lua `done` hook.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = new Set<ChildProcess>();

export function start(command: string, args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** SIGTERM, which every process here handles (nginx's master only takes its workers down on it). */
export function stopAll(): void {
  for (const child of children) child.kill('SIGTERM');
  children.clear();
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { stopAll(); process.exit(130); });
process.on('exit', stopAll);

export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

export interface LoadResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly errors: number;
}

const SCRIPT = join(tmpdir(), 'allowgate-bench-wrk.lua');
writeFileSync(SCRIPT, [
  'local hdr = os.getenv("BENCH_HEADER")',
  'if hdr and hdr ~= "" then local k, v = hdr:match("([^:]+):%s*(.*)"); wrk.headers[k] = v end',
  '-- BENCH_ACCOUNTS=N spreads requests over accounts AC1..ACN (X-Auth-ID).',
  'local accounts = tonumber(os.getenv("BENCH_ACCOUNTS") or "0")',
  'if accounts > 0 then request = function() wrk.headers["X-Auth-ID"] = "AC" .. math.random(accounts); return wrk.format() end end',
  'done = function(summary, latency, requests)',
  '  local e = summary.errors',
  '  io.write(string.format("BENCH %d %d %.3f %.3f %d %d\\n", summary.requests, summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))',
  'end',
].join('\n'));

export interface LoadSettings {
  readonly connections: number;
  readonly seconds: number;
}

/** Runs wrk against `url` and parses its summary; `header` is one "Name: value" line. */
export function load(url: string, settings: LoadSettings, header = '', accounts = 0): LoadResult {
  const out = spawnSync('wrk', ['-t1', `-c${settings.connections}`, `-d${settings.seconds}s`, '-s', SCRIPT, url], {
    encoding: 'utf8', env: { ...process.env, BENCH_HEADER: header, BENCH_ACCOUNTS: String(accounts) }, timeout: (settings.seconds + 30) * 1000,
  });
  const line = /BENCH (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+) (\d+)/.exec(out.stdout ?? '');
  if (line === null) throw new Error(`wrk printed no summary for ${url}: ${out.stderr || out.stdout}`);
  const [requests, durationUs, p50, p99, non2xx, errors] = line.slice(1).map(Number) as [number, number, number, number, number, number];
  return { rps: requests / (durationUs / 1e6), p50Ms: p50, p99Ms: p99, requests, non2xx, errors };
}
