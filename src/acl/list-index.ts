import { parseCidr, wordMask, type Cidr } from '../ip/cidr.ts';
import type { AclEntry } from '../list/types.ts';

/**
 * An account's entries indexed for the validation rules, so checking one entry costs about
 * log(n), not n (a list replace of n entries is then n log n instead of n², and a large list does
 * not stall the event loop): entries by network set (duplicates), allow networks by exact CIDR
 * (the networks containing a candidate: one lookup per prefix length in use), and allow networks
 * in address order (the networks inside a candidate: a range scan). Built once per change and
 * kept in step as the change adds and removes entries.
 */
export class ListIndex {
  readonly #byId = new Map<string, Indexed>();
  readonly #bySet = new Map<string, string>();
  readonly #allowByCidr = new Map<string, Set<string>>();
  /** Prefix lengths of allow networks, per family, with how many networks use each. */
  readonly #lengths: Record<4 | 6, Map<number, number>> = { 4: new Map(), 6: new Map() };
  readonly #ordered: Record<4 | 6, SortedBlocks<Placed>> = { 4: new SortedBlocks(comparePlaced), 6: new SortedBlocks(comparePlaced) };

  constructor(entries: readonly AclEntry[] = []) {
    for (const entry of entries) this.add(entry);
  }

  get size(): number {
    return this.#byId.size;
  }

  add(entry: AclEntry): void {
    this.remove(entry.id);
    const networks = networksOf(entry);
    this.#byId.set(entry.id, { entry, networks });
    this.#bySet.set(setKey(entry.cidrs), entry.id);
    if (entry.action !== 'allow') return;
    for (const cidr of networks) {
      const key = cidrKey(cidr);
      const ids = this.#allowByCidr.get(key) ?? new Set();
      ids.add(entry.id);
      this.#allowByCidr.set(key, ids);
      const lengths = this.#lengths[cidr.family];
      lengths.set(cidr.prefix, (lengths.get(cidr.prefix) ?? 0) + 1);
      this.#ordered[cidr.family].insert({ cidr, id: entry.id });
    }
  }

