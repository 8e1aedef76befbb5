// Shared by the top-k kernel tests (a file without `_test` so it is not run itself): the GPU runtime they
// share and the bit-exact comparison of a kernel's result with the reference's.
import assert from "node:assert/strict";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import type { TopKResult } from "../src/kernels/topk_reference.ts";

const CPU_ONLY = Deno.env.get("SPARSEKD_TEST_CPU_ONLY") === "1";
let runtime: Promise<Runtime> | null = null;

/**
 * The shared GPU runtime; null (skip) only when SPARSEKD_TEST_CPU_ONLY=1 and there is no adapter, else a
 * missing adapter is an error.
 *
 * @example
 * ```ts
 * const rt = await gpu();
 * if (!rt) return;
 * ```
 */
export async function gpu(): Promise<Runtime | null> {
  runtime ??= createRuntime({ quiet: true });
  const rt = await runtime;
  if (!rt.device) {
    if (CPU_ONLY) return null;
    throw new Error("no WebGPU adapter found (set SPARSEKD_TEST_CPU_ONLY=1 to skip the GPU tests)");
  }
  return rt;
}

function lseClose(got: number, want: number): boolean {
  if (got === want) return true;
  return Math.abs(got - want) <= Math.max(1e-5, 1e-6 * Math.abs(want));
}

/**
 * Asserts that a top-k result equals the reference's: the same ids, bit-identical values (so -0 must come
 * back as -0) and logsumexps within 1e-6 relative (1e-5 absolute).
 *
 * @example
 * ```ts
 * assertSame(await topK(rt, x, rows, vocab, k), topKReference(x, rows, vocab, k), "case");
 * ```
 */
export function assertSame(got: TopKResult, want: TopKResult, what: string): void {
  assert.equal(got.indices.length, want.indices.length, `${what}: indices length`);
  for (let i = 0; i < want.indices.length; i++) {
    if (got.indices[i] !== want.indices[i]) {
      assert.fail(`${what}: index ${i} is ${got.indices[i]}, want ${want.indices[i]}`);
    }
  }
  // Bit patterns: -0 must come back as -0.
  const gv = new Uint32Array(got.values.buffer, got.values.byteOffset, got.values.length);
  const wv = new Uint32Array(want.values.buffer, want.values.byteOffset, want.values.length);
  for (let i = 0; i < wv.length; i++) {
    if (gv[i] !== wv[i]) assert.fail(`${what}: value ${i} is ${got.values[i]}, want ${want.values[i]}`);
  }
  assert.equal(got.logsumexp.length, want.logsumexp.length, `${what}: logsumexp length`);
  for (let i = 0; i < want.logsumexp.length; i++) {
    if (!lseClose(got.logsumexp[i], want.logsumexp[i])) {
      assert.fail(`${what}: logsumexp ${i} is ${got.logsumexp[i]}, want ${want.logsumexp[i]}`);
    }
  }
}

/**
 * A storage buffer on the runtime's device holding `x` (logits already on the GPU, as a teacher leaves them).
 *
 * @example
 * ```ts
 * const buf = uploadLogits(rt, x);
 * ```
 */
export function uploadLogits(rt: Runtime, x: Float32Array<ArrayBuffer>): GPUBuffer {
  const device = rt.device!;
  const buf = device.createBuffer({
    size: x.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buf, 0, x);
  return buf;
}
