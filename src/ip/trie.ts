import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { bitLength, type Family, type IpAddress } from './address.ts';
import { formatCidr, wordMask, type Cidr } from './cidr.ts';

/*
 * A compiled, immutable longest-prefix-match table over IPv4 and IPv6 networks.
 *
 * Layout
 * ------
 * The prefix trie is leaf-pushed and flattened: the address space of each family is cut into
 * intervals at every network's first address and just past its last, and each interval carries
 * the rule that wins everywhere inside it (the most specific network containing it), so a lookup
 * is one search for the interval holding the address, with no backtracking. n distinct networks
 * give at most 2n + 1 intervals; neighbours with the same answer are merged. Each family's
 * intervals sit in one Uint32Array, sorted by first address, with a fixed stride:
 *
 *   IPv4, 2 words (8 bytes) per interval    IPv6, 5 words (20 bytes) per interval
 *   [0]  first address                      [0..3] first address, most significant word first
 *   [1]  slot + 1 (0: no rule)              [4]    slot + 1 (0: no rule)
 *
 * The first interval starts at address 0. A binary search over 2n intervals would still take
 * ~21 probes at a million rules, scattered over megabytes; a direct-indexed first level cuts that
 * to a handful inside one or two cache lines. The index is built from the table (never stored):
 *
 *   skip   leading bits that every interval start after the first shares (at most 32 - bits),
 *          so lists confined to one region (2000::/3, 10.0.0.0/8) spend no index on the rest;
 *   top    the value of those bits; an address with other leading bits lies before the second
 *          interval or after the last one, which the lookup answers without the index;
 *   bits   the next `bits` bits of the first word pick a bucket; 2^bits is about a quarter of
 *          the interval count (1..2^20);
 *   index  Uint32Array(2^bits + 1): index[b] is the interval holding the first address of
 *          bucket b, the last entry the last interval; an address in bucket b lies in an interval
 *          between index[b] and index[b + 1], found by binary search.
 *
 * Rules keep their input order as slots (0..ruleCount-1), three words each:
 *   interval  the interval starting at the rule's network address (that address is always an
 *             interval start, so the network costs no extra words)
 *   id        index into the id string table (consecutive rules share an id)
 *   meta      prefix length (bits 0-7), deny (bit 8), IPv6 (bit 9)
 * A rule shadowed by an equal network (a deny over an allow, or an earlier rule of the same
 * action) still has a slot, so every input rule can be described; it just never wins.
 *
 * In memory every table of one trie shares a single allocation (views over one ArrayBuffer), and
 * a family without rules uses one table shared by every trie: a typed array costs a few hundred
 * bytes beyond its contents, which for the small lists most accounts have was most of the cost.
 *
 * Serialized form (integers little-endian, each section padded to a multiple of 4 bytes)
 * ---------------------------------------------------------------------------------------
 *   header, 32 bytes: magic 'AGTR', version (2), CRC-32 of every byte after this field,
 *                     rule count, id count, id table UTF-8 bytes, IPv4 and IPv6 interval counts
 *   then:             IPv4 intervals, IPv6 intervals, ruleInterval, ruleId, ruleMeta,
 *                     id offsets (id count + 1, the last one the table length), id UTF-8 bytes
 *
 * The checksum catches accidental damage; fromBuffer also checks every invariant the lookup
 * relies on (starts strictly ascending from 0, slots in range and of the right family, every
 * interval inside the network of the rule it names), so a buffer that passes cannot make a later
 * lookup read out of bounds, loop, or match an address outside the rule it reports.
 */

export type Action = 'allow' | 'deny';

export interface TrieRule {
  readonly cidr: Cidr;
  readonly action: Action;
  readonly id: string;
}

const MAX_RULES = 0xffffff;
const MAX_INDEX_BITS = 20;
const PREFIX_MASK = 0xff;
const META_DENY = 0x100;
const META_V6 = 0x200;

const MAGIC = 0x52544741; // 'AGTR' read as a little-endian u32
const VERSION = 2;
const HEADER_BYTES = 32;

const wordsOf = (family: Family): 1 | 4 => (family === 4 ? 1 : 4);

/** Words per slot in the rule table: interval, id index, meta. */
const RULE_WORDS = 3;

