/**
 * `deno task study`: CE-only, online full KD and offline top-k KD (topk, renorm, tail at several K) on the
 * demo task, scored on the held-out split (docs/study.md), in this process. Run with `--help` for the flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { stopOnSignals } from "../src/cli/stop_signals.ts";
import { intFlag, numberFlag, parseFlags } from "../src/cli/flags.ts";
import { readRunFlags, RUN_FLAG_SPEC, RUN_FLAGS, runFlagsHelp } from "../src/cli/run_flags.ts";
import { runStudy } from "../src/demo/run_study.ts";

const HELP = `deno task study [flags]

${
  runFlagsHelp("runs/study", "finished students")
}  --ks K1,K2,…         the K of the offline students (default 8,64); the shards hold the largest
  --alpha A            weight of the KD term of every KD student (default 1)
  --seeds S1,S2,…      train every student with each seed; the table gives means (default 1)
  --teacher SPEC       builtin:demo (default; flat distributions) or builtin:tslib (peaked, like a large
                       LM's); the data are its corpus (docs/data.md)
`;

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    ...RUN_FLAG_SPEC,
    ks: { type: "string" },
    alpha: { type: "string" },
    seeds: { type: "string" },
    teacher: { type: "string" },
  });
  if (f.help) return void console.log(HELP);
  const run = readRunFlags(f);
  const stop = stopOnSignals("study", "finishing the current stage (a student: its step and a checkpoint)…");
  const { markdown, report } = await runStudy({
    signal: stop.signal,
    ...run,
    ks: (f.ks ?? "8,64").split(",").map((k) => intFlag("ks", k.trim(), 0, { min: 1 })),
    alpha: numberFlag("alpha", f.alpha, 1, { min: 0, max: 1 }),
    seeds: (f.seeds ?? "1").split(",").map((x) => intFlag("seeds", x.trim(), 0, { min: 0 })),
    teacher: f.teacher,
  }).finally(() => stop.dispose());
  console.log(markdown);
  console.log(`study: table in ${run.dir ?? "runs/study"}/study.md, report in ${report}`);
}, { ...RUN_FLAGS, ks: "--ks", alpha: "--alpha", seeds: "--seeds", teacher: "--teacher" });
