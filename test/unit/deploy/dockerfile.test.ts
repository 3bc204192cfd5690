import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { RUNTIME_ENV, RUNTIME_FLAGS } from '../../../src/cli/runtime.ts';

/**
 * The Dockerfile and .dockerignore, read as text: no Docker engine is needed (none runs on the
 * machines this project is developed and tested on), so what the image will hold and how it
 * starts are checked from the instructions themselves.
 */

const ROOT = join(import.meta.dirname, '..', '..', '..');
const run = promisify(execFile);

interface Instruction {
  readonly keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

/** Instructions with comments dropped and `\` continuations joined (the default escape character). */
function instructionsOf(text: string): Instruction[] {
  const result: Instruction[] = [];
  const lines = text.split('\n');
  let pending: { text: string; line: number } | null = null;
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    // Blank and comment lines, also inside a continued instruction, are dropped as Docker does.
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1).trim() : trimmed;
    pending = pending === null ? { text: part, line: index + 1 } : { text: `${pending.text} ${part}`, line: pending.line };
    if (!continued) {
      const match = /^(\S+)\s*(.*)$/s.exec(pending.text)!;
      result.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: pending.line });
      pending = null;
    }
  });
  if (pending !== null) throw new Error('the Dockerfile ends inside a continued instruction');
  return result;
}

function stagesOf(instructions: readonly Instruction[]): Stage[] {
  const stages: { image: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const as = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({ image: words[0]!, name: as >= 0 ? words[as + 1] : undefined, instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1]!.instructions.push(instruction);
    } else if (instruction.keyword !== 'ARG') {
      throw new Error(`${instruction.keyword} before the first FROM`);
    }
  }
  return stages;
}

/** The JSON-array (exec) form of CMD, ENTRYPOINT, HEALTHCHECK CMD or RUN; null for the shell form. */
function execForm(args: string): string[] | null {
  if (!args.startsWith('[')) return null;
  const parsed = JSON.parse(args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) throw new Error(`not a JSON array of strings: ${args}`);
  return parsed;
}

interface Copy {
  readonly from: string | undefined;
  readonly chown: string | undefined;
  readonly sources: readonly string[];
  readonly destination: string;
}

