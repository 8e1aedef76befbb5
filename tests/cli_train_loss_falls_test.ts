import assert from "node:assert/strict";
import { trainCommand } from "../src/cli/train_flags.ts";
import { withSeed } from "./_rng.ts";
import { quietly, writePatternShards } from "./_train_fixtures.ts";

async function metrics(path: string) {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test("KD training on a learnable teacher lowers the loss and reports held-out CE, KL and top-1", async () => {
  await withSeed("cli_train_loss_falls_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    await writePatternShards(`${dir}/topk`, { seed, sequences: 48, seqLen: 16, vocab: 32, k: 8 });
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
        "--log-every",
        "10",
        "--kd-mode",
        "renorm",
        "--seed",
        String(seed),
        "--quiet",
      ])
    );
    const lines = await metrics(`${dir}/out/metrics.jsonl`);
    const losses = lines.filter((l) => l.kind === "train").map((l) => l.loss);
    const evals = lines.filter((l) => l.kind === "eval");
    assert.equal(losses.length, 30);
    const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5,
      tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    assert.ok(tail < head * 0.8, `loss ${head} → ${tail}`);
    assert.deepEqual(evals.map((e) => e.step), [15, 30]);
    for (const e of evals) {
      assert.ok(e.ce > 0 && Math.abs(e.perplexity - Math.exp(e.ce)) < 1e-6 * e.perplexity);
      assert.ok(e.kl >= -1e-4 && e.top1 >= 0 && e.top1 <= 1);
    }
    assert.ok(evals[1].kl < evals[0].kl, "KL to the teacher falls");
    assert.ok((await Deno.stat(`${dir}/out/ckpt-00000030/state.json`)).isFile);
    await Deno.remove(dir, { recursive: true });
  });
});

Deno.test("cross-entropy training on hard labels lowers the held-out perplexity", async () => {
  await withSeed("cli_train_loss_falls_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    await writePatternShards(`${dir}/topk`, { seed, sequences: 48, seqLen: 16, vocab: 32, k: 4 });
    await quietly(() =>
      trainCommand([
        "--shards",
        `${dir}/topk`,
        "--ce-only",
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
        "5",
        "--seed",
        String(seed),
        "--quiet",
      ])
    );
    const evals = (await metrics(`${dir}/out/metrics.jsonl`)).filter((l) => l.kind === "eval");
    assert.ok(
      evals.at(-1).perplexity < evals[0].perplexity * 0.8,
      `${evals[0].perplexity} → ${evals.at(-1).perplexity}`,
    );
    assert.ok(evals.at(-1).perplexity < 32, "better than uniform over the vocabulary");
    await Deno.remove(dir, { recursive: true });
  });
});
