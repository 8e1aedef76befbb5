/**
 * The record a training step and an evaluation consume, and the training objectives. A module of its own so
 * that the trainer and the evaluation both depend on it, not on each other.
 * @module
 */
import type { LossModeName } from "../loss/modes.ts";

/** One training sequence: its tokens and, for distillation, the teacher's sparse logits. */
export interface TrainRecord {
  /** L token ids. */
  tokens: Uint32Array;
  /** L×K teacher top-k ids (KD only). */
  idx?: Uint16Array | Uint32Array;
  /** L×K raw teacher logits (KD only). */
  val?: Float32Array;
  /** L logsumexp values of the teacher at the training temperature (modes `tail` and `sampled`). */
  lse?: Float32Array;
  /** Mode `sampled`: per position, how many distinct ids its draws gave (see `ShardRecord.sampleLen`). */
  sampleLen?: Uint16Array;
  /** Mode `sampled`: the distinct sampled ids, position after position. */
  sampleIdx?: Uint16Array | Uint32Array;
  /** Mode `sampled`: the draw count of each sampled id (N per position in all). */
  sampleHits?: Uint16Array;
  /** Mode `sampled`: the raw teacher logits of the sampled ids. */
  sampleVal?: Float32Array;
  /** Mode `sampled`: L logsumexp values of the teacher at the sampling temperature t. */
  lseSample?: Float32Array;
}

/**
 * The loss: `ce` (hard labels alone), a sparse-KD mode from the shards (`topk`, `renorm`, `tail`, `sampled`),
 * or `full`:
 * online KD against the full logits of a teacher run in the same process (see `src/loss/modes.ts`).
 */
export type TrainMode = "ce" | LossModeName;

/**
 * The teacher side of a batch of KD records, as the sparse-KD loss op wants it (`needLse`: with the
 * teacher's logsumexp per row, for mode `tail`).
 *
 * @example
 * ```ts
 * const teacher = kdBatch(batch, 64, 128, false);
 * ```
 */
export function kdBatch(batch: TrainRecord[], k: number, L: number, needLse: boolean) {
  const rows = batch.length * L;
  const indices = new Uint32Array(rows * k);
  const values = new Float32Array(rows * k);
  const logsumexp = needLse ? new Float32Array(rows) : undefined;
  batch.forEach((r, i) => {
    if (!r.idx || !r.val) throw new Error("KD training needs records with teacher top-k");
    indices.set(r.idx, i * L * k);
    values.set(r.val, i * L * k);
    if (logsumexp) {
      if (!r.lse) throw new Error("mode tail needs the teacher's logsumexp");
      logsumexp.set(r.lse, i * L);
    }
  });
  return { indices, values, k, logsumexp };
}

/**
 * The teacher side of a batch of records with sampled targets (mode `sampled`), as the sparse-KD loss op
 * wants it: each position's distinct sampled ids padded to the batch's largest count with unused ids of
 * draw count 0, their logits and counts, the logsumexp at the training temperature and, when the sampling
 * temperature `sampleTemperature` differs from it, at that one.
 *
 * @example
 * ```ts
 * const teacher = sampledBatch(batch, 128, 1);
 * ```
 */
export function sampledBatch(batch: TrainRecord[], L: number, sampleTemperature: number) {
  let k = 1;
  for (const r of batch) {
    if (!r.sampleLen || !r.sampleIdx || !r.sampleHits || !r.sampleVal || !r.lse || !r.lseSample) {
      throw new Error("mode sampled needs records with sampled targets and both logsumexps");
    }
    for (const n of r.sampleLen) k = Math.max(k, n);
  }
  const rows = batch.length * L;
  const indices = new Uint32Array(rows * k);
  const values = new Float32Array(rows * k);
  const hits = new Uint16Array(rows * k);
  const logsumexp = new Float32Array(rows);
  const sampleLogsumexp = new Float32Array(rows);
  batch.forEach((r, b) => {
    logsumexp.set(r.lse!, b * L);
    sampleLogsumexp.set(r.lseSample!, b * L);
    let o = 0;
    for (let t = 0; t < L; t++) {
      const n = r.sampleLen![t], row = (b * L + t) * k;
      indices.set(r.sampleIdx!.subarray(o, o + n), row);
      values.set(r.sampleVal!.subarray(o, o + n), row);
      hits.set(r.sampleHits!.subarray(o, o + n), row);
      // Padding: the smallest ids not drawn (the drawn ones are ascending), with count 0.
      let next = 0, j = 0;
      for (let p = n; p < k; p++) {
        while (j < n && r.sampleIdx![o + j] <= next) {
          if (r.sampleIdx![o + j] === next) next++;
          j++;
        }
        indices[row + p] = next++;
      }
      o += n;
    }
  });
  return { indices, values, k, hits, logsumexp, sampleLogsumexp, sampleTemperature };
}
