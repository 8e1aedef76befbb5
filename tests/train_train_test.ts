// train(options): the library call the demo and the study use in-process.
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { train, validateTrainOptions } from "../src/train/train.ts";
import { withSeed } from "./_rng.ts";
import { quietly, testRuntime, writePatternShards } from "./_train_fixtures.ts";

Deno.test("train() returns the final metrics, the out folder and one ms/step figure", async () => {
  const rt = await testRuntime();
  await withSeed("train_train_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      await writePatternShards(`${dir}/topk`, { seed, sequences: 16, seqLen: 8, vocab: 24, k: 4 });
      const lines: string[] = [];
      const r = await quietly(() =>
        train({
          rt,
          shards: `${dir}/topk`,
          out: `${dir}/out`,
          steps: 3,
          batchSize: 2,
          layers: 1,
          width: 8,
          heads: 2,
          heldoutSequences: 4,
          logEvery: 1,
          seed,
          quiet: true,
          log: (l) => lines.push(l),
        })
      );
      assert.equal(r.status, "finished");
      assert.equal(r.out, `${dir}/out`);
      assert.equal(r.step, 3);
      assert.equal(r.checkpoint, "ckpt-00000003");
      assert.equal(r.final?.step, 3);
      assert.ok(Number.isFinite(r.final!.perplexity) && r.final!.kl !== null);
      assert.ok(r.msPerStep > 0);
      assert.ok(r.parameters > 0);
      assert.ok(
        !lines.some((l) => l.includes("ms/step")),
        "the figure is in the result, not in the step lines",
      );
      const rows = (await Deno.readTextFile(`${dir}/out/metrics.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assert.deepEqual(rows.map((x) => `${x.kind}:${x.step}`), ["train:1", "train:2", "train:3", "eval:3"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("train() option errors name the option, never a command-line flag", () => {
  const cases: [Parameters<typeof validateTrainOptions>[0], string][] = [
    [{ alpha: 2 }, "alpha"],
    [{ steps: 0 }, "steps"],
    [{ batchSize: 1.5 }, "batchSize"],
    [{ kdMode: "nope" }, "kdMode"],
    [{ exportDtype: "f8" as "f16" }, "exportDtype"],
    [{ onlineTeacher: "builtin:demo", ceOnly: true }, "onlineTeacher"],
    [{ data: "builtin:demo" }, "data"],
  ];
  for (const [o, option] of cases) {
    assert.throws(() => validateTrainOptions(o), (e: Error) => {
      assert.ok(e instanceof SparsekdError);
      assert.equal(e.option, option);
      assert.ok(e.message.startsWith(option), e.message);
      assert.ok(!e.message.includes("--"), e.message);
      return true;
    });
  }
});
