import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { sparseKdLossReference64 } from "../src/kernels/sparse_kd_reference.ts";
import { fullKdLoss } from "../src/train/full_kd_loss.ts";
import { withSeed } from "./_rng.ts";
import { testRuntime } from "./_train_fixtures.ts";

// With S = the whole vocabulary, each sparse mode is the full KL (topk and renorm: p̂ = p, q̂ = q; tail: r = 0),
// so the float64 sparse reference at K = V is an independent oracle for the online loss.
for (const mode of ["topk", "renorm", "tail"] as const) {
  Deno.test(`online full KD equals the sparse ${mode} reference at K = V (loss and gradient, masks, α, T)`, async () => {
    await testRuntime();
    await withSeed("train_full_kd_loss_test", async (rng) => {
      for (const [T, alpha] of [[1, 1], [2.5, 0.3], [0.7, 0]] as const) {
        const N = 7, V = 50;
        const s = Float32Array.from({ length: N * V }, () => 3 * rng.normal());
        const z = Float32Array.from({ length: N * V }, () => 4 * rng.normal());
        const labels = Int32Array.from({ length: N }, () => rng.int(V));
        const mask = Float32Array.from({ length: N }, (_, i) => (i === 2 ? 0 : 1));
        const active = mask.reduce((a, b) => a + b, 0);

        const indices = new Uint32Array(N * V).map((_, i) => i % V);
        const logsumexp = new Float32Array(N);
        for (let r = 0; r < N; r++) {
          let m = -Infinity, sum = 0;
          for (let j = 0; j < V; j++) m = Math.max(m, z[r * V + j] / T);
          for (let j = 0; j < V; j++) sum += Math.exp(z[r * V + j] / T - m);
          logsumexp[r] = m + Math.log(sum);
        }
        const ref = sparseKdLossReference64(s, N, V, { indices, values: z, k: V, logsumexp }, {
          mode,
          temperature: T,
          alpha,
          labels,
          mask: Uint8Array.from(mask),
          scale: 1 / active,
        });
        const want = ref.loss.reduce((a, b) => a + b, 0);

        const zT = tf.tensor2d(z, [N, V]);
        const t = tf.tensor1d(labels, "int32"), m = tf.tensor1d(mask);
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) =>
          fullKdLoss(x as tf.Tensor2D, zT, { temperature: T, alpha, targets: t, mask: m })
        )(tf.tensor2d(s, [N, V]));
        const got = (await value.data())[0];
        const g = (await grad.data()) as Float32Array;
        tf.dispose([zT, t, m, value, grad]);

        assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want), `T=${T} α=${alpha}: loss ${got} vs ${want}`);
        const gMax = ref.grad.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
        for (let i = 0; i < N * V; i++) {
          assert.ok(
            Math.abs(g[i] - ref.grad[i]) <= 1e-4 * gMax,
            `T=${T} α=${alpha}: gradient [${Math.floor(i / V)}, ${i % V}] ${g[i]} vs ${ref.grad[i]}`,
          );
        }
        for (let j = 0; j < V; j++) assert.ok(g[2 * V + j] === 0, "a masked row has no gradient");
      }
    });
  });
}
