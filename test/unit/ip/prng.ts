/**
 * A small seeded generator (SFC32, seeded through SplitMix32) so that a failing randomized test
 * reproduces from the seed in its name.
 */
export interface Rng {
  /** Uniform unsigned 32-bit integer. */
  u32(): number;
  /** Uniform integer in [0, n), n <= 2^32. */
  below(n: number): number;
  /** Uniform integer in [lo, hi]. */
  between(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

export function makeRng(seed: number): Rng {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const u32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) u32();
  const below = (n: number): number => {
    if (n <= 0) throw new RangeError('below() needs a positive bound');
    // Rejection sampling keeps small bounds unbiased.
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const v = u32();
      if (v < limit) return v % n;
    }
  };
  return {
    u32,
    below,
    between: (lo, hi) => lo + below(hi - lo + 1),
    chance: (p) => u32() / 0x100000000 < p,
    pick: (items) => {
      if (items.length === 0) throw new RangeError('pick() from an empty list');
      return items[below(items.length)]!;
    },
  };
}
