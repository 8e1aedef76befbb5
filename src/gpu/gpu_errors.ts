/**
 * No silent GPU error. WebGPU reports most failures asynchronously (an `uncapturederror` event, a lost
 * device); left alone they leave a kernel's output buffer stale while the host carries on as if it had run.
 *
 * - {@linkcode watchDevice} (called by the runtime for every device it makes or wraps) records the first
 *   uncaptured error and a device loss per device, naming the kernel that was last encoded
 *   ({@linkcode noteKernel}).
 * - {@linkcode throwIfGpuFailed} throws that failure as a {@linkcode SparsekdError}; the read-back
 *   (`readBack`) and every kernel's submit path call it, so no result of a failed batch reaches the caller.
 * - {@linkcode withErrorScopes} runs an encode-and-submit inside validation and out-of-memory error scopes
 *   and throws at once when either caught something.
 * @module
 */
import { SparsekdError } from "../errors.ts";

/** A GPU failure recorded for a device. */
export interface GpuFailure {
  /** `validation`, `out-of-memory`, `internal` or `device lost`. */
  kind: string;
  /** The kernel being encoded when it happened (or "unlabelled GPU work (tfjs or an upload)"). */
  kernel: string;
  /** The first line of the driver's message. */
  message: string;
}

interface DeviceState {
  failure: GpuFailure | null;
  kernel: string;
  destroyed: boolean;
}

const states = new WeakMap<GPUDevice, DeviceState>();

/** Exit status of a task that ends on a GPU failure. */
export const GPU_FAILURE_EXIT = 3;

function stateOf(device: GPUDevice): DeviceState {
  let s = states.get(device);
  if (!s) states.set(device, s = { failure: null, kernel: OTHER, destroyed: false });
  return s;
}

function kindOf(error: GPUError): string {
  if (error instanceof GPUValidationError) return "validation";
  if (error instanceof GPUOutOfMemoryError) return "out-of-memory";
  return "internal";
}

const firstLine = (m: string) => (m.split("\n").find((l) => l.trim() !== "") ?? "no message").trim();

/**
 * Starts recording `device`'s uncaptured errors and its loss (once per device; later calls do nothing).
 * Only the first failure is kept: later ones are usually its consequences.
 *
 * @example
 * ```ts
 * watchDevice(device);
 * // ... later, before using results:
 * throwIfGpuFailed(device);
 * ```
 */
export function watchDevice(device: GPUDevice): void {
  if (states.has(device)) return;
  const s = stateOf(device);
  device.addEventListener("uncapturederror", (e) => {
    const error = (e as GPUUncapturedErrorEvent).error;
    recordGpuFailure(device, s.kernel, kindOf(error), error.message);
    e.preventDefault();
  });
  device.lost.then((info) => {
    if (s.destroyed || info.reason === "destroyed") return;
    recordGpuFailure(device, s.kernel, "device lost", info.message || "no message");
  });
}

/**
 * Records a failure for `device` unless one is recorded already (the first one is the cause).
 *
 * @example
 * ```ts
 * recordGpuFailure(device, "sparse_kd", "validation", "binding too large");
 * ```
 */
export function recordGpuFailure(device: GPUDevice, kernel: string, kind: string, message: string): void {
  const s = stateOf(device);
  if (!s.failure) s.failure = { kind, kernel, message: firstLine(message) };
}

/**
 * Names the kernel being encoded on `device`, so that an asynchronous error is attributed to it.
 *
 * @example
 * ```ts
 * noteKernel(device, "topk");
 * ```
 */
export function noteKernel(device: GPUDevice, kernel: string): void {
  stateOf(device).kernel = kernel;
}

/** What an error outside our own encodes is attributed to (tfjs's kernels, uploads, ...). */
const OTHER = "unlabelled GPU work (tfjs or an upload)";

/** After our encode's scopes are popped, later asynchronous errors are not ours. */
function releaseLabel(device: GPUDevice, kernel: string): void {
  const s = stateOf(device);
  if (s.kernel === kernel) s.kernel = OTHER;
}

/**
 * Marks `device` as destroyed on purpose, so that its loss is not reported as a failure.
 *
 * @example
 * ```ts
 * markDestroyed(device);
 * device.destroy();
 * ```
 */
export function markDestroyed(device: GPUDevice): void {
  stateOf(device).destroyed = true;
}

/**
 * The first failure recorded for `device`, or null.
 *
 * @example
 * ```ts
 * if (gpuFailure(device)) console.error("the GPU failed");
 * ```
 */
export function gpuFailure(device: GPUDevice): GpuFailure | null {
  return states.get(device)?.failure ?? null;
}

/** The one-line error of a failure. */
function failureError(f: GpuFailure, cause?: unknown): SparsekdError {
  return new SparsekdError(`GPU error in kernel ${f.kernel} (${f.kind}): ${f.message}`, {
    exitCode: GPU_FAILURE_EXIT,
    cause,
  });
}

