/**
 * The compiled trie against Node's net.BlockList and a linear ipaddr.js matcher: lookups per
 * second (from a string and from a parsed address), compile time and bytes per rule, at 10 to
 * 1,000,000 random rules of each family, on one core. Seeded, so every run sees the same sets.
 *
 *   npm run bench:lookup [-- --quick] [--sorted]
 *
 * --sorted looks the same addresses up in address order, which shows how much of the random-order
 * figure is memory latency rather than work.
 *
 * Each row is measured in a process of its own (this script, run with --row FAMILY:SIZE), as a
 * gateway holds one table: measured one after another in one process, the million-rule rows ran
 * at a fraction of their own speed, on a heap and address space shaped by the rows before.
 */
import { spawnSync } from 'node:child_process';
import { BlockList } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import ipaddr from 'ipaddr.js';
import { parseIpInto, type Family } from '../src/ip/address.ts';
import type { Cidr } from '../src/ip/cidr.ts';
import { compileTrie, type TrieRule } from '../src/ip/trie.ts';
import { report, verdict, type Table } from './lib/report.ts';

const quick = process.argv.includes('--quick');
const sorted = process.argv.includes('--sorted');
const SIZES = quick ? [10, 1_000, 100_000] : [10, 1_000, 100_000, 1_000_000];
const LOOKUPS = quick ? 200_000 : 1_000_000;

let seed = 12345;
const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);

function randomRule(family: Family): { cidr: Cidr; text: string } {
  if (family === 4) {
    const prefix = 16 + (rand() % 17); // /16 .. /32: API allow lists hold offices, hosts and cloud ranges
    const mask = prefix === 32 ? 0xffffffff : ~(0xffffffff >>> prefix) >>> 0;
    const word = (rand() & mask) >>> 0;
    return { cidr: { family, words: Uint32Array.of(word), prefix }, text: `${word >>> 24}.${(word >>> 16) & 255}.${(word >>> 8) & 255}.${word & 255}` };
  }
  // Inside 2000::/3, /32 to /64, plus a tenth /128 hosts.
  const prefix = rand() % 10 === 0 ? 128 : 32 + (rand() % 33);
  const words = Uint32Array.of((0x20000000 | (rand() & 0x1fffffff)) >>> 0, rand(), rand(), rand());
  for (let w = 0; w < 4; w++) {
    const bits = Math.min(32, Math.max(0, prefix - w * 32));
    words[w] = bits === 0 ? 0 : bits === 32 ? words[w]! : (words[w]! & (~(0xffffffff >>> bits) >>> 0)) >>> 0;
  }
  const text = Array.from(words).flatMap((w) => [(w >>> 16).toString(16), (w & 0xffff).toString(16)]).join(':');
  return { cidr: { family, words, prefix }, text };
}

function addresses(family: Family, rules: readonly { cidr: Cidr; text: string }[], count: number): string[] {
  // Half inside a random rule's network, half anywhere: hits and deep misses both count.
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    if (family === 4) {
      const base = i % 2 === 0 && rules.length > 0 ? rules[rand() % rules.length]!.cidr.words[0]! : rand();
      const w = (base | (rand() & 0xff)) >>> 0;
      out.push(flat(`${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`));
    } else {
      const words = i % 2 === 0 && rules.length > 0 ? Array.from(rules[rand() % rules.length]!.cidr.words) : [0x20010db8, rand(), rand(), rand()];
      words[3] = (words[3]! | (rand() & 0xffff)) >>> 0;
      out.push(flat(words.flatMap((w) => [(w >>> 16).toString(16), (w & 0xffff).toString(16)]).join(':')));
    }
  }
  return out;
}

/**
 * Addresses reach the gateway as flat strings (socket.remoteAddress, a slice of a header). Built
 * by concatenation they are rope (cons) strings that V8 flattens, allocating, on the first
 * character read: that would bill the trie for the generator's string building.
 */
const flat = (text: string): string => Buffer.from(text, 'latin1').toString('latin1');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const memory = (): number => {
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
};

function perSecond(count: number, run: () => number): number {
  const start = process.hrtime.bigint();
  const sink = run();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (sink === -12345) console.log('');
  return count / seconds;
}

