/**
 * Cross-entropy against hard labels (next tokens), with tfjs ops so that tfjs autograd differentiates it.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";

/**
 * Mean cross-entropy of `logits` `[N, V]` against `targets` `[N]` (int32) over the rows where `mask` `[N]` is 1
 * (the last position of a sequence has no next token). Returns a scalar.
 *
 * @example
 * ```ts
 * const loss = crossEntropy(model.logits(tokens), targets, mask);
 * ```
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const V = logits.shape[1];
    const lse = tf.logSumExp(logits, 1);
    const picked = tf.sum(tf.mul(logits, tf.oneHot(targets, V)), 1);
    const perRow = tf.mul(tf.sub(lse, picked), mask);
    return tf.div(tf.sum(perRow), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}

/**
 * Next-token inputs of a batch: for `count` sequences of `seqLen` tokens, the targets (token t+1 at
 * position t) and the mask (0 at each sequence's last position, and at each position whose token is
 * `boundaryToken` when given: its target is the first token of the next document).
 *
 * @example
 * ```ts
 * const { targets, mask } = nextTokenTargets(tokens, 8, 64);
 * const text = nextTokenTargets(tokens, 8, 64, 50256); // no target crosses an <|endoftext|>
 * ```
 */
export function nextTokenTargets(
  tokens: Uint32Array,
  count: number,
  seqLen: number,
  boundaryToken?: number,
): { targets: Int32Array; mask: Float32Array } {
  const targets = new Int32Array(count * seqLen);
  const mask = new Float32Array(count * seqLen);
  for (let b = 0; b < count; b++) {
    for (let t = 0; t + 1 < seqLen; t++) {
      targets[b * seqLen + t] = tokens[b * seqLen + t + 1];
      mask[b * seqLen + t] = tokens[b * seqLen + t] === boundaryToken ? 0 : 1;
    }
  }
  return { targets, mask };
}