// What V8 (Node 24, 64-bit) spends around the contents, measured with a forced GC: the trie
// object, a typed-array view, a family table object, a string header, an array header; an
// ArrayBuffer past IN_HEAP_MAX bytes lives off the heap with a backing-store record of its own.
const TRIE_BYTES = 200;
const VIEW_BYTES = 130;
const TABLE_BYTES = 80;
const STRING_BYTES = 24;
const ARRAY_BYTES = 32;
const IN_HEAP_MAX = 64;
const OFF_HEAP_BYTES = 200;

function isOneByte(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

/** One family's interval table and the first-level index built over it. */
interface Table {
  readonly family: Family;
  readonly entries: Uint32Array;
  readonly count: number;
  readonly index: Uint32Array;
  readonly bits: number;
  readonly skip: number;
  readonly top: number;
}

interface Parts {
  readonly v4: Table;
  readonly v6: Table;
  readonly ruleInterval: Uint32Array;
  readonly ruleId: Uint32Array;
  readonly ruleMeta: Uint16Array;
  readonly ids: readonly string[];
}

export class CompiledTrie {
  /** Number of input rules; slots run from 0 to ruleCount - 1 in input order. */
  readonly ruleCount: number;
  /** Bytes held in the typed arrays (intervals, indexes and rule table); id strings are not counted. */
  readonly byteLength: number;
  /**
   * Estimate of the heap this trie keeps alive: its tables, their views, the id strings and the
   * object itself (constants measured on Node 24, 64-bit; the cache test checks them with a
   * forced GC). What a cache bound in bytes counts.
   */
  readonly retainedBytes: number;
  /** Intervals in both families' tables. */
  readonly intervalCount: number;
  readonly #v4: Table;
  readonly #v6: Table;
  // The IPv4 table's fields, unpacked: the lookup reads them on every call.
  readonly #e4: Uint32Array;
  readonly #index4: Uint32Array;
  readonly #skip4: number;
  readonly #top4: number;
  readonly #shift4: number;
  readonly #last4: number;
  /** Per slot: interval, id index, meta (see the layout notes). */
  readonly #rules: Uint32Array;
  readonly #ids: readonly string[];

  /** Use compileTrie or CompiledTrie.fromBuffer; the parts are trusted as given. */
  constructor(parts: Parts) {
    const r = parts.ruleInterval.length;
    const own = [parts.v4, parts.v6].filter((t) => !isShared(t));
    // One allocation for everything: the family tables this trie owns, then the rule table.
    let words = r * RULE_WORDS;
    for (const t of own) words += t.entries.length + t.index.length;
    const buffer = new ArrayBuffer(words * 4);
    let at = 0;
    const place = (source: Uint32Array): Uint32Array => {
      const view = new Uint32Array(buffer, at * 4, source.length);
      view.set(source);
      at += source.length;
      return view;
    };
    const pack = (t: Table): Table => (isShared(t) ? t : { ...t, entries: place(t.entries), index: place(t.index) });
    const v4 = pack(parts.v4);
    const v6 = pack(parts.v6);
    const rules = new Uint32Array(buffer, at * 4, r * RULE_WORDS);
    for (let i = 0; i < r; i++) {
      rules[i * RULE_WORDS] = parts.ruleInterval[i]!;
      rules[i * RULE_WORDS + 1] = parts.ruleId[i]!;
      rules[i * RULE_WORDS + 2] = parts.ruleMeta[i]!;
    }
    this.#v4 = v4;
    this.#v6 = v6;
    this.#e4 = v4.entries;
    this.#index4 = v4.index;
    this.#skip4 = v4.skip;
    this.#top4 = v4.top;
    this.#shift4 = 32 - v4.bits;
    this.#last4 = (v4.count - 1) * 2 + 1;
    this.#rules = rules;
    this.#ids = parts.ids;
    this.ruleCount = r;
    this.intervalCount = v4.count + v6.count;
    this.byteLength = buffer.byteLength;
    let idBytes = 0;
    for (const id of parts.ids) idBytes += STRING_BYTES + id.length * (isOneByte(id) ? 1 : 2);
    this.retainedBytes = TRIE_BYTES + VIEW_BYTES * (1 + own.length * 2) + (own.length * TABLE_BYTES)
      + buffer.byteLength + (buffer.byteLength > IN_HEAP_MAX ? OFF_HEAP_BYTES : 0) + ARRAY_BYTES + parts.ids.length * 8 + idBytes;
  }

  /**
   * The slot of the rule that decides `words` (one word for IPv4, four for IPv6), or -1 when no
   * rule contains it. Allocation-free: the request path calls this with a reused scratch array.
   */
  lookup(family: Family, words: Uint32Array): number {
    return family === 4 ? this.#lookup4(words[0]!) : lookup6(this.#v6, words);
  }

  lookupIp(ip: IpAddress): number {
    return this.lookup(ip.family, ip.words);
  }

  #lookup4(address: number): number {
    const e = this.#e4;
    const skip = this.#skip4;
    if (skip !== 0) {
      const head = address >>> (32 - skip);
      if (head !== this.#top4) return e[head < this.#top4 ? 1 : this.#last4]! - 1;
    }
    const bucket = (address << skip) >>> this.#shift4;
    let lo = this.#index4[bucket]!;
    let hi = this.#index4[bucket + 1]!;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (e[mid << 1]! <= address) lo = mid;
      else hi = mid - 1;
    }
    return e[(lo << 1) + 1]! - 1;
  }

  idOf(slot: number): string {
    return this.#ids[this.#rules[this.#checkSlot(slot) * RULE_WORDS + 1]!]!;
  }

  actionOf(slot: number): Action {
    return (this.#rules[this.#checkSlot(slot) * RULE_WORDS + 2]! & META_DENY) !== 0 ? 'deny' : 'allow';
  }

  prefixOf(slot: number): number {
    return this.#rules[this.#checkSlot(slot) * RULE_WORDS + 2]! & PREFIX_MASK;
  }

  /** The rule's network, read from the interval it starts (cold path: allocates). */
  cidrOf(slot: number): Cidr {
    const s = this.#checkSlot(slot) * RULE_WORDS;
    const meta = this.#rules[s + 2]!;
    const table = (meta & META_V6) !== 0 ? this.#v6 : this.#v4;
    const words = wordsOf(table.family);
    const base = this.#rules[s]! * (words + 1);
    return { family: table.family, words: table.entries.slice(base, base + words), prefix: meta & PREFIX_MASK };
  }

  /**
   * One family's interval table, read-only: `count` intervals of `stride` words each (the first
   * address, most significant word first, then slot + 1, 0 for none), sorted by first address and
   * starting at address 0. For comparing whole lists (list/strictness.ts), not for lookups.
   */
  intervalTable(family: Family): { readonly entries: Uint32Array; readonly count: number; readonly stride: number } {
    const table = family === 4 ? this.#v4 : this.#v6;
    return { entries: table.entries, count: table.count, stride: wordsOf(family) + 1 };
  }

  #checkSlot(slot: number): number {
    if (!(Number.isInteger(slot) && slot >= 0 && slot < this.ruleCount)) {
      throw new RangeError(`trie slot ${slot} is out of range (0-${this.ruleCount - 1})`);
    }
    return slot;
  }

  toBuffer(): Buffer {
    const encodedIds = this.#ids.map((id) => Buffer.from(id, 'utf8'));
    const idOffsets = new Uint32Array(encodedIds.length + 1);
    for (let i = 0; i < encodedIds.length; i++) idOffsets[i + 1] = idOffsets[i]! + encodedIds[i]!.length;
    const idBytes = idOffsets[encodedIds.length]!;
    const r = this.ruleCount;
    const buf = Buffer.alloc(serializedLength(this.#v4.count, this.#v6.count, r, encodedIds.length, idBytes));
    buf.writeUInt32LE(MAGIC, 0);
    buf.writeUInt32LE(VERSION, 4);
    buf.writeUInt32LE(r, 12);
    buf.writeUInt32LE(encodedIds.length, 16);
    buf.writeUInt32LE(idBytes, 20);
    buf.writeUInt32LE(this.#v4.count, 24);
    buf.writeUInt32LE(this.#v6.count, 28);
    let at = HEADER_BYTES;
    at = writeWords(buf, at, this.#v4.entries);
    at = writeWords(buf, at, this.#v6.entries);
    for (let i = 0; i < r; i++) buf.writeUInt32LE(this.#rules[i * RULE_WORDS]!, at + i * 4);
    at += r * 4;
    for (let i = 0; i < r; i++) buf.writeUInt32LE(this.#rules[i * RULE_WORDS + 1]!, at + i * 4);
    at += r * 4;
    for (let i = 0; i < r; i++) buf.writeUInt16LE(this.#rules[i * RULE_WORDS + 2]!, at + i * 2);
    at += pad4(r * 2);
    at = writeWords(buf, at, idOffsets);
    for (const id of encodedIds) {
      buf.set(id, at);
      at += id.length;
    }
    buf.writeUInt32LE(crc32(buf.subarray(12)), 8);
    return buf;
  }

  /** Rebuilds a trie written by toBuffer; throws on anything that toBuffer could not have written. */
  static fromBuffer(buf: Uint8Array): CompiledTrie {
    if (!(buf instanceof Uint8Array)) throw new TypeError('compiled trie must be a Buffer');
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (b.length < HEADER_BYTES) corrupt(`${b.length} bytes is shorter than the ${HEADER_BYTES}-byte header (truncated)`);
    if (b.readUInt32LE(0) !== MAGIC) corrupt('bad magic: not a compiled trie');
    const version = b.readUInt32LE(4);
    if (version !== VERSION) corrupt(`unsupported version ${version} (this build reads version ${VERSION})`);
    const ruleCount = b.readUInt32LE(12);
    const idCount = b.readUInt32LE(16);
    const idBytes = b.readUInt32LE(20);
    const count4 = b.readUInt32LE(24);
    const count6 = b.readUInt32LE(28);
    const expected = serializedLength(count4, count6, ruleCount, idCount, idBytes);
    if (b.length !== expected) {
      corrupt(`length ${b.length} does not match the ${expected} bytes its header describes (truncated or trailing data)`);
    }
    if (crc32(b.subarray(12)) !== b.readUInt32LE(8)) corrupt('checksum mismatch');
    if (ruleCount > MAX_RULES) corrupt(`rule count ${ruleCount} exceeds the limit of ${MAX_RULES}`);
    if (count4 < 1 || count6 < 1) corrupt('a family has no interval');

    let at = HEADER_BYTES;
    const entries4 = readWords(b, at, count4 * 2);
    at += entries4.byteLength;
    const entries6 = readWords(b, at, count6 * 5);
    at += entries6.byteLength;
    const ruleInterval = readWords(b, at, ruleCount);
    at += ruleCount * 4;
    const ruleId = readWords(b, at, ruleCount);
    at += ruleCount * 4;
    const ruleMeta = new Uint16Array(ruleCount);
    for (let i = 0; i < ruleCount; i++) ruleMeta[i] = b.readUInt16LE(at + i * 2);
    at += pad4(ruleCount * 2);
    const idOffsets = readWords(b, at, idCount + 1);
    at += (idCount + 1) * 4;
    const idBlob = b.subarray(at, at + idBytes);

    validateOrder(entries4, 4, ruleMeta);
    validateOrder(entries6, 6, ruleMeta);
    validateRules(entries4, entries6, ruleInterval, ruleId, ruleMeta, idCount);
    validateContainment(entries4, 4, ruleInterval, ruleMeta);
    validateContainment(entries6, 6, ruleInterval, ruleMeta);
    const ids = decodeIds(idOffsets, idBlob);
    return new CompiledTrie({ v4: indexTable(4, entries4), v6: indexTable(6, entries6), ruleInterval, ruleId, ruleMeta, ids });
  }
}

function lookup6(t: Table, q: Uint32Array): number {
  const e = t.entries;
  const q0 = q[0]!;
  const skip = t.skip;
  if (skip !== 0) {
    const head = q0 >>> (32 - skip);
    if (head !== t.top) return e[head < t.top ? 4 : (t.count - 1) * 5 + 4]! - 1;
  }
  const bucket = (q0 << skip) >>> (32 - t.bits);
  let lo = t.index[bucket]!;
  let hi = t.index[bucket + 1]!;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    const base = mid * 5;
    // Compare the interval's start with the address, most significant word first.
    let x = e[base]!;
    let y = q0;
    if (x === y) {
      x = e[base + 1]!;
      y = q[1]!;
      if (x === y) {
        x = e[base + 2]!;
        y = q[2]!;
        if (x === y) {
          x = e[base + 3]!;
          y = q[3]!;
        }
      }
    }
    if (x <= y) lo = mid;
    else hi = mid - 1;
  }
  return e[lo * 5 + 4]! - 1;
}

/**
 * Compiles rules into a trie. The most specific network containing an address decides; on one
 * network present more than once, deny beats allow, then the earliest rule wins.
 */
export function compileTrie(rules: readonly TrieRule[]): CompiledTrie {
  const r = rules.length;
  if (r > MAX_RULES) throw new RangeError(`a trie holds at most ${MAX_RULES} rules, got ${r}`);
  const ruleInterval = new Uint32Array(r);
  const ruleId = new Uint32Array(r);
  const ruleMeta = new Uint16Array(r);
  const ids: string[] = [];
  for (let i = 0; i < r; i++) {
    const rule = rules[i]!;
    checkRule(rule, i);
    // An entry that became several networks gives consecutive rules one id: stored once. (A map
    // over every id would cost more than the rest of the compile at a million rules.)
    if (ids.length === 0 || ids[ids.length - 1] !== rule.id) ids.push(rule.id);
    ruleId[i] = ids.length - 1;
    ruleMeta[i] = rule.cidr.prefix | (rule.action === 'deny' ? META_DENY : 0) | (rule.cidr.family === 6 ? META_V6 : 0);
  }
  const v4 = indexTable(4, buildIntervals(rules, 4, ruleMeta, ruleInterval));
  const v6 = indexTable(6, buildIntervals(rules, 6, ruleMeta, ruleInterval));
  return new CompiledTrie({ v4, v6, ruleInterval, ruleId, ruleMeta, ids });
}

function checkRule(rule: TrieRule, i: number): void {
  const { cidr } = rule;
  if (cidr.family !== 4 && cidr.family !== 6) throw new TypeError(`rule ${i}: unknown address family ${String(cidr.family)}`);
  const words = wordsOf(cidr.family);
  if (cidr.words.length < words) throw new TypeError(`rule ${i}: an IPv${cidr.family} network needs ${words} words`);
  if (!Number.isInteger(cidr.prefix) || cidr.prefix < 0 || cidr.prefix > bitLength(cidr.family)) {
    throw new RangeError(`rule ${i}: prefix ${cidr.prefix} is out of range for IPv${cidr.family}`);
  }
  // Cidr promises zero host bits; a value breaking that came from a bug, and masking it here
  // would enforce a different network than the one shown to the operator.
  for (let w = 0; w < words; w++) {
    if (((cidr.words[w]! & ~wordMask(cidr.prefix, w)) >>> 0) !== 0) {
      throw new RangeError(`rule ${i}: network ${formatCidr(cidr)} has host bits set`);
    }
  }
  if (rule.action !== 'allow' && rule.action !== 'deny') throw new TypeError(`rule ${i}: unknown action ${String(rule.action)}`);
  if (typeof rule.id !== 'string' || !rule.id.isWellFormed()) {
    throw new TypeError(`rule ${i}: id must be a well-formed string (it is stored as UTF-8)`);
  }
}

// ---- compiling one family ----

/**
 * One family's interval table: its networks sorted (first address, then shortest prefix first,
 * then input order), equal networks reduced to their winner, then swept in order with a stack of
 * the networks still open, which are nested because networks never partly overlap. Fills
 * ruleInterval for the family's rules.
 */
function buildIntervals(rules: readonly TrieRule[], family: Family, ruleMeta: Uint16Array, ruleInterval: Uint32Array): Uint32Array {
  const W = wordsOf(family);
  const S = W + 1;
  const slots: number[] = [];
  for (let i = 0; i < rules.length; i++) if (rules[i]!.cidr.family === family) slots.push(i);
  const n = slots.length;
  const keys = new Uint32Array(n * W);
  const prefixes = new Uint8Array(n);
  for (let j = 0; j < n; j++) {
    const cidr = rules[slots[j]!]!.cidr;
    for (let w = 0; w < W; w++) keys[j * W + w] = cidr.words[w]!;
    prefixes[j] = cidr.prefix;
  }
  const order = sortNetworks(keys, prefixes, W);

  const out = new Uint32Array((2 * n + 1) * S);
  let m = 1; // interval 0: from address 0, no rule (out is zero-filled)
  const at = new Uint32Array(W); // scratch: the address an interval starts at
  const emit = (value: number): void => {
    const tail = (m - 1) * S;
    if (sameKey(out, tail, at, 0, W)) {
      // Several networks start (or end) at one address: the last word on it wins.
      out[tail + W] = value;
      if (m > 1 && out[tail - 1] === value) m--;
      return;
    }
    if (out[tail + W] === value) return;
    out.set(at, m * S);
    out[m * S + W] = value;
    m++;
  };
  // The open networks, outermost first: positions in `order`, and each one's winning slot + 1.
  const stack: number[] = [];
  const stackValue: number[] = [];
  const close = (): void => {
    const j = order[stack.pop()!]!;
    stackValue.pop();
    // The interval after it starts one past its last address, unless that wraps past the end.
    const prefix = prefixes[j]!;
    let carry = 1;
    for (let w = W - 1; w >= 0; w--) {
      const last = (keys[j * W + w]! | ~wordMask(prefix, w)) >>> 0;
      const sum = last + carry;
      at[w] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
    if (carry === 0) emit(stackValue.length === 0 ? 0 : stackValue[stackValue.length - 1]!);
  };

  for (let p = 0; p < n; ) {
    const j = order[p]!;
    // Equal networks are adjacent: deny beats allow, then the earliest (the sort keeps input order).
    let winner = slots[j]!;
    let q = p + 1;
    for (; q < n && prefixes[order[q]!] === prefixes[j] && sameKey(keys, order[q]! * W, keys, j * W, W); q++) {
      const other = slots[order[q]!]!;
      if ((ruleMeta[other]! & META_DENY) !== 0 && (ruleMeta[winner]! & META_DENY) === 0) winner = other;
    }
    while (stack.length > 0 && !contains(keys, order[stack[stack.length - 1]!]!, prefixes, keys, j, W)) close();
    stack.push(p);
    stackValue.push(winner + 1);
    for (let w = 0; w < W; w++) at[w] = keys[j * W + w]!;
    emit(winner + 1);
    // The network's first address now starts the last interval, for good: the winner there is at
    // least as specific as the network and the answer just before it less specific, so no later
    // step merges it away.
    for (let k = p; k < q; k++) ruleInterval[slots[order[k]!]!] = m - 1;
    p = q;
  }
  while (stack.length > 0) close();
  return out.slice(0, m * S);
}

/** Positions 0..n-1 ordered by key (ascending), then prefix, then position: a stable LSD radix sort. */
function sortNetworks(keys: Uint32Array, prefixes: Uint8Array, W: number): Uint32Array {
  const n = prefixes.length;
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (n < 2) return order;
  let spare = new Uint32Array(n);
  const counts = new Uint32Array(257);
  // Least significant digit first: the prefix (pass -1), then each key word's bytes from the low end.
  for (let pass = -1; pass < W * 4; pass++) {
    const w = W - 1 - (pass >> 2);
    const shift = (pass & 3) * 8;
    counts.fill(0);
    for (let j = 0; j < n; j++) counts[(pass < 0 ? prefixes[j]! : (keys[j * W + w]! >>> shift) & 0xff) + 1]!++;
    // A digit shared by every key moves nothing (IPv6 host bits of short networks, mostly).
    let first = 1;
    while (counts[first] === 0) first++;
    if (counts[first] === n) continue;
    for (let d = 1; d <= 256; d++) counts[d]! += counts[d - 1]!;
    for (let i = 0; i < n; i++) {
      const j = order[i]!;
      spare[counts[pass < 0 ? prefixes[j]! : (keys[j * W + w]! >>> shift) & 0xff]!++] = j;
    }
    [order, spare] = [spare, order];
  }
  return order;
}

/** Whether network `outer` contains network `inner` (keys and prefixes in flat arrays). */
function contains(outerKeys: Uint32Array, outer: number, prefixes: Uint8Array, innerKeys: Uint32Array, inner: number, W: number): boolean {
  const prefix = prefixes[outer]!;
  if (prefixes[inner]! < prefix) return false;
  for (let w = 0; w < W; w++) {
    if (((innerKeys[inner * W + w]! & wordMask(prefix, w)) >>> 0) !== outerKeys[outer * W + w]) return false;
  }
  return true;
}

/** Whether the W-word keys at a[aAt] and b[bAt] are equal. */
function sameKey(a: Uint32Array, aAt: number, b: Uint32Array, bAt: number, W: number): boolean {
  for (let w = 0; w < W; w++) if (a[aAt + w] !== b[bAt + w]) return false;
  return true;
}

/** Orders the W-word keys at a[aAt] and b[bAt], most significant word first. */
export function compareKey(a: Uint32Array, aAt: number, b: Uint32Array, bAt: number, W: number): number {
  for (let w = 0; w < W; w++) {
    const x = a[aAt + w]!;
    const y = b[bAt + w]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** A family's table when it has no rule: one interval, all addresses, no answer. */
const EMPTY_TABLES: Readonly<Record<Family, Table>> = { 4: buildIndex(4, new Uint32Array(2)), 6: buildIndex(6, new Uint32Array(5)) };

function isShared(table: Table): boolean {
  return table === EMPTY_TABLES[table.family];
}

/**
 * The first-level index over a valid interval table (see the layout notes at the top); a family
 * without rules gets the table every such trie shares.
 */
function indexTable(family: Family, entries: Uint32Array): Table {
  return entries.length === wordsOf(family) + 1 && entries[wordsOf(family)] === 0 ? EMPTY_TABLES[family] : buildIndex(family, entries);
}

function buildIndex(family: Family, entries: Uint32Array): Table {
  const S = wordsOf(family) + 1;
  const count = entries.length / S;
  const bits = Math.min(MAX_INDEX_BITS, Math.max(1, Math.ceil(Math.log2(count / 4))));
  let skip = 0;
  let top = 0;
  if (count > 1) {
    const first = entries[S]!;
    const last = entries[(count - 1) * S]!;
    skip = Math.min(Math.clz32(first ^ last), 32 - bits);
    top = skip === 0 ? 0 : first >>> (32 - skip);
  }
  const buckets = 2 ** bits;
  const index = new Uint32Array(buckets + 1);
  const base = skip === 0 ? 0 : (top << (32 - skip)) >>> 0;
  let j = 0;
  for (let b = 0; b < buckets; b++) {
    // The bucket's first address: leading word `start`, every other word zero.
    const start = (base | (b << (32 - skip - bits))) >>> 0;
    while (j + 1 < count && startsAtOrBefore(entries, (j + 1) * S, S - 1, start)) j++;
    index[b] = j;
  }
  index[buckets] = count - 1;
  return { family, entries, count, index, bits, skip, top };
}

function startsAtOrBefore(entries: Uint32Array, offset: number, W: number, word0: number): boolean {
  const x = entries[offset]!;
  if (x !== word0) return x < word0;
  for (let w = 1; w < W; w++) if (entries[offset + w] !== 0) return false;
  return true;
}

// ---- serialization helpers ----

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function serializedLength(count4: number, count6: number, rules: number, idCount: number, idBytes: number): number {
  // Plain arithmetic on values up to 2^32: exact in doubles, so a forged header cannot wrap.
  return HEADER_BYTES + count4 * 8 + count6 * 20 + rules * 8 + pad4Big(rules * 2) + (idCount + 1) * 4 + pad4Big(idBytes);
}

/** pad4 for values that may exceed 2^31 (from an untrusted header). */
function pad4Big(n: number): number {
  return Math.ceil(n / 4) * 4;
}

function writeWords(buf: Buffer, at: number, words: Uint32Array): number {
  if (LITTLE_ENDIAN) {
    buf.set(new Uint8Array(words.buffer, words.byteOffset, words.byteLength), at);
  } else {
    for (let i = 0; i < words.length; i++) buf.writeUInt32LE(words[i]!, at + i * 4);
  }
  return at + words.byteLength;
}

/** Copies into a fresh, aligned array: the input buffer may sit at any offset of a shared pool. */
function readWords(buf: Buffer, at: number, count: number): Uint32Array {
  const words = new Uint32Array(count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(words.buffer).set(buf.subarray(at, at + count * 4));
  } else {
    for (let i = 0; i < count; i++) words[i] = buf.readUInt32LE(at + i * 4);
  }
  return words;
}

function corrupt(reason: string): never {
  throw new Error(`compiled trie buffer is corrupt: ${reason}`);
}

function validateRules(entries4: Uint32Array, entries6: Uint32Array, ruleInterval: Uint32Array, ruleId: Uint32Array, ruleMeta: Uint16Array, idCount: number): void {
  for (let r = 0; r < ruleInterval.length; r++) {
    const meta = ruleMeta[r]!;
    if (meta > (META_V6 | META_DENY | PREFIX_MASK)) corrupt(`rule ${r} has unknown flags ${meta >>> 8}`);
    if (ruleId[r]! >= idCount) corrupt(`rule ${r} names id ${ruleId[r]} of ${idCount}`);
    const family: Family = (meta & META_V6) !== 0 ? 6 : 4;
    const W = wordsOf(family);
    const entries = family === 4 ? entries4 : entries6;
    const prefix = meta & PREFIX_MASK;
    if (prefix > bitLength(family)) corrupt(`rule ${r} has prefix /${prefix} for IPv${family}`);
    const interval = ruleInterval[r]!;
    if (interval >= entries.length / (W + 1)) corrupt(`rule ${r} names interval ${interval} out of range`);
    for (let w = 0; w < W; w++) {
      if (((entries[interval * (W + 1) + w]! & ~wordMask(prefix, w)) >>> 0) !== 0) {
        corrupt(`rule ${r} starts at an interval that is not its network address`);
      }
    }
    // Whoever answers at the network's first address is this rule or beats it.
    const winner = entries[interval * (W + 1) + W]! - 1;
    if (winner < 0 || winner >= ruleInterval.length) corrupt(`rule ${r} starts at an interval without a valid rule`);
    const winnerMeta = ruleMeta[winner]!;
    const winnerPrefix = winnerMeta & PREFIX_MASK;
    if (winnerPrefix < prefix) corrupt(`rule ${r} is hidden by the less specific rule ${winner}`);
    if (winner !== r && winnerPrefix === prefix) {
      const deny = meta & META_DENY;
      const winnerDeny = winnerMeta & META_DENY;
      if ((deny !== 0 && winnerDeny === 0) || (deny === winnerDeny && r < winner)) {
        corrupt(`rule ${r} should win over rule ${winner} on the same network`);
      }
    }
  }
}

/** Starts strictly ascending from address 0, neighbours with different answers, slots of this family. */
function validateOrder(entries: Uint32Array, family: Family, ruleMeta: Uint16Array): void {
  const W = wordsOf(family);
  const S = W + 1;
  const count = entries.length / S;
  const v6 = family === 6 ? META_V6 : 0;
  for (let w = 0; w < W; w++) if (entries[w] !== 0) corrupt(`${where(family, 0)} does not start at address 0`);
  for (let i = 0; i < count; i++) {
    const base = i * S;
    if (i > 0) {
      if (compareKey(entries, base, entries, base - S, W) <= 0) corrupt(`${where(family, i)} does not start after ${where(family, i - 1)}`);
      if (entries[base + W] === entries[base - 1]) corrupt(`${where(family, i)} repeats the answer of ${where(family, i - 1)}`);
    }
    const slot = entries[base + W]! - 1;
    if (slot >= ruleMeta.length) corrupt(`${where(family, i)} names rule ${slot} of ${ruleMeta.length}`);
    if (slot >= 0 && (ruleMeta[slot]! & META_V6) !== v6) corrupt(`${where(family, i)} names rule ${slot} of the other family`);
  }
}

/** Every interval wholly inside the network of the rule it names (runs after validateRules). */
function validateContainment(entries: Uint32Array, family: Family, ruleInterval: Uint32Array, ruleMeta: Uint16Array): void {
  const W = wordsOf(family);
  const S = W + 1;
  const count = entries.length / S;
  const last = new Uint32Array(W);
  for (let i = 0; i < count; i++) {
    const base = i * S;
    const slot = entries[base + W]! - 1;
    if (slot < 0) continue;
    // The interval's last address: one before the next start, or the end of the address space.
    let borrow = i + 1 < count ? 1 : 0;
    for (let w = W - 1; w >= 0; w--) {
      const word = i + 1 < count ? entries[base + S + w]! : 0xffffffff;
      last[w] = (word - borrow) >>> 0;
      borrow = borrow === 1 && word === 0 ? 1 : 0;
    }
    const network = ruleInterval[slot]! * S;
    const prefix = ruleMeta[slot]! & PREFIX_MASK;
    for (let w = 0; w < W; w++) {
      const m = wordMask(prefix, w);
      if (((entries[base + w]! & m) >>> 0) !== entries[network + w] || ((last[w]! & m) >>> 0) !== entries[network + w]) {
        corrupt(`${where(family, i)} lies outside the network of rule ${slot}`);
      }
    }
  }
}

function where(family: Family, i: number): string {
  return `IPv${family} interval ${i}`;
}

function decodeIds(offsets: Uint32Array, blob: Uint8Array): string[] {
  const idCount = offsets.length - 1;
  if (offsets[0] !== 0 || offsets[idCount] !== blob.length) corrupt('id offsets do not span the id table');
  // Keep a leading U+FEFF: ids are opaque and must come back exactly as written.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const ids: string[] = new Array<string>(idCount);
  for (let i = 0; i < idCount; i++) {
    const start = offsets[i]!;
    const end = offsets[i + 1]!;
    if (end < start || end > blob.length) corrupt(`id ${i} has offsets ${start}..${end}`);
    try {
      ids[i] = decoder.decode(blob.subarray(start, end));
    } catch {
      corrupt(`id ${i} is not valid UTF-8`);
    }
  }
  return ids;
}
