import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { SparsekdError } from "../src/errors.ts";
import { createGpt, type GptConfig, validateGptConfig } from "../src/model/gpt.ts";
import { withSeed } from "./_rng.ts";
import { testRuntime } from "./_train_fixtures.ts";

const tiny = (tied: boolean): GptConfig => ({
  vocabSize: 37,
  seqLen: 12,
  layers: 2,
  width: 16,
  heads: 4,
  tiedEmbeddings: tied,
});

Deno.test("the same seed gives the same initial weights, another seed other weights", async () => {
  await testRuntime();
  await withSeed("model_gpt_test", async (_rng, seed) => {
    const a = createGpt(tiny(true), seed),
      b = createGpt(tiny(true), seed),
      c = createGpt(tiny(true), seed + 1);
    for (const [name, v] of a.weights) {
      assert.deepEqual(await v.data(), await b.weights.get(name)!.data(), name);
    }
    assert.notDeepEqual(await a.weights.get("wte")!.data(), await c.weights.get("wte")!.data());
    [a, b, c].forEach((m) => m.dispose());
  });
});

Deno.test("logits have one row per position and a column per vocabulary entry", async () => {
  await testRuntime();
  await withSeed("model_gpt_test", async (rng, seed) => {
    for (const tied of [true, false]) {
      const m = createGpt(tiny(tied), seed);
      const B = 3, L = 1 + rng.int(12);
      const ids = Int32Array.from({ length: B * L }, () => rng.int(37));
      const y = m.logits(tf.tensor2d(ids, [B, L], "int32"));
      assert.deepEqual(y.shape, [B * L, 37]);
      const v = await y.data();
      assert.ok(v.every(Number.isFinite));
      y.dispose();
      m.dispose();
    }
  });
});

Deno.test("attention is causal: changing a later token leaves earlier logits unchanged", async () => {
  await testRuntime();
  await withSeed("model_gpt_test", async (rng, seed) => {
    const m = createGpt(tiny(false), seed);
    const L = 12, cut = 1 + rng.int(L - 1);
    const a = Int32Array.from({ length: L }, () => rng.int(37));
    const b = a.slice();
    for (let t = cut; t < L; t++) b[t] = (a[t] + 1 + rng.int(36)) % 37;
    const ya = await m.logits(tf.tensor2d(a, [1, L], "int32")).data();
    const yb = await m.logits(tf.tensor2d(b, [1, L], "int32")).data();
    for (let i = 0; i < cut * 37; i++) {
      assert.ok(Math.abs(ya[i] - yb[i]) < 1e-4, `position ${Math.floor(i / 37)}`);
    }
    let differs = false;
    for (let i = cut * 37; i < L * 37; i++) if (Math.abs(ya[i] - yb[i]) > 1e-6) differs = true;
    assert.ok(differs, "later logits should depend on the changed tokens");
    m.dispose();
  });
});

Deno.test("tied embeddings have no separate output projection", async () => {
  await testRuntime();
  const tied = createGpt(tiny(true), 1), untied = createGpt(tiny(false), 1);
  assert.equal(untied.parameterCount() - tied.parameterCount(), 16 * 37);
  assert.ok(!tied.weights.has("head") && untied.weights.has("head"));
  tied.dispose();
  untied.dispose();
});

Deno.test("a bad model config is a one-line error", () => {
  assert.throws(() => validateGptConfig({ ...tiny(true), width: 18, heads: 4 }), SparsekdError);
  assert.throws(() => validateGptConfig({ ...tiny(true), layers: 0 }), /layers must be a positive integer/);
});
