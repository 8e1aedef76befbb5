import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { parseTrainFlags } from "../src/cli/train_flags.ts";
import { parseValueSchedule, scheduleValue } from "../src/train/schedule.ts";
import { train, validateTrainOptions } from "../src/train/train.ts";
import type { TrainOptions } from "../src/train/train_options.ts";
import { quietly, testRuntime, writePatternShards } from "./_train_fixtures.ts";

const unit = (x: number) => x >= 0 && x <= 1;

Deno.test("scheduleValue: a constant, linear and cosine hit both ends and the midpoint", () => {
  const c = parseValueSchedule("alpha", 0.7, unit, "in [0, 1]");
  assert.deepEqual(c, { start: 0.7, end: 0.7, shape: "constant" });
  for (const step of [0, 3, 10]) assert.equal(scheduleValue(c, step, 11), 0.7);
  const lin = parseValueSchedule("alpha", "0.7:0.3", unit, "in [0, 1]");
  assert.equal(lin.shape, "linear");
  const cos = parseValueSchedule("alpha", "0.7:0.3:cosine", unit, "in [0, 1]");
  for (const s of [lin, cos]) {
    assert.equal(scheduleValue(s, 0, 11), 0.7);
    assert.equal(scheduleValue(s, 10, 11), 0.3);
    assert.ok(Math.abs(scheduleValue(s, 5, 11) - 0.5) < 1e-12);
  }
  // A quarter of the way: linear 0.6, cosine 0.3 + 0.2·(1 + cos π/4) ≈ 0.6414 (slower at first).
  assert.ok(Math.abs(scheduleValue(lin, 1, 5) - 0.6) < 1e-12);
  assert.ok(Math.abs(scheduleValue(cos, 1, 5) - (0.3 + 0.2 * (1 + Math.SQRT1_2))) < 1e-12);
  // Rising schedules too, and a one-step run takes the start.
  const up = parseValueSchedule("temperature", "1:4:linear", (x) => x > 0, "> 0");
  assert.equal(scheduleValue(up, 2, 3), 4);
  assert.equal(scheduleValue(up, 0, 1), 1);
});

Deno.test("bad alpha and temperature specs fail with one line naming the option", () => {
  const cases: [TrainOptions, string, RegExp][] = [
    [{ alpha: "0.7:1.3:cosine" }, "alpha", /in \[0, 1\].*1\.3/],
    [{ alpha: 1.5 }, "alpha", /in \[0, 1\]/],
    [{ alpha: "0.7:0.3:exp" }, "alpha", /START:END/],
    [{ alpha: "a:b" }, "alpha", /START:END/],
    [{ alpha: "0.1:0.2:linear:4" }, "alpha", /START:END/],
    [{ alpha: ":0.3" }, "alpha", /START:END/],
    [{ temperature: "0:2" }, "temperature", /> 0/],
    [{ temperature: "2:1:cosine", kdMode: "tail" }, "temperature", /kdMode tail.*logsumexp/],
  ];
  for (const [o, option, re] of cases) {
    assert.throws(() => validateTrainOptions(o), (e: Error) => {
      assert.ok(e instanceof SparsekdError, String(e));
      assert.equal(e.option, option);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), e.message);
      return true;
    });
  }
  // Equal ends are a constant: allowed with tail; schedules of T are fine with modes without logsumexp.
  assert.equal(validateTrainOptions({ temperature: "2:2", kdMode: "tail" }), "tail");
  assert.equal(validateTrainOptions({ temperature: "2:1:cosine", kdMode: "topk" }), "topk");
});

Deno.test("--alpha and --temperature take a number or a schedule spec", () => {
  assert.deepEqual(parseTrainFlags(["--alpha", "0.7:0.3:cosine", "--temperature", "2"]), {
    alpha: "0.7:0.3:cosine",
    temperature: 2,
  });
  assert.throws(() => parseTrainFlags(["--alpha", "high"]), /--alpha must be a number/);
});

async function run(dir: string, name: string, extra: Partial<TrainOptions>) {
  const rt = await testRuntime();
  return await quietly(() =>
    train({
      rt,
      shards: `${dir}/topk`,
      out: `${dir}/${name}`,
      steps: 5,
      batchSize: 2,
      layers: 1,
      width: 8,
      heads: 2,
      heldoutSequences: 4,
      logEvery: 1,
      seed: 3,
      quiet: true,
      log: () => {},
      ...extra,
    })
  );
}

async function trainRows(path: string): Promise<Record<string, number>[]> {
  const rows = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
  return rows.filter((r) => r.kind === "train");
}

Deno.test("a cosine α schedule logs the α of each step; a constant spec trains exactly as a number", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writePatternShards(`${dir}/topk`, { seed: 3, sequences: 16, seqLen: 8, vocab: 24, k: 4 });
    await run(dir, "cos", { alpha: "0.7:0.3:cosine", temperature: 2 });
    const rows = await trainRows(`${dir}/cos/metrics.jsonl`);
    assert.deepEqual(rows.map((r) => r.step), [1, 2, 3, 4, 5]);
    const want = [0.7, 0.3 + 0.2 * (1 + Math.SQRT1_2), 0.5, 0.3 + 0.2 * (1 - Math.SQRT1_2), 0.3];
    rows.forEach((r, i) => {
      assert.ok(Math.abs(r.alpha - want[i]) < 1e-12, `step ${r.step}: α ${r.alpha}, want ${want[i]}`);
      assert.equal(r.temperature, 2);
    });

    // The schedule is part of the checkpoint's identity: resuming with another shape is refused.
    await assert.rejects(
      () => run(dir, "cos", { alpha: "0.7:0.3:linear", temperature: 2, resume: true }),
      (e: Error) => e instanceof SparsekdError && /other settings.*alpha/.test(e.message),
    );

    const a = await run(dir, "number", { alpha: 0.5 });
    const b = await run(dir, "spec", { alpha: "0.5:0.5:cosine" });
    const la = (await trainRows(`${dir}/number/metrics.jsonl`)).map((r) => r.loss);
    const lb = (await trainRows(`${dir}/spec/metrics.jsonl`)).map((r) => r.loss);
    assert.equal(la.length, 5);
    assert.deepEqual(lb, la);
    assert.equal(a.step, b.step);
    // ... and a different α does change the losses (the comparison can fail).
    await run(dir, "other", { alpha: 0.4 });
    const lc = (await trainRows(`${dir}/other/metrics.jsonl`)).map((r) => r.loss);
    assert.notDeepEqual(lc, la);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
