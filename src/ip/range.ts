import { bitLength, type IpAddress } from './address.ts';
import type { Cidr } from './cidr.ts';

/**
 * The minimal exact list of CIDRs whose union is [first, last], in ascending order.
 *
 * Greedy from the low end: each step takes the largest block that starts at the cursor (so is
 * aligned to it) and does not run past `last`. That yields the maximal aligned blocks inside the
 * range, which is the unique minimal cover (at most 2 * bits - 2 blocks).
 *
 * Works on the 32-bit words directly: the arithmetic needed (compare, subtract, add a power of two,
 * count trailing zeros) is a few lines per word, and it keeps BigInt off a path that admin input
 * reaches in bulk.
 */
export function rangeToCidrs(first: IpAddress, last: IpAddress): Cidr[] {
  if (first.family !== last.family) throw new RangeError('range ends must be the same address family');
  const bits = bitLength(first.family);
  const n = first.family === 4 ? 1 : 4;
  if (first.words.length < n || last.words.length < n) throw new RangeError('address has too few words for its family');
  if (compareWords(first.words, last.words, n) > 0) throw new RangeError('range start is above its end');

  const cursor = Uint32Array.from(first.words.subarray(0, n));
  const end = last.words;
  const span = new Uint32Array(n);
  const out: Cidr[] = [];
  for (;;) {
    // The largest block that fits is the largest power of two <= last - cursor + 1.
    const fitsLog2 = log2FloorOfDiffPlusOne(end, cursor, span, n, bits);
    const k = Math.min(trailingZeros(cursor, n, bits), fitsLog2);
    out.push({ family: first.family, words: cursor.slice(), prefix: bits - k });
    if (k === fitsLog2 && isBlockEnd(cursor, end, k, n)) return out;
    addPowerOfTwo(cursor, k, n);
  }
}

/** Compares the first `n` words as one unsigned number: -1, 0 or 1. */
export function compareWords(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  for (let w = 0; w < n; w++) {
    const x = a[w]! >>> 0;
    const y = b[w]! >>> 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function trailingZeros(words: Uint32Array, n: number, bits: number): number {
  for (let w = n - 1; w >= 0; w--) {
    const v = words[w]!;
    if (v !== 0) return (n - 1 - w) * 32 + (31 - Math.clz32(v & -v));
  }
  return bits;
}

/** floor(log2(end - start + 1)); `scratch` receives end - start. */
function log2FloorOfDiffPlusOne(end: ArrayLike<number>, start: Uint32Array, scratch: Uint32Array, n: number, bits: number): number {
  let borrow = 0;
  for (let w = n - 1; w >= 0; w--) {
    let d = end[w]! - start[w]! - borrow;
    borrow = d < 0 ? 1 : 0;
    if (d < 0) d += 0x100000000;
    scratch[w] = d;
  }
  // Add one; a carry out of the top word means the difference was all ones: the whole space.
  let carry = 1;
  for (let w = n - 1; w >= 0 && carry !== 0; w--) {
    const s = scratch[w]! + carry;
    carry = s > 0xffffffff ? 1 : 0;
    scratch[w] = s;
  }
  if (carry !== 0) return bits;
  for (let w = 0; w < n; w++) {
    const v = scratch[w]!;
    if (v !== 0) return (n - 1 - w) * 32 + (31 - Math.clz32(v));
  }
  return 0; // unreachable: the sum is at least one
}

/** Whether the aligned block of 2^k addresses starting at `start` ends exactly at `end`. */
function isBlockEnd(start: Uint32Array, end: ArrayLike<number>, k: number, n: number): boolean {
  for (let w = 0; w < n; w++) {
    const hostBits = k - (n - 1 - w) * 32;
    let v = start[w]!;
    if (hostBits >= 32) v = 0xffffffff;
    else if (hostBits > 0) v = (v | (0xffffffff >>> (32 - hostBits))) >>> 0;
    if (v !== end[w]! >>> 0) return false;
  }
  return true;
}

/** Adds 2^k in place; callers only do so while the result stays <= the range end, so no overflow. */
function addPowerOfTwo(words: Uint32Array, k: number, n: number): void {
  let w = n - 1 - (k >>> 5);
  let add = 2 ** (k & 31);
  while (w >= 0 && add !== 0) {
    const s = words[w]! + add;
    words[w] = s;
    add = s > 0xffffffff ? 1 : 0;
    w--;
  }
}
