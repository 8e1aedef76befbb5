import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { demoSource } from "../src/data/demo.ts";
import { readBack } from "../src/gpu/readback.ts";
import { createDemoTeacher } from "../src/teacher/builtin.ts";
import { withSeed } from "./_rng.ts";
import { testRuntime } from "./_train_fixtures.ts";

Deno.test("the committed demo teacher predicts held-out demo text far better than chance", async () => {
  const rt = await testRuntime();
  const teacher = await createDemoTeacher(rt);
  try {
    assert.equal(teacher.vocabSize, 2048);
    assert.equal(teacher.seqLen, 64);
    assert.match(teacher.fingerprint, /^[0-9a-f]{64}$/);
    await withSeed("teacher_builtin_test", async (rng) => {
      const L = 64, count = 16;
      const heldout = await demoSource({ split: "heldout", seqLen: L });
      const start = rng.int(heldout.sequences - count);
      const tokens = await heldout.read(start, count);
      const out = await teacher.forward(tokens, start, count, L);
      let logits: Float32Array;
      if (out.kind === "gpu") {
        const [bytes] = await readBack(rt.device!, [{ buffer: out.buffer, size: count * L * 2048 * 4 }]);
        out.release();
        logits = new Float32Array(bytes);
      } else logits = out.array;
      let nll = 0, n = 0;
      for (let s = 0; s < count; s++) {
        for (let t = 0; t + 1 < L; t++) {
          const row = logits.subarray((s * L + t) * 2048, (s * L + t + 1) * 2048);
          let max = -Infinity;
          for (const x of row) max = Math.max(max, x);
          let sum = 0;
          for (const x of row) sum += Math.exp(x - max);
          nll += max + Math.log(sum) - row[tokens[s * L + t + 1]];
          n++;
        }
      }
      const perplexity = Math.exp(nll / n);
      // uniform guessing is 2048, the unigram distribution of the train split 615; the teacher is about 310
      assert.ok(perplexity < 450, `held-out perplexity ${perplexity.toFixed(1)} at sequences ${start}…`);
    });
  } finally {
    teacher.dispose();
  }
});

Deno.test("the demo teacher refuses token ids outside its vocabulary", async () => {
  const rt = await testRuntime();
  const teacher = await createDemoTeacher(rt);
  try {
    const tokens = new Uint32Array(8).fill(3);
    tokens[5] = 2048;
    await assert.rejects(
      () => teacher.forward(tokens, 0, 1, 8),
      (e: Error) => e instanceof SparsekdError && /2048/.test(e.message),
    );
  } finally {
    teacher.dispose();
  }
});
