/**
 * Measures how concentrated a teacher's predictions are on held-out data: mean top-1/8/64 probability mass,
 * mean entropy, cross-entropy and top-1 accuracy on the true next token (`src/report/teacher_mass.ts`).
 *
 *     deno run -A tools/teacher_mass.ts --teacher builtin:tslib [--data SPEC] [--split heldout|train]
 *       [--sequences 64] [--seq-len L] [--ks 1,8,64] [--cpu] [--json]
 *
 * The data default to a `builtin:` teacher's own corpus; a `builtin:` corpus is read from its held-out split.
 * @module
 */
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { measureTeacherMass } from "../src/report/teacher_mass.ts";

if (import.meta.main) {
  await runMain(async () => {
    const { values: f } = parseFlags(Deno.args, {
      teacher: { type: "string", default: "builtin:tslib" },
      data: { type: "string" },
      split: { type: "string" },
      sequences: { type: "string" },
      "seq-len": { type: "string" },
      ks: { type: "string", default: "1,8,64" },
      cpu: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    });
    if (f.split !== undefined && f.split !== "train" && f.split !== "heldout") {
      throw new SparsekdError(`--split must be train or heldout (got "${f.split}")`);
    }
    const ks = f.ks.split(",").map((s) => Number(s));
    const m = await measureTeacherMass({
      teacher: f.teacher,
      data: f.data,
      split: f.split as "train" | "heldout" | undefined,
      sequences: f.sequences === undefined ? undefined : intFlag("sequences", f.sequences, 64, { min: 1 }),
      seqLen: f["seq-len"] === undefined ? undefined : intFlag("seq-len", f["seq-len"], 64, { min: 1 }),
      ks,
      cpu: f.cpu,
    });
    if (f.json) {
      console.log(JSON.stringify(m));
      return;
    }
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    console.log(`${f.teacher} on ${m.data}: ${m.sequences} sequences, ${m.positions} positions`);
    console.log(m.ks.map((k, i) => `top-${k} mass ${pct(m.mass[i])}`).join(", "));
    console.log(`entropy ${m.entropy.toFixed(3)} nats`);
    console.log(
      `next token: CE ${m.ce.toFixed(4)} nats, perplexity ${m.perplexity.toFixed(2)}, ` +
        `top-1 accuracy ${pct(m.top1Accuracy)} (${m.predicted} positions)`,
    );
  }, { ks: "--ks", sequences: "--sequences", seqLen: "--seq-len", data: "--data", teacher: "--teacher" });
}
