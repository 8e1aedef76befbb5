// The one seeded generator and the one `withSeed` of the tests (a file without `_test` so it is not run
// itself). The generator is the library's own (mulberry32, `src/model/rng.ts`); a failing test prints its
// seed, and `SPARSEKD_SEED=<seed>` replays it.
import { createRng, type Rng } from "../src/model/rng.ts";

/** The tests' generator: the library's {@linkcode Rng} plus its seed and raw 32-bit draws. */
export interface TestRng extends Rng {
  /** The seed the generator was made from. */
  readonly seed: number;
  /** A uniform unsigned 32-bit integer. */
  u32(): number;
}

/**
 * A fresh seed for a test run, or `SPARSEKD_SEED` when it is set (to replay a failure).
 *
 * @example
 * ```ts
 * const seed = freshSeed();
 * ```
 */
export function freshSeed(): number {
  const fixed = Deno.env.get("SPARSEKD_SEED");
  if (fixed) return Number(fixed) >>> 0;
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * The tests' generator for `seed` (the same numbers for the same seed).
 *
 * @example
 * ```ts
 * const rng = makeRng(42);
 * const x = rng.uniform();
 * ```
 */
export function makeRng(seed: number = freshSeed()): TestRng {
  const rng = createRng(seed);
  return { ...rng, seed, u32: () => Math.floor(rng.uniform() * 4294967296) >>> 0 };
}

/**
 * Runs `body` with a generator on a fresh seed (see {@linkcode freshSeed}) and prints the seed, with `name`,
 * when it throws.
 *
 * @example
 * ```ts
 * Deno.test("x", () => withSeed("x", (rng) => { rng.uniform(); }));
 * ```
 */
export async function withSeed(
  name: string,
  body: (rng: TestRng, seed: number) => void | Promise<void>,
): Promise<void> {
  const rng = makeRng();
  try {
    await body(rng, rng.seed);
  } catch (err) {
    console.error(`${name}: failed with seed ${rng.seed} (replay with SPARSEKD_SEED=${rng.seed})`);
    throw err;
  }
}
