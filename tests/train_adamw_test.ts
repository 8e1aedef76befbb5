import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { createAdamW } from "../src/train/adamw.ts";
import { withSeed } from "./_rng.ts";
import { testRuntime } from "./_train_fixtures.ts";

/** AdamW in plain numbers: the oracle. */
function reference(
  params: Record<string, number[]>,
  gradSteps: Record<string, number[]>[],
  lrs: number[],
  o: { b1: number; b2: number; eps: number; wd: number; clip: number; decay: (name: string) => boolean },
) {
  const p = structuredClone(params);
  const m: Record<string, number[]> = {}, v: Record<string, number[]> = {};
  for (const n in p) (m[n] = p[n].map(() => 0)), (v[n] = p[n].map(() => 0));
  const norms: number[] = [];
  gradSteps.forEach((g, s) => {
    const t = s + 1;
    let sq = 0;
    for (const n in g) for (const x of g[n]) sq += x * x;
    const norm = Math.sqrt(sq);
    norms.push(norm);
    const scale = o.clip > 0 ? o.clip / Math.max(norm, o.clip) : 1;
    for (const n in p) {
      for (let i = 0; i < p[n].length; i++) {
        const gi = g[n][i] * scale;
        m[n][i] = o.b1 * m[n][i] + (1 - o.b1) * gi;
        v[n][i] = o.b2 * v[n][i] + (1 - o.b2) * gi * gi;
        const update = (m[n][i] / (1 - o.b1 ** t)) / (Math.sqrt(v[n][i] / (1 - o.b2 ** t)) + o.eps);
        const decayed = o.decay(n) ? p[n][i] * (1 - lrs[s] * o.wd) : p[n][i];
        p[n][i] = decayed - lrs[s] * update;
      }
    }
  });
  return { p, norms };
}

Deno.test("AdamW with clipping and decoupled decay matches a plain reference", async () => {
  await testRuntime();
  await withSeed("train_adamw_test", async (rng) => {
    // 16 weights: tfjs-webgpu's AddN over 16 inputs gave a wrong sum on the GL path; the norm must not use it
    const shapes: Record<string, number[]> = {};
    const count = 16;
    for (let i = 0; i < count; i++) {
      shapes[i % 2 ? `b${i}` : `w${i}`] = i % 2 ? [1 + rng.int(5)] : [1 + rng.int(4), 1 + rng.int(4)];
    }
    const params: Record<string, number[]> = {};
    const weights = new Map<string, tf.Variable>();
    for (const [n, shape] of Object.entries(shapes)) {
      params[n] = Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal());
      weights.set(n, tf.variable(tf.tensor(params[n], shape)));
    }
    const clip = rng.uniform() < 0.5 ? 0.5 : 0;
    const opt = createAdamW(weights, {
      beta1: 0.9,
      beta2: 0.95,
      epsilon: 1e-8,
      weightDecay: 0.1,
      clipNorm: clip,
    });
    const gradSteps: Record<string, number[]>[] = [];
    const lrs: number[] = [];
    const norms: number[] = [];
    for (let s = 0; s < 4; s++) {
      const g: Record<string, number[]> = {};
      const gt: Record<string, tf.Tensor> = {};
      for (const [n, shape] of Object.entries(shapes)) {
        g[n] = params[n].map(() => rng.normal() * (1 + s));
        gt[n] = tf.tensor(g[n], shape);
      }
      gradSteps.push(g);
      lrs.push(1e-3 * (1 + rng.uniform()));
      const norm = opt.apply(gt, lrs[s]);
      norms.push((await norm.data())[0]);
      tf.dispose([norm, ...Object.values(gt)]);
    }
    assert.equal(opt.step, 4);
    const ref = reference(params, gradSteps, lrs, {
      b1: 0.9,
      b2: 0.95,
      eps: 1e-8,
      wd: 0.1,
      clip,
      decay: (n) => n.startsWith("w"),
    });
    for (const [n, v] of weights) {
      const got = await v.data();
      ref.p[n].forEach((x, i) => assert.ok(Math.abs(got[i] - x) < 1e-5, `${n}[${i}]: ${got[i]} vs ${x}`));
    }
    norms.forEach((x, i) => assert.ok(Math.abs(x - ref.norms[i]) < 1e-4 * ref.norms[i]));
    opt.dispose();
    tf.dispose([...weights.values()]);
  });
});
