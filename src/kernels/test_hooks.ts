/**
 * Test- and bench-only knobs of the GPU kernels, kept out of their public signatures. Production code never
 * sets them; tests and benches set a field, run, and reset it (`resetKernelHooks()`).
 * @module
 */

/** The knobs. Every field's default leaves the kernels as in production. */
export interface KernelHooks {
  /** Lowers the largest binding the kernels chunk by (bytes), to exercise chunking on small inputs. */
  maxBindingBytes: number;
  /**
   * Forces an over-limit dispatch: the kernels ignore the device's binding limit and bind whole buffers, so
   * that a test can check that the validation error surfaces as an error instead of stale output.
   */
  ignoreBindingLimit: boolean;
  /** Dispatches recorded per submission by the benches' submit-only entry points (default 1). */
  repeat: number;
  /** Compute-pass timestamp writes for the benches (GPU timing); null in production. */
  timestampWrites: GPUComputePassTimestampWrites | null;
  /**
   * Sparse-KD pipelines compiled while this is set read every row twice (the kernel before its one-read
   * path), for the benches' before/after comparison.
   */
  sparseKdTwoReads: boolean;
}

/** The current knobs (mutable; see {@linkcode resetKernelHooks}). */
export const kernelHooks: KernelHooks = {
  maxBindingBytes: Infinity,
  ignoreBindingLimit: false,
  repeat: 1,
  timestampWrites: null,
  sparseKdTwoReads: false,
};

/**
 * Restores every knob to its production default.
 *
 * @example
 * ```ts
 * kernelHooks.maxBindingBytes = 4096;
 * try { await sparseKdLoss(rt, s, rows, vocab, teacher, opts); } finally { resetKernelHooks(); }
 * ```
 */
export function resetKernelHooks(): void {
  kernelHooks.maxBindingBytes = Infinity;
  kernelHooks.ignoreBindingLimit = false;
  kernelHooks.repeat = 1;
  kernelHooks.timestampWrites = null;
  kernelHooks.sparseKdTwoReads = false;
}

/**
 * The largest binding size the kernels may use on `device` for elements of `align` bytes: the device's
 * `maxStorageBufferBindingSize` (lowered by the hook) rounded down to a multiple of `align`, so that a
 * binding rounded up to its element size never exceeds the limit (2^31 − 1 is a common limit).
 *
 * @example
 * ```ts
 * const budget = bindingBudget(device, 16); // for a vec4 binding
 * ```
 */
export function bindingBudget(device: GPUDevice, align: number): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, kernelHooks.maxBindingBytes);
  return Math.floor(limit / align) * align;
}

const scratchOwners = new WeakMap<GPUDevice, (() => GPUBuffer[])[]>();

/**
 * Called by a kernel module for the GPU buffers it reuses between calls on `device`, so that
 * {@linkcode poisonKernelScratch} can reach them.
 *
 * @example
 * ```ts
 * registerScratch(device, () => [outputBuffer]);
 * ```
 */
export function registerScratch(device: GPUDevice, buffers: () => GPUBuffer[]): void {
  let list = scratchOwners.get(device);
  if (!list) scratchOwners.set(device, list = []);
  list.push(buffers);
}

/**
 * Fills every reused GPU buffer of the kernels on `device` (top-k's input and outputs) with `word`, so that
 * a test can check that every result is written by the current call.
 *
 * @example
 * ```ts
 * poisonKernelScratch(rt.device!, 0x7fc00001); // NaN bits everywhere
 * ```
 */
export function poisonKernelScratch(device: GPUDevice, word: number): void {
  for (const get of scratchOwners.get(device) ?? []) {
    for (const b of get()) device.queue.writeBuffer(b, 0, new Uint32Array(b.size / 4).fill(word));
  }
}

/** A kernel's scratch buffers on one device: the input staging buffer and the output buffers it reuses. */
export interface KernelScratch {
  /** The reusable input buffer (null until first needed). */
  input: GPUBuffer | null;
  /** The reusable output buffers. */
  outputs: GPUBuffer[];
}

/**
 * A per-device cache of one kernel's {@linkcode KernelScratch}, each registered with
 * {@linkcode registerScratch} when it is made (so the tests' poisoning hook reaches its buffers).
 *
 * @example
 * ```ts
 * const scratchOf = scratchCache();
 * const s = scratchOf(device); // the same object for the same device
 * ```
 */
export function scratchCache(): (device: GPUDevice) => KernelScratch {
  const cache = new WeakMap<GPUDevice, KernelScratch>();
  return (device) => {
    let s = cache.get(device);
    if (!s) {
      const made: KernelScratch = { input: null, outputs: [] };
      cache.set(device, s = made);
      registerScratch(device, () => [...made.outputs, ...(made.input ? [made.input] : [])]);
    }
    return s;
  };
}
