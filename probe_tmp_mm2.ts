import * as tf from "@tensorflow/tfjs-core";
import { createRuntime } from "./src/gpu/runtime.ts";
import { useTfjsOnRuntime } from "./src/gpu/tfjs_backend.ts";
const rt = await createRuntime({ quiet: true });
await useTfjsOnRuntime(rt);
const a = tf.randomNormal([512, 64]), w = tf.randomNormal([2048, 64]), wt = tf.transpose(w), g = tf.randomNormal([512, 2048]);
const sq = tf.randomNormal([512, 64]), w1 = tf.randomNormal([64, 256]);
const cases: [string, () => tf.Tensor][] = [
  ["a·wT (transposeB)", () => tf.matMul(a, w, false, true)],
  ["a·wt (plain)", () => tf.matMul(a, wt)],
  ["g·w (dA)", () => tf.matMul(g, w)],
  ["gT·a (dW, transposeA)", () => tf.matMul(g, a, true, false)],
  ["x·w1", () => tf.matMul(sq, w1)],
];
for (const type of [-1, 0, 1, 2, 3]) {
  tf.env().set("WEBGPU_MATMUL_PROGRAM_TYPE", type);
  const row = [];
  for (const [name, f] of cases) {
    try {
    await tf.tidy(f).data();
    const prof = await tf.profile(async () => { const r = tf.tidy(f); await r.data(); r.dispose(); });
    row.push(`${name}=${prof.kernels.map((k) => (k.kernelTimeMs as number).toFixed(0)).join("+")}`);
    } catch (e) { row.push(`${name}=ERR`); }
  }
  console.log(type, row.join("  "));
}
