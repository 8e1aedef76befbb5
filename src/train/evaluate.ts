/**
 * Held-out evaluation: cross-entropy and perplexity on the next tokens and, when the records carry the
 * teacher's top-k, the KL divergence from the teacher's sparse distribution to the student and the top-1
 * agreement. Sums stay on the GPU until the end: one read-back per evaluation.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import type { Gpt } from "../model/gpt.ts";
import { nextTokenTargets } from "./ce_loss.ts";
import type { TrainRecord } from "./records.ts";

/** Metrics of one evaluation. */
export interface EvalResult {
  /** Mean cross-entropy (nats per token) of the next tokens. */
  ce: number;
  /** exp(ce). */
  perplexity: number;
  /** Mean KL(p_teacher ‖ q_student) over positions, with p the teacher's top-k renormalized at T (null without teacher data). */
  kl: number | null;
  /** Fraction of positions where the student's argmax is the teacher's top-1 (null without teacher data). */
  top1: number | null;
  /** Positions scored for cross-entropy. */
  tokens: number;
}

/**
 * Evaluates `model` on `records` in batches of `batchSize`.
 *
 * @example
 * ```ts
 * const { ce, perplexity } = await evaluate(model, heldout, { batchSize: 16 });
 * ```
 */
export async function evaluate(
  model: Gpt,
  records: TrainRecord[],
  options: { batchSize: number; temperature?: number; boundaryToken?: number },
): Promise<EvalResult> {
  const L = model.config.seqLen;
  const T = options.temperature ?? 1;
  const withTeacher = records.every((r) => r.idx && r.val);
  const sums: tf.Tensor[] = [];
  let tokensScored = 0;
  let positions = 0;
  for (let s = 0; s < records.length; s += options.batchSize) {
    const batch = records.slice(s, s + options.batchSize);
    const B = batch.length;
    const tokens = new Uint32Array(B * L);
    batch.forEach((r, i) => tokens.set(r.tokens, i * L));
    const { targets, mask } = nextTokenTargets(tokens, B, L, options.boundaryToken);
    // KL and top-1 score every position but those whose target is in the next document.
    const docMask = new Float32Array(B * L).fill(1);
    for (let i = 0; i < tokens.length; i++) if (tokens[i] === options.boundaryToken) docMask[i] = 0;
    for (let i = 0; i < mask.length; i++) tokensScored += mask[i];
    for (let i = 0; i < docMask.length; i++) positions += docMask[i];
    sums.push(tf.tidy(() => {
      const logits = model.logits(tf.tensor2d(new Int32Array(tokens.buffer), [B, L], "int32"));
      const lse = tf.logSumExp(logits, 1);
      const picked = tf.sum(tf.mul(logits, tf.oneHot(tf.tensor1d(targets, "int32"), logits.shape[1])), 1);
      const ce = tf.sum(tf.mul(tf.sub(lse, picked), tf.tensor1d(mask)));
      if (!withTeacher) return tf.stack([ce, tf.scalar(0), tf.scalar(0)]);
      const k = batch[0].idx!.length / L;
      const idx = new Int32Array(B * L * k);
      const val = new Float32Array(B * L * k);
      batch.forEach((r, i) => {
        idx.set(r.idx!, i * L * k);
        val.set(r.val!, i * L * k);
      });
      const tIdx = tf.tensor2d(idx, [B * L, k], "int32");
      const logP = tf.logSoftmax(tf.div(tf.tensor2d(val, [B * L, k]), T));
      const sLogits = tf.div(logits, T);
      const logQ = tf.sub(tf.gather(sLogits, tIdx, 1, 1), tf.logSumExp(sLogits, 1, true));
      // Without document boundaries every position counts: the sums are those of the unmasked formula.
      const masked = (perRow: tf.Tensor) =>
        options.boundaryToken === undefined ? perRow : tf.mul(perRow, tf.tensor1d(docMask));
      const kl = options.boundaryToken === undefined
        ? tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)))
        : tf.sum(masked(tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1)));
      const agree = tf.sum(
        masked(
          tf.cast(
            tf.equal(tf.argMax(logits, 1), tf.squeeze(tf.slice(tIdx, [0, 0], [B * L, 1]), [1])),
            "float32",
          ),
        ),
      );
      return tf.stack([ce, kl, agree]);
    }));
  }
  const total = tf.tidy(() => tf.sum(tf.stack(sums), 0));
  const [ce, kl, agree] = (await total.data()) as Float32Array;
  tf.dispose([...sums, total]);
  const meanCe = ce / Math.max(1, tokensScored);
  return {
    ce: meanCe,
    perplexity: Math.exp(meanCe),
    kl: withTeacher ? kl / positions : null,
    top1: withTeacher ? agree / positions : null,
    tokens: tokensScored,
  };
}
