/**
 * The two WGSL kernels against their references on whichever WebGPU backend this process got. The test task
 * runs this file a second time under `DENO_WEBGPU_BACKEND=gl`, so both of Mesa's software paths (Vulkan
 * through lavapipe, OpenGL through llvmpipe) are checked. The shapes are few on purpose: the GL path compiles
 * each pipeline variant slowly the first time (about a minute on two cores; Mesa caches it afterwards), so
 * this file keeps to five variants. The full kernel suites (kernels_topk_test.ts, kernels_sparse_kd_test.ts) run on Vulkan.
 */
import assert from "node:assert/strict";
import { createRuntime } from "../src/gpu/runtime.ts";
import { NonFiniteLogitsError, topK } from "../src/kernels/topk.ts";
import { topKReference } from "../src/kernels/topk_reference.ts";
import { sparseKdLoss } from "../src/kernels/sparse_kd.ts";
import { sparseKdLossReference, type SparseKdMode } from "../src/kernels/sparse_kd_reference.ts";
import { withSeed } from "./_rng.ts";

const rt = await createRuntime({ quiet: true });
if (!rt.device && Deno.env.get("SPARSEKD_TEST_CPU_ONLY") !== "1") {
  throw new Error(
    "no WebGPU adapter: install mesa-vulkan-drivers / libgl1-mesa-dri (or set SPARSEKD_TEST_CPU_ONLY=1)",
  );
}
const backend = Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default";

function randomLogits(n: number, spread: number): Float32Array {
  // Values on a coarse grid, so that ties happen.
  return Float32Array.from({ length: n }, () => Math.round((Math.random() - 0.5) * spread * 4) / 4);
}

Deno.test(`topK equals the reference on the ${backend} backend (ties, -Infinity, k = vocab, several shapes)`, async () => {
  for (const [rows, vocab, k] of [[3, 5, 5], [17, 2049, 64], [4, 32000, 256], [2, 7, 3]]) {
    const x = randomLogits(rows * vocab, 20);
    x[1] = -Infinity;
    const got = await topK(rt, x, rows, vocab, k, { temperatures: [1] });
    const want = topKReference(x, rows, vocab, k, { temperatures: [1] });
    assert.deepEqual([...got.indices], [...want.indices], `${rows}×${vocab}×${k} ids`);
    assert.deepEqual([...got.values], [...want.values], `${rows}×${vocab}×${k} values`);
    for (let i = 0; i < rows; i++) {
      const d = Math.abs(got.logsumexp[i] - want.logsumexp[i]);
      assert.ok(
        d <= Math.max(1e-5, 1e-6 * Math.abs(want.logsumexp[i])),
        `${rows}×${vocab}×${k} lse row ${i}`,
      );
    }
  }
});

Deno.test(`topK reports a NaN, +Infinity or all -Infinity row on the ${backend} backend`, async () => {
  const x = randomLogits(4 * 100, 10);
  x[2 * 100 + 7] = NaN;
  await assert.rejects(() => topK(rt, x, 4, 100, 8), (e) => e instanceof NonFiniteLogitsError && e.row === 2);
  x[1 * 100 + 3] = Infinity;
  await assert.rejects(() => topK(rt, x, 4, 100, 8), (e) => e instanceof NonFiniteLogitsError && e.row === 1);
  x[1 * 100 + 3] = 0;
  x.fill(-Infinity, 0, 100);
  await assert.rejects(() => topK(rt, x, 4, 100, 8), (e) => e instanceof NonFiniteLogitsError && e.row === 0);
});

Deno.test(`sparseKdLoss equals the reference in every mode on the ${backend} backend`, async () => {
  await withSeed("kernels_backends_test", async (rng) => {
    const rows = 6, vocab = 1000, k = 16, T = 2;
    for (const mode of ["topk", "renorm", "tail"] as SparseKdMode[]) {
      const s = randomLogits(rows * vocab, 8);
      const z = randomLogits(rows * vocab, 12);
      const top = topKReference(z, rows, vocab, k, { temperatures: [T] });
      const teacher = { indices: top.indices, values: top.values, k, logsumexp: top.logsumexp };
      const labels = Int32Array.from({ length: rows }, () => Math.floor(rng.uniform() * vocab));
      const mask = Uint8Array.from({ length: rows }, (_, i) => (i === 3 ? 0 : 1));
      const options = { mode, temperature: T, alpha: 0.7, labels, mask };
      const got = await sparseKdLoss(rt, s, rows, vocab, teacher, options);
      const want = sparseKdLossReference(s, rows, vocab, teacher, options);
      for (let r = 0; r < rows; r++) {
        assert.ok(
          Math.abs(got.loss[r] - want.loss[r]) <= 1e-5 * Math.abs(want.loss[r]) + 1e-7,
          `${mode} loss row ${r}`,
        );
        let scale = 0;
        for (let v = 0; v < vocab; v++) scale = Math.max(scale, Math.abs(want.grad[r * vocab + v]));
        for (let v = 0; v < vocab; v++) {
          const i = r * vocab + v;
          assert.ok(
            Math.abs(got.grad[i] - want.grad[i]) <= 1e-4 * scale + 1e-9,
            `${mode} grad row ${r} id ${v}`,
          );
        }
      }
      assert.equal(got.loss[3], 0, "a masked row has no loss");
    }
  });
});