interface RowResult {
  readonly family: Family;
  readonly size: number;
  readonly fromStringPerSecond: number;
  readonly fromParsedPerSecond: number;
  readonly blockListPerSecond: number | null;
  readonly linearPerSecond: number | null;
  readonly compileMs: number;
  readonly blockListBuildMs: number | null;
  readonly bytesPerRule: number;
  readonly memoryAfterCompileMb: number;
}

function measureRow(family: Family, size: number): RowResult {
  const rules = Array.from({ length: size }, () => randomRule(family));
  const trieRules: TrieRule[] = rules.map((r, i) => ({ cidr: r.cidr, action: 'allow', id: `r${i}` }));
  // The compiler's JIT warm-up is paid once per process, not per list: a few smaller lists first.
  for (let i = 0; i < 3; i++) compileTrie(trieRules.slice(0, Math.min(size, 20_000)));
  // Memory: what the first timed compile holds. Compile time: the median of three.
  const before = memory();
  let t0 = performance.now();
  const trie = compileTrie(trieRules);
  const compileTimes = [performance.now() - t0];
  const heapMb = (memory() - before) / 2 ** 20;
  for (let i = 0; i < 2; i++) {
    t0 = performance.now();
    compileTrie(trieRules);
    compileTimes.push(performance.now() - t0);
  }
  const compileMs = compileTimes.sort((x, y) => x - y)[1]!;
  gc(); // the compiles' garbage collected now, not during the lookups
  const texts = addresses(family, rules, LOOKUPS);
  // Parsed addresses sit in one flat array and are copied into the scratch words, as the
  // request path does after parsing: the figure is the lookup, not a walk over a million objects.
  const parsed = new Uint32Array(texts.length * 4);
  const scratch = new Uint32Array(4);
  texts.forEach((t, i) => {
    if (parseIpInto(t, scratch) === 0) throw new Error(`bad generated address ${t}`);
    parsed.set(scratch, i * 4);
  });
  if (sorted) {
    // Same addresses in address order: neighbouring lookups share cache lines and pages.
    const order = texts.map((_, i) => i).sort((x, y) => {
      for (let w = 0; w < 4; w++) if (parsed[x * 4 + w] !== parsed[y * 4 + w]) return parsed[x * 4 + w]! - parsed[y * 4 + w]!;
      return 0;
    });
    const copy = parsed.slice();
    const textCopy = texts.slice();
    order.forEach((from, to) => {
      parsed.set(copy.subarray(from * 4, from * 4 + 4), to * 4);
      texts[to] = flat(textCopy[from]!); // a fresh copy, so the strings too sit in lookup order
    });
  }
  const fromString = perSecond(texts.length, () => {
    let s = 0;
    for (const t of texts) s += trie.lookup(parseIpInto(t, scratch) as Family, scratch);
    return s;
  });
  const fromParsed = perSecond(texts.length * 3, () => {
    let s = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < parsed.length; i += 4) {
        scratch[0] = parsed[i]!;
        scratch[1] = parsed[i + 1]!;
        scratch[2] = parsed[i + 2]!;
        scratch[3] = parsed[i + 3]!;
        s += trie.lookup(family, scratch);
      }
    }
    return s;
  });

  let blockRate: number | null = null;
  let blockBuildMs: number | null = null;
  if (size <= 100_000) {
    const list = new BlockList();
    const t0 = performance.now();
    for (const r of rules) list.addSubnet(r.text, r.cidr.prefix, family === 4 ? 'ipv4' : 'ipv6');
    blockBuildMs = performance.now() - t0;
    const sample = texts.slice(0, size >= 100_000 ? 20_000 : 100_000);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    blockRate = perSecond(sample.length, () => {
      let s = 0;
      for (const t of sample) s += list.check(t, type) ? 1 : 0;
      return s;
    });
  }
  let linearRate: number | null = null;
  if (size <= 1_000) {
    const ranges = rules.map((r) => [ipaddr.parse(r.text), r.cidr.prefix] as [ipaddr.IPv4 | ipaddr.IPv6, number]);
    const sample = texts.slice(0, 5_000);
    linearRate = perSecond(sample.length, () => {
      let s = 0;
      for (const t of sample) {
        const a = ipaddr.parse(t);
        for (const range of ranges) if (a.kind() === range[0].kind() && a.match(range)) { s++; break; }
      }
      return s;
    });
  }
  const bytesPerRule = trie.byteLength / size;
  return { family, size, fromStringPerSecond: fromString, fromParsedPerSecond: fromParsed, blockListPerSecond: blockRate, linearPerSecond: linearRate, compileMs, blockListBuildMs: blockBuildMs, bytesPerRule, memoryAfterCompileMb: heapMb };
}

