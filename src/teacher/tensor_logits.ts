/**
 * Hands a tfjs logits tensor to the pipeline as {@linkcode TeacherLogits}: on WebGPU the tensor's own
 * GPUBuffer (no copy, no read-back; released by disposing the tensor), otherwise its data in memory; and the
 * dense teacher over a tfjs model that the builtin and tfjs teachers share.
 * @module
 */
import type * as tf from "../deps/tfjs_core.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { tensorGpuBuffer, tfjsGpuBackend } from "../gpu/tfjs_backend.ts";
import { SparsekdError } from "../errors.ts";
import type { Teacher, TeacherLogits } from "./teacher.ts";

/**
 * Wraps a `[rows, V]` float32 logits tensor; the caller gives up the tensor (it is disposed on `release()`
 * for the GPU form, at once for the CPU form).
 *
 * @example
 * ```ts
 * const logits = await tensorLogits(rt, model.logits(x));
 * ```
 */
export async function tensorLogits(rt: Runtime, y: tf.Tensor): Promise<TeacherLogits> {
  const backend = rt.device ? tfjsGpuBackend(rt.device) : null;
  if (backend) {
    const buffer = tensorGpuBuffer(backend, y);
    let released = false;
    return {
      kind: "gpu",
      buffer,
      release() {
        if (!released) y.dispose();
        released = true;
      },
    };
  }
  const array = (await y.data()) as Float32Array;
  y.dispose();
  return { kind: "cpu", array };
}

/** What {@linkcode tensorTeacher} needs of a dense tfjs teacher beyond the shared checks. */
export interface TensorTeacherParts {
  /** Names the teacher in messages, e.g. `"demo teacher"`. */
  name: string;
  vocabSize: number;
  seqLen?: number;
  fingerprint: string;
  description: string;
  /** Refuses a sequence length the model cannot take (throws a `SparsekdError`). */
  checkSeqLen(L: number): void;
  /** Runs `count` sequences of `L` checked token ids; resolves to `[count*L, vocabSize]` float32 logits. */
  logits(tokens: Uint32Array, count: number, L: number): Promise<tf.Tensor2D>;
  /** Frees the model (called once). */
  dispose(): void;
}

/**
 * A dense {@linkcode Teacher} over a tfjs model: checks the batch (use after dispose, token count, token ids
 * below the vocabulary size), runs `parts.logits` and hands the result on as {@linkcode TeacherLogits}.
 *
 * @example
 * ```ts
 * const teacher = tensorTeacher(rt, { name: "demo teacher", vocabSize, fingerprint, description,
 *   checkSeqLen: () => {}, logits: (t, n, L) => run(t, n, L), dispose: () => model.dispose() });
 * ```
 */
export function tensorTeacher(rt: Runtime, parts: TensorTeacherParts): Teacher {
  const { name, vocabSize } = parts;
  let disposed = false;
  const teacher: Teacher = {
    kind: "dense",
    vocabSize,
    seqLen: parts.seqLen,
    fingerprint: parts.fingerprint,
    description: parts.description,
    async forwardTensor(tokens: Uint32Array, start: number, count: number, L: number): Promise<tf.Tensor2D> {
      if (disposed) throw new Error(`${name} used after dispose()`);
      parts.checkSeqLen(L);
      if (tokens.length !== count * L) {
        throw new RangeError(`${name}: ${tokens.length} tokens for ${count}×${L}`);
      }
      for (let i = 0; i < tokens.length; i++) {
        if (tokens[i] >= vocabSize) {
          throw new SparsekdError(
            `token id ${tokens[i]} at sequence ${start + Math.floor(i / L)}, position ${
              i % L
            } is ≥ the ${name}'s vocabulary size ${vocabSize}`,
          );
        }
      }
      return await parts.logits(tokens, count, L);
    },
    async forward(tokens: Uint32Array, start: number, count: number, L: number): Promise<TeacherLogits> {
      return await tensorLogits(rt, await teacher.forwardTensor!(tokens, start, count, L));
    },
    dispose() {
      if (!disposed) parts.dispose();
      disposed = true;
    },
  };
  return teacher;
}