/**
 * Throws the failure recorded for `device`, if any, as a {@linkcode SparsekdError}
 * (`GPU error in kernel <name> (<kind>): <cause>`). Every later call throws it too: a device that failed
 * once is not trusted again.
 *
 * @example
 * ```ts
 * throwIfGpuFailed(device); // before submitting, and after a read-back
 * ```
 */
export function throwIfGpuFailed(device: GPUDevice): void {
  const f = gpuFailure(device);
  if (f) throw failureError(f);
}

/**
 * Notes `kernel` as running and pushes an out-of-memory and a validation scope; the returned function pops
 * both (synchronously, releasing the label) and resolves to their errors.
 */
function pushScopes(device: GPUDevice, kernel: string): () => Promise<(GPUError | null)[]> {
  noteKernel(device, kernel);
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  return () => {
    const pops = [device.popErrorScope(), device.popErrorScope()];
    releaseLabel(device, kernel);
    return Promise.all(pops);
  };
}

/**
 * Pushes validation and out-of-memory error scopes named `kernel` (after throwing any earlier failure of
 * the device). The returned function pops both at once when called (call it right after the submit, with no
 * await in between) and its promise rejects with a {@linkcode SparsekdError} naming the kernel when either
 * scope caught an error. Such an error is not recorded as the device's failure: the call that made it fails,
 * and the device stays usable.
 *
 * @example
 * ```ts
 * const close = openErrorScopes(device, "topk");
 * device.queue.submit([encoder.finish()]);
 * await close();
 * ```
 */
export function openErrorScopes(device: GPUDevice, kernel: string): () => Promise<void> {
  throwIfGpuFailed(device);
  const pop = pushScopes(device, kernel);
  return async () => {
    const err = (await pop()).find((e): e is GPUError => e !== null);
    if (err) throw failureError({ kernel, kind: kindOf(err), message: firstLine(err.message) });
  };
}

/**
 * Runs `fn` (a synchronous encode and submit) after {@linkcode openErrorScopes} and returns its result with
 * the function that closes the scopes (call it once the read-back's copy is submitted, then await it). When
 * `fn` throws, the scopes are popped (keeping the device's scope stack balanced) and the error is rethrown.
 *
 * @example
 * ```ts
 * const [chunks, close] = submitScoped(device, "topk", () => submitRows());
 * const data = readBack(device, regionsOf(chunks));
 * await close();
 * ```
 */
export function submitScoped<T>(device: GPUDevice, kernel: string, fn: () => T): [T, () => Promise<void>] {
  const close = openErrorScopes(device, kernel);
  try {
    return [fn(), close];
  } catch (e) {
    close().catch(() => {});
    throw e;
  }
}

/**
 * Runs `fn` (which encodes and submits GPU work synchronously; it may return a promise, for example a
 * pipeline compile) inside {@linkcode openErrorScopes}, closed right after `fn` returns, and throws a
 * {@linkcode SparsekdError} naming the kernel when either scope caught an error. A non-SparsekdError thrown
 * or rejected by `fn` is turned into one as well.
 *
 * Cost: two scope pushes and pops per call; on Deno (wgpu) validation errors are known when the call
 * returns, so the pops resolve without waiting for the GPU to finish.
 *
 * @example
 * ```ts
 * await withErrorScopes(device, "topk", () => device.queue.submit([encoder.finish()]));
 * ```
 */
export async function withErrorScopes<T>(
  device: GPUDevice,
  kernel: string,
  fn: () => T,
): Promise<Awaited<T>> {
  const close = openErrorScopes(device, kernel);
  let result: T | undefined;
  let thrown: unknown = null;
  let threw = false;
  try {
    result = fn();
  } catch (e) {
    threw = true;
    thrown = e;
  }
  await close();
  try {
    if (threw) throw thrown;
    return await (result as T);
  } catch (e) {
    if (e instanceof SparsekdError) throw e;
    throw failureError({ kernel, kind: "error", message: firstLine(String((e as Error)?.message ?? e)) }, e);
  }
}

/**
 * Pushes validation and out-of-memory scopes for a synchronous encode that cannot wait for their result
 * (a tfjs op); the returned function pops them, and a caught error is recorded as the device's failure, so
 * that the next {@linkcode throwIfGpuFailed} (next op call, next read-back) throws it.
 *
 * @example
 * ```ts
 * const done = scopeWithoutWaiting(device, "sparse_kd");
 * device.queue.submit([encoder.finish()]);
 * done();
 * ```
 */
export function scopeWithoutWaiting(device: GPUDevice, kernel: string): () => Promise<void> {
  const pop = pushScopes(device, kernel);
  return async () => {
    for (const e of await pop()) {
      if (e) recordGpuFailure(device, kernel, kindOf(e), e.message);
    }
  };
}
