import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RUNTIME_ENV, RUNTIME_FLAGS } from '../../src/cli/runtime.ts';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface GatewayProcess {
  readonly child: ChildProcess;
  /** The proxy listener's port; 0 when it is off (ALLOWGATE_LISTEN=off). */
  readonly port: number;
  readonly adminPort: number;
  readonly url: string;
  readonly adminUrl: string;
  /** The external-authorization listeners' ports; 0 when off. */
  readonly authzPort: number;
  readonly authzUrl: string;
  readonly authzGrpcPort: number;
  /** Every JSON log line the gateway wrote so far. */
  readonly logs: Record<string, unknown>[];
  readonly stderr: () => string;
  /** Calls the admin API with the test token. */
  admin(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  readonly env?: Record<string, string>;
  readonly args?: readonly string[];
  /** Flags for node itself, after the project's runtime flags (so they win), before the script. */
  readonly nodeArgs?: readonly string[];
  readonly timeoutMs?: number;
}

/**
 * Starts the real gateway (`node src/cli.ts`) on ephemeral loopback ports and resolves once it
 * logs that it is listening.
 */
export function startGateway(options: StartOptions = {}): Promise<GatewayProcess> {
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    // As `npm start` runs it: the project's runtime flags (below) and environment.
    ...RUNTIME_ENV,
    ALLOWGATE_LISTEN: '127.0.0.1:0',
    ALLOWGATE_ADMIN_LISTEN: '127.0.0.1:0',
    ALLOWGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    ALLOWGATE_STORE: 'memory',
    ALLOWGATE_LOG_LEVEL: 'debug',
    // Every request in the access log, so tests can look for the one they sent.
    ALLOWGATE_LOG_ALLOW_SAMPLE: '1',
    // Tests play callers from loopback addresses, which the default validation refuses to list.
    ALLOWGATE_RESERVED_RANGES: 'none',
    ALLOWGATE_CONFIG: fileURLToPath(new URL('./empty-config.yaml', import.meta.url)),
    ...options.env,
  };
  const child = spawn(process.execPath, [...RUNTIME_FLAGS, ...(options.nodeArgs ?? []), CLI, ...(options.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let buffered = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start within ${options.timeoutMs ?? 10_000} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening; stderr: ${stderr}`));
    });
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(entry);
        if (entry['msg'] === 'allowgate listening') {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          const port = (entry['port'] as number | undefined) ?? 0;
          const adminPort = entry['admin_port'] as number;
          const authzPort = (entry['authz_port'] as number | undefined) ?? 0;
          const adminUrl = `http://127.0.0.1:${adminPort}`;
          resolve({
            child,
            port,
            adminPort,
            url: `http://127.0.0.1:${port}`,
            adminUrl,
            authzPort,
            authzUrl: `http://127.0.0.1:${authzPort}`,
            authzGrpcPort: (entry['authz_grpc_port'] as number | undefined) ?? 0,
            logs,
            stderr: () => stderr,
            admin: (method, path, body, headers = {}) => fetch(`${adminUrl}${path}`, {
              method,
              headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
              ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            }),
            stop: (signal = 'SIGTERM') => new Promise((done) => {
              if (child.exitCode !== null) return done(child.exitCode);
              child.once('exit', (code) => done(code));
              child.kill(signal);
            }),
          });
        }
      }
    });
  });
}
