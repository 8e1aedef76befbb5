import assert from "node:assert/strict";
import { prefetchBatches, type RecordSource, shuffledRecords, tokenRecords } from "../src/train/batches.ts";
import { withSeed } from "./_rng.ts";
import { patternSource } from "./_train_fixtures.ts";

const indexSource = (n: number): RecordSource<number> => ({
  sequences: n,
  async *stream(from) {
    for (let i = from; i < n; i++) yield i;
  },
});

async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) out.push((await it.next()).value as T);
  return out;
}

Deno.test("each epoch visits every record once, shuffled only within windows", async () => {
  await withSeed("train_batches_test", async (rng, seed) => {
    const n = 10 + rng.int(90), window = 1 + rng.int(20);
    const it = shuffledRecords(indexSource(n), { window, seed, start: 0 });
    for (let epoch = 0; epoch < 2; epoch++) {
      const got = await take(it, n);
      assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
      got.forEach((r, pos) =>
        assert.equal(Math.floor(r / window), Math.floor(pos / window), "stays in its window")
      );
    }
    await it.return(undefined);
  });
});

Deno.test("the stream started at a position continues exactly like the uninterrupted stream", async () => {
  await withSeed("train_batches_test", async (rng, seed) => {
    const n = 5 + rng.int(60), window = 1 + rng.int(16), start = rng.int(3 * n);
    const whole = await take(shuffledRecords(indexSource(n), { window, seed, start: 0 }), start + 2 * n);
    const resumed = await take(shuffledRecords(indexSource(n), { window, seed, start }), 2 * n);
    assert.deepEqual(resumed, whole.slice(start));
  });
});

Deno.test("batches of token sequences are grouped in stream order with prefetch", async () => {
  await withSeed("train_batches_test", async (rng, seed) => {
    const src = patternSource(seed, { sequences: 20, seqLen: 6, vocab: 50 });
    const batch = 1 + rng.int(7);
    const flat = await take(shuffledRecords(tokenRecords(src, 3), { window: 8, seed, start: 0 }), 3 * batch);
    const next = prefetchBatches(
      shuffledRecords(tokenRecords(src, 3), { window: 8, seed, start: 0 }),
      batch,
      2,
    );
    const batches = [await next(), await next(), await next()];
    assert.deepEqual(batches.flat().map((t) => [...t]), flat.map((t) => [...t]));
    assert.ok(batches.every((b) => b.length === batch));
  });
});
