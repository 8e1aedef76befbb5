/**
 * The training data stream: records in storage order, shuffled within windows with a seed, grouped into
 * batches, prefetched while the GPU computes. The stream's position (records consumed) is all a checkpoint
 * needs to continue it exactly: window w of epoch e is always permuted with the seed (seed, e, w).
 * @module
 */
import type { TokenSource } from "../data/source.ts";
import { createRng, hashSeed } from "../model/rng.ts";

/** Records that can be streamed in storage order from any index. */
export interface RecordSource<R> {
  /** Number of records (sequences). */
  readonly sequences: number;
  /** Streams records `from`, `from+1`, … to the end, in storage order. */
  stream(from: number): AsyncIterable<R>;
}

/**
 * A {@linkcode RecordSource} over a token source: each record is one sequence's token ids.
 *
 * @example
 * ```ts
 * const records = tokenRecords(await demoSource({ seqLen: 64 }));
 * ```
 */
export function tokenRecords(source: TokenSource, chunk = 64): RecordSource<Uint32Array> {
  return {
    sequences: source.sequences,
    async *stream(from) {
      for (let s = from; s < source.sequences; s += chunk) {
        const n = Math.min(chunk, source.sequences - s);
        const ids = await source.read(s, n);
        for (let i = 0; i < n; i++) yield ids.subarray(i * source.seqLen, (i + 1) * source.seqLen);
      }
    },
  };
}

/**
 * The permutation of window `w` of epoch `e` (Fisher–Yates with the seed (seed, e, w)).
 *
 * @example
 * ```ts
 * const order = windowPermutation(7, 0, 3, 256);
 * ```
 */
export function windowPermutation(seed: number, epoch: number, window: number, size: number): Uint32Array {
  const rng = createRng(hashSeed(seed, epoch, window));
  const p = new Uint32Array(size);
  for (let i = 0; i < size; i++) p[i] = i;
  for (let i = size - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Streams records forever (epoch after epoch), shuffled within windows of `window` records, starting at
 * stream position `start` (records already consumed). Memory: one window.
 *
 * @example
 * ```ts
 * for await (const r of shuffledRecords(records, { window: 1024, seed: 1, start: 0 })) use(r);
 * ```
 */
export async function* shuffledRecords<R>(
  source: RecordSource<R>,
  options: { window: number; seed: number; start: number },
): AsyncGenerator<R> {
  const N = source.sequences;
  if (N === 0) throw new Error("the data has no sequences");
  const W = Math.max(1, Math.min(options.window, N));
  let epoch = Math.floor(options.start / N);
  let skip = options.start % N;
  while (true) {
    const firstWindow = Math.floor(skip / W);
    let w = firstWindow;
    let skipInWindow = skip - firstWindow * W;
    let buf: R[] = [];
    const flush = function* () {
      const perm = windowPermutation(options.seed, epoch, w, buf.length);
      for (let i = skipInWindow; i < buf.length; i++) yield buf[perm[i]];
      skipInWindow = 0;
      buf = [];
      w++;
    };
    for await (const r of source.stream(firstWindow * W)) {
      buf.push(r);
      if (buf.length === W) yield* flush();
    }
    if (buf.length > 0) yield* flush();
    epoch++;
    skip = 0;
  }
}

/**
 * Groups an endless record stream into arrays of `size`, keeping up to `depth` batches ready ahead of the
 * consumer (so reading and decoding overlap GPU work).
 *
 * @example
 * ```ts
 * const next = prefetchBatches(shuffledRecords(records, opts), 16, 2);
 * const batch = await next();
 * ```
 */
export function prefetchBatches<R>(records: AsyncIterator<R>, size: number, depth = 2): () => Promise<R[]> {
  const queue: Promise<R[]>[] = [];
  let chain: Promise<unknown> = Promise.resolve();
  const fill = () => {
    while (queue.length < depth) {
      const p = chain.then(async () => {
        const batch: R[] = [];
        while (batch.length < size) {
          const r = await records.next();
          if (r.done) throw new Error("the record stream ended");
          batch.push(r.value);
        }
        return batch;
      });
      p.catch(() => {});
      chain = p;
      queue.push(p);
    }
  };
  fill();
  return () => {
    const p = queue.shift()!;
    fill();
    return p;
  };
}
