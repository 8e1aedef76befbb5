import assert from "node:assert/strict";
import { learningRate } from "../src/train/schedule.ts";
import { withSeed } from "./_rng.ts";

Deno.test("the learning rate rises linearly during warm-up, then decays by a cosine to the floor", async () => {
  await withSeed("train_schedule_test", (rng) => {
    const lr = 1e-4 + rng.uniform() * 1e-2, warmup = 1 + rng.int(50), steps = warmup + 10 + rng.int(500);
    const s = { lr, warmup, steps, minLr: lr / 20 };
    for (let i = 0; i < warmup; i++) {
      assert.ok(Math.abs(learningRate(s, i) - (lr * (i + 1)) / warmup) < 1e-12);
    }
    assert.ok(Math.abs(learningRate(s, warmup) - lr) < 1e-12);
    let prev = Infinity;
    for (let i = warmup; i <= steps; i++) {
      const v = learningRate(s, i);
      assert.ok(v <= prev + 1e-15, `step ${i}`);
      prev = v;
    }
    assert.ok(Math.abs(learningRate(s, steps) - lr / 20) < 1e-12);
    const mid = warmup + (steps - warmup) / 2;
    if (Number.isInteger(mid)) assert.ok(Math.abs(learningRate(s, mid) - (lr + lr / 20) / 2) < 1e-12);
  });
});
