/** `deno task bench --help` and `deno task bench <name> --help` (tasks/bench.ts): usage without running anything. */
import assert from "node:assert/strict";
import { runTask } from "./_helpers.ts";

const NAMES = ["topk", "sparse-kd", "save-topk", "train"];

Deno.test("deno task bench --help lists every benchmark and how to get its flags, and exits 0", async () => {
  const r = await runTask("bench", "--help");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^deno task bench <name> \[flags\]/);
  for (const name of NAMES) assert.match(r.stdout, new RegExp(`^  ${name} +\\S`, "m"), `lists ${name}`);
  assert.match(r.stdout, /deno task bench <name> --help lists the flags of one benchmark/);
});

Deno.test("deno task bench <name> --help prints that benchmark's flags and runs nothing", async () => {
  const flags: Record<string, string[]> = {
    topk: ["--shapes", "--reps", "--tfjs-reps", "--tfjs-cpu-reps", "--fit-ns", "--tfjs-fit-ns", "--wall"],
    "sparse-kd": [
      "--shapes",
      "--modes",
      "--k",
      "--alpha",
      "--reps",
      "--tfjs-reps",
      "--fit-ns",
      "--tfjs-fit-ns",
      "--rows-in-flight",
      "--wall",
    ],
    "save-topk": ["--sequences", "--seq-len", "--reps"],
    train: ["--steps", "--warmup", "--batch-size", "--vocab", "--seq-len", "--k", "--cpu"],
  };
  for (const name of NAMES) {
    const r = await runTask("bench", name, "--help");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`deno task bench ${name} [flags]`), r.stdout);
    for (const f of flags[name]) assert.ok(r.stdout.includes(`${f} `), `${name} --help lists ${f}`);
    assert.equal(r.stderr, "", "nothing ran (no adapter line, no progress)");
  }
});

Deno.test("deno task bench with no name or an unknown one is one error line naming the benchmarks", async () => {
  for (const args of [[], ["nope"]]) {
    const r = await runTask("bench", ...args);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr.trim(),
      /^error: usage: deno task bench <name>, with <name> one of: topk, sparse-kd, save-topk, train/,
    );
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
});
