import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { createGpt } from "../src/model/gpt.ts";
import { evaluate } from "../src/train/evaluate.ts";
import type { TrainRecord } from "../src/train/records.ts";
import { withSeed } from "./_rng.ts";
import { testRuntime } from "./_train_fixtures.ts";

Deno.test("held-out CE, perplexity, KL to the sparse teacher and top-1 agreement match a plain reference", async () => {
  await testRuntime();
  await withSeed("train_evaluate_test", async (rng, seed) => {
    const V = 19, L = 6, k = 4, n = 1 + rng.int(7);
    const model = createGpt(
      { vocabSize: V, seqLen: L, layers: 1, width: 8, heads: 2, tiedEmbeddings: true },
      seed,
    );
    const records: TrainRecord[] = [];
    for (let s = 0; s < n; s++) {
      const tokens = Uint32Array.from({ length: L }, () => rng.int(V));
      const idx = new Uint32Array(L * k), val = new Float32Array(L * k);
      for (let t = 0; t < L; t++) {
        const ids = [...Array(V).keys()].sort(() => rng.uniform() - 0.5).slice(0, k);
        ids.forEach((id, j) => (idx[t * k + j] = id, val[t * k + j] = 3 - j + rng.uniform() * 0.5));
      }
      records.push({ tokens, idx, val });
    }
    const T = 0.5 + rng.uniform() * 2;
    const got = await evaluate(model, records, { batchSize: 1 + rng.int(4), temperature: T });
    let ce = 0, ceN = 0, kl = 0, agree = 0;
    for (const r of records) {
      const logits = await model.logits(tf.tensor2d(Int32Array.from(r.tokens), [1, L], "int32")).data();
      for (let t = 0; t < L; t++) {
        const row = Array.from(logits.subarray(t * V, (t + 1) * V));
        const lse = (xs: number[]) => {
          const m = Math.max(...xs);
          return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
        };
        if (t + 1 < L) (ce += lse(row) - row[r.tokens[t + 1]], ceN++);
        const tv = Array.from(r.val!.subarray(t * k, (t + 1) * k)).map((x) => x / T);
        const ti = Array.from(r.idx!.subarray(t * k, (t + 1) * k));
        const sRow = row.map((x) => x / T), sLse = lse(sRow), tLse = lse(tv);
        tv.forEach((x, j) => (kl += Math.exp(x - tLse) * ((x - tLse) - (sRow[ti[j]] - sLse))));
        if (row.indexOf(Math.max(...row)) === ti[0]) agree++;
      }
    }
    assert.equal(got.tokens, ceN);
    assert.ok(Math.abs(got.ce - ce / ceN) < 1e-4, `ce ${got.ce} vs ${ce / ceN}`);
    assert.ok(Math.abs(got.perplexity - Math.exp(ce / ceN)) < 1e-3 * got.perplexity);
    assert.ok(Math.abs(got.kl! - kl / (n * L)) < 1e-4, `kl ${got.kl} vs ${kl / (n * L)}`);
    assert.equal(got.top1, agree / (n * L));
    const plain = await evaluate(model, records.map((r) => ({ tokens: r.tokens })), { batchSize: 3 });
    assert.equal(plain.kl, null);
    assert.equal(plain.top1, null);
    model.dispose();
  });
});

Deno.test("with a boundary token, positions holding it are left out of CE, KL and top-1", async () => {
  await testRuntime();
  await withSeed("train_evaluate_test boundary", async (rng, seed) => {
    const V = 13, L = 7, k = 3, n = 2 + rng.int(4), b = rng.int(V);
    const model = createGpt(
      { vocabSize: V, seqLen: L, layers: 1, width: 8, heads: 2, tiedEmbeddings: true },
      seed,
    );
    const records: TrainRecord[] = [];
    for (let s = 0; s < n; s++) {
      const tokens = Uint32Array.from({ length: L }, () => (rng.uniform() < 0.3 ? b : rng.int(V)));
      tokens[1 + rng.int(L - 2)] = b; // at least one boundary that is not a last position
      const idx = Uint32Array.from({ length: L * k }, () => rng.int(V));
      const val = Float32Array.from({ length: L * k }, () => rng.uniform() * 4);
      records.push({ tokens, idx, val });
    }
    const got = await evaluate(model, records, { batchSize: 1 + rng.int(3), boundaryToken: b });
    const none = await evaluate(model, records, { batchSize: 2, boundaryToken: V + 5 }); // never occurs
    const all = await evaluate(model, records, { batchSize: 2 });
    assert.equal(none.tokens, all.tokens);
    assert.ok(
      Math.abs(none.kl! - all.kl!) < 1e-5 && none.top1 === all.top1 && Math.abs(none.ce - all.ce) < 1e-5,
    );
    let ce = 0, ceN = 0, kl = 0, agree = 0, pos = 0;
    const lse = (xs: number[]) => {
      const m = Math.max(...xs);
      return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
    };
    for (const r of records) {
      const logits = await model.logits(tf.tensor2d(Int32Array.from(r.tokens), [1, L], "int32")).data();
      for (let t = 0; t < L; t++) {
        if (r.tokens[t] === b) continue;
        const row = Array.from(logits.subarray(t * V, (t + 1) * V));
        if (t + 1 < L) (ce += lse(row) - row[r.tokens[t + 1]], ceN++);
        const tv = Array.from(r.val!.subarray(t * k, (t + 1) * k)),
          ti = Array.from(r.idx!.subarray(t * k, (t + 1) * k));
        const sLse = lse(row), tLse = lse(tv);
        tv.forEach((x, j) => (kl += Math.exp(x - tLse) * ((x - tLse) - (row[ti[j]] - sLse))));
        if (row.indexOf(Math.max(...row)) === ti[0]) agree++;
        pos++;
      }
    }
    assert.ok(ceN < all.tokens, "some position is masked");
    assert.equal(got.tokens, ceN);
    assert.ok(Math.abs(got.ce - ce / ceN) < 1e-4, `ce ${got.ce} vs ${ce / ceN}`);
    assert.ok(Math.abs(got.kl! - kl / pos) < 1e-4, `kl ${got.kl} vs ${kl / pos}`);
    assert.ok(Math.abs(got.top1! - agree / pos) < 1e-9, `top1 ${got.top1} vs ${agree / pos}`);
    model.dispose();
  });
});
