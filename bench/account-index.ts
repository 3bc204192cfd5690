/**
 * The account-name index (identity.accountIdCase, accountIdNumeric, path format suffixes) listed
 * from a loopback redis-server holding many accounts (100,000 by default): how long the listing
 * takes and how long it holds the event loop at a stretch, for the two ways a replica can list.
 *
 *   paged   what the gateway does: SSCAN of the account set, ACCOUNT_PAGE names per round trip,
 *           each page indexed before the next is asked for (AccountIndex.load)
 *   whole   every name at once, each checked against its version key (RedisStore.accounts(),
 *           one GET per account), then indexed: what the index did before it was paged
 *
 * Both run in one process, one after the other, in alternating order over several rounds, so
 * the figures compare under the same load on this shared machine; only the ratios mean much.
 *
 *   npm run bench:account-index [-- --accounts 100000] [--rounds 3]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { AccountIndex } from '../src/policy/account-names.ts';
import { RedisStore } from '../src/store/redis/redis-store.ts';
import { startRedis, stopAll, workDir } from './lib/processes.ts';
import { median, report } from './lib/report.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const at = args.indexOf(name);
  return at < 0 ? fallback : Number(args[at + 1]);
};
const ACCOUNTS = option('--accounts', 100_000);
const ROUNDS = option('--rounds', 3);
const PREFIX = 'bench:';

interface Run {
  readonly ms: number;
  readonly longestBlockMs: number;
  readonly accounts: number;
}

async function measure(list: (index: AccountIndex) => Promise<void>): Promise<Run> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const index = new AccountIndex();
  delay.enable();
  const started = performance.now();
  await list(index);
  const ms = performance.now() - started;
  delay.disable();
  return { ms, longestBlockMs: delay.max / 1e6, accounts: index.size };
}

async function main(): Promise<void> {
  const url = await startRedis(workDir('account-index'));
  const seed = new Redis(url);
  // An account as the store leaves it: a member of the account set with a version key.
  for (let i = 0; i < ACCOUNTS; i += 5_000) {
    const batch = seed.pipeline();
    for (let j = i; j < Math.min(i + 5_000, ACCOUNTS); j++) {
      const account = `AC${String(j).padStart(7, '0')}`;
      batch.sadd(`${PREFIX}accounts`, account);
      batch.set(`${PREFIX}{${account}}:version`, '1');
    }
    await batch.exec();
  }
  seed.disconnect();
  const store = new RedisStore({ kind: 'redis', topology: { mode: 'standalone', url }, keyPrefix: PREFIX, connectTimeoutMs: 2_000, commandTimeoutMs: 10_000, sweepIntervalMs: 60_000 });
  await store.open();

  const ways: Record<string, (index: AccountIndex) => Promise<void>> = {
    paged: (index) => index.load(store),
    whole: async (index) => {
      for (const account of await store.accounts()) index.add(account);
    },
  };
  const runs: Record<string, Run[]> = { paged: [], whole: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const way of round % 2 === 0 ? ['paged', 'whole'] : ['whole', 'paged']) runs[way]!.push(await measure(ways[way]!));
  }
  await store.close();

  const rows = Object.entries(runs).map(([way, list]) => ({
    way,
    accounts: list[0]!.accounts,
    ms: Math.round(median(list.map((r) => r.ms))),
    longestBlockMs: Math.round(median(list.map((r) => r.longestBlockMs))),
  }));
  const paged = rows.find((r) => r.way === 'paged')!;
  const whole = rows.find((r) => r.way === 'whole')!;
  report('account-index', [{
    title: `account-name index listing, ${ACCOUNTS.toLocaleString('en')} accounts, median of ${ROUNDS} rounds (one run, shared machine)`,
    columns: ['way', 'accounts indexed', 'listing ms', 'longest event-loop block ms'],
    rows: rows.map((r) => [r.way, r.accounts, r.ms, r.longestBlockMs]),
    notes: [`paged / whole: listing ${(paged.ms / whole.ms).toFixed(2)}x, longest block ${(paged.longestBlockMs / Math.max(1, whole.longestBlockMs)).toFixed(2)}x`],
  }], { runs });
}

try {
  await main();
} finally {
  await stopAll();
}
