/**
 * The kernels: top-k with logsumexp ({@linkcode topK}), sampled targets ({@linkcode sampleTokens}) and the
 * sparse-KD loss ({@linkcode sparseKdLoss}) in
 * WGSL, with the CPU reference implementations they are tested against.
 *
 * @example The kernel on a CPU runtime agrees with the reference
 * ```ts
 * import { topK, topKReference } from "./mod.ts";
 * import { createRuntime } from "../gpu/mod.ts";
 *
 * const rt = await createRuntime({ cpu: true, quiet: true });
 * const logits = new Float32Array([0, 5, 1, 4, 2, 3]);
 * const got = await topK(rt, logits, 2, 3, 2);
 * const want = topKReference(logits, 2, 3, 2);
 * if (got.indices.join() !== want.indices.join() || got.indices.join() !== "1,2,0,2") throw new Error("top-2");
 * ```
 * @module
 */
export { NonFiniteLogitsError, topK, topKFromBuffer, topKReference } from "./topk.ts";
export type { TopKOptions, TopKResult } from "./topk.ts";
export { chooseTopKKernel, topKSelected, topKSelectedFromBuffer } from "./topk_select.ts";
export type { TopKKernel, TopKKernelChoice, TopKSelectedOptions } from "./topk_select.ts";
export { sparseKdLoss } from "./sparse_kd.ts";
export type { SparseKdLossOptions } from "./sparse_kd.ts";
export { sparseKdLossReference, sparseKdLossReference64 } from "./sparse_kd_reference.ts";
export type {
  Divergence,
  SparseKdMode,
  SparseKdOptions,
  SparseKdResult,
  SparseKdTeacher,
} from "./sparse_kd_reference.ts";
export { sampleTokens, sampleTokensFromBuffer } from "./sample.ts";
export { MAX_SAMPLE, sampleReference } from "./sample_reference.ts";
export type { SampleOptions, SampleResult } from "./sample_reference.ts";
