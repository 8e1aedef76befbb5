import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { npyBytes } from "../src/data/npy.ts";
import { createGpt, type GptConfig } from "../src/model/gpt.ts";
import { tokenRecords } from "../src/train/batches.ts";
import { trainCommand } from "../src/cli/train_flags.ts";
import { trainLoop as train, type TrainLoopOptions as TrainOptions } from "../src/train/trainer.ts";
import { withSeed } from "./_rng.ts";
import { patternSource, quietly, testRuntime, trainRejects, writePatternShards } from "./_train_fixtures.ts";

const small = ["--layers", "1", "--width", "8", "--heads", "2", "--batch-size", "2", "--quiet"];

async function withDir(body: (dir: string, seed: number) => Promise<void>) {
  await withSeed("train_trainer_online_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      await body(dir, seed);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

async function trainLosses(path: string): Promise<number[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l))
    .filter((l) => l.kind === "train").map((l) => l.loss);
}

Deno.test("online KD feeds the teacher the batch's own tokens: a teacher equal to the student gives loss 0", async () => {
  const rt = await testRuntime();
  await withSeed("train_trainer_online_test", async (_rng, seed) => {
    const model: GptConfig = {
      vocabSize: 32,
      seqLen: 16,
      layers: 1,
      width: 16,
      heads: 2,
      tiedEmbeddings: true,
    };
    const src = patternSource(seed, { sequences: 24, seqLen: 16, vocab: 32 });
    const data = {
      sequences: src.sequences,
      stream: async function* (from: number) {
        for await (const t of tokenRecords(src).stream(from)) yield { tokens: t };
      },
    };
    const run = async (teacherSeed: number) => {
      const teacherModel = createGpt(model, teacherSeed);
      const opts: TrainOptions = {
        rt,
        model,
        seed,
        steps: 1,
        batchSize: 4,
        lr: 1e-2,
        warmup: 0,
        mode: "full",
        alpha: 1,
        temperature: 1.5,
        data,
        out: null,
        metricsPath: null,
        logEvery: 1,
        log: () => {},
        progress: false,
        teacher: (tokens, count, L) =>
          Promise.resolve(
            tf.tidy(() => teacherModel.logits(tf.tensor2d(Int32Array.from(tokens), [count, L], "int32"))),
          ),
      };
      const result = await train(opts);
      result.model.dispose();
      teacherModel.dispose();
      return result.losses.get(1)!;
    };
    // The student starts from the weights of `seed`: the same weights as a teacher give KL = 0 on any
    // batch, other weights a clearly positive KL.
    const same = await run(seed), other = await run(seed + 1);
    assert.ok(Math.abs(same) < 1e-5, `teacher = student: loss ${same}`);
    assert.ok(other > 1e-3, `another teacher: loss ${other}`);
  });
});

Deno.test("--online-teacher trains from the demo teacher's full logits and writes finite losses", async () => {
  await withDir(async (dir) => {
    await quietly(() =>
      trainCommand([
        "--data",
        "builtin:demo",
        "--online-teacher",
        "builtin:demo",
        "--steps",
        "3",
        "--log-every",
        "1",
        "--heldout-sequences",
        "2",
        "--out",
        `${dir}/out`,
        ...small,
      ])
    );
    const losses = await trainLosses(`${dir}/out/metrics.jsonl`);
    assert.equal(losses.length, 3);
    assert.ok(losses.every((l) => Number.isFinite(l) && l > 0), `losses ${losses}`);
    const state = JSON.parse(await Deno.readTextFile(`${dir}/out/ckpt-00000003/state.json`));
    assert.equal(state.identity.mode, "full");
    assert.equal(state.identity.onlineTeacher.teacher, "builtin:demo");
  });
});

Deno.test("--online-teacher refuses precomputed logits, a vocabulary mismatch and conflicting flags", async () => {
  await withDir(async (dir, seed) => {
    await writePatternShards(`${dir}/topk`, { seed, sequences: 16, seqLen: 8, vocab: 24, k: 4 });
    const shards = ["--shards", `${dir}/topk`, "--out", `${dir}/out`, ...small];
    await Deno.writeFile(`${dir}/l.npy`, npyBytes("<f4", [16, 8, 24], new Float32Array(16 * 8 * 24)));
    await trainRejects(
      [...shards, "--online-teacher", `npy:${dir}/l.npy`],
      /precomputed logits cannot run online/,
    );
    await trainRejects(
      [...shards, "--online-teacher", "builtin:demo"],
      /its vocabulary \(2048\) is not the student's \(24\)/,
    );
    await trainRejects([...shards, "--online-teacher", "builtin:demo", "--ce-only"], /not both/);
    await trainRejects(
      [...shards, "--online-teacher", "builtin:demo", "--kd-mode", "tail"],
      /takes no --kd-mode/,
    );
    await trainRejects(
      [...shards, "--online-teacher", "builtin:nope"],
      /the built-in teachers are builtin:demo and builtin:tslib/,
    );
  });
});

Deno.test("--k N trains on the first N stored entries: the same losses as shards saved with k = N", async () => {
  await withDir(async (dir, seed) => {
    const o = { seed, sequences: 24, seqLen: 8, vocab: 40 };
    await writePatternShards(`${dir}/k32`, { ...o, k: 32 });
    await writePatternShards(`${dir}/k6`, { ...o, k: 6 });
    const args = [
      "--steps",
      "3",
      "--log-every",
      "1",
      "--heldout-sequences",
      "4",
      "--kd-mode",
      "tail",
      ...small,
    ];
    await quietly(() => trainCommand([...args, "--shards", `${dir}/k32`, "--k", "6", "--out", `${dir}/a`]));
    await quietly(() => trainCommand([...args, "--shards", `${dir}/k6`, "--out", `${dir}/b`]));
    await quietly(() => trainCommand([...args, "--shards", `${dir}/k32`, "--out", `${dir}/c`]));
    const a = await trainLosses(`${dir}/a/metrics.jsonl`);
    const b = await trainLosses(`${dir}/b/metrics.jsonl`);
    const c = await trainLosses(`${dir}/c/metrics.jsonl`);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c, "all 32 entries give another loss");
    await trainRejects(
      [...args, "--shards", `${dir}/k32`, "--k", "33", "--out", `${dir}/d`],
      /^error: --k must be at most 32 \(got 33\): .*k32 holds the top-32 per position$/,
    );
    await trainRejects(
      [...args, "--data", "builtin:demo", "--ce-only", "--k", "4", "--out", `${dir}/e`],
      /--k selects from the shards/,
    );
  });
});
