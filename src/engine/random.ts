// Seeded randomness that every backend reproduces bit for bit: a counter-based hash for dropout masks,
// and a small seeded generator (mulberry32) for host-side draws (init, shuffling).

/** 32-bit mix of (seed, index): the same function in TypeScript, C++ and CUDA. */
export function hash32(seed: number, index: number): number {
  let x = (Math.imul(index >>> 0, 0x9e3779b1) ^ (seed >>> 0)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** Dropout keep decision for element `index`: kept when the hash, as a fraction of 2^32, is >= p. */
export function dropoutKeep(seed: number, index: number, p: number): boolean {
  return hash32(seed, index) >= p * 4294967296;
}

/** A seeded uniform generator in [0, 1) with a saveable state. */
export class Rng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}
