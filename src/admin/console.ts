import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The admin console's files, served by the admin listener under /console/. The console is
 * TypeScript in src/console (and the rule parser of src/ip, so the browser previews exactly what
 * the server will store); Node's own type stripping turns each module into JavaScript once, at
 * start: no bundler, no build step, no CDN. The page only talks to the admin API, with the token
 * the user signs in with; these files hold no secret and are served without credentials.
 */

const SRC = fileURLToPath(new URL('..', import.meta.url));
/** The rule-parsing modules the console imports as ../ip/*.ts. */
const SHARED_IP_MODULES = ['address', 'cidr', 'range', 'rule'];

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
} as const;

/** Scripts and styles from this origin only; the page calls nothing but the admin API. */
const PAGE_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

/**
 * Node 24 marks stripTypeScriptTypes experimental and says so on stderr once per process, which
 * reads like a fault in the gateway's start-up log. The console's tests pin what it produces.
 */
function stripTypes(source: string): string {
  const emitWarning = process.emitWarning;
  process.emitWarning = () => undefined;
  try {
    return stripTypeScriptTypes(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emitWarning;
  }
}

export type ConsoleHandler = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

/** Loads every console file now (a broken module fails the start, not a page view). */
export function createConsole(): ConsoleHandler {
  const assets = new Map<string, Asset>();
  const dir = join(SRC, 'console');
  const script = (source: string): Asset => ({ type: 'text/javascript; charset=utf-8', body: Buffer.from(stripTypes(source)) });
  for (const name of readdirSync(dir)) {
    const text = readFileSync(join(dir, name), 'utf8');
    if (name.endsWith('.ts')) assets.set(`/console/ui/${name}`, script(text));
    else if (name === 'index.html') assets.set('/console/', { type: 'text/html; charset=utf-8', body: Buffer.from(text) });
    else if (name.endsWith('.css')) assets.set(`/console/${name}`, { type: 'text/css; charset=utf-8', body: Buffer.from(text) });
  }
  for (const name of SHARED_IP_MODULES) assets.set(`/console/ip/${name}.ts`, script(readFileSync(join(SRC, 'ip', `${name}.ts`), 'utf8')));

  return (req, res, path) => {
    if (path !== '/console' && !path.startsWith('/console/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'the console is read with GET', code: 405, reason: 'method_not_allowed' }));
      return true;
    }
    if (path === '/console') {
      res.writeHead(301, { location: '/console/' });
      res.end();
      return true;
    }
    const asset = assets.get(path);
    if (asset === undefined) {
      res.writeHead(404, { 'content-type': 'application/json', ...SECURITY_HEADERS });
      res.end(JSON.stringify({ error: `no console file at ${path.slice(0, 128)}`, code: 404, reason: 'not_found' }));
      return true;
    }
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': asset.body.length,
      ...SECURITY_HEADERS,
      ...(path === '/console/' ? { 'content-security-policy': PAGE_POLICY, 'x-frame-options': 'DENY' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  };
}
