import assert from "node:assert/strict";
import { openStore } from "../src/store/open_store.ts";
import { tokenRecords } from "../src/train/batches.ts";
import { trainCommand } from "../src/cli/train_flags.ts";
import { trainLoop as train, type TrainLoopOptions as TrainOptions } from "../src/train/trainer.ts";
import { patternSource, testRuntime, withSeed, writePatternShards } from "./_train_fixtures.ts";

const quiet = { log: () => {}, progress: false };

Deno.test("a run stopped and resumed from its checkpoint has the same losses as one that never stopped", async () => {
  const rt = await testRuntime();
  await withSeed(async (seed, rng) => {
    const src = patternSource(seed, { sequences: 24, seqLen: 16, vocab: 32 });
    const data = { sequences: src.sequences, stream: (from: number) => map(tokenRecords(src).stream(from)) };
    const steps = 4, stopAt = 1 + rng.int(steps - 1);
    const base = (out: TrainOptions["out"]): TrainOptions => ({
      rt,
      model: {
        vocabSize: 32,
        seqLen: 16,
        layers: 1,
        width: 16,
        heads: 2,
        tiedEmbeddings: rng.uniform() < 0.5,
      },
      seed,
      steps,
      batchSize: 4,
      lr: 1e-2,
      warmup: 2,
      mode: "ce",
      data,
      shuffleWindow: 8,
      out,
      metricsPath: null,
      logEvery: 2,
      ...quiet,
    });
    const opts = base(null);
    const whole = await train(opts);
    whole.model.dispose();
    const dir = await Deno.makeTempDir();
    const store = await openStore(dir);
    const first = await train({ ...opts, out: store, stopAfter: stopAt });
    first.model.dispose();
    const second = await train({ ...opts, out: store, resume: true });
    second.model.dispose();
    for (let s = 1; s <= steps; s++) {
      const got = s <= stopAt ? first.losses.get(s) : second.losses.get(s);
      assert.equal(got, whole.losses.get(s), `step ${s} (stopped after ${stopAt})`);
    }
    await Deno.remove(dir, { recursive: true });
  });
});

Deno.test("KD training from shards resumes exactly through the command line", async () => {
  await withSeed(async (seed) => {
    const dir = await Deno.makeTempDir();
    await writePatternShards(`${dir}/topk`, { seed, sequences: 40, seqLen: 16, vocab: 32, k: 8 });
    const args = [
      "--shards",
      `${dir}/topk`,
      "--steps",
      "4",
      "--batch-size",
      "4",
      "--layers",
      "1",
      "--width",
      "16",
      "--heads",
      "2",
      "--heldout-sequences",
      "8",
      "--checkpoint-every",
      "2",
      "--eval-every",
      "0",
      "--log-every",
      "1",
      "--seed",
      String(seed),
      "--alpha",
      "0.7",
      "--temperature",
      "2",
      "--quiet",
    ];
    const log = console.log;
    console.log = () => {};
    let before: { step: number; loss: number }[] = [];
    try {
      await trainCommand([...args, "--out", `${dir}/a`]);
      before = await trainRows(`${dir}/a/metrics.jsonl`);
      await Deno.remove(`${dir}/a/ckpt-00000004`, { recursive: true });
      await trainCommand([...args, "--out", `${dir}/a`, "--resume"]);
    } finally {
      console.log = log;
    }
    const train = await trainRows(`${dir}/a/metrics.jsonl`);
    assert.deepEqual(train.map((l) => l.step), [1, 2, 3, 4], "each step once");
    assert.deepEqual(
      train.map((l) => l.loss),
      before.map((l) => l.loss),
      "the same losses as before the resume",
    );
    assert.ok(train.every((l) => Number.isFinite(l.loss)));
    await Deno.remove(dir, { recursive: true });
  });
});

async function trainRows(path: string): Promise<{ step: number; loss: number }[]> {
  const rows = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
  return rows.filter((l) => l.kind === "train");
}

async function* map(it: AsyncIterable<Uint32Array>) {
  for await (const tokens of it) yield { tokens };
}
