/**
 * The runtime's CPU fallback: createRuntime({ cpu: true }) has no device, and topK then runs the reference.
 * The GPU runtime test fails when no adapter is found, unless SPARSEKD_TEST_CPU_ONLY=1.
 */
import assert from "node:assert/strict";
import { createRuntime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { topK, topKFromBuffer, topKReference } from "../src/kernels/topk.ts";

function randomLogits(n: number): Float32Array {
  return new Float32Array(n).map(() => (Math.random() - 0.5) * 20);
}

Deno.test("createRuntime({ cpu: true }) gives a CPU runtime whose pipeline() rejects", async () => {
  const rt = await createRuntime({ cpu: true, quiet: true });
  assert.equal(rt.device, null);
  assert.equal(rt.adapter, null);
  await assert.rejects(() => rt.pipeline("x", "topk.wgsl"));
  rt.destroy();
});

Deno.test("topK on the CPU runtime runs the reference, with any temperatures", async () => {
  const rt = await createRuntime({ cpu: true, quiet: true });
  const [rows, vocab, k] = [1 + Math.floor(Math.random() * 5), 2 + Math.floor(Math.random() * 3000), 1];
  const kk = Math.min(vocab, k + Math.floor(Math.random() * 100));
  const x = randomLogits(rows * vocab);
  const temperatures = [1, 0.5 + Math.random()];
  const got = await topK(rt, x, rows, vocab, kk, { temperatures });
  const want = topKReference(x, rows, vocab, kk, { temperatures });
  assert.deepEqual(got, want);
  // Independent check of the first row against a direct computation.
  const row = Array.from(x.subarray(0, vocab));
  const max = Math.max(...row);
  assert.equal(got.values[0], max);
  assert.equal(got.indices[0], row.indexOf(max));
  const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
  assert.ok(Math.abs(got.logsumexp[0] - lse) <= 1e-5 * Math.max(1, Math.abs(lse)));
  for (let j = 1; j < kk; j++) assert.ok(got.values[j] <= got.values[j - 1]);
});

Deno.test("topKFromBuffer on the CPU runtime is a SparsekdError", async () => {
  const rt = await createRuntime({ cpu: true, quiet: true });
  await assert.rejects(() => topKFromBuffer(rt, {} as GPUBuffer, 1, 4, 1), SparsekdError);
});

Deno.test("createRuntime() finds a WebGPU adapter and topK runs on it", async () => {
  const rt = await createRuntime({ quiet: true });
  if (!rt.device) {
    if (Deno.env.get("SPARSEKD_TEST_CPU_ONLY") === "1") return;
    assert.fail("no WebGPU adapter found (set SPARSEKD_TEST_CPU_ONLY=1 to skip the GPU tests)");
  }
  assert.ok(rt.adapter && rt.adapter.description.length > 0);
  const x = randomLogits(3 * 500);
  const got = await topK(rt, x, 3, 500, 10);
  const want = topKReference(x, 3, 500, 10);
  assert.deepEqual(got.indices, want.indices);
  assert.deepEqual(got.values, want.values);
  want.logsumexp.forEach((w, i) => {
    assert.ok(Math.abs(got.logsumexp[i] - w) <= Math.max(1e-5, 1e-6 * Math.abs(w)), `logsumexp ${i}`);
  });
  rt.destroy();
});
