/**
 * nginx as the reference: one worker, the same allow list as allowgate's account AC1 (`allow` /
 * `deny all`), realip (`set_real_ip_from` + `real_ip_header X-Forwarded-For`), proxy_pass to the
 * upstream over keep-alive connections. Installed first (as root, Debian package `nginx`) when
 * missing.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTool, freePort, start, waitForPort } from './processes.ts';

export interface Nginx {
  readonly url: string;
  readonly version: string;
}

/** Trusted proxies, as allowgate is given them (ALLOWGATE_TRUSTED_PROXIES) in the same benchmark. */
export const TRUSTED_PROXIES = '10.0.0.0/8';

export async function startNginx(upstreamPort: number, allow: readonly string[], dir: string): Promise<Nginx | string> {
  return startNginxWith(dir, 'nginx', (port) => `  upstream backend {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    set_real_ip_from ${TRUSTED_PROXIES};
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    location / {
${allow.map((net) => `      allow ${net};`).join('\n')}
      deny all;
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }`);
}

/**
 * nginx, one worker, with `http(port)` as the body of its http block (upstreams and one server
 * listening on 127.0.0.1:port); `name` keeps several instances apart in `dir`.
 */
export async function startNginxWith(dir: string, name: string, http: (port: number) => string): Promise<Nginx | string> {
  const ok = ensureTool('nginx', 'nginx');
  if (ok !== true) return ok;
  const version = /nginx\/(\S+)/.exec(spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr)?.[1] ?? 'unknown';
  const port = await freePort();
  const prefix = join(dir, name);
  mkdirSync(prefix, { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${http(port)}
}
`);
  // -e: messages from before the configuration is read go to stderr, not /var/log/nginx.
  start('nginx', ['-e', 'stderr', '-p', prefix, '-c', conf]);
  await waitForPort(port);
  return { url: `http://127.0.0.1:${port}`, version };
}
