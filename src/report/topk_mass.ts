/**
 * The teacher's probability mass in its top-K entries, computed from the shards of a save-topk OUT with the
 * stored full-vocabulary logsumexp (no teacher needed).
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { readRunJson } from "../format/run_json.ts";
import { readShards, type ReadShardsOptions } from "../format/shard_reader.ts";
import type { ObjectStore } from "../store/store.ts";

/**
 * The teacher's mean probability mass (at T = 1) in its top-K entries, for each K of `ks` (ascending
 * integers in [1, k of the run]), over every position of the shards of `store`: exp(lse of the first K
 * stored logits − the stored full logsumexp), streamed shard by shard (memory: one shard's read buffer).
 * Every value is NaN when the run stored no logsumexp at T = 1 (the shards are read all the same). `options` go to
 * {@linkcode readShards} (for example `skipMissing`, or `onShard` to count bytes while reading).
 *
 * @example
 * ```ts
 * import { openLocalStore } from "../store/local.ts";
 * const mass = await topKMass(await openLocalStore("runs/demo/topk"), [8, 64]); // e.g. [0.31, 0.55]
 * ```
 */
export async function topKMass(
  store: ObjectStore,
  ks: number[],
  options: ReadShardsOptions = {},
): Promise<number[]> {
  const run = await readRunJson(store);
  const K = run.k;
  ks.forEach((k, i) => {
    if (!Number.isInteger(k) || k < 1 || k > K || (i > 0 && k <= ks[i - 1])) {
      throw new SparsekdError(
        `ks must be ascending integers from 1 to the run's k (${K}) (got ${JSON.stringify(ks)})`,
        { option: "ks" },
      );
    }
  });
  const t = run.lseTemperatures.indexOf(1);
  const T = run.lseTemperatures.length;
  const sums = ks.map(() => 0);
  let positions = 0;
  for await (const r of readShards(store, options)) {
    if (t < 0) continue; // the shards are still read (and checked, and counted by onShard)
    for (let p = 0; p < run.seqLen; p++) {
      const lse = r.lse[p * T + t];
      let mass = 0;
      for (let j = 0, next = 0; j < K && next < ks.length; j++) {
        mass += Math.exp(r.val[p * K + j] - lse);
        while (next < ks.length && ks[next] === j + 1) sums[next++] += Math.min(1, mass);
      }
      positions++;
    }
  }
  return sums.map((x) => (t < 0 ? NaN : x / Math.max(1, positions)));
}
