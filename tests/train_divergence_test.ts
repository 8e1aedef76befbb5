// `train --divergence forward|reverse|jsd` and `--beta`: flags, validation (one-line errors naming the
// flag), training with each divergence, and the checkpoint identity that refuses a resume with another one.
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { parseTrainFlags, TRAIN_HELP } from "../src/cli/train_flags.ts";
import { train, validateTrainOptions } from "../src/train/train.ts";
import type { TrainOptions } from "../src/train/train_options.ts";
import { withSeed } from "./_rng.ts";
import { quietly, testRuntime, trainRejects, writePatternShards } from "./_train_fixtures.ts";

Deno.test("--divergence and --beta become options; --help names them; --beta must be a number", () => {
  assert.deepEqual(parseTrainFlags(["--kd-mode", "tail", "--divergence", "jsd", "--beta", "0.3"]), {
    kdMode: "tail",
    divergence: "jsd",
    beta: 0.3,
  });
  assert.throws(() => parseTrainFlags(["--beta", "half"]), /--beta must be a number \(got "half"\)/);
  assert.match(TRAIN_HELP, /--divergence D +forward/);
  assert.match(TRAIN_HELP, /--beta B +jsd only/);
});

Deno.test("divergence and beta are checked against the loss mode, naming the option", () => {
  const cases: [TrainOptions, string, RegExp][] = [
    [
      { divergence: "reverse" },
      "divergence",
      /reverse is defined on the renorm or tail supports only.*kdMode topk/,
    ],
    [{ divergence: "jsd", kdMode: "topk" }, "divergence", /jsd is defined on the renorm or tail/],
    [{ divergence: "reverse", onlineTeacher: "builtin:demo" }, "divergence", /onlineTeacher's full KD/],
    [{ divergence: "jsd", ceOnly: true }, "divergence", /the loss here is ceOnly/],
    [{ divergence: "kl", kdMode: "tail" }, "divergence", /must be forward, reverse or jsd \(got "kl"\)/],
    [{ beta: 0.5, kdMode: "renorm" }, "beta", /only for divergence jsd \(the divergence here is forward\)/],
    [{ divergence: "reverse", beta: 0.5, kdMode: "renorm" }, "beta", /only for divergence jsd/],
    [{ divergence: "jsd", beta: 1.5, kdMode: "renorm" }, "beta", /beta must be in \[0, 1\] \(got 1\.5\)/],
    [{ divergence: "jsd", beta: -0.1, kdMode: "tail" }, "beta", /beta must be in \[0, 1\]/],
    [{ divergence: "jsd", beta: NaN, kdMode: "tail" }, "beta", /beta must be in \[0, 1\]/],
    [{ divergence: "jsd", beta: 1e-40, kdMode: "tail" }, "beta", /0 or at least 1e-30/],
  ];
  for (const [o, option, re] of cases) {
    assert.throws(() => validateTrainOptions(o), (e: Error) => {
      assert.ok(e instanceof SparsekdError, String(e));
      assert.equal(e.option, option, e.message);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), e.message);
      return true;
    });
  }
  // The ends of β, and every divergence on both supports, are accepted.
  for (const kdMode of ["renorm", "tail"]) {
    for (const o of [{ divergence: "forward" }, { divergence: "reverse" }, { divergence: "jsd" }]) {
      assert.equal(validateTrainOptions({ kdMode, ...o }), kdMode);
    }
    assert.equal(validateTrainOptions({ kdMode, divergence: "jsd", beta: 0 }), kdMode);
    assert.equal(validateTrainOptions({ kdMode, divergence: "jsd", beta: 1 }), kdMode);
  }
  assert.equal(validateTrainOptions({ divergence: "forward" }), "topk");
});