function copyOf(instruction: Instruction): Copy {
  const words = instruction.args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const flag = (name: string): string | undefined => flags.find((f) => f.startsWith(`--${name}=`))?.slice(name.length + 3);
  return { from: flag('from'), chown: flag('chown'), sources: paths.slice(0, -1), destination: paths[paths.length - 1]! };
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const stages = stagesOf(instructionsOf(dockerfile));
const final = stages[stages.length - 1]!;
const finalOf = (keyword: string): Instruction[] => final.instructions.filter((i) => i.keyword === keyword);
const lastOf = (keyword: string): Instruction => {
  const found = finalOf(keyword);
  expect(found.length, `the final stage has a ${keyword}`).toBeGreaterThan(0);
  return found[found.length - 1]!;
};

/** Node 24 on a slim Debian (node:24-bookworm-slim, node:24.9-slim, ...) or distroless Node 24. */
const NODE24_RUNTIME = /^(?:node:24(?:\.\d+){0,2}(?:-[a-z]+)?-slim|gcr\.io\/distroless\/nodejs24-debian1[2-9](?::(?:nonroot|latest))?)(?:@sha256:[0-9a-f]{64})?$/;

describe('Dockerfile', () => {
  it('is multi-stage: the final stage takes dependencies from an earlier one', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const earlier = stages.slice(0, -1).map((s) => s.name).filter((n): n is string => n !== undefined);
    const fromEarlier = finalOf('COPY').map(copyOf).filter((c) => c.from !== undefined);
    expect(fromEarlier.length).toBeGreaterThan(0);
    for (const copy of fromEarlier) expect(earlier).toContain(copy.from);
    // The dependency stage runs the same Node major as the runtime.
    expect(stages[0]!.image).toMatch(/^node:24[\w.-]*$/);
  });

  it('runs on a slim or distroless Node 24 base', () => {
    expect(final.image).toMatch(NODE24_RUNTIME);
    for (const bad of ['node:24', 'node:latest', 'node:22-slim', 'gcr.io/distroless/nodejs22-debian12', 'node:24-bookworm']) {
      expect(bad).not.toMatch(NODE24_RUNTIME);
    }
  });

  it('installs production dependencies only, from the lockfile, without install scripts', () => {
    const installs = stages.flatMap((s) => s.instructions).filter((i) => i.keyword === 'RUN' && /\bnpm\s+(ci|install|i)\b/.test(i.args));
    expect(installs.length).toBe(1);
    const install = installs[0]!.args;
    expect(install).toMatch(/\bnpm ci\b/);
    expect(install).toContain('--omit=dev');
    expect(install).toContain('--ignore-scripts');
    // npm ci needs the lockfile beside package.json in that stage.
    const depsCopies = stages[0]!.instructions.filter((i) => i.keyword === 'COPY').flatMap((i) => copyOf(i).sources);
    expect(depsCopies).toEqual(expect.arrayContaining(['package.json', 'package-lock.json']));
    // Nothing is installed in the final stage (distroless has no npm; slim would not need it).
    expect(finalOf('RUN').filter((i) => /\bnpm\b/.test(i.args))).toEqual([]);
  });

  it('needs no dev dependency and no install script at run time (checked against the lockfile)', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
    };
    const production = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev !== true);
    expect(production.length).toBeGreaterThan(0);
    // --ignore-scripts is safe: no production package has an install script that matters at run
    // time. protobufjs (under @grpc/grpc-js) has one that only prints a warning when a dependent
    // pins it with an unexpected version scheme; it builds, fetches and writes nothing.
    const skippable = new Set(['node_modules/protobufjs']);
    expect(production.filter(([path, p]) => p.hasInstallScript === true && !skippable.has(path)).map(([path]) => path)).toEqual([]);
    const postinstall = readFileSync(join(ROOT, 'node_modules/protobufjs/scripts/postinstall.js'), 'utf8');
    expect(postinstall).not.toMatch(/writeFile|spawn|exec|https?:|require\("(child_process|http|https|net)"\)/);
    // The `node` binary package the project pins for development is left out by --omit=dev.
    expect(lock.packages['node_modules/node']?.dev).toBe(true);
  });

  it('copies only package.json, src/, config/ and the production node_modules into the final stage', () => {
    expect(finalOf('ADD')).toEqual([]);
    const copies = finalOf('COPY').map(copyOf);
    const fromContext = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources.map((s) => s.replace(/\/$/, '')));
    expect(fromContext.sort()).toEqual(['config', 'package.json', 'src']);
    const fromStages = copies.filter((c) => c.from !== undefined).flatMap((c) => c.sources);
    // node_modules from `npm ci --omit=dev`, and data/: an empty directory, the gateway's only writable place.
    expect(fromStages.sort()).toEqual(['/app/data', '/app/node_modules']);
    const data = copies.find((c) => c.sources.includes('/app/data'))!;
    expect(data.chown).toBe(`${userOf().uid}:${userOf().gid}`);
    // The application files stay owned by root: the gateway cannot rewrite its own code.
    for (const copy of copies.filter((c) => c !== data)) expect(copy.chown).toBeUndefined();
    // What is copied exists, and the entry point is in it.
    for (const source of fromContext) expect(existsSync(join(ROOT, source)), source).toBe(true);
    expect(statSync(join(ROOT, 'src', 'cli.ts')).isFile()).toBe(true);
  });

  function userOf(): { uid: string; gid: string | undefined } {
    const [uid, gid] = lastOf('USER').args.split(':');
    return { uid: uid!, gid };
  }

  it('runs as a non-root user', () => {
    const { uid, gid } = userOf();
    expect(['root', '0']).not.toContain(uid);
    expect(['root', '0']).not.toContain(gid);
    // A numeric uid, so that Kubernetes' runAsNonRoot can verify it (10001, or distroless's nonroot 65532).
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThanOrEqual(1000);
    // The USER comes before the command, and nothing after it switches back.
    const keywords = final.instructions.map((i) => i.keyword);
    expect(keywords.lastIndexOf('USER')).toBeLessThan(keywords.indexOf('ENTRYPOINT'));
  });

  it('sets NODE_ENV=production and exposes the proxy and admin ports', () => {
    const env = finalOf('ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/\bNODE_ENV=production\b/);
    // The admin listener must be reachable from outside the container for probes and scrapes.
    expect(env).toMatch(/\bALLOWGATE_ADMIN_LISTEN=0\.0\.0\.0:9090\b/);
    const exposed = finalOf('EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed.sort()).toEqual(['8080', '9090']);
  });

  it('starts node directly in exec form, so SIGTERM reaches the gateway as PID 1', () => {
    const entrypoint = execForm(lastOf('ENTRYPOINT').args);
    expect(entrypoint, 'ENTRYPOINT in exec (JSON) form').not.toBeNull();
    expect(entrypoint![0]).toMatch(/(^|\/)node$/);
    // The project's runtime flags (src/cli/runtime.ts), then the CLI.
    expect(entrypoint!.slice(1)).toEqual([...RUNTIME_FLAGS, 'src/cli.ts']);
    const cmd = execForm(lastOf('CMD').args);
    expect(cmd, 'CMD in exec (JSON) form').toEqual(['serve']);
    expect([...entrypoint!, ...cmd!].join(' ')).not.toMatch(/\b(sh|bash|npm)\b/);
    const stop = finalOf('STOPSIGNAL').map((i) => i.args);
    expect(stop.every((s) => s === 'SIGTERM')).toBe(true);
    // Relative paths of the default configuration resolve against the application directory.
    expect(lastOf('WORKDIR').args).toBe('/app');
  });

  it('runs with the project\'s runtime environment (malloc arenas, heap ceiling), as `npm start` does', () => {
    const env = finalOf('ENV').map((i) => i.args).join(' ');
    for (const [name, value] of Object.entries(RUNTIME_ENV)) expect(env, name).toContain(`${name}=${value}`);
    const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(start).toContain(`node ${RUNTIME_FLAGS.join(' ')} src/cli.ts`);
    expect(start).toContain(`MALLOC_ARENA_MAX=${RUNTIME_ENV['MALLOC_ARENA_MAX']} `);
    // NODE_OPTIONS as a default the operator's own value replaces.
    expect(start).toContain(`NODE_OPTIONS="\${NODE_OPTIONS:-${RUNTIME_ENV['NODE_OPTIONS']}}"`);
  });

  it('labels the image with OCI annotations', () => {
    const labels = finalOf('LABEL').map((i) => i.args).join(' ');
    for (const key of ['title', 'description', 'version', 'revision', 'licenses', 'base.name']) {
      expect(labels).toMatch(new RegExp(`org\\.opencontainers\\.image\\.${key}=`));
    }
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string; version: string };
    expect(labels).toContain(`org.opencontainers.image.licenses="${pkg.license}"`);
    expect(dockerfile).toMatch(new RegExp(`ARG VERSION=${pkg.version.replace(/\./g, '\\.')}\\b`));
  });

  describe('HEALTHCHECK', () => {
    const healthcheck = (): { options: string; command: string[] } => {
      const args = lastOf('HEALTHCHECK').args;
      const at = args.indexOf('CMD ');
      expect(at, 'HEALTHCHECK ... CMD [...]').toBeGreaterThanOrEqual(0);
      const command = execForm(args.slice(at + 4).trim());
      expect(command, 'HEALTHCHECK CMD in exec form (distroless has no shell)').not.toBeNull();
      return { options: args.slice(0, at), command: command! };
    };

    it('asks /healthz on the admin listener with node (no curl in the image), bounded in time', () => {
      const { options, command } = healthcheck();
      expect(command[0]).toBe(execForm(lastOf('ENTRYPOINT').args)![0]);
      expect(command[1]).toBe('-e');
      expect(command[2]).toContain("'http://127.0.0.1:9090/healthz'");
      expect(options).toMatch(/--interval=\d+s/);
      expect(options).toMatch(/--timeout=\d+s/);
    });

    // The script itself, run with the Node that runs this test against a stand-in admin
    // listener: the exit code follows the status, and a dead listener is unhealthy.
    let server: Server | null = null;
    afterEach(() => {
      server?.close();
      server = null;
    });
    const probeWith = async (status: number | null): Promise<number> => {
      let url = 'http://127.0.0.1:9/healthz';
      if (status !== null) {
        server = createServer((req, res) => {
          res.writeHead(req.url === '/healthz' ? status : 404).end();
        });
        await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
        url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
      }
      const script = healthcheck().command[2]!.replace('http://127.0.0.1:9090/healthz', url);
      try {
        await run(process.execPath, ['-e', script], { timeout: 10_000 });
        return 0;
      } catch (error) {
        return (error as { code?: number }).code ?? -1;
      }
    };

    it('exits 0 when /healthz answers 200', async () => {
      expect(await probeWith(200)).toBe(0);
    });

    it('exits 1 when /healthz answers 503 or nothing listens', async () => {
      expect(await probeWith(503)).toBe(1);
      expect(await probeWith(null)).toBe(1);
    });
  });
});

