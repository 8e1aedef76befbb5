/**
 * Online distillation against the teacher's full logits (`train --online-teacher`): the KL divergence over the
 * whole vocabulary, with tfjs ops so that tfjs autograd differentiates it. This is the upper reference of
 * the study (docs/losses.md, "online full KD"); the offline modes approximate it from the top-k shards.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";

/** Options of {@linkcode fullKdLoss}. */
export interface FullKdLossOptions {
  /** Temperature T > 0 of both distributions. */
  temperature: number;
  /** Weight α ∈ [0, 1] of the KD term; 1 − α weights the hard-label cross-entropy. */
  alpha: number;
  /** Next-token targets `[N]` (int32), needed when α < 1. */
  targets: tf.Tensor1D;
  /** 1 for the rows that count, 0 for the others `[N]` (float32). */
  mask: tf.Tensor1D;
}

/**
 * Mean over the unmasked rows of `α · T² · KL(softmax(z/T) ‖ softmax(s/T)) + (1 − α) · CE(s, y)`, with `s`
 * the student's logits `[N, V]` and `z` the teacher's `[N, V]` (a constant: compute it outside the gradient tape).
 * The same formula as the sparse modes' with S = the whole vocabulary, where `topk`, `renorm` and `tail`
 * all reduce to it (tests/train_full_kd_loss_test.ts checks that against the sparse reference).
 *
 * @example
 * ```ts
 * const loss = fullKdLoss(student.logits(x), teacherLogits, { temperature: 1, alpha: 1, targets, mask });
 * ```
 */
export function fullKdLoss(
  logits: tf.Tensor2D,
  teacherLogits: tf.Tensor2D,
  options: FullKdLossOptions,
): tf.Scalar {
  const { temperature: T, alpha, targets, mask } = options;
  return tf.tidy(() => {
    const logQ = tf.logSoftmax(tf.div(logits, T));
    const logP = tf.logSoftmax(tf.div(teacherLogits, T));
    const kd = tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1);
    let perRow = tf.mul(kd, alpha * T * T);
    if (alpha < 1) {
      const V = logits.shape[1];
      const ce = tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, tf.oneHot(targets, V)), 1));
      perRow = tf.add(perRow, tf.mul(ce, 1 - alpha));
    }
    return tf.div(tf.sum(tf.mul(perRow, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}
