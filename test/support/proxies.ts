import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './redis-server.ts';
import { scratchDir } from './scratch.ts';

/** A real proxy (nginx, Caddy) running from a configuration written for one test file. */
export interface ProxyProcess {
  readonly port: number;
  readonly url: string;
  /** What it wrote to stderr and its error log so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Debian's nginx (nginx-light has the auth_request module) with `http` as its whole http block;
 * `http(port, prefix)` gets the port to listen on and a directory for temporary files.
 */
export async function startNginx(http: (port: number, prefix: string) => string): Promise<ProxyProcess> {
  const version = spawnSync('nginx', ['-V'], { encoding: 'utf8' });
  if (version.error !== undefined) throw new Error(`cannot run nginx (install the Debian package nginx-light): ${version.error.message}`);
  if (!version.stderr.includes('http_auth_request_module')) throw new Error('this nginx lacks the auth_request module (install the Debian package nginx-light)');
  const dir = scratchDir();
  const prefix = dir.path;
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, sub));
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${http(port, prefix)}
}
`);
  // -e: messages from before the configuration is read go to stderr, not /var/log/nginx.
  return launch('nginx', ['-e', 'stderr', '-p', prefix, '-c', conf], port, dir.remove, join(prefix, 'error.log'));
}

/** Debian's Caddy (2.6 has forward_auth) with `site(port)` as its one site block, admin API off. */
export async function startCaddy(site: (port: number) => string): Promise<ProxyProcess> {
  const dir = scratchDir();
  const port = await freePort();
  const file = join(dir.path, 'Caddyfile');
  writeFileSync(file, `{
  admin off
  auto_https off
}
${site(port)}
`);
  // Caddy keeps state under $HOME/.local/share/caddy and $XDG_CONFIG_HOME: both into the scratch dir.
  return launch('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], port, dir.remove, null, { HOME: dir.path, XDG_DATA_HOME: dir.path, XDG_CONFIG_HOME: dir.path });
}

async function launch(command: string, args: string[], port: number, cleanup: () => void, errorLog: string | null, env: Record<string, string> = {}): Promise<ProxyProcess> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', ...env } });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  let exited = false;
  child.once('exit', () => { exited = true; });
  const spawned = await new Promise<Error | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', resolve);
  });
  if (spawned !== null) throw new Error(`cannot run ${command} (install the Debian package ${command === 'nginx' ? 'nginx-light' : command}): ${spawned.message}`);
  const readOutput = (): string => {
    const log = errorLog !== null && existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '';
    return `${output}${log}`;
  };
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      cleanup();
      throw new Error(`${command} did not start on port ${port}: ${readOutput()}`);
    }
    await sleep(50);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    output: readOutput,
    stop: () => new Promise((resolve) => {
      const done = (): void => {
        cleanup();
        resolve();
      };
      if (exited) return done();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      // nginx stops at once on SIGTERM (SIGQUIT would wait for keep-alive connections).
      child.kill('SIGTERM');
    }),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
