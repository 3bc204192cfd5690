/**
 * Child processes of a benchmark: every one started here is registered and taken down at the end,
 * on an error, and on Ctrl-C or SIGTERM; temporary files go to one directory under os.tmpdir().
 * Also: waiting for a port or an HTTP endpoint, and finding (or, as root, installing) a tool.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A loopback port that was free a moment ago: the test suite's helper, loaded only when asked for
 * (it brings vitest along, which the measured child processes must not load).
 */
export async function freePort(): Promise<number> {
  const { freePort: find } = await import('../../test/support/redis-server.ts');
  return find();
}

const children = new Set<ChildProcess>();
const cleanups: (() => void | Promise<void>)[] = [];
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping every process this benchmark started\n`);
      killAll('SIGTERM');
      for (const cleanup of cleanups.splice(0).reverse()) void cleanup();
      process.exit(130);
    });
  }
  // Whatever is still running when this process ends (an uncaught error included) is killed.
  process.on('exit', () => killAll('SIGKILL'));
}

function killAll(signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  }
}

/** Registers a process started elsewhere (e.g. by a test helper) so it is stopped with the rest. */
export function track(child: ChildProcess): ChildProcess {
  installHandlers();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Runs `fn` at the end (in reverse order of registration), on success, error or signal. */
export function onCleanup(fn: () => void | Promise<void>): void {
  installHandlers();
  cleanups.push(fn);
}

export interface StartOptions {
  readonly env?: Record<string, string>;
  /** Where the child's stdout goes: nowhere (default), or a pipe the caller reads. */
  readonly stdout?: 'ignore' | 'pipe';
  readonly cwd?: string;
}

/** Starts a long-running child; its stderr is passed through so failures are visible. */
export function start(command: string, args: readonly string[], options: StartOptions = {}): ChildProcess {
  const child = spawn(command, args, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', options.stdout ?? 'ignore', 'inherit'],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  child.once('error', (error) => process.stderr.write(`cannot start ${command}: ${error.message}\n`));
  return track(child);
}

/** Runs a short command to its end, asynchronously (so Ctrl-C is handled meanwhile). */
export function run(command: string, args: readonly string[], options: { env?: Record<string, string>; timeoutMs: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = track(spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', (error) => { clearTimeout(timer); reject(error); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** SIGTERM to every child, SIGKILL to those still running after `graceMs`, then the cleanups. */
export async function stopAll(graceMs = 5_000): Promise<void> {
  const running = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(running.map((child) => new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  })));
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      process.stderr.write(`cleanup failed: ${(error as Error).message}\n`);
    }
  }
}

/** A fresh directory under os.tmpdir(), removed at the end. */
export function workDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `allowgate-bench-${prefix}-`));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** Polls `url` until it answers 200. */
export async function waitForHttp(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child !== undefined && child.exitCode !== null) throw new Error(`the process behind ${url} exited with ${child.exitCode}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return;
      last = `status ${res.status}: ${await res.text()}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

export function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * True when `command` is there, installing Debian package `pkg` first when it is missing and this
 * runs as root; otherwise a sentence saying why not (for a "skipped" note).
 */
export function ensureTool(command: string, pkg: string): true | string {
  if (have(command)) return true;
  if (process.getuid?.() !== 0) return `${command} is not installed and this is not root (install the Debian package ${pkg})`;
  if (!have('apt-get')) return `${command} is not installed and there is no apt-get to install ${pkg} with`;
  console.log(`${command} is missing: running apt-get install -y ${pkg}`);
  const install = (): boolean => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'inherit', timeout: 300_000 }).status === 0;
  if (!install()) {
    console.log('apt-get install failed: running apt-get update and trying again');
    spawnSync('apt-get', ['update'], { stdio: 'inherit', timeout: 300_000 });
    if (!install()) return `${command} is not installed and apt-get install -y ${pkg} failed (no network?)`;
  }
  return have(command) ? true : `${command} is still not found after installing ${pkg}`;
}

/**
 * A throwaway redis-server on a free loopback port (no persistence); its URL, or why there is
 * none (the Debian package missing and not installable here).
 */
export async function startRedis(dir: string): Promise<string> {
  const tool = ensureTool('redis-server', 'redis-server');
  if (tool !== true) throw new Error(tool);
  const port = await freePort();
  start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { cwd: dir });
  await waitForPort(port);
  return `redis://127.0.0.1:${port}`;
}
