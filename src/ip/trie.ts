import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { bitLength, type Family, type IpAddress } from './address.ts';
import { formatCidr, wordMask, type Cidr } from './cidr.ts';

/*
 * A compiled, immutable longest-prefix-match table over IPv4 and IPv6 networks.
 *
 * Layout
 * ------
 * One path-compressed binary trie per family (a PATRICIA trie over prefixes). A node exists only
 * for a rule's network or where two subtrees diverge, so n distinct networks need at most 2n + 1
 * nodes, whatever their lengths; a one-bit-per-level trie would need up to 32 (IPv4) or 128
 * (IPv6) nodes per rule. Each family's nodes sit in one Uint32Array with a fixed stride, so a node
 * visit reads one small contiguous record and the lookup allocates nothing:
 *
 *   IPv4, 4 words (16 bytes) per node      IPv6, 7 words (28 bytes) per node
 *   [0] meta                               [0] meta
 *   [1] child for next bit 0               [1] child for next bit 0
 *   [2] child for next bit 1               [2] child for next bit 1
 *   [3] key                                [3..6] key, most significant word first
 *
 *   meta  = depth | (slot + 1) << 8
 *   depth = prefix length of the node's network (0..128); its key has no bits set past depth
 *   slot  = the rule that wins on exactly this network, or none (0 in the field)
 *   child = node index, 0 for none (node 0 is the family's root, at depth 0, never a child)
 *
 * Nodes are numbered in pre-order, so a child's index is always above its parent's (which also
 * lets fromBuffer prove a trie acyclic with one comparison per edge) and the 0-child, when there
 * is one, is the very next node in memory. A node is on an address's path when the address agrees
 * with the node's key on the first `depth` bits; the deepest such node with a slot is the answer.
 *
 * Rules keep their input order as slots (0..ruleCount-1) in three parallel arrays:
 *   ruleNode  Uint32Array   node holding the rule's network (in its family's array)
 *   ruleId    Uint32Array   index into the id string table (ids are deduplicated)
 *   ruleFlags Uint8Array    bit 0: deny, bit 1: IPv6
 * A rule shadowed by an equal network (same prefix, a deny over an allow, or an earlier rule of the
 * same action) still has a slot, so every input rule can be described; it just never wins.
 * The slot field limits a trie to 2^24 - 1 rules.
 *
 * Serialized form (integers little-endian, each section padded to a multiple of 4 bytes)
 * ---------------------------------------------------------------------------------------
 *   header, 32 bytes: magic 'AGTR', version (1), CRC-32 of every byte after this field,
 *                     rule count, id count, id table UTF-8 bytes, IPv4 node count, IPv6 node count
 *   then:             IPv4 nodes, IPv6 nodes, ruleNode, ruleId, ruleFlags,
 *                     id offsets (id count + 1, the last one the table length), id UTF-8 bytes
 *
 * The checksum catches accidental damage; fromBuffer also checks every structural invariant the
 * lookup relies on, so a buffer that passes cannot make a later lookup read out of bounds or loop.
 */

export type Action = 'allow' | 'deny';

export interface TrieRule {
  readonly cidr: Cidr;
  readonly action: Action;
  readonly id: string;
}

const STRIDE4 = 4;
const STRIDE6 = 7;
const KEY = 3;
const DEPTH_MASK = 0xff;
const MAX_RULES = 0xffffff;
const FLAG_DENY = 1;
const FLAG_V6 = 2;

const MAGIC = 0x52544741; // 'AGTR' read as a little-endian u32
const VERSION = 1;
const HEADER_BYTES = 32;

interface Parts {
  readonly nodes4: Uint32Array;
  readonly nodes6: Uint32Array;
  readonly ruleNode: Uint32Array;
  readonly ruleId: Uint32Array;
  readonly ruleFlags: Uint8Array;
  readonly ids: readonly string[];
}

export class CompiledTrie {
  /** Number of input rules; slots run from 0 to ruleCount - 1 in input order. */
  readonly ruleCount: number;
  /** Bytes held in the typed arrays (nodes and rule table); id strings are not counted. */
  readonly byteLength: number;
  readonly nodeCount: number;
  readonly #nodes4: Uint32Array;
  readonly #nodes6: Uint32Array;
  readonly #ruleNode: Uint32Array;
  readonly #ruleId: Uint32Array;
  readonly #ruleFlags: Uint8Array;
  readonly #ids: readonly string[];

