import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { scratchDir } from './scratch.ts';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Kills the server (SIGKILL: an outage, not a shutdown). */
  kill(): Promise<void>;
  /** Starts it again on the same port (its data is gone: nothing is persisted). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

/** A port that was free a moment ago, on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A real `redis-server` on an ephemeral loopback port, with its own temporary directory and no
 * persistence, ready once it logs that it accepts connections.
 */
export async function startRedis(extraArgs: readonly string[] = []): Promise<RedisServer> {
  const dir = scratchDir();
  const port = await freePort();
  let child: ChildProcess | null = null;

  const launch = (): Promise<void> => new Promise((resolve, reject) => {
    const proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, ...extraArgs,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`redis-server did not start on port ${port} within 10 s: ${output}`));
    }, 10_000);
    proc.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run redis-server (install the redis-server package): ${error.message}`));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code} before it was ready: ${output}`));
    });
    proc.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        resolve();
      }
    });
  });

  const kill = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (proc === null || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      dir.remove();
    },
  };
}
