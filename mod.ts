/**
 * sparsekd: offline knowledge distillation of language models on WebGPU.
 *
 * A teacher's logits are reduced on the GPU to their top-k per token position (plus the full-vocabulary
 * logsumexp), stored as MessagePack shards, and a student is trained later from those shards.
 *
 * @example
 * ```ts
 * import { createRuntime, topK } from "./mod.ts";
 * const rt = await createRuntime();
 * const { indices, values, logsumexp } = await topK(rt, new Float32Array([1, 3, 2, 0]), 1, 4, 2);
 * ```
 * @module
 */
export { createRuntime, gpuRuntime, loadShader } from "./src/gpu/runtime.ts";
export type { AdapterSummary, PipelineOptions, Runtime, RuntimeOptions } from "./src/gpu/runtime.ts";
export { readBack } from "./src/gpu/readback.ts";
export type { ReadRegion } from "./src/gpu/readback.ts";
export { runMain, SparsekdError } from "./src/cli/errors.ts";
