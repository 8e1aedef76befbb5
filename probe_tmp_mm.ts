import * as tf from "@tensorflow/tfjs-core";
import { createRuntime } from "./src/gpu/runtime.ts";
import { useTfjsOnRuntime } from "./src/gpu/tfjs_backend.ts";
const rt = await createRuntime({ quiet: true });
await useTfjsOnRuntime(rt);
const a = tf.randomNormal([512, 64]), w = tf.randomNormal([2048, 64]), wt = tf.transpose(w), g = tf.randomNormal([512, 2048]);
const cases: [string, () => tf.Tensor][] = [
  ["a·wT (transposeB)", () => tf.matMul(a, w, false, true)],
  ["a·wt (plain)", () => tf.matMul(a, wt)],
  ["a·transpose(w)", () => tf.matMul(a, tf.transpose(w))],
  ["g·w (dA)", () => tf.matMul(g, w)],
  ["gT·a (dW, transposeA)", () => tf.matMul(g, a, true, false)],
  ["transpose(g)·a", () => tf.matMul(tf.transpose(g), a)],
  ["mul 1M", () => tf.mul(g, g)],
];
for (const [name, f] of cases) {
  await tf.tidy(f).data();
  const prof = await tf.profile(async () => { const r = tf.tidy(f); await r.data(); r.dispose(); });
  const ms = prof.kernels.map((k) => `${k.name}:${(k.kernelTimeMs as number).toFixed(1)}`).join(" ");
  console.log(name.padEnd(24), ms);
}
