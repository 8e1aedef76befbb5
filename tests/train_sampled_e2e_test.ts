// End to end: save-topk with sampled targets (samples only, and samples beside the top-k), then
// `train --kd-mode sampled` on them at T ≠ t: the loss falls, and the held-out evaluation runs.
import assert from "node:assert/strict";
import { trainCommand } from "../src/cli/train_flags.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { saveTopK } from "../src/save/save_topk.ts";
import { openStore } from "../src/store/open_store.ts";
import { withSeed } from "./_rng.ts";
import { patternSource, patternTeacher, quietly } from "./_train_fixtures.ts";

async function metrics(path: string) {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
}

for (const k of [0, 4]) {
  Deno.test(`train --kd-mode sampled on save-topk --sample shards (k ${k}) lowers the loss`, async () => {
    await withSeed("train_sampled_e2e_test", async (_rng, seed) => {
      const dir = await Deno.makeTempDir();
      try {
        const o = { sequences: 48, seqLen: 16, vocab: 32 };
        await saveTopK({
          rt: await createRuntime({ quiet: true, cpu: true }),
          teacher: patternTeacher(o.vocab, seed),
          source: patternSource(seed, o),
          store: await openStore(`${dir}/topk`, { create: true }),
          k,
          sample: { n: 16, temperature: 1, seed },
          batchSize: 4,
          sequencesPerShard: 8,
          valueDtype: "f32",
          lseTemperatures: [2],
          host: { index: 0, count: 1 },
        });
        await quietly(() =>
          trainCommand([
            "--shards",
            `${dir}/topk`,
            "--out",
            `${dir}/out`,
            "--steps",
            "30",
            "--batch-size",
            "8",
            "--lr",
            "1e-2",
            "--layers",
            "1",
            "--width",
            "16",
            "--heads",
            "2",
            "--heldout-sequences",
            "8",
            "--eval-every",
            "15",
            "--kd-mode",
            "sampled",
            "--temperature",
            "2",
            "--seed",
            String(seed),
            "--quiet",
          ])
        );
        const lines = await metrics(`${dir}/out/metrics.jsonl`);
        const losses = lines.filter((l) => l.kind === "train").map((l) => l.loss);
        assert.equal(losses.length, 30);
        const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
        const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
        assert.ok(tail < head * 0.8, `loss ${head} → ${tail}`);
        const evals = lines.filter((l) => l.kind === "eval");
        assert.deepEqual(evals.map((e) => e.step), [15, 30]);
        for (const e of evals) assert.ok(e.ce > 0);
        if (k === 0) assert.equal(evals[0].kl, null);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  });
}
