/**
 * tfjs on the runtime's GPUDevice: registers tfjs-backend-webgpu on the same device as our own kernels, so
 * tensors and our GPU buffers can be exchanged without a round trip through the CPU. Importing this module
 * also registers tfjs's gradients, so `tf.variableGrads` works with tfjs-core ops.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import "../deps/tfjs_backend_cpu.ts";
// tfjs-core's node bundle registers no gradients (they live in ESM files Deno cannot load extensionless);
// the tfjs-layers bundle registers all of tfjs-core's gradients into tfjs's shared global registry.
import "../deps/tfjs_layers.ts";
import { WebGPUBackend } from "../deps/tfjs_backend_webgpu.ts";
import type { Runtime } from "./runtime.ts";

// tfjs's production mode: no "running TensorFlow.js in Node.js" banner on stderr (tfjs-backend-cpu prints it
// through backend_util.warn, which PROD silences), so a task's first stderr line stays the adapter line.
tf.env().set("PROD", true);

/** The GPU side of a tfjs tensor on the `webgpu` backend, as the backend keeps it. */
interface TensorDataLike {
  resource?: GPUBuffer | GPUTexture | null;
}

/**
 * Makes tfjs run on the runtime: on a GPU runtime it (re)registers the `webgpu` backend around `rt.device`
 * and selects it; on a CPU runtime it selects the `cpu` backend. Calling it again with the same runtime is
 * cheap. Returns the tfjs-core namespace, for convenience.
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const tf = await useTfjsOnRuntime(rt);
 * console.log(tf.getBackend()); // "webgpu" (or "cpu")
 * ```
 */
export async function useTfjsOnRuntime(rt: Runtime): Promise<typeof tf> {
  const device = rt.device;
  if (!device) {
    await tf.setBackend("cpu");
    await tf.ready();
    return tf;
  }
  const current = tf.findBackend("webgpu");
  if (!(current instanceof WebGPUBackend && current.device === device)) {
    if (tf.engine().registryFactory["webgpu"]) tf.removeBackend("webgpu");
    tf.registerBackend("webgpu", () => new WebGPUBackend(device), 3);
  }
  if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs could not initialize the webgpu backend");
  await tf.ready();
  return tf;
}

/**
 * The active tfjs backend if it is a `webgpu` backend running on `device`, else null.
 *
 * @example
 * ```ts
 * const backend = tfjsGpuBackend(rt.device!);
 * if (backend) console.log("tfjs shares our device");
 * ```
 */
export function tfjsGpuBackend(device: GPUDevice): WebGPUBackend | null {
  const b = tf.backend();
  return b instanceof WebGPUBackend && b.device === device ? b : null;
}

/**
 * The GPUBuffer that holds a tensor on the `webgpu` backend, without copying. Pending tfjs work is
 * submitted first, so that commands queued afterwards on the same device see the tensor's contents. The
 * buffer belongs to tfjs: use it only while the tensor is alive, and never write to it.
 *
 * @example
 * ```ts
 * const x = tf.randomNormal([4, 8]);
 * const buffer = tensorGpuBuffer(backend, x); // read it from our own kernels
 * ```
 */
export function tensorGpuBuffer(backend: WebGPUBackend, t: tf.TensorInfo): GPUBuffer {
  backend.uploadToGPU(t.dataId);
  const data = backend.tensorMap.get(t.dataId) as TensorDataLike;
  const resource = data.resource;
  if (!(resource instanceof GPUBuffer)) {
    throw new Error("tensor is not held in a GPUBuffer on the webgpu backend");
  }
  flushTfjs(backend);
  return resource;
}

/**
 * Allocates an uninitialized float32 or int32 tensor from the backend's buffer pool and returns it with its
 * GPUBuffer, which our kernels may write (commands submitted afterwards by tfjs see the contents). The
 * tensor is an ordinary tfjs tensor: dispose it as usual and its buffer goes back to the pool.
 *
 * @example
 * ```ts
 * const { tensor, buffer } = emptyGpuTensor(backend, [rows, vocab], "float32");
 * // ... dispatch a kernel writing `buffer` ...
 * ```
 */
export function emptyGpuTensor(
  backend: WebGPUBackend,
  shape: number[],
  dtype: "float32" | "int32",
): { tensor: tf.Tensor; buffer: GPUBuffer } {
  const info = backend.makeTensorInfo(shape, dtype);
  backend.uploadToGPU(info.dataId);
  const resource = (backend.tensorMap.get(info.dataId) as TensorDataLike).resource;
  if (!(resource instanceof GPUBuffer)) throw new Error("the webgpu backend did not allocate a GPUBuffer");
  const tensor = tf.engine().makeTensorFromTensorInfo(info, backend);
  return { tensor, buffer: resource };
}

/**
 * Submits the tfjs backend's pending commands, so that work we submit afterwards on the same queue is
 * ordered after it.
 *
 * @example
 * ```ts
 * flushTfjs(backend);
 * device.queue.submit([myCommands]);
 * ```
 */
export function flushTfjs(backend: WebGPUBackend): void {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
}
