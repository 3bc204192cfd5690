import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFailure } from '../../support/config-error.ts';
import { scratchPerTest } from '../../support/scratch.ts';
import { loadConfig } from '../../../src/config/load.ts';

const scratch = scratchPerTest();

const TOKEN = 'a-long-enough-admin-token';

function load(env: Record<string, string> = {}, yaml?: string) {
  const dir = scratch();
  const path = join(dir, 'allowgate.yaml');
  writeFileSync(path, yaml ?? '');
  return loadConfig({ argv: ['--config', path], env: { ALLOWGATE_ADMIN_TOKEN: TOKEN, ALLOWGATE_STORE: 'memory', ...env } });
}

function failure(env: Record<string, string>, yaml?: string): string {
  return configFailure(() => load(env, yaml));
}

describe('loadConfig', () => {
  it('has safe defaults', () => {
    const c = load();
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(c.admin.listen).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(c.upstream.url.origin).toBe('http://127.0.0.1:3000');
    expect(c.clientIp.trust).toEqual({ mode: 'none' });
    expect(c.identity.anonymous).toBe('pass');
    expect(c.identity.strategies).toEqual([]);
    expect(c.policy).toEqual({ mode: 'enforce', default: 'open' });
  });

  it('applies environment overrides over the file', () => {
    const c = load({ ALLOWGATE_LISTEN: '[::1]:0', ALLOWGATE_UPSTREAM_URL: 'https://api.internal:8443', ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.1' }, 'listen: 127.0.0.1:1234\n');
    expect(c.listen).toEqual({ host: '::1', port: 0 });
    expect(c.upstream.url.origin).toBe('https://api.internal:8443');
    expect(c.clientIp.trust.mode).toBe('list');
    expect(c.clientIp.trust.mode === 'list' && c.clientIp.trust.proxies.map((p) => p.prefix)).toEqual([8, 32]);
  });

  it('reads the YAML file, strategies included', () => {
    const c = load({}, [
      'clientIp: { trustedHops: 2, header: forwarded, acknowledgeTrustAll: true }',
      'identity:',
      '  strategies: [{ type: header, header: X-Account }, { type: path, templates: ["/v1/Account/{account}/"] }]',
      '  anonymous: deny',
      '  exemptPaths: [/health/]',
      'policy: { mode: report-only, default: closed }',
    ].join('\n'));
    expect(c.clientIp).toMatchObject({ trust: { mode: 'hops', hops: 2 }, source: 'forwarded' });
    expect(c.identity.strategies).toEqual([{ type: 'header', header: 'x-account' }, { type: 'path', templates: ['/v1/Account/{account}/'] }]);
    expect(c.identity.exemptPaths).toEqual(['/health']);
    expect(c.policy).toEqual({ mode: 'report-only', default: 'closed' });
  });

  it('refuses a misspelled ALLOWGATE_ variable, naming the nearest real one', () => {
    expect(failure({ ALLOWGATE_TRUSTED_PROXY: '10.0.0.0/8' })).toBe('unknown environment variable ALLOWGATE_TRUSTED_PROXY: did you mean ALLOWGATE_TRUSTED_PROXIES? (config/allowgate.yaml names the variable of every setting)');
    expect(failure({ ALLOWGATE_STOER: 'memory' })).toContain('did you mean ALLOWGATE_STORE?');
    expect(failure({ ALLOWGATE_UPSTREAM: 'http://x' })).toContain('did you mean ALLOWGATE_UPSTREAM_URL?');
    // Variables of other tools, and the ones read outside the configuration, pass.
    expect(load({ NODE_OPTIONS: '--max-old-space-size=128', ALLOWGATE_REVISION: 'abc', ALLOWGATE_ADMIN_URL: 'http://127.0.0.1:9090' }).listen).not.toBeNull();
  });

  it('refuses to trust every address unless acknowledged, and says what trusts everyone', () => {
    expect(failure({ ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8, 0.0.0.0/0' })).toMatch(/^ALLOWGATE_TRUSTED_PROXIES \(clientIp.trustedProxies\) holds 0.0.0.0\/0, which trusts every address: any client could then claim any address .* ALLOWGATE_ACKNOWLEDGE_TRUST_ALL=true/);
    expect(failure({ ALLOWGATE_TRUSTED_PROXIES: '::/0' })).toContain('holds ::/0');
    expect(failure({ ALLOWGATE_TRUSTED_HOPS: '1' })).toMatch(/^ALLOWGATE_TRUSTED_HOPS \(clientIp.trustedHops\) is 1 while 0.0.0.0:8080 accepts connections from anywhere/);
    // Acknowledged: loaded, and the reason kept for the start-up log.
    expect(load({ ALLOWGATE_TRUSTED_PROXIES: '0.0.0.0/0', ALLOWGATE_ACKNOWLEDGE_TRUST_ALL: 'true' }).trustAll).toContain('holds 0.0.0.0/0');
    // A hop count on a loopback-only listener (a proxy on the same host) trusts only that proxy.
    expect(load({ ALLOWGATE_TRUSTED_HOPS: '1', ALLOWGATE_LISTEN: '127.0.0.1:8080' }).trustAll).toBeNull();
    expect(load({ ALLOWGATE_TRUSTED_HOPS: '0' }).trustAll).toBeNull();
    expect(load({ ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8' }).trustAll).toBeNull();
  });

  it('names the variable, the value and what is expected', () => {
    expect(failure({ ALLOWGATE_TRUSTED_HOPS: 'x' })).toBe("ALLOWGATE_TRUSTED_HOPS must be an integer 0-16, got 'x'");
    expect(failure({ ALLOWGATE_TRUSTED_HOPS: '17' })).toContain('must be an integer 0-16');
    expect(failure({ ALLOWGATE_LISTEN: 'localhost' })).toContain('ALLOWGATE_LISTEN must be host:port');
    expect(failure({ ALLOWGATE_UPSTREAM_URL: 'ftp://x' })).toContain('ALLOWGATE_UPSTREAM_URL must be an http:// or https:// URL');
    expect(failure({ ALLOWGATE_UPSTREAM_URL: 'http://x/api' })).toContain('an origin only');
    expect(failure({ ALLOWGATE_STORE: 'redis-ish' })).toContain("ALLOWGATE_STORE must be 'memory', 'file:PATH'");
    expect(failure({ ALLOWGATE_TRUSTED_PROXIES: '10.0.0.1/8' })).toContain('network is 10.0.0.0/8');
    expect(failure({ ALLOWGATE_ADMIN_TOKEN: 'short' })).toContain('at least 16 characters');
    expect(failure({ ALLOWGATE_ANONYMOUS: 'maybe' })).toContain('one of pass, deny, global');
  });

  it('never repeats a credential in an error: tokens, secrets and passwords by length only, a URL without its password', () => {
    expect(failure({ ALLOWGATE_ADMIN_TOKEN: 'hunter2 x' })).toBe('ALLOWGATE_ADMIN_TOKEN must be a token of at least 16 characters without spaces, got a value of 9 characters (not shown)');
    expect(failure({ ALLOWGATE_KEY_SECRET: 'hunter2' })).toMatch(/^ALLOWGATE_KEY_SECRET must be a secret of at least 32 characters .*, got a value of 7 characters \(not shown\)$/);
    const store = failure({ ALLOWGATE_STORE: 'redis://ops:hunter2@127.0.0.1:99999/0' });
    expect(store).toMatch(/^ALLOWGATE_STORE must be .*, got 'redis:\/\/ops:\*\*\*@127\.0\.0\.1:99999\/0'$/);
    expect(failure({ ALLOWGATE_STORE: 'redis://:hunter2@127.0.0.1:99999/0' })).toContain("got 'redis://:***@127.0.0.1:99999/0'");
    const yaml = failure({}, 'keys:\n  secret: hunter2\n');
    expect(yaml).toMatch(/^config key keys\.secret .* must be a secret of at least 32 characters .*, got a value of 7 characters \(not shown\)$/);
    for (const message of [store, yaml]) expect(message).not.toContain('hunter2');
  });

  it('runs one process by default; more workers only over the redis store, which they share', () => {
    expect(load().workers).toBe(1);
    expect(load({ ALLOWGATE_WORKERS: '4', ALLOWGATE_STORE: 'redis://127.0.0.1:6379' }).workers).toBe(4);
    expect(load({ ALLOWGATE_STORE: 'redis://127.0.0.1:6379' }, 'workers: 2\n').workers).toBe(2);
    expect(failure({ ALLOWGATE_WORKERS: '2' })).toBe("ALLOWGATE_WORKERS must be 1 with the memory store (each worker would enforce and change its own copy of the lists); use the redis store (ALLOWGATE_STORE=redis://...) to run 2 workers, got '2'");
    expect(failure({ ALLOWGATE_WORKERS: '2', ALLOWGATE_STORE: 'file:/tmp/x/store.json' })).toMatch(/^ALLOWGATE_WORKERS must be 1 with the file store/);
    expect(failure({ ALLOWGATE_WORKERS: '0', ALLOWGATE_STORE: 'redis://127.0.0.1:6379' })).toBe("ALLOWGATE_WORKERS must be an integer 1-64, got '0'");
    expect(failure({ ALLOWGATE_WORKERS: 'many', ALLOWGATE_STORE: 'redis://127.0.0.1:6379' })).toBe("ALLOWGATE_WORKERS must be an integer 1-64, got 'many'");
  });

  it('has no authz listener by default, and runs one with the calling proxy trusted', () => {
    expect(load().authz).toEqual({ listen: null, grpcListen: null, upstreamHeaders: { account: 'X-Allowgate-Account', clientIp: 'X-Allowgate-Client-IP' } });
    const c = load({ ALLOWGATE_LISTEN: 'off', ALLOWGATE_AUTHZ_LISTEN: '127.0.0.1:9191', ALLOWGATE_AUTHZ_GRPC_LISTEN: '[::1]:9292', ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8' });
    expect(c.listen).toBeNull();
    expect(c.authz.listen).toEqual({ host: '127.0.0.1', port: 9191 });
    expect(c.authz.grpcListen).toEqual({ host: '::1', port: 9292 });
    const named = load({ ALLOWGATE_TRUSTED_HOPS: '1', ALLOWGATE_ACKNOWLEDGE_TRUST_ALL: 'true' }, 'authz: { listen: 0.0.0.0:9191, accountHeader: X-Account-Checked, clientIpHeader: off }\n');
    expect(named.authz.upstreamHeaders).toEqual({ account: 'X-Account-Checked', clientIp: null });
  });

  it('refuses authz settings that cannot work, naming the fix', () => {
    expect(failure({ ALLOWGATE_AUTHZ_LISTEN: '127.0.0.1:9191' })).toBe('ALLOWGATE_AUTHZ_LISTEN (authz.listen) needs the calling proxy to be trusted: set ALLOWGATE_TRUSTED_PROXIES (clientIp.trustedProxies) to the addresses of the proxies that ask for checks (see docs/external-authorization.md)');
    expect(failure({ ALLOWGATE_AUTHZ_GRPC_LISTEN: '127.0.0.1:9292', ALLOWGATE_TRUSTED_HOPS: '0' })).toMatch(/^ALLOWGATE_AUTHZ_GRPC_LISTEN \(authz.grpcListen\) needs the calling proxy to be trusted/);
    expect(failure({ ALLOWGATE_LISTEN: 'off' })).toMatch(/^ALLOWGATE_LISTEN \(listen\) is off and no authz listener is set: there is nothing to serve/);
    expect(failure({ ALLOWGATE_AUTHZ_LISTEN: 'nine', ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8' })).toContain("ALLOWGATE_AUTHZ_LISTEN must be host:port");
    expect(failure({ ALLOWGATE_LISTEN: 'off', ALLOWGATE_AUTHZ_LISTEN: '127.0.0.1:1', ALLOWGATE_TRUSTED_PROXIES: '127.0.0.1', ALLOWGATE_WORKERS: '2', ALLOWGATE_STORE: 'redis://127.0.0.1:6379' })).toMatch(/^ALLOWGATE_WORKERS must be 1 when the proxy listener is off/);
    expect(failure({}, 'authz: { accountHeader: "X Account" }\n')).toContain('authz.accountHeader (');
    expect(failure({}, 'authz: { clientIpHeader: X-Forwarded-For }\n')).toContain('X-Forwarded-For already means something to proxies and upstreams');
    expect(failure({}, 'authz: { accountHeader: x-who, clientIpHeader: X-Who }\n')).toBe('authz.accountHeader and authz.clientIpHeader must differ, both are x-who');
    expect(failure({}, 'authz: { port: 1 }\n')).toContain("unknown config key 'authz.port'");
  });

  it('refuses both trust settings at once, and unknown keys', () => {
    expect(failure({ ALLOWGATE_TRUSTED_HOPS: '1', ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8' })).toContain('not both');
    expect(failure({}, 'clientIp: { trustedHops: 1, trustedProxies: [10.0.0.0/8] }')).toContain('not both');
    expect(failure({}, 'upstreem: { url: http://x }')).toContain("unknown config key 'upstreem'");
    expect(failure({}, 'identity: { strategies: [{ type: header, claim: iss }] }')).toContain("unknown config key 'identity.strategies[0].claim'");
    expect(failure({}, 'listen: [1\n')).toContain('not valid YAML');
  });

  it('refuses exempt paths that are not canonical', () => {
    expect(failure({}, 'identity: { exemptPaths: ["/a/../b"] }')).toContain('normalized absolute path');
    expect(failure({}, 'identity: { exemptPaths: ["health"] }')).toContain('normalized absolute path');
  });

  it('fails when an explicit config file is missing', () => {
    expect(() => loadConfig({ argv: ['--config', '/nonexistent/allowgate.yaml'], env: {} })).toThrow(/does not exist/);
  });

  it('generates an admin token once and keeps it beside the file store', () => {
    const dir = scratch();
    const env = { ALLOWGATE_STORE: `file:${join(dir, 'data', 'store.json')}` };
    const first = loadConfig({ argv: [], env });
    expect(first.admin.tokenSource).toBe('generated');
    const tokenFile = join(dir, 'data', 'admin-token');
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(first.admin.token);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const second = loadConfig({ argv: [], env });
    expect(second.admin).toMatchObject({ token: first.admin.token, tokenSource: 'file' });
  });

  it('gives replicas started together the same generated token', async () => {
    const dir = scratch();
    const store = `file:${join(dir, 'data', 'store.json')}`;
    // Every process loads the module, then waits for the same instant: the race is real.
    const go = Date.now() + 1_000;
    const script = `const { loadConfig } = await import(${JSON.stringify(new URL('../../../src/config/load.ts', import.meta.url).href)});
      while (Date.now() < ${go});
      const config = loadConfig({ argv: [], env: { ALLOWGATE_STORE: ${JSON.stringify(store)} } });
      process.stdout.write(config.admin.token + ' ' + config.keys.secret.toString());`;
    const tokens = await Promise.all(Array.from({ length: 6 }, () => new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], (error, stdout) => (error ? reject(error) : resolve(stdout)));
    })));
    expect(new Set(tokens).size).toBe(1);
    const [token, keySecret] = tokens[0]!.split(' ');
    expect(readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim()).toBe(token);
    // The key secret is kept the same way, beside it.
    expect(readFileSync(join(dir, 'data', 'key-secret'), 'utf8').trim()).toBe(keySecret);
    expect(readdirSync(join(dir, 'data')).sort()).toEqual(['admin-token', 'key-secret']);
  });
});
