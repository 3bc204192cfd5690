/**
 * What a Node team writes today without allowgate: express + express-ipfilter +
 * http-proxy-middleware, with the same 50 networks as allowgate's account AC1. Installed on demand
 * into bench/.deps (git-ignored; never a project dependency) and started as a process of its own:
 * `node bench/lib/express-stack.ts <port> <upstream port>`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accountNetworks } from './allowgate.ts';
import { freePort, start, waitForPort } from './processes.ts';

const DEPS = join(dirname(fileURLToPath(import.meta.url)), '..', '.deps');
const PACKAGES = { express: '^5', 'express-ipfilter': '^1', 'http-proxy-middleware': '^3' };

/** The packages and their versions, installed first if missing; a sentence saying why not otherwise. */
export function ensureExpressStack(): Record<string, string> | string {
  const versions = (): Record<string, string> | null => {
    const out: Record<string, string> = {};
    for (const name of Object.keys(PACKAGES)) {
      const manifest = join(DEPS, 'node_modules', name, 'package.json');
      if (!existsSync(manifest)) return null;
      out[name] = (createRequire(manifest)(manifest) as { version: string }).version;
    }
    return out;
  };
  const present = versions();
  if (present !== null) return present;
  console.log(`installing ${Object.keys(PACKAGES).join(', ')} into bench/.deps (npm install --prefix bench/.deps --no-save)`);
  const install = spawnSync('npm', ['install', '--prefix', DEPS, '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error',
    ...Object.entries(PACKAGES).map(([name, range]) => `${name}@${range}`)], { encoding: 'utf8', timeout: 300_000 });
  if (install.status !== 0) return `npm install into bench/.deps failed: ${(install.stderr || install.error?.message || '').trim().split('\n')[0]}`;
  return versions() ?? 'npm install into bench/.deps left the packages missing';
}

const SELF = fileURLToPath(import.meta.url);

export async function startExpressStack(upstreamPort: number): Promise<string> {
  const port = await freePort();
  // http-proxy (under http-proxy-middleware) still calls util._extend: no deprecation notice per start.
  start(process.execPath, ['--no-deprecation', SELF, String(port), String(upstreamPort)]);
  await waitForPort(port);
  return `http://127.0.0.1:${port}`;
}

if (process.argv[1] === SELF) {
  const [port, upstreamPort] = process.argv.slice(2) as [string, string];
  const load = createRequire(join(DEPS, 'node_modules', 'noop.js'));
  const express = load('express') as () => { use(...handlers: unknown[]): void; listen(port: number, host: string): void };
  const { IpFilter } = load('express-ipfilter') as { IpFilter: (ips: string[], options: object) => unknown };
  const { createProxyMiddleware } = load('http-proxy-middleware') as { createProxyMiddleware: (options: object) => unknown };
  const app = express();
  app.use(IpFilter(accountNetworks(1), { mode: 'allow', log: false }));
  app.use(createProxyMiddleware({ target: `http://127.0.0.1:${upstreamPort}`, changeOrigin: false, xfwd: true }));
  app.listen(Number(port), '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
}
