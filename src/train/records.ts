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
  /** L logsumexp values of the teacher at the training temperature (mode `tail` only). */
  lse?: Float32Array;
}

/**
 * The loss: `ce` (hard labels alone), a sparse-KD mode from the shards (`topk`, `renorm`, `tail`), or `full`:
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
