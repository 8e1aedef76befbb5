/** The demo's final evaluation: full-vocabulary KL, perplexity, top-1 agreement and ECE against a direct computation. */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { createRuntime } from "../src/gpu/runtime.ts";
import { useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import { createGpt } from "../src/model/gpt.ts";
import type { TokenSource } from "../src/data/source.ts";
import { finalEvaluation } from "../src/demo/final_eval.ts";
import { expectedCalibrationError } from "../src/report/calibration.ts";
import { withSeed } from "./_rng.ts";

const V = 37, L = 6, S = 5;

function source(ids: Uint32Array): TokenSource {
  return {
    sequences: S,
    seqLen: L,
    fingerprint: "test",
    description: "test",
    read: (start, count) => Promise.resolve(ids.slice(start * L, (start + count) * L)),
  };
}

Deno.test("finalEvaluation equals a direct float64 computation of CE, full KL, top-1 agreement and ECE", async () => {
  await withSeed("demo_final_eval_test", async (rng) => {
    await useTfjsOnRuntime(await createRuntime({ cpu: true, quiet: true }));
    const seed = Math.floor(rng.uniform() * 1e6);
    const cfg = { vocabSize: V, seqLen: L, layers: 1, width: 8, heads: 2, tiedEmbeddings: true };
    const student = createGpt(cfg, seed), teacher = createGpt(cfg, seed + 1);
    const ids = Uint32Array.from({ length: S * L }, () => Math.floor(rng.uniform() * V));
    const got = await finalEvaluation(student, teacher, source(ids), { batchSize: 2 });

    const x = tf.tensor2d(Int32Array.from(ids), [S, L], "int32");
    const sl = await student.logits(x).data(), tl = await teacher.logits(x).data();
    let ce = 0, kl = 0, agree = 0, n = 0;
    const conf: number[] = [], correct: boolean[] = [];
    const logSoftmax = (a: Float32Array | Int32Array | Uint8Array, r: number) => {
      const row = Array.from(a.subarray(r * V, (r + 1) * V));
      const m = Math.max(...row);
      const z = Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) + m;
      return row.map((v) => v - z);
    };
    const argmax = (a: number[]) => a.indexOf(Math.max(...a));
    for (let b = 0; b < S; b++) {
      for (let t = 0; t < L - 1; t++) {
        const r = b * L + t, y = ids[b * L + t + 1];
        const ls = logSoftmax(sl, r), lt = logSoftmax(tl, r);
        ce -= ls[y];
        for (let v = 0; v < V; v++) kl += Math.exp(lt[v]) * (lt[v] - ls[v]);
        if (argmax(ls) === argmax(lt)) agree++;
        conf.push(Math.exp(Math.max(...ls)));
        correct.push(argmax(ls) === y);
        n++;
      }
    }
    const close = (a: number, b: number, what: string) =>
      assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b} (seed ${seed})`);
    close(got.ce, ce / n, "ce");
    close(got.ppl, Math.exp(ce / n), "perplexity");
    close(got.kl, kl / n, "kl");
    close(got.top1, agree / n, "top-1");
    close(got.ece, expectedCalibrationError(conf, correct, 15), "ece");

    const self = await finalEvaluation(teacher, teacher, source(ids));
    assert.ok(Math.abs(self.kl) < 1e-5, "a model's KL to itself is 0");
    assert.equal(self.top1, 1, "a model agrees with itself everywhere");
    student.dispose();
    teacher.dispose();
  });
});