  remove(id: string): void {
    const held = this.#byId.get(id);
    if (held === undefined) return;
    this.#byId.delete(id);
    const key = setKey(held.entry.cidrs);
    if (this.#bySet.get(key) === id) this.#bySet.delete(key);
    if (held.entry.action !== 'allow') return;
    for (const cidr of held.networks) {
      const ckey = cidrKey(cidr);
      const ids = this.#allowByCidr.get(ckey);
      ids?.delete(id);
      if (ids?.size === 0) this.#allowByCidr.delete(ckey);
      const lengths = this.#lengths[cidr.family];
      const left = (lengths.get(cidr.prefix) ?? 1) - 1;
      if (left === 0) lengths.delete(cidr.prefix);
      else lengths.set(cidr.prefix, left);
      this.#ordered[cidr.family].delete({ cidr, id });
    }
  }

  /** Whether some entry has exactly these networks. */
  holds(cidrs: readonly string[]): boolean {
    return this.#bySet.has(setKey(cidrs));
  }

  /** Another entry with exactly these networks (in any spelling, allow or deny). */
  duplicateOf(candidate: AclEntry): AclEntry | null {
    const id = this.#bySet.get(setKey(candidate.cidrs));
    return id === undefined || id === candidate.id ? null : this.#byId.get(id)!.entry;
  }

  /** Another allow entry whose networks cover every one of `networks`. */
  coveringAllow(candidateId: string, networks: readonly Cidr[]): AclEntry | null {
    let common: Set<string> | null = null;
    for (const cidr of networks) {
      const found = new Set<string>();
      for (const prefix of this.#lengths[cidr.family].keys()) {
        if (prefix > cidr.prefix) continue;
        for (const id of this.#allowByCidr.get(cidrKey(truncate(cidr, prefix))) ?? []) {
          if (id !== candidateId && (common === null || common.has(id))) found.add(id);
        }
      }
      common = found;
      if (common.size === 0) return null;
    }
    const first = common === null ? undefined : [...common].sort()[0];
    return first === undefined ? null : this.#byId.get(first)!.entry;
  }

  /** Other allow entries every network of which lies inside one of `networks`. */
  narrowerAllow(candidateId: string, networks: readonly Cidr[]): AclEntry[] {
    const inside = new Map<string, number>();
    for (const cidr of networks) {
      for (const placed of this.#ordered[cidr.family].from({ cidr, id: '' })) {
        if (!startsWithin(placed.cidr, cidr)) break;
        if (placed.cidr.prefix < cidr.prefix || placed.id === candidateId) continue;
        inside.set(placed.id, (inside.get(placed.id) ?? 0) + 1);
      }
    }
    const out: AclEntry[] = [];
    for (const [id, count] of inside) {
      const held = this.#byId.get(id)!;
      if (count === held.networks.length) out.push(held.entry);
    }
    return out;
  }
}

interface Indexed {
  readonly entry: AclEntry;
  readonly networks: readonly Cidr[];
}

interface Placed {
  readonly cidr: Cidr;
  readonly id: string;
}

export function networksOf(entry: AclEntry): Cidr[] {
  return entry.cidrs.map((text) => {
    const parsed = parseCidr(text);
    // Stored entries were validated on the way in; a failure here is damage, not input.
    if (!parsed.ok) throw new Error(`entry ${entry.id} holds an invalid network ${text}`);
    return parsed.value;
  });
}

function setKey(cidrs: readonly string[]): string {
  return [...cidrs].sort().join(' ');
}

function cidrKey(cidr: Cidr): string {
  return `${cidr.family}:${cidr.words.join('.')}/${cidr.prefix}`;
}

function truncate(cidr: Cidr, prefix: number): Cidr {
  const words = new Uint32Array(cidr.words.length);
  for (let w = 0; w < words.length; w++) words[w] = (cidr.words[w]! & wordMask(prefix, w)) >>> 0;
  return { family: cidr.family, words, prefix };
}

/** Whether `inner`'s first address lies inside `outer`. */
function startsWithin(inner: Cidr, outer: Cidr): boolean {
  for (let w = 0; w < outer.words.length; w++) {
    if (((inner.words[w]! & wordMask(outer.prefix, w)) >>> 0) !== outer.words[w]) return false;
  }
  return true;
}

/** Address order, then shorter prefixes first, then id: a network's subnets follow it. */
function comparePlaced(a: Placed, b: Placed): number {
  for (let w = 0; w < a.cidr.words.length; w++) {
    const d = a.cidr.words[w]! - b.cidr.words[w]!;
    if (d !== 0) return d;
  }
  return a.cidr.prefix - b.cidr.prefix || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

const BLOCK = 512;

/**
 * A sorted collection in blocks of at most 2 × BLOCK items: insert and delete cost a binary search
 * and a splice within one block (about √n work at worst), where one flat array would move half
 * of everything each time.
 */
class SortedBlocks<T> {
  readonly #compare: (a: T, b: T) => number;
  #blocks: T[][] = [];

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  insert(item: T): void {
    if (this.#blocks.length === 0) {
      this.#blocks.push([item]);
      return;
    }
    const b = this.#blockFor(item);
    const block = this.#blocks[b]!;
    block.splice(this.#position(block, item), 0, item);
    if (block.length > 2 * BLOCK) this.#blocks.splice(b, 1, block.slice(0, BLOCK), block.slice(BLOCK));
  }

  delete(item: T): void {
    if (this.#blocks.length === 0) return;
    const b = this.#blockFor(item);
    const block = this.#blocks[b]!;
    const at = this.#position(block, item);
    if (at < block.length && this.#compare(block[at]!, item) === 0) block.splice(at, 1);
    if (block.length === 0) this.#blocks.splice(b, 1);
  }

  /** Items not less than `item`, in order. */
  *from(item: T): Generator<T> {
    if (this.#blocks.length === 0) return;
    let b = this.#blockFor(item);
    let at = this.#position(this.#blocks[b]!, item);
    for (; b < this.#blocks.length; b++, at = 0) {
      const block = this.#blocks[b]!;
      for (; at < block.length; at++) yield block[at]!;
    }
  }

  /** The last block whose first item is not greater than `item` (or the first block). */
  #blockFor(item: T): number {
    let lo = 0;
    let hi = this.#blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.#compare(this.#blocks[mid]![0]!, item) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The first position in `block` whose item is not less than `item`. */
  #position(block: readonly T[], item: T): number {
    let lo = 0;
    let hi = block.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#compare(block[mid]!, item) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
