import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratchDir } from './scratch.ts';

const HERE = fileURLToPath(new URL('./cgi/', import.meta.url));

/** What a CGI-style application read from one request. */
export interface CgiRequest {
  readonly path: string;
  /** The CGI environment's HTTP_* variables (HTTP_X_AUTH_ID, ...). */
  readonly http: Readonly<Record<string, string>>;
  /** WSGI: parse_qs of QUERY_STRING. */
  readonly query?: Readonly<Record<string, readonly string[]>>;
  /** PHP: $_GET, $_REQUEST and $_COOKIE. */
  readonly get?: Readonly<Record<string, unknown>>;
  readonly request?: Readonly<Record<string, unknown>>;
  readonly cookie?: Readonly<Record<string, unknown>>;
  /** PHP: the Basic user name it decodes (PHP_AUTH_USER). */
  readonly auth_user?: string | null;
  /** Rails: params (path, query and body merged) and the routed format. */
  readonly params?: Readonly<Record<string, unknown>>;
  readonly format?: string | null;
}

export interface CgiUpstream {
  readonly kind: 'wsgi' | 'php' | 'rails';
  readonly url: string;
  /** Every request the application saw, in order. */
  seen(): CgiRequest[];
  close(): Promise<void>;
}

/** Python's wsgiref server with a small echo application (python3 from the distribution). */
export function startWsgiUpstream(): Promise<CgiUpstream> {
  return startPrintingPort('wsgi', 'python3', [join(HERE, 'wsgi_echo.py')]);
}

/** A Rails controller (the distribution's ruby-actionpack) on WEBrick (ruby-webrick). */
export function startRailsUpstream(): Promise<CgiUpstream> {
  return startPrintingPort('rails', 'ruby', [join(HERE, 'rails_echo.rb')]);
}

/** An echo server that prints its port on its first line of output. */
async function startPrintingPort(kind: CgiUpstream['kind'], command: string, args: readonly string[]): Promise<CgiUpstream> {
  const dir = scratchDir();
  const seenFile = join(dir.path, 'seen.jsonl');
  writeFileSync(seenFile, '');
  const child = spawn(command, args, { env: { PATH: process.env['PATH'] ?? '', LANG: 'C.UTF-8', SEEN_FILE: seenFile }, stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${kind} upstream did not start: ${err}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = /^(\d+)\n/.exec(out);
      if (line) {
        clearTimeout(timer);
        resolve(Number(line[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`${kind} upstream exited with ${code}: ${err}`)));
  });
  return upstream(kind, child, port, seenFile, dir.remove);
}

/** PHP's built-in web server (php -S, from the distribution's php-cli) with an echo script. */
export async function startPhpUpstream(): Promise<CgiUpstream> {
  const dir = scratchDir();
  const seenFile = join(dir.path, 'seen.jsonl');
  writeFileSync(seenFile, '');
  const port = await freePort();
  let err = '';
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, join(HERE, 'php_echo.php')], { env: { PATH: process.env['PATH'] ?? '', SEEN_FILE: seenFile }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const deadline = Date.now() + 10_000;
  while (!err.includes('started')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`php -S did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return upstream('php', child, port, seenFile, dir.remove);
}

function upstream(kind: CgiUpstream['kind'], child: ChildProcess, port: number, seenFile: string, remove: () => void): CgiUpstream {
  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    seen: () => (existsSync(seenFile) ? readFileSync(seenFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as CgiRequest) : []),
    close: () => new Promise((resolve) => {
      const done = (): void => {
        remove();
        resolve();
      };
      if (child.exitCode !== null) return done();
      child.once('exit', done);
      child.kill('SIGTERM');
    }),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
