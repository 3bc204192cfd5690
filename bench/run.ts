/**
 * `npm run bench`: every benchmark in turn, each a process of its own so that none inherits
 * another's heap or JIT state. Flags (e.g. --quick) are passed on.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = dirname(fileURLToPath(import.meta.url));
const BENCHMARKS = ['decision', 'lookup', 'engine', 'proxy', 'footprint', 'authz', 'propagation', 'admin-bounds'];
let failed = 0;
for (const name of BENCHMARKS) {
  const script = join(BENCH, `${name}.ts`);
  if (!existsSync(script)) {
    console.log(`\n== ${name}: skipped (bench/${name}.ts is not there)`);
    continue;
  }
  console.log(`\n== ${name}`);
  const run = spawnSync(process.execPath, [script, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (run.status !== 0) {
    failed++;
    console.log(`== ${name} failed (exit ${run.status ?? run.signal})`);
  }
}
process.exit(failed === 0 ? 0 : 1);
