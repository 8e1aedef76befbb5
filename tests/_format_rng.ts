// Shared seeded random numbers for the format tests (a file without `_test` so it is not run itself).

/**
 * A seeded PRNG (mulberry32) whose seed is printed when a test fails.
 *
 * @example
 * ```ts
 * const rng = makeRng(42);
 * rng.int(10);
 * ```
 */
export function makeRng(
  seed = (Math.random() * 2 ** 32) >>> 0,
): { seed: number; u32(): number; float(): number; int(n: number): number } {
  let a = seed >>> 0;
  const u32 = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return { seed, u32, float: () => u32() / 2 ** 32, int: (n: number) => Math.floor((u32() / 2 ** 32) * n) };
}

/**
 * Runs `body` with a fresh seed, printing the seed when it throws.
 *
 * @example
 * ```ts
 * Deno.test("x", () => withSeed("x", (rng) => { rng.u32(); }));
 * ```
 */
export async function withSeed(
  name: string,
  body: (rng: ReturnType<typeof makeRng>) => void | Promise<void>,
) {
  const rng = makeRng();
  try {
    await body(rng);
  } catch (err) {
    console.error(`${name}: failed with seed ${rng.seed}`);
    throw err;
  }
}
