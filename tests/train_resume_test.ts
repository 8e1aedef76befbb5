import assert from "node:assert/strict";
import { openStore } from "../src/store/open_store.ts";
import { tokenRecords } from "../src/train/batches.ts";
import { trainCommand } from "../src/cli/train_flags.ts";
import { trainLoop as train, type TrainLoopOptions as TrainOptions } from "../src/train/trainer.ts";
import { withSeed } from "./_rng.ts";
import {
  patternSource,
  testRuntime,
  TINY_MODEL,
  trainRejects,
  writePatternShards,
} from "./_train_fixtures.ts";

const quiet = { log: () => {}, progress: false };

Deno.test("a run stopped and resumed from its checkpoint has the same losses as one that never stopped", async () => {
  const rt = await testRuntime();
  await withSeed("train_resume_test", async (rng, seed) => {
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
  await withSeed("train_resume_test", async (_rng, seed) => {
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

/** The command-line flags of a tiny KD run from `dir/topk` into `dir/out`. */
function tinyRun(dir: string, seed: number, extra: string[] = []): string[] {
  return [
    ...["--shards", `${dir}/topk`, "--out", `${dir}/out`, "--steps", "4", "--batch-size", "2"],
    ...[
      ...TINY_MODEL,
      "--checkpoint-every",
      "2",
    ],
    ...["--eval-every", "2", "--log-every", "1", "--seed", String(seed), "--quiet", ...extra],
  ];
}

/** Runs `trainCommand(args)` capturing its stdout and stderr lines. */
async function captured(args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await trainCommand(args), lines };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function withTinyShards(body: (dir: string, seed: number) => Promise<void>) {
  await withSeed("train_resume_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      await writePatternShards(`${dir}/topk`, { seed, sequences: 16, seqLen: 8, vocab: 24, k: 4 });
      await body(dir, seed);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("--resume of a finished run says there is nothing to do, exits 0 and changes nothing", async () => {
  await withTinyShards(async (dir, seed) => {
    const first = await captured(tinyRun(dir, seed));
    assert.equal(first.code, 0);
    assert.equal(first.lines.filter((l) => l.includes("ms/step")).length, 1, "one ms/step figure");
    const metrics = await Deno.readTextFile(`${dir}/out/metrics.jsonl`);
    const again = await captured(tinyRun(dir, seed, ["--resume"]));
    assert.equal(again.code, 0);
    assert.deepEqual(
      again.lines.filter((l) => !/^(train: KD|sparsekd:)/.test(l)),
      [`nothing to do: ${dir}/out finished at step 4`],
    );
    assert.equal(await Deno.readTextFile(`${dir}/out/metrics.jsonl`), metrics, "no row appended");
  });
});

Deno.test("a checkpoint whose write crashed is ignored on --resume and rewritten; each step is logged once", async () => {
  await withTinyShards(async (dir, seed) => {
    await captured(tinyRun(dir, seed));
    const done = (await Deno.readTextFile(`${dir}/out/metrics.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    // A crash inside the write of ckpt-4: the weights are there, the optimizer state and state.json not.
    await Deno.remove(`${dir}/out/ckpt-00000004/state.json`);
    await Deno.remove(`${dir}/out/ckpt-00000004/optimizer.json`);
    const again = await captured(tinyRun(dir, seed, ["--resume"]));
    assert.equal(again.code, 0);
    assert.ok(
      again.lines.some((l) => /ignoring the incomplete .*ckpt-00000004/.test(l)),
      again.lines.join("\n"),
    );
    assert.ok(again.lines.some((l) => /resuming from .*ckpt-00000002/.test(l)));
    assert.ok((await Deno.stat(`${dir}/out/ckpt-00000004/state.json`)).isFile);
    const rows = (await Deno.readTextFile(`${dir}/out/metrics.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    const key = (r: { kind: string; step: number }) => `${r.kind}:${r.step}`;
    assert.deepEqual(rows.map(key), done.map(key), "each row once, in order");
    const loss = (rs: { kind: string; loss?: number }[]) =>
      rs.filter((r) => r.kind === "train").map((r) => r.loss);
    assert.deepEqual(loss(rows), loss(done), "the resumed steps reproduce the losses");
  });
});

Deno.test("a run stopped before its first checkpoint starts over on --resume; its old rows and a cut line go", async () => {
  await withTinyShards(async (dir, seed) => {
    await captured(tinyRun(dir, seed));
    const done = await Deno.readTextFile(`${dir}/out/metrics.jsonl`);
    const key = (text: string) =>
      text.trim().split("\n").map((l) => JSON.parse(l)).map((r) => `${r.kind}:${r.step}:${r.loss}`);
    // What a kill before the first checkpoint leaves: no complete checkpoint, the first rows, a cut line.
    for await (const e of Deno.readDir(`${dir}/out`)) {
      if (e.name.startsWith("ckpt-")) await Deno.remove(`${dir}/out/${e.name}`, { recursive: true });
    }
    const firstRow = done.split("\n")[0];
    await Deno.writeTextFile(`${dir}/out/metrics.jsonl`, firstRow + "\n" + firstRow.slice(0, 9));
    const again = await captured(tinyRun(dir, seed, ["--resume"]));
    assert.equal(again.code, 0, again.lines.join("\n"));
    assert.ok(again.lines.some((l) => /no complete checkpoint yet: starting from step 0/.test(l)));
    assert.deepEqual(key(await Deno.readTextFile(`${dir}/out/metrics.jsonl`)), key(done), "each row once");
  });
});

Deno.test("--resume with other settings names each one that differs; a larger --steps continues the run", async () => {
  await withTinyShards(async (dir, seed) => {
    await captured(tinyRun(dir, seed));
    await trainRejects(
      tinyRun(dir, seed, ["--resume", "--lr", "0.001", "--alpha", "0.5"]),
      /^error: --resume: .*ckpt-00000004 was trained with other settings: lr was 0\.003, now 0\.001; alpha was 1, now 0\.5$/,
    );
    const more = await captured([...tinyRun(dir, seed, ["--resume"]), "--steps", "6"]);
    assert.equal(more.code, 0);
    const rows = (await Deno.readTextFile(`${dir}/out/metrics.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(rows.filter((r) => r.kind === "train").map((r) => r.step), [1, 2, 3, 4, 5, 6]);
    assert.ok((await Deno.stat(`${dir}/out/ckpt-00000006/state.json`)).isFile);
  });
});
