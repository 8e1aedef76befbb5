/**
 * The demo's final evaluation on the corpus's held-out split (which save-topk never sees): the student's
 * perplexity, KL(teacher ‖ student) over the FULL vocabulary with the teacher run in the same process,
 * top-1 agreement with the teacher and the expected calibration error of the student's top-1 prediction.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import type { Gpt } from "../model/gpt.ts";
import type { TokenSource } from "../data/source.ts";
import { CalibrationAccumulator } from "../report/calibration.ts";
import type { FinalMetrics } from "../report/types.ts";

/** Options of {@linkcode finalEvaluation}. */
export interface FinalEvalOptions {
  /** Sequences per forward pass (default 8). */
  batchSize?: number;
  /** Calibration bins (default 15). */
  bins?: number;
}

/**
 * Evaluates `student` against `teacher` on every sequence of `heldout`. Next-token positions only (the
 * last position of a sequence has no target and is skipped for every metric). Sums stay on the GPU until
 * one read-back per batch of the calibration data.
 *
 * @example
 * ```ts
 * const m = await finalEvaluation(student, teacher, await demoSource({ split: "heldout", seqLen: 64 }));
 * console.log(m.ppl, m.kl, m.top1, m.ece);
 * ```
 */
export async function finalEvaluation(
  student: Gpt,
  teacher: Gpt,
  heldout: TokenSource,
  options: FinalEvalOptions = {},
): Promise<FinalMetrics> {
  const B = options.batchSize ?? 8;
  const L = heldout.seqLen;
  const calib = new CalibrationAccumulator(options.bins ?? 15);
  let ceSum = 0, klSum = 0, agree = 0, n = 0;
  for (let s = 0; s < heldout.sequences; s += B) {
    const count = Math.min(B, heldout.sequences - s);
    const ids = await heldout.read(s, count);
    const rows = count * (L - 1);
    // Rows b*L+t for t < L-1 predict ids[b*L+t+1].
    const keep = new Int32Array(rows), targets = new Int32Array(rows);
    for (let b = 0, r = 0; b < count; b++) {
      for (let t = 0; t < L - 1; t++, r++) {
        keep[r] = b * L + t;
        targets[r] = ids[b * L + t + 1];
      }
    }
    const out = tf.tidy(() => {
      const x = tf.tensor2d(new Int32Array(ids.buffer, ids.byteOffset, ids.length), [count, L], "int32");
      const rowsIdx = tf.tensor1d(keep, "int32");
      const sLog = tf.logSoftmax(tf.gather(student.logits(x), rowsIdx));
      const tLog = tf.logSoftmax(tf.gather(teacher.logits(x), rowsIdx));
      const y = tf.oneHot(tf.tensor1d(targets, "int32"), sLog.shape[1]);
      const ce = tf.neg(tf.sum(tf.mul(sLog, y)));
      const kl = tf.sum(tf.mul(tf.exp(tLog), tf.sub(tLog, sLog)));
      const sTop = tf.argMax(sLog, 1);
      const same = tf.sum(tf.cast(tf.equal(sTop, tf.argMax(tLog, 1)), "float32"));
      const conf = tf.exp(tf.max(sLog, 1));
      const correct = tf.cast(tf.equal(sTop, tf.tensor1d(targets, "int32")), "float32");
      return { sums: tf.stack([ce, kl, same]), conf, correct };
    });
    const [sums, conf, correct] = await Promise.all([out.sums.data(), out.conf.data(), out.correct.data()]);
    tf.dispose([out.sums, out.conf, out.correct]);
    ceSum += sums[0];
    klSum += sums[1];
    agree += sums[2];
    n += rows;
    calib.add(conf, correct);
  }
  const ce = ceSum / n;
  return {
    ce,
    ppl: Math.exp(ce),
    kl: klSum / n,
    top1: agree / n,
    ece: calib.ece(),
    reliability: calib.binStats(),
  };
}