describe('.dockerignore', () => {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  /** Docker's matching, enough for these patterns: `*` within a segment, `**` across; a directory excludes its content. */
  const excluded = (path: string): boolean => {
    let result = false;
    for (const raw of patterns) {
      const negated = raw.startsWith('!');
      const pattern = (negated ? raw.slice(1) : raw).replace(/^\//, '').replace(/\/$/, '');
      const regex = new RegExp(`^${pattern.split('/').map((seg) => seg === '**' ? '.*' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('/')}(/.*)?$`);
      if (regex.test(path)) result = !negated;
    }
    return result;
  };

  it('keeps dependencies, VCS data, local data, tests and logs out of the build context', () => {
    for (const path of ['node_modules', 'node_modules/yaml/package.json', '.git', '.git/HEAD', 'data', 'data/admin-token', 'test-artifacts',
      'test', 'test/unit/deploy/dockerfile.test.ts', 'bench', 'docs', 'k8s', 'gateway.log', 'src/x.log']) {
      expect(excluded(path), path).toBe(true);
    }
  });

  it('keeps what the image is built from', () => {
    for (const path of ['package.json', 'package-lock.json', 'src/cli.ts', 'src/config/load.ts', 'config/allowgate.yaml']) {
      expect(excluded(path), path).toBe(false);
    }
  });
});