Deno.test("the train command prints one error line naming --divergence or --beta", async () => {
  await trainRejects(
    ["--divergence", "reverse"],
    /^error: --divergence reverse is defined on the renorm or tail supports only \(the loss here is --kd-mode topk\)$/,
  );
  await trainRejects(["--divergence", "jsd", "--ce-only"], /^error: --divergence jsd .*--ce-only\)$/);
  await trainRejects(["--kd-mode", "renorm", "--beta", "0.5"], /^error: --beta is only for divergence jsd/);
  await trainRejects(
    ["--kd-mode", "renorm", "--divergence", "jsd", "--beta", "1.5"],
    /^error: --beta must be in \[0, 1\] \(got 1\.5\)$/,
  );
  await trainRejects(
    ["--kd-mode", "tail", "--divergence", "kl"],
    /^error: --divergence must be forward, reverse or jsd \(got "kl"\)$/,
  );
});

async function trainLosses(path: string): Promise<number[]> {
  const rows = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
  return rows.filter((r) => r.kind === "train").map((r) => r.loss);
}

Deno.test("each divergence trains; JSD at β = 0 and 1 trains as forward and reverse; resume refuses a change", async () => {
  await withSeed("train_divergence_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      await writePatternShards(`${dir}/topk`, {
        seed,
        sequences: 16,
        seqLen: 8,
        vocab: 24,
        k: 4,
        lseTemperatures: [2],
      });
      const rt = await testRuntime();
      const run = (name: string, extra: Partial<TrainOptions>) =>
        quietly(() =>
          train({
            rt,
            shards: `${dir}/topk`,
            out: `${dir}/${name}`,
            steps: 3,
            batchSize: 2,
            layers: 1,
            width: 8,
            heads: 2,
            heldoutSequences: 4,
            logEvery: 1,
            temperature: 2,
            alpha: 0.7,
            seed,
            quiet: true,
            log: () => {},
            ...extra,
          })
        );
      for (const kdMode of ["renorm", "tail"]) {
        const losses: Record<string, number[]> = {};
        for (
          const [name, o] of [
            ["forward", {}],
            ["reverse", { divergence: "reverse" }],
            ["jsd", { divergence: "jsd", beta: 0.3 }],
            ["jsd0", { divergence: "jsd", beta: 0 }],
            ["jsd1", { divergence: "jsd", beta: 1 }],
          ] as [string, Partial<TrainOptions>][]
        ) {
          const r = await run(`${kdMode}-${name}`, { kdMode, ...o });
          assert.equal(r.status, "finished");
          losses[name] = await trainLosses(`${dir}/${kdMode}-${name}/metrics.jsonl`);
          assert.equal(losses[name].length, 3);
          assert.ok(losses[name].every((l) => Number.isFinite(l) && l > 0), `${kdMode} ${name}`);
        }
        assert.deepEqual(losses.jsd0, losses.forward, `${kdMode}: jsd β=0 is forward KL`);
        assert.deepEqual(losses.jsd1, losses.reverse, `${kdMode}: jsd β=1 is reverse KL`);
        assert.notDeepEqual(losses.reverse, losses.forward);
        assert.notDeepEqual(losses.jsd, losses.forward);
        assert.notDeepEqual(losses.jsd, losses.reverse);

        // The divergence and β are part of the checkpoint's identity.
        const refused = (re: RegExp) => (e: Error) =>
          e instanceof SparsekdError && e.option === "resume" && re.test(e.message);
        await assert.rejects(
          () => run(`${kdMode}-reverse`, { kdMode, divergence: "jsd", resume: true }),
          refused(/other settings.*divergence was reverse, now jsd/),
        );
        await assert.rejects(
          () => run(`${kdMode}-reverse`, { kdMode, resume: true }),
          refused(/divergence was reverse, now unset/),
        );
        await assert.rejects(
          () => run(`${kdMode}-forward`, { kdMode, divergence: "reverse", resume: true }),
          refused(/divergence was unset, now reverse/),
        );
        await assert.rejects(
          () => run(`${kdMode}-jsd`, { kdMode, divergence: "jsd", beta: 0.4, resume: true }),
          refused(/beta was 0\.3, now 0\.4/),
        );
        // The same settings resume (here: extended by two steps).
        const more = await run(`${kdMode}-jsd`, {
          kdMode,
          divergence: "jsd",
          beta: 0.3,
          resume: true,
          steps: 5,
        });
        assert.equal(more.status, "finished");
        assert.equal(more.step, 5);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
