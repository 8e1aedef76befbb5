import assert from "node:assert/strict";
import { parseTrainFlags, TRAIN_HELP, trainCommand } from "../src/cli/train_flags.ts";
import { LOSS_MODES } from "../src/loss/modes.ts";
import { withSeed } from "./_rng.ts";
import { quietly, TINY_MODEL, trainRejects, writePatternShards } from "./_train_fixtures.ts";

Deno.test("train flags become named, typed options; a non-number is a one-line error naming the flag", () => {
  assert.deepEqual(
    parseTrainFlags([
      "--steps",
      "7",
      "--kd-mode",
      "tail",
      "--heldout-sequences",
      "3",
      "--untied",
      "--lr=1e-3",
    ]),
    { steps: 7, kdMode: "tail", heldoutSequences: 3, untied: true, lr: 1e-3 },
  );
  assert.equal(parseTrainFlags(["--help"]), null);
  assert.throws(
    () => parseTrainFlags(["--steps", "many"]),
    /^SparsekdError: --steps must be a number \(got "many"\)$/,
  );
});

Deno.test("--help lists every shard loss mode of the registry with its help text", () => {
  for (const m of Object.values(LOSS_MODES)) {
    if (m.source === "shards") assert.match(TRAIN_HELP, new RegExp(`\\b${m.name}\\s+${m.help.slice(0, 20)}`));
  }
});

Deno.test("range errors of the library name the command's flags", async () => {
  await trainRejects(["--steps", "0"], /^error: --steps must be ≥ 1 \(got 0\)$/);
  await trainRejects(["--batch-size", "1.5"], /^error: --batch-size must be an integer \(got 1\.5\)$/);
  await trainRejects(
    ["--kd-mode", "full"],
    /^error: --kd-mode must be topk, renorm, tail or sampled \(got "full"\) \(full is online: give --online-teacher instead\)$/,
  );
});

Deno.test("SIGINT finishes the step, checkpoints, prints the command to resume and exits 130", async () => {
  await withSeed("cli_train_flags_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      await writePatternShards(`${dir}/topk`, { seed, sequences: 16, seqLen: 8, vocab: 24, k: 4 });
      const args = [
        ...["--shards", `${dir}/topk`, "--out", `${dir}/out`, "--steps", "100000", "--batch-size", "2"],
        ...[
          ...TINY_MODEL,
          "--seed",
          String(seed),
        ],
        ...["--checkpoint-every", "0", "--eval-every", "0", "--log-every", "1", "--quiet"],
      ];
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../tasks/train.ts", import.meta.url).pathname, ...args],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      // Wait for the third step's line, then interrupt.
      let out = "";
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      while (!/^step 3\//m.test(out)) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      child.kill("SIGINT");
      for (let r = await reader.read(); !r.done; r = await reader.read()) out += r.value;
      const status = await child.status;
      const err = (await stderr).split("\n").filter((l) =>
        l && !/XDG_RUNTIME_DIR|^sparsekd:|^train: KD/.test(l)
      );
      assert.equal(status.code, 130, err.join("\n"));
      const last = err.at(-1)!;
      const m = /^train: stopped at step (\d+) of 100000; checkpoint (.*); resume with: deno task train (.*)$/
        .exec(last);
      assert.ok(m, err.join("\n"));
      const step = Number(m[1]);
      assert.ok(step >= 3);
      assert.equal(m[2], `${dir}/out/ckpt-${String(step).padStart(8, "0")}`);
      assert.ok((await Deno.stat(`${m[2]}/state.json`)).isFile, "the checkpoint is complete");
      assert.equal(m[3], [...args, "--resume"].join(" "));
      // The printed command resumes (here with a shorter run, so that it ends).
      const code = await quietly(() => trainCommand([...args, "--resume", "--steps", String(step + 1)]));
      assert.equal(code, 0);
      const rows = (await Deno.readTextFile(`${dir}/out/metrics.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      const steps = rows.filter((r) => r.kind === "train").map((r) => r.step);
      assert.deepEqual(steps, Array.from({ length: step + 1 }, (_, i) => i + 1));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
