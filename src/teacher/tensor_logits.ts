/**
 * Hands a tfjs logits tensor to the pipeline as {@linkcode TeacherLogits}: on WebGPU the tensor's own
 * GPUBuffer (no copy, no read-back; released by disposing the tensor), otherwise its data in memory.
 * @module
 */
import type * as tf from "../deps/tfjs_core.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { tensorGpuBuffer, tfjsGpuBackend } from "../gpu/tfjs_backend.ts";
import type { TeacherLogits } from "./teacher.ts";

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
