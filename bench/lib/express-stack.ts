/**
 * What a Node team writes today without allowgate: express + express-ipfilter +
 * http-proxy-middleware. Installed on demand into bench/.deps (never a project dependency) by
 * bench/proxy.ts. Run: node bench/lib/express-stack.ts <deps dir> <port> <upstream port>
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [deps, port, upstreamPort] = process.argv.slice(2) as [string, string, string];
const load = createRequire(join(deps, 'node_modules', 'noop.js'));
const express = load('express') as () => { use(...handlers: unknown[]): void; listen(port: number, host: string): void };
const { IpFilter } = load('express-ipfilter') as { IpFilter: (ips: string[], options: object) => unknown };
const { createProxyMiddleware } = load('http-proxy-middleware') as { createProxyMiddleware: (options: object) => unknown };

const app = express();
const allowed = ['127.0.0.0/8', ...Array.from({ length: 49 }, (_, i) => `${20 + i}.${i}.0.0/16`)];
app.use(IpFilter(allowed, { mode: 'allow', log: false }));
app.use(createProxyMiddleware({ target: `http://127.0.0.1:${upstreamPort}`, changeOrigin: false }));
app.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