  /** Use compileTrie or CompiledTrie.fromBuffer; the parts are trusted as given. */
  constructor(parts: Parts) {
    this.#nodes4 = parts.nodes4;
    this.#nodes6 = parts.nodes6;
    this.#ruleNode = parts.ruleNode;
    this.#ruleId = parts.ruleId;
    this.#ruleFlags = parts.ruleFlags;
    this.#ids = parts.ids;
    this.ruleCount = parts.ruleNode.length;
    this.nodeCount = parts.nodes4.length / STRIDE4 + parts.nodes6.length / STRIDE6;
    this.byteLength = parts.nodes4.byteLength + parts.nodes6.byteLength + parts.ruleNode.byteLength +
      parts.ruleId.byteLength + parts.ruleFlags.byteLength;
  }

  /**
   * The slot of the rule that decides `words` (one word for IPv4, four for IPv6), or -1 when no
   * rule contains it. Allocation-free: the request path calls this with a reused scratch array.
   */
  lookup(family: Family, words: Uint32Array): number {
    return family === 4 ? this.#lookup4(words[0]!) : this.#lookup6(words);
  }

  lookupIp(ip: IpAddress): number {
    return this.lookup(ip.family, ip.words);
  }

  #lookup4(address: number): number {
    const nodes = this.#nodes4;
    let best = -1;
    let base = 0;
    for (;;) {
      const meta = nodes[base]!;
      const depth = meta & DEPTH_MASK;
      // Depth 0 is the root, whose empty key matches everything; a shift by 32 would not.
      if (depth !== 0 && ((address ^ nodes[base + KEY]!) >>> (32 - depth)) !== 0) return best;
      if (meta > DEPTH_MASK) best = (meta >>> 8) - 1;
      if (depth === 32) return best;
      const child = nodes[base + 1 + ((address >>> (31 - depth)) & 1)]!;
      if (child === 0) return best;
      base = child * STRIDE4;
    }
  }

  #lookup6(q: Uint32Array): number {
    const nodes = this.#nodes6;
    let best = -1;
    let base = 0;
    let verified = 0; // leading bits already known to agree, so their words need no second look
    for (;;) {
      const meta = nodes[base]!;
      const depth = meta & DEPTH_MASK;
      if (depth > verified) {
        const full = depth >>> 5;
        for (let w = verified >>> 5; w < full; w++) {
          if (q[w] !== nodes[base + KEY + w]) return best;
        }
        const rest = depth & 31;
        if (rest !== 0 && ((q[full]! ^ nodes[base + KEY + full]!) >>> (32 - rest)) !== 0) return best;
      }
      if (meta > DEPTH_MASK) best = (meta >>> 8) - 1;
      if (depth === 128) return best;
      const child = nodes[base + 1 + ((q[depth >>> 5]! >>> (31 - (depth & 31))) & 1)]!;
      if (child === 0) return best;
      base = child * STRIDE6;
      verified = depth + 1;
    }
  }

  idOf(slot: number): string {
    return this.#ids[this.#ruleId[this.#checkSlot(slot)]!]!;
  }

  actionOf(slot: number): Action {
    return (this.#ruleFlags[this.#checkSlot(slot)]! & FLAG_DENY) !== 0 ? 'deny' : 'allow';
  }

  prefixOf(slot: number): number {
    const s = this.#checkSlot(slot);
    const v6 = (this.#ruleFlags[s]! & FLAG_V6) !== 0;
    const node = this.#ruleNode[s]!;
    return v6 ? this.#nodes6[node * STRIDE6]! & DEPTH_MASK : this.#nodes4[node * STRIDE4]! & DEPTH_MASK;
  }

  /** The rule's network, rebuilt from its node (cold path: allocates). */
  cidrOf(slot: number): Cidr {
    const s = this.#checkSlot(slot);
    const v6 = (this.#ruleFlags[s]! & FLAG_V6) !== 0;
    const nodes = v6 ? this.#nodes6 : this.#nodes4;
    const base = this.#ruleNode[s]! * (v6 ? STRIDE6 : STRIDE4);
    return {
      family: v6 ? 6 : 4,
      words: nodes.slice(base + KEY, base + KEY + (v6 ? 4 : 1)),
      prefix: nodes[base]! & DEPTH_MASK,
    };
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
    const buf = Buffer.alloc(serializedLength(this.#nodes4.length / STRIDE4, this.#nodes6.length / STRIDE6, r, encodedIds.length, idBytes));
    buf.writeUInt32LE(MAGIC, 0);
    buf.writeUInt32LE(VERSION, 4);
    buf.writeUInt32LE(r, 12);
    buf.writeUInt32LE(encodedIds.length, 16);
    buf.writeUInt32LE(idBytes, 20);
    buf.writeUInt32LE(this.#nodes4.length / STRIDE4, 24);
    buf.writeUInt32LE(this.#nodes6.length / STRIDE6, 28);
    let at = HEADER_BYTES;
    at = writeWords(buf, at, this.#nodes4);
    at = writeWords(buf, at, this.#nodes6);
    at = writeWords(buf, at, this.#ruleNode);
    at = writeWords(buf, at, this.#ruleId);
    buf.set(this.#ruleFlags, at);
    at += pad4(r);
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
    if (count4 < 1 || count6 < 1) corrupt('a family has no root node');

    let at = HEADER_BYTES;
    const nodes4 = readWords(b, at, count4 * STRIDE4);
    at += count4 * STRIDE4 * 4;
    const nodes6 = readWords(b, at, count6 * STRIDE6);
    at += count6 * STRIDE6 * 4;
    const ruleNode = readWords(b, at, ruleCount);
    at += ruleCount * 4;
    const ruleId = readWords(b, at, ruleCount);
    at += ruleCount * 4;
    const ruleFlags = b.subarray(at, at + ruleCount);
    at += pad4(ruleCount);
    const idOffsets = readWords(b, at, idCount + 1);
    at += (idCount + 1) * 4;
    const idBlob = b.subarray(at, at + idBytes);

    validateFamily(nodes4, 4, ruleNode, ruleFlags);
    validateFamily(nodes6, 6, ruleNode, ruleFlags);
    validateRules(nodes4, nodes6, ruleNode, ruleId, ruleFlags, idCount);
    const ids = decodeIds(idOffsets, idBlob);
    return new CompiledTrie({ nodes4, nodes6, ruleNode, ruleId, ruleFlags: Uint8Array.from(ruleFlags), ids });
  }
}

/**
 * Compiles rules into a trie. The most specific network containing an address decides; on one
 * network present more than once, deny beats allow, then the earliest rule wins.
 */
export function compileTrie(rules: readonly TrieRule[]): CompiledTrie {
  const r = rules.length;
  if (r > MAX_RULES) throw new RangeError(`a trie holds at most ${MAX_RULES} rules, got ${r}`);
  const ruleNode = new Uint32Array(r);
  const ruleId = new Uint32Array(r);
  const ruleFlags = new Uint8Array(r);
  const idIndex = new Map<string, number>();
  const ids: string[] = [];
  let count6 = 0;
  for (let i = 0; i < r; i++) {
    const rule = rules[i]!;
    checkRule(rule, i);
    let index = idIndex.get(rule.id);
    if (index === undefined) {
      index = ids.length;
      idIndex.set(rule.id, index);
      ids.push(rule.id);
    }
    ruleId[i] = index;
    ruleFlags[i] = (rule.action === 'deny' ? FLAG_DENY : 0) | (rule.cidr.family === 6 ? FLAG_V6 : 0);
    if (rule.cidr.family === 6) count6++;
  }
  const nodes4 = buildFamily(rules, 4, r - count6, ruleNode, ruleFlags);
  const nodes6 = buildFamily(rules, 6, count6, ruleNode, ruleFlags);
  return new CompiledTrie({ nodes4, nodes6, ruleNode, ruleId, ruleFlags, ids });
}

function checkRule(rule: TrieRule, i: number): void {
  const { cidr } = rule;
  if (cidr.family !== 4 && cidr.family !== 6) throw new TypeError(`rule ${i}: unknown address family ${String(cidr.family)}`);
  const words = cidr.family === 4 ? 1 : 4;
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

/** Builds one family's node array; fills ruleNode for that family's rules. */
function buildFamily(rules: readonly TrieRule[], family: Family, count: number, ruleNode: Uint32Array, ruleFlags: Uint8Array): Uint32Array {
  const stride = family === 4 ? STRIDE4 : STRIDE6;
  const keyWords = family === 4 ? 1 : 4;
  // Each insertion adds a leaf and at most one branch node: the bound is exact, so no regrowth.
  const capacity = 1 + 2 * count;
  const b: Builder = { nodes: new Uint32Array(capacity * stride), size: 1, stride, keyWords };
  for (let i = 0; i < rules.length; i++) {
    const cidr = rules[i]!.cidr;
    if (cidr.family !== family) continue;
    const node = insert(b, cidr.words, cidr.prefix);
    const base = node * stride;
    const meta = b.nodes[base]!;
    const current = (meta >>> 8) - 1;
    // Input order is ascending, so only a deny displacing an allow changes an occupied node.
    if (current < 0 || ((ruleFlags[i]! & FLAG_DENY) !== 0 && (ruleFlags[current]! & FLAG_DENY) === 0)) {
      b.nodes[base] = ((meta & DEPTH_MASK) | ((i + 1) << 8)) >>> 0;
    }
    ruleNode[i] = node;
  }
  return renumber(b, rules, family, ruleNode);
}

interface Builder {
  readonly nodes: Uint32Array;
  size: number;
  readonly stride: number;
  readonly keyWords: number;
}

/** Finds or creates the node for key/len, splitting a compressed edge where the key diverges. */
function insert(b: Builder, key: ArrayLike<number>, len: number): number {
  const { nodes, stride, keyWords } = b;
  let node = 0;
  for (;;) {
    const base = node * stride;
    const depth = nodes[base]! & DEPTH_MASK;
    if (depth === len) return node;
    const edge = base + 1 + bitAt(key, 0, depth);
    const child = nodes[edge]!;
    if (child === 0) {
      const leaf = newNode(b, key, len);
      nodes[edge] = leaf;
      return leaf;
    }
    const childBase = child * stride;
    const childDepth = nodes[childBase]! & DEPTH_MASK;
    const common = commonPrefix(key, 0, nodes, childBase + KEY, keyWords, Math.min(len, childDepth));
    if (common === childDepth) {
      node = child;
      continue;
    }
    if (common === len) {
      // The new network contains the child's: it goes in between.
      const mid = newNode(b, key, len);
      nodes[mid * stride + 1 + bitAt(nodes, childBase + KEY, len)] = child;
      nodes[edge] = mid;
      return mid;
    }
    const fork = newNode(b, key, common);
    nodes[fork * stride + 1 + bitAt(nodes, childBase + KEY, common)] = child;
    const leaf = newNode(b, key, len);
    nodes[fork * stride + 1 + bitAt(key, 0, common)] = leaf;
    nodes[edge] = fork;
    return leaf;
  }
}

function newNode(b: Builder, key: ArrayLike<number>, depth: number): number {
  const node = b.size++;
  const base = node * b.stride;
  b.nodes[base] = depth;
  for (let w = 0; w < b.keyWords; w++) b.nodes[base + KEY + w] = key[w]! & wordMask(depth, w);
  return node;
}

/** Bit `pos` (0 = most significant) of the words starting at `offset`. */
function bitAt(words: ArrayLike<number>, offset: number, pos: number): number {
  return (words[offset + (pos >>> 5)]! >>> (31 - (pos & 31))) & 1;
}

/** Length of the common leading bits of two keys, capped at `limit`. */
function commonPrefix(a: ArrayLike<number>, aOffset: number, b: ArrayLike<number>, bOffset: number, keyWords: number, limit: number): number {
  for (let w = 0; w < keyWords && w * 32 < limit; w++) {
    const diff = (a[aOffset + w]! ^ b[bOffset + w]!) >>> 0;
    if (diff !== 0) return Math.min(w * 32 + Math.clz32(diff), limit);
  }
  return limit;
}

/** Copies the built nodes into a right-sized array in pre-order and remaps rule nodes. */
function renumber(b: Builder, rules: readonly TrieRule[], family: Family, ruleNode: Uint32Array): Uint32Array {
  const { nodes, size, stride } = b;
  const out = new Uint32Array(size * stride);
  const newIndex = new Uint32Array(size);
  const order = new Uint32Array(size);
  const stack: number[] = [0];
  let next = 0;
  while (stack.length > 0) {
    const old = stack.pop()!;
    newIndex[old] = next;
    order[next++] = old;
    const one = nodes[old * stride + 2]!;
    const zero = nodes[old * stride + 1]!;
    if (one !== 0) stack.push(one);
    if (zero !== 0) stack.push(zero);
  }
  for (let n = 0; n < size; n++) {
    const from = order[n]! * stride;
    const to = n * stride;
    out.set(nodes.subarray(from, from + stride), to);
    const zero = nodes[from + 1]!;
    const one = nodes[from + 2]!;
    out[to + 1] = zero === 0 ? 0 : newIndex[zero]!;
    out[to + 2] = one === 0 ? 0 : newIndex[one]!;
  }
  for (let i = 0; i < rules.length; i++) {
    if (rules[i]!.cidr.family === family) ruleNode[i] = newIndex[ruleNode[i]!]!;
  }
  return out;
}

// ---- serialization helpers ----

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function serializedLength(count4: number, count6: number, rules: number, idCount: number, idBytes: number): number {
  // Plain arithmetic on values up to 2^32: exact in doubles, so a forged header cannot wrap.
  return HEADER_BYTES + count4 * STRIDE4 * 4 + count6 * STRIDE6 * 4 + rules * 8 + pad4Big(rules) +
    (idCount + 1) * 4 + pad4Big(idBytes);
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

function validateFamily(nodes: Uint32Array, family: Family, ruleNode: Uint32Array, ruleFlags: Uint8Array): void {
  const stride = family === 4 ? STRIDE4 : STRIDE6;
  const keyWords = family === 4 ? 1 : 4;
  const bits = bitLength(family);
  const v6Flag = family === 6 ? FLAG_V6 : 0;
  const count = nodes.length / stride;
  const parents = new Uint8Array(count);
  const where = (i: number): string => `IPv${family} node ${i}`;
  for (let i = 0; i < count; i++) {
    const base = i * stride;
    const meta = nodes[base]!;
    const depth = meta & DEPTH_MASK;
    if (depth > bits) corrupt(`${where(i)} has depth ${depth}`);
    if (i === 0 && depth !== 0) corrupt(`${where(i)} (the root) has depth ${depth}`);
    for (let w = 0; w < keyWords; w++) {
      if (((nodes[base + KEY + w]! & ~wordMask(depth, w)) >>> 0) !== 0) corrupt(`${where(i)} has key bits past its depth`);
    }
    for (let bit = 0; bit < 2; bit++) {
      const child = nodes[base + 1 + bit]!;
      if (child === 0) continue;
      if (child <= i || child >= count) corrupt(`${where(i)} has child index ${child} out of range`);
      if (++parents[child]! > 1) corrupt(`${where(child)} has more than one parent`);
      const childBase = child * stride;
      const childDepth = nodes[childBase]! & DEPTH_MASK;
      if (childDepth <= depth || childDepth > bits) corrupt(`${where(child)} is not deeper than its parent`);
      if (commonPrefix(nodes, base + KEY, nodes, childBase + KEY, keyWords, depth) !== depth ||
        bitAt(nodes, childBase + KEY, depth) !== bit) {
        corrupt(`${where(child)} is not inside its parent's network`);
      }
    }
    const slot = (meta >>> 8) - 1;
    if (slot >= 0) {
      if (slot >= ruleNode.length) corrupt(`${where(i)} names rule ${slot} of ${ruleNode.length}`);
      if (ruleNode[slot] !== i || (ruleFlags[slot]! & FLAG_V6) !== v6Flag) corrupt(`${where(i)} and rule ${slot} disagree`);
    } else if (i !== 0 && (nodes[base + 1] === 0 || nodes[base + 2] === 0)) {
      corrupt(`${where(i)} has no rule and does not branch`);
    }
  }
  for (let i = 1; i < count; i++) if (parents[i] !== 1) corrupt(`${where(i)} is unreachable`);
}

function validateRules(nodes4: Uint32Array, nodes6: Uint32Array, ruleNode: Uint32Array, ruleId: Uint32Array, ruleFlags: Uint8Array, idCount: number): void {
  for (let r = 0; r < ruleNode.length; r++) {
    const flags = ruleFlags[r]!;
    if (flags > (FLAG_DENY | FLAG_V6)) corrupt(`rule ${r} has unknown flags ${flags}`);
    if (ruleId[r]! >= idCount) corrupt(`rule ${r} names id ${ruleId[r]} of ${idCount}`);
    const v6 = (flags & FLAG_V6) !== 0;
    const nodes = v6 ? nodes6 : nodes4;
    const stride = v6 ? STRIDE6 : STRIDE4;
    const node = ruleNode[r]!;
    if (node >= nodes.length / stride) corrupt(`rule ${r} names node ${node} out of range`);
    const winner = (nodes[node * stride]! >>> 8) - 1;
    if (winner < 0) corrupt(`rule ${r} sits on a node without a rule`);
    if (winner !== r) {
      const deny = flags & FLAG_DENY;
      const winnerDeny = ruleFlags[winner]! & FLAG_DENY;
      if ((deny !== 0 && winnerDeny === 0) || (deny === winnerDeny && r < winner)) {
        corrupt(`rule ${r} should win over rule ${winner} on the same network`);
      }
    }
  }
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
