/**
 * A small seeded random number generator (mulberry32) whose whole state is one 32-bit integer, so that it can
 * be saved in a checkpoint and restored exactly.
 * @module
 */

/** A seeded generator of uniform and normal numbers. */
export interface Rng {
  /** A uniform number in [0, 1). */
  uniform(): number;
  /** A standard normal number (Box–Muller). */
  normal(): number;
  /** A uniform integer in [0, n). */
  int(n: number): number;
  /** The generator's state (an unsigned 32-bit integer). */
  state(): number;
}

/**
 * Creates a generator from a seed (any number; it is folded to 32 bits) or from a saved `state()`.
 *
 * @example
 * ```ts
 * const rng = createRng(42);
 * const x = rng.normal();
 * const again = createRng(0, rng.state()); // continues exactly where `rng` is
 * ```
 */
export function createRng(seed: number, state?: number): Rng {
  let s = state !== undefined ? state >>> 0 : hashSeed(seed);
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    uniform,
    normal() {
      const u = 1 - uniform();
      const v = uniform();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    int(n) {
      return Math.floor(uniform() * n);
    },
    state() {
      return s;
    },
  };
}

/**
 * Mixes several integers into one 32-bit seed (for example a run seed, an epoch and a window index).
 *
 * @example
 * ```ts
 * const rng = createRng(hashSeed(7, epoch, window));
 * ```
 */
export function hashSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    let x = Math.floor(p) >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    for (const w of [x, hi]) {
      x = w;
      for (let i = 0; i < 4; i++) {
        h ^= x & 0xff;
        h = Math.imul(h, 0x01000193) >>> 0;
        x >>>= 8;
      }
    }
  }
  return h >>> 0;
}