const rowFlag = process.argv.indexOf('--row');
if (rowFlag >= 0) {
  const [family, size] = (process.argv[rowFlag + 1] ?? '').split(':').map(Number);
  if ((family !== 4 && family !== 6) || !Number.isInteger(size)) throw new Error(`--row wants FAMILY:SIZE such as 4:100000, got '${process.argv[rowFlag + 1]}'`);
  process.stdout.write(`${JSON.stringify(measureRow(family, size!))}\n`);
  process.exit(0);
}

const rows: (string | number | null)[][] = [];
const data: RowResult[] = [];
const checks: string[] = [];
const self = fileURLToPath(import.meta.url);
for (const family of [4, 6] as const) {
  for (const size of SIZES) {
    const child = spawnSync(process.execPath, [self, '--row', `${family}:${size}`, ...(sorted ? ['--sorted'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (child.status !== 0) throw new Error(`the IPv${family} ${size}-rule row failed (exit ${child.status ?? child.signal})`);
    const r = JSON.parse(child.stdout) as RowResult;
    const fromString = r.fromStringPerSecond;
    const fromParsed = r.fromParsedPerSecond;
    const blockRate = r.blockListPerSecond;
    const bytesPerRule = r.bytesPerRule;
    rows.push([`IPv${family}`, size, fromString / 1e6, fromParsed / 1e6, blockRate === null ? null : blockRate / 1e6, r.linearPerSecond === null ? null : r.linearPerSecond / 1e6,
      r.compileMs, r.blockListBuildMs, bytesPerRule, r.memoryAfterCompileMb]);
    data.push(r);
    if (size === 100_000 && blockRate !== null) {
      checks.push(verdict(`IPv${family}: >= 10x net.BlockList at 100,000 rules`, fromString >= 10 * blockRate, `${(fromString / blockRate).toFixed(1)}x`));
      checks.push(verdict(`IPv${family}: compile 100,000 CIDRs < 100 ms`, r.compileMs < 100, `${r.compileMs.toFixed(0)} ms`));
    }
    if (size === SIZES[SIZES.length - 1]) {
      checks.push(verdict(`IPv${family}: >= 5 M lookups/s from a string at ${size.toLocaleString('en-US')} rules`, fromString >= 5e6, `${(fromString / 1e6).toFixed(2)} M/s`));
      checks.push(verdict(`IPv${family}: >= 20 M lookups/s parsed at ${size.toLocaleString('en-US')} rules`, fromParsed >= 20e6, `${(fromParsed / 1e6).toFixed(2)} M/s`));
      checks.push(verdict(`IPv${family}: <= 32 bytes per rule`, bytesPerRule <= 32, `${bytesPerRule.toFixed(1)} B`));
    }
  }
}

const table: Table = {
  title: `Lookups on one core (M/s; ${LOOKUPS.toLocaleString('en-US')} addresses, half inside a rule${sorted ? ', in address order' : ''}), compile time and size`,
  columns: ['family', 'rules', 'trie from string', 'trie parsed', 'BlockList', 'ipaddr.js linear', 'compile ms', 'BlockList build ms', 'bytes/rule', 'memory MB'],
  rows,
  notes: [...checks, 'BlockList is measured up to 100,000 rules (20,000 checks at that size); the linear matcher up to 1,000.',
    'IPv4 rules: /16-/32. IPv6 rules: /32-/64 inside 2000::/3, one in ten a /128 host.',
    'memory MB: heap and array buffers held after compiling (after a GC), the rules themselves excluded.',
    'Addresses are random, so at 1,000,000 rules nearly every lookup misses the CPU caches and TLB: compare the same lookups in address order (npm run bench:lookup -- --sorted).'],
};
report(sorted ? 'lookup-sorted' : 'lookup', [table], data);
