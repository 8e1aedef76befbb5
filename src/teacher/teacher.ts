/**
 * The teacher interface: token ids in, logits out (on the GPU where the teacher runs there).
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";

/** Logits of a batch: rows = count*seqLen, each of `vocabSize` float32, either on the GPU or in memory. */
export type TeacherLogits =
  | { kind: "gpu"; buffer: GPUBuffer; release(): void }
  | { kind: "cpu"; array: Float32Array };

/** A teacher model. */
export interface Teacher {
  /** Vocabulary size V of its logits. */
  readonly vocabSize: number;
  /** A hash of the weights (hex), stored in run.json. */
  readonly fingerprint: string;
  /** A short description for run.json's `teacher` entry, e.g. `builtin:demo`. */
  readonly description: string;
  /** Its fixed sequence length, when it has one (npy logits, a model with fixed positions). */
  readonly seqLen?: number;
  /**
   * Computes logits for `count` sequences of `seqLen` tokens that start at global sequence index `start`
   * (the npy teacher uses the index; models use the tokens).
   */
  forward(tokens: Uint32Array, start: number, count: number, seqLen: number): Promise<TeacherLogits>;
  /**
   * The same logits as a float32 tfjs tensor `[count·seqLen, V]` that the caller disposes. Only teachers that
   * run on tfjs have it (`builtin:demo`, `tfjs:`); online distillation (`train --online-teacher`) needs it.
   */
  forwardTensor?(tokens: Uint32Array, start: number, count: number, seqLen: number): Promise<tf.Tensor2D>;
  /** Frees what the teacher holds. */
  dispose(): void;
}
