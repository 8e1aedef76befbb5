/**
 * The WebGPU runtime (device, adapter, pipelines, read-back) and the tfjs WebGPU backend on the same device.
 *
 * @example The CPU path: no device, kernels run their reference implementations
 * ```ts
 * import { createRuntime } from "./mod.ts";
 *
 * const rt = await createRuntime({ cpu: true, quiet: true });
 * if (rt.device !== null) throw new Error("the CPU path has no device");
 * ```
 * @module
 */
export { createRuntime, gpuRuntime, loadShader } from "./runtime.ts";
export type { AdapterSummary, PipelineOptions, Runtime, RuntimeOptions } from "./runtime.ts";
export { readBack } from "./readback.ts";
export type { ReadRegion } from "./readback.ts";
export { useTfjsOnRuntime } from "./tfjs_backend.ts";
