import * as tf from "@tensorflow/tfjs-core";
import "./src/train/gradients.ts";
import { createRuntime } from "./src/gpu/runtime.ts";
import { useTfjsOnRuntime } from "./src/gpu/tfjs_backend.ts";
import { createGpt } from "./src/model/gpt.ts";
import { createAdamW } from "./src/train/adamw.ts";
import { crossEntropy } from "./src/train/ce_loss.ts";
const rt = await createRuntime({ quiet: true });
await useTfjsOnRuntime(rt);
let x = tf.zeros([64, 64]);
await x.data();
let t0 = performance.now();
for (let i = 0; i < 300; i++) { const y = tf.add(x, 1); x.dispose(); x = y; }
await x.data();
console.log("tiny add: ms/op", ((performance.now() - t0) / 300).toFixed(2));
const c = createGpt({ vocabSize: 2048, seqLen: 64, layers: 1, width: 32, heads: 2, tiedEmbeddings: true }, 1);
const B = 8, T = 64;
const tok = tf.tensor2d(new Int32Array(B * T).map(() => Math.floor(Math.random() * 2048)), [B, T], "int32");
const tgt = tf.tensor1d(new Int32Array(B * T).map(() => Math.floor(Math.random() * 2048)), "int32");
const mask = tf.ones([B * T]) as tf.Tensor1D;
const vars = [...c.weights.values()]; const names = [...c.weights.keys()];
const opt = createAdamW(c.weights);
for (const part of ["fwd", "grad", "full"]) {
  const prof = await tf.profile(async () => {
    const r = tf.tidy(() => {
      if (part === "fwd") return crossEntropy(c.logits(tok), tgt, mask);
      const { value, grads } = tf.variableGrads(() => crossEntropy(c.logits(tok), tgt, mask), vars);
      if (part === "full") { const g: Record<string, tf.Tensor> = {}; names.forEach((n, i) => g[n] = grads[vars[i].name]); opt.apply(g, 1e-3); }
      return value;
    });
    await r.data();
  });
  t0 = performance.now();
  for (let i = 0; i < 2; i++) {
    const r = tf.tidy(() => {
      if (part === "fwd") return crossEntropy(c.logits(tok), tgt, mask);
      const { value, grads } = tf.variableGrads(() => crossEntropy(c.logits(tok), tgt, mask), vars);
      if (part === "full") { const g: Record<string, tf.Tensor> = {}; names.forEach((n, i) => g[n] = grads[vars[i].name]); opt.apply(g, 1e-3); }
      return value;
    });
    await r.data();
  }
  console.log(part, "kernels", prof.kernels.length, "ms", ((performance.now() - t0) / 2).toFixed(0));
  if (part === "full") {
    const agg = new Map<string, number>();
    for (const k of prof.kernels) agg.set(k.name, (agg.get(k.name) ?? 0) + 1);
    console.log([...agg].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([n, c]) => `${n}:${c}`).join(" "));
  }
}
